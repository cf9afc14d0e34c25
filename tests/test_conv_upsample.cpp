// conv2d_upsample2x (conv_winograd.cpp) against a double reference of conv3x3(nearest2x(x)): odd sizes, batches,
// partial last bands, every weight dtype, every ISA this CPU runs, 1..3 threads and several band heights, each
// giving the same bits; the scratch bound is checked with a guard band.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "compare.h"
#include "conv_reference.h"
#include "kernels/kernels.h"

using namespace sd;

namespace {

// Each output within 1e-5 of its sum of |terms| (plus 1e-6): f32 rounding of any summation order, not more.
const test::Tol kTol = test::rel_tol(1e-5, 1e-11);

struct Case { int64_t N, Cin, H, W, Cout; };

}  // namespace

TEST_CASE("conv2d_upsample2x matches conv3x3 of the 2x upsampled input (double reference)") {
    std::mt19937 rng(2024);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const Case cases[] = {{1, 1, 1, 1, 1}, {2, 3, 5, 7, 4}, {1, 8, 9, 6, 5}, {1, 16, 7, 33, 9},
                          {2, 5, 4, 4, 6}, {1, 40, 12, 10, 24}, {1, 24, 16, 64, 20}};
    int variant = 0;
    for (const Case& c : cases)
        for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
            const bool use_bias = ++variant % 2 == 1;
            const int64_t N = c.N, Cin = c.Cin, H = c.H, W = c.W, Cout = c.Cout;
            std::vector<float> in(N * Cin * H * W), bias(Cout), wv;
            std::vector<uint8_t> wraw;
            for (float& x : in) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            test::random_weights(rng, Cout * Cin * 9, dt, wraw, wv);
            std::vector<double> ref, mag;
            test::conv3x3_reference(in.data(), N, Cin, H, W, wv.data(), use_bias ? bias.data() : nullptr, Cout, 2,
                                    ref, mag);
            for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
                if (!isa_supported(isa)) continue;
                set_isa(isa);
                std::vector<float> first;
                for (int64_t band : {0, 1, 3}) {
                    for (int threads : {1, 2, 3}) {
                        if (band != 0 && threads != 2) continue;
                        set_num_threads(threads);
                        std::vector<float> out(ref.size(), NAN);
                        test::GuardedScratch scratch(conv2d_upsample2x_scratch(Cin, H, W, Cout, band));
                        conv2d_upsample2x(out.data(), in.data(), wraw.data(), dt, use_bias ? bias.data() : nullptr, N,
                                          Cin, H, W, Cout, scratch.data(), band);
                        test::Diff d = test::compare(out.data(), ref.data(), (int64_t)out.size(), kTol, mag.data());
                        INFO("isa=", std::string(isa_name(isa)), " threads=", threads, " band=", band, " N=", N,
                             " Cin=", Cin, " H=", H, " W=", W, " Cout=", Cout, " dtype=", std::string(dtype_name(dt)),
                             " bias=", use_bias, " ", d.summary("conv"));
                        CHECK(d.first_bad < 0);
                        CHECK(scratch.guard_intact());
                        if (first.empty()) first = out;
                        else CHECK(std::memcmp(first.data(), out.data(), out.size() * 4) == 0);
                    }
                }
            }
        }
    set_isa(best_isa());
    set_num_threads(0);
}
