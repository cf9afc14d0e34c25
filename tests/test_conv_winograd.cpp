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
#include "kernels/kernels.h"

using namespace sd;

namespace {

// Each output within 1e-5 of its sum of |terms| (plus 1e-6): f32 rounding of any summation order, not more.
const test::Tol kTol = test::rel_tol(1e-5, 1e-11);

// Scratch of `floats` followed by a guard band that must come back untouched.
struct Scratch {
    std::vector<float> buf;
    size_t n;
    static constexpr size_t kGuard = 64;
    explicit Scratch(size_t floats) : buf(floats + kGuard + 16, -7.0f), n(floats) {}
    float* data() {  // 64-byte aligned start inside buf
        uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
        return buf.data() + ((64 - p % 64) % 64) / 4;
    }
    bool guard_intact() {
        float* g = data() + n;
        for (size_t i = 0; i < kGuard; i++) if (g[i] != -7.0f) return false;
        return true;
    }
};

struct Case { int64_t N, Cin, H, W, Cout; };

}  // namespace

TEST_CASE("conv2d_winograd matches the double reference for every ISA, dtype, thread count and band") {
    std::mt19937 rng(31337);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const Case cases[] = {{1, 1, 1, 1, 1},   {1, 3, 2, 2, 5},      {2, 5, 7, 9, 4},      {1, 8, 6, 33, 12},
                          {3, 16, 13, 10, 16}, {1, 40, 17, 31, 24}, {2, 24, 32, 64, 20}};
    int variant = 0;
    for (const Case& c : cases)
        for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
            variant++;
            const bool use_bias = variant % 2 == 1, accumulate = variant % 3 == 0;
            const int64_t N = c.N, Cin = c.Cin, H = c.H, W = c.W, Cout = c.Cout;
            std::vector<float> in(N * Cin * H * W), bias(Cout), out0(N * Cout * H * W), wv;
            std::vector<uint8_t> wraw;
            for (float& x : in) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            for (float& x : out0) x = nd(rng);
            test::random_weights(rng, Cout * Cin * 9, dt, wraw, wv);
            std::vector<double> ref(out0.size()), mag(out0.size());
            for (int64_t n = 0; n < N; n++)
                for (int64_t co = 0; co < Cout; co++)
                    for (int64_t oy = 0; oy < H; oy++)
                        for (int64_t ox = 0; ox < W; ox++) {
                            double sum = use_bias ? bias[co] : 0.0, m = std::fabs(sum);
                            for (int64_t ci = 0; ci < Cin; ci++)
                                for (int ky = 0; ky < 3; ky++)
                                    for (int kx = 0; kx < 3; kx++) {
                                        int64_t iy = oy - 1 + ky, ix = ox - 1 + kx;
                                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                        double t = (double)in[((n * Cin + ci) * H + iy) * W + ix] *
                                                   wv[(co * Cin + ci) * 9 + ky * 3 + kx];
                                        sum += t;
                                        m += std::fabs(t);
                                    }
                            int64_t o = ((n * Cout + co) * H + oy) * W + ox;
                            ref[o] = accumulate ? sum + out0[o] : sum;
                            mag[o] = m + std::fabs(ref[o]) + (accumulate ? std::fabs(out0[o]) : 0.0);
                        }
            for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
                if (!isa_supported(isa)) continue;
                set_isa(isa);
                std::vector<float> first;
                for (int64_t band : {0, 1, 3}) {
                    for (int threads : {1, 2, 3}) {
                        if (band != 0 && threads != 2) continue;
                        set_num_threads(threads);
                        std::vector<float> out = out0;
                        if (!accumulate) std::fill(out.begin(), out.end(), NAN);
                        Scratch scratch(conv2d_winograd_scratch(Cin, H, W, Cout, band));
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
        test::random_weights(rng, Cout * Cin * 9, DType::F16, wraw, wv);
        for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
            if (!isa_supported(isa)) continue;
            set_isa(isa);
            std::vector<float> want(N * Cout * H * W);
            Scratch s0(conv2d_winograd_scratch(Cin, H, W, Cout));
            conv2d_winograd(want.data(), in.data(), wraw.data(), DType::F16, bias.data(), N, Cin, H, W, Cout,
                            s0.data());
            for (int64_t band : {0, 1, 2, 100}) {
                set_num_threads(band == 2 ? 3 : band == 1 ? 1 : 2);
                std::vector<float> x = in;
                Scratch scratch(conv2d_winograd_scratch(Cin, H, W, Cout, band));
                conv2d_winograd(x.data(), x.data(), wraw.data(), DType::F16, bias.data(), N, Cin, H, W, Cout,
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
