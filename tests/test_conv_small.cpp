// conv2d_small_cout (conv_small.cpp) against a naive double reference: 1..8 output channels (blocks of 3 and
// the partial ones), widths below, at and between the vector widths, heights that leave partial row blocks,
// batches, every weight dtype, every ISA this CPU runs, 1..3 threads giving the same bits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "compare.h"
#include "conv_reference.h"
#include "kernels/kernels.h"

using namespace sd;

TEST_CASE("conv2d_small_cout matches the double reference for every ISA, dtype and thread count") {
    struct Case { int64_t N, Cin, H, W, Cout; };
    const Case cases[] = {{1, 1, 1, 1, 1},  {1, 3, 2, 3, 3},   {2, 5, 9, 17, 3},  {1, 7, 13, 16, 2},
                          {1, 16, 11, 33, 4}, {1, 9, 17, 40, 5}, {3, 4, 8, 8, 8},  {1, 32, 20, 64, 3},
                          {1, 2, 30, 15, 7}};
    std::mt19937 rng(777);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    int variant = 0;
    for (const Case& c : cases)
        for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
            const bool use_bias = ++variant % 2 == 0;
            const int64_t N = c.N, Cin = c.Cin, H = c.H, W = c.W, Cout = c.Cout;
            std::vector<float> in(N * Cin * H * W), bias(Cout), wv;
            std::vector<uint8_t> wraw;
            for (float& x : in) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            test::random_weights(rng, Cout * Cin * 9, dt, wraw, wv);
            std::vector<double> ref, mag;
            test::conv3x3_reference(in.data(), N, Cin, H, W, wv.data(), use_bias ? bias.data() : nullptr, Cout, 1,
                                    ref, mag);
            for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
                if (!isa_supported(isa)) continue;
                set_isa(isa);
                std::vector<float> first;
                for (int threads : {1, 2, 3}) {
                    set_num_threads(threads);
                    std::vector<float> out(ref.size(), NAN);
                    conv2d_small_cout(out.data(), in.data(), wraw.data(), dt, use_bias ? bias.data() : nullptr, N,
                                      Cin, H, W, Cout);
                    // Each output within 1e-5 of its sum of |terms| (plus 1e-6); NaN (unwritten outputs) fails too.
                    test::Diff d = test::compare(out.data(), ref.data(), (int64_t)out.size(),
                                                 test::rel_tol(1e-5, 1e-11), mag.data());
                    INFO("isa=", std::string(isa_name(isa)), " threads=", threads, " N=", N, " Cin=", Cin, " H=", H,
                         " W=", W, " Cout=", Cout, " dtype=", std::string(dtype_name(dt)), " bias=", use_bias, " ",
                         d.summary("conv"));
                    CHECK(d.first_bad < 0);
                    if (threads == 1) first = out;
                    else CHECK(std::memcmp(first.data(), out.data(), out.size() * 4) == 0);
                }
            }
        }
    set_isa(best_isa());
    set_num_threads(0);
}
