// conv2d_winograd (conv_winograd.cpp) against a double reference of the 3×3 pad-1 conv: odd sizes (partial
// tiles), batches, partial last bands, bias, accumulate, every weight dtype, every ISA this CPU runs, 1..3 threads
// and several band heights, each giving the same bits; in place (out = in, Cout <= Cin) the same bits again; the
// scratch bound is checked with a guard band.
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

namespace {

// Each output within 1e-5 of its sum of |terms| (plus 1e-6): f32 rounding of any summation order, not more.
const test::Tol kTol = test::rel_tol(1e-5, 1e-11);

struct Case { int64_t N, Cin, H, W, Cout; };

}  // namespace

TEST_CASE("conv2d_winograd matches the double reference for every ISA, dtype, thread count and band") {
    std::mt19937 rng(31337);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const Case cases[] = {{1, 1, 1, 1, 1},   {1, 3, 2, 2, 5},      {2, 5, 7, 9, 4},      {1, 8, 6, 33, 12},
                          {3, 16, 13, 10, 16}, {1, 40, 17, 31, 24}, {2, 24, 32, 64, 20}};
    int variant = 0;
    for (const Case& c : cases)
        for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
            variant++;
            const bool use_bias = variant % 2 == 1, accumulate = variant % 3 == 0;
            const int64_t N = c.N, Cin = c.Cin, H = c.H, W = c.W, Cout = c.Cout;
            std::vector<float> in(N * Cin * H * W), bias(Cout), out0(N * Cout * H * W), wv;
            std::vector<uint8_t> wraw;
            for (float& x : in) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            for (float& x : out0) x = nd(rng);
            test::random_weights(rng, Cout * Cin * 9, dt, wraw, wv);
            std::vector<double> ref, mag;
            test::conv3x3_reference(in.data(), N, Cin, H, W, wv.data(), use_bias ? bias.data() : nullptr, Cout, 1,
                                    ref, mag);
            if (accumulate)  // out += conv: the old output joins the sum and its magnitude
                for (size_t o = 0; o < ref.size(); o++) {
                    double sum = ref[o];
                    ref[o] = sum + out0[o];
                    mag[o] += std::fabs(ref[o]) - std::fabs(sum) + std::fabs(out0[o]);
                }
            for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
                if (!isa_supported(isa)) continue;
                set_isa(isa);
                std::vector<float> first;
                for (int64_t band : {0, 1, 3}) {
                    for (int threads : {1, 2, 3}) {
                        if (band != 0 && threads != 2) continue;
                        set_num_threads(threads);
                        std::vector<float> out = out0;
                        if (!accumulate) std::fill(out.begin(), out.end(), NAN);
                        test::GuardedScratch scratch(conv2d_winograd_scratch(Cin, H, W, Cout, band));
                        conv2d_winograd(out.data(), in.data(), wraw.data(), dt, use_bias ? bias.data() : nullptr, N,
                                        Cin, H, W, Cout, scratch.data(), accumulate, band);
                        test::Diff d = test::compare(out.data(), ref.data(), (int64_t)out.size(), kTol, mag.data());
                        INFO("isa=", std::string(isa_name(isa)), " threads=", threads, " band=", band, " N=", N,
                             " Cin=", Cin, " H=", H, " W=", W, " Cout=", Cout, " dtype=", std::string(dtype_name(dt)),
                             " bias=", use_bias, " acc=", accumulate, " ", d.summary("conv"));
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

TEST_CASE("conv2d_winograd in place (out = in, Cout <= Cin) gives the out-of-place bits") {
    std::mt19937 rng(4242);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const Case cases[] = {{1, 1, 1, 1, 1}, {2, 6, 5, 7, 6}, {3, 8, 9, 6, 3}, {2, 12, 7, 33, 5}, {2, 32, 16, 40, 16}};
    for (const Case& c : cases) {
        const int64_t N = c.N, Cin = c.Cin, H = c.H, W = c.W, Cout = c.Cout;
        std::vector<float> in(N * Cin * H * W), bias(Cout), wv;
        std::vector<uint8_t> wraw;
        for (float& x : in) x = nd(rng);
        for (float& x : bias) x = nd(rng);
        test::random_weights(rng, Cout * Cin * 9, DType::f16, wraw, wv);
        for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
            if (!isa_supported(isa)) continue;
            set_isa(isa);
            std::vector<float> want(N * Cout * H * W);
            test::GuardedScratch s0(conv2d_winograd_scratch(Cin, H, W, Cout));
            conv2d_winograd(want.data(), in.data(), wraw.data(), DType::f16, bias.data(), N, Cin, H, W, Cout,
                            s0.data());
            for (int64_t band : {0, 1, 2, 100}) {
                set_num_threads(band == 2 ? 3 : band == 1 ? 1 : 2);
                std::vector<float> x = in;
                test::GuardedScratch scratch(conv2d_winograd_scratch(Cin, H, W, Cout, band));
                conv2d_winograd(x.data(), x.data(), wraw.data(), DType::f16, bias.data(), N, Cin, H, W, Cout,
                                scratch.data(), false, band);
                INFO("isa=", std::string(isa_name(isa)), " band=", band, " N=", N, " Cin=", Cin, " H=", H, " W=", W,
                     " Cout=", Cout);
                CHECK(std::memcmp(x.data(), want.data(), want.size() * 4) == 0);
                CHECK(scratch.guard_intact());
            }
        }
    }
    set_isa(best_isa());
    set_num_threads(0);
}
