// conv2d against a naive double-accumulating reference: k 1/3, stride 1/2, pad 0/1, odd sizes and channel
// counts, every weight dtype, bias and accumulate; every ISA this CPU runs, 1..3 threads, same bits for each.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "skip.h"

using namespace sd;

namespace {

struct ConvCase { int64_t N, Cin, H, W, Cout; int k, stride, pad; };

}  // namespace

TEST_CASE("conv2d matches the double reference for every ISA, dtype and thread count") {
    std::mt19937 rng(4321);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const ConvCase cases[] = {
        {1, 1, 1, 1, 1, 1, 1, 0},   {2, 3, 7, 5, 5, 3, 1, 1},    {1, 5, 9, 11, 7, 3, 2, 1},
        {1, 4, 8, 8, 3, 1, 1, 0},   {1, 6, 7, 9, 17, 1, 2, 0},   {2, 17, 13, 6, 33, 3, 1, 0},
        {1, 33, 16, 16, 20, 3, 2, 1}, {1, 8, 41, 39, 16, 3, 1, 1}, {1, 40, 12, 12, 9, 3, 1, 1},
        {1, 7, 10, 10, 3, 3, 2, 0},  {1, 64, 9, 7, 31, 1, 1, 0}, {1, 90, 5, 6, 5, 3, 1, 1},
        {1, 16, 24, 24, 40, 3, 1, 1}, {1, 64, 6, 6, 160, 3, 1, 1}};  // the last two: split 3 ways, along N / M
    int variant = 0;
    for (const ConvCase& cc : cases)
        for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
            variant++;
            bool use_bias = variant % 2 == 1, accumulate = variant % 3 == 0;
            int64_t N = cc.N, Cin = cc.Cin, H = cc.H, W = cc.W, Cout = cc.Cout;
            int k = cc.k, s = cc.stride, p = cc.pad;
            int64_t Ho = conv_out_size(H, k, s, p), Wo = conv_out_size(W, k, s, p), K = Cin * k * k;
            std::vector<float> in(N * Cin * H * W), bias(Cout), out0(N * Cout * Ho * Wo), wv(Cout * K);
            for (float& x : in) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            for (float& x : out0) x = nd(rng);
            std::vector<uint8_t> wraw(Cout * K * dtype_size(dt));
            for (int64_t i = 0; i < Cout * K; i++) {
                float x = nd(rng);
                if (dt == DType::f32) { std::memcpy(&wraw[i * 4], &x, 4); wv[i] = x; continue; }
                uint16_t h = dt == DType::f16 ? f32_to_f16(x) : f32_to_bf16(x);
                std::memcpy(&wraw[i * 2], &h, 2);
                wv[i] = dt == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
            }
            std::vector<double> ref(out0.size()), mag(out0.size());
            for (int64_t n = 0; n < N; n++)
                for (int64_t co = 0; co < Cout; co++)
                    for (int64_t oy = 0; oy < Ho; oy++)
                        for (int64_t ox = 0; ox < Wo; ox++) {
                            double sum = use_bias ? bias[co] : 0.0, m = std::fabs(sum);
                            for (int64_t ci = 0; ci < Cin; ci++)
                                for (int ky = 0; ky < k; ky++)
                                    for (int kx = 0; kx < k; kx++) {
                                        int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                        double t = (double)in[((n * Cin + ci) * H + iy) * W + ix] *
                                                   wv[(co * Cin + ci) * k * k + ky * k + kx];
                                        sum += t;
                                        m += std::fabs(t);
                                    }
                            int64_t o = ((n * Cout + co) * Ho + oy) * Wo + ox;
                            ref[o] = accumulate ? sum + out0[o] : sum;
                            mag[o] = m + std::fabs(ref[o]) + (accumulate ? std::fabs(out0[o]) : 0.0);
                        }
            for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
                if (!isa_supported(isa)) continue;
                set_isa(isa);
                std::vector<float> first;
                for (int threads : {1, 2, 3}) {
                    set_num_threads(threads);
                    std::vector<float> out = out0;
                    if (!accumulate) for (float& x : out) x = NAN;
                    conv2d(out.data(), in.data(), wraw.data(), dt, use_bias ? bias.data() : nullptr, N, Cin, H, W,
                           Cout, k, s, p, accumulate);
                    double max_abs = 0, max_rel = 0;
                    int64_t bad = -1;
                    for (size_t i = 0; i < out.size(); i++) {
                        double d = std::fabs(out[i] - ref[i]), rel = d / (mag[i] + 1e-6);
                        if (d > max_abs) max_abs = d;
                        if (rel > max_rel) max_rel = rel;
                        if (!(rel <= 1e-5) && bad < 0) bad = (int64_t)i;
                    }
                    INFO("isa=", isa_name(isa), " threads=", threads, " N=", N, " Cin=", Cin, " H=", H, " W=", W,
                         " Cout=", Cout, " k=", k, " stride=", s, " pad=", p, " dtype=", dtype_name(dt),
                         " bias=", use_bias, " acc=", accumulate, " max_abs=", max_abs, " max_rel=", max_rel,
                         " first bad=", bad);
                    CHECK(bad < 0);
                    if (threads == 1) first = out;
                    else CHECK(std::memcmp(first.data(), out.data(), out.size() * 4) == 0);
                }
            }
        }
    set_isa(best_isa());
    set_num_threads(0);
}

// bf16 precision: the reference rounds weights and inputs to bf16 and sums in double (test_gemm.cpp explains
// the 1e-5 tolerance and why an f32 product would fail it). Each output's sum has up to Cin·k² terms.
TEST_CASE("conv2d in bf16 matches the bf16-rounded double reference, same bits for 1..3 threads") {
    if (!precision_supported(Precision::bf16)) {  // test_gemm.cpp checks the refusal
        SKIPPED("no AVX512_BF16 or ARM64 BF16 on this CPU");
        return;
    }
    set_isa(best_isa());
    set_precision(Precision::bf16);
    auto r = [](float x) { return bf16_to_f32(f32_to_bf16(x)); };
    std::mt19937 rng(777);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const ConvCase cases[] = {{2, 3, 7, 5, 5, 3, 1, 1},    {1, 5, 9, 11, 7, 3, 2, 1},  {1, 6, 7, 9, 17, 1, 2, 0},
                              {2, 17, 13, 6, 33, 3, 1, 0}, {1, 33, 16, 16, 20, 3, 2, 1}, {1, 64, 9, 7, 31, 1, 1, 0},
                              {1, 45, 12, 12, 9, 3, 1, 1}, {1, 16, 24, 24, 40, 3, 1, 1}, {1, 64, 6, 6, 160, 3, 1, 1}};
    int variant = 0;
    for (const ConvCase& cc : cases)
        for (DType dt : {DType::f32, DType::f16}) {
            variant++;
            bool use_bias = variant % 2 == 1, accumulate = variant % 3 == 0;
            int64_t N = cc.N, Cin = cc.Cin, H = cc.H, W = cc.W, Cout = cc.Cout;
            int k = cc.k, s = cc.stride, p = cc.pad;
            int64_t Ho = conv_out_size(H, k, s, p), Wo = conv_out_size(W, k, s, p), K = Cin * k * k;
            std::vector<float> in(N * Cin * H * W), bias(Cout), out0(N * Cout * Ho * Wo), wv(Cout * K);
            for (float& x : in) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            for (float& x : out0) x = nd(rng);
            std::vector<uint8_t> wraw(Cout * K * dtype_size(dt));
            for (int64_t i = 0; i < Cout * K; i++) {
                float x = nd(rng);
                if (dt == DType::f32) { std::memcpy(&wraw[i * 4], &x, 4); wv[i] = x; continue; }
                uint16_t h = f32_to_f16(x);
                std::memcpy(&wraw[i * 2], &h, 2);
                wv[i] = f16_to_f32(h);
            }
            std::vector<double> ref(out0.size()), mag(out0.size());
            for (int64_t n = 0; n < N; n++)
                for (int64_t co = 0; co < Cout; co++)
                    for (int64_t oy = 0; oy < Ho; oy++)
                        for (int64_t ox = 0; ox < Wo; ox++) {
                            double sum = use_bias ? bias[co] : 0.0, m = std::fabs(sum);
                            for (int64_t ci = 0; ci < Cin; ci++)
                                for (int ky = 0; ky < k; ky++)
                                    for (int kx = 0; kx < k; kx++) {
                                        int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                        double t = (double)r(in[((n * Cin + ci) * H + iy) * W + ix]) *
                                                   r(wv[(co * Cin + ci) * k * k + ky * k + kx]);
                                        sum += t;
                                        m += std::fabs(t);
                                    }
                            int64_t o = ((n * Cout + co) * Ho + oy) * Wo + ox;
                            ref[o] = accumulate ? sum + out0[o] : sum;
                            mag[o] = m + std::fabs(ref[o]) + (accumulate ? std::fabs(out0[o]) : 0.0);
                        }
            std::vector<float> first;
            for (int threads : {1, 2, 3}) {
                set_num_threads(threads);
                std::vector<float> out = out0;
                conv2d(out.data(), in.data(), wraw.data(), dt, use_bias ? bias.data() : nullptr, N, Cin, H, W, Cout,
                       k, s, p, accumulate);
                double max_abs = 0, max_rel = 0;
                int64_t bad = -1;
                for (size_t i = 0; i < out.size(); i++) {
                    double d = std::fabs(out[i] - ref[i]), rel = d / (mag[i] + 1e-6);
                    if (d > max_abs) max_abs = d;
                    if (rel > max_rel) max_rel = rel;
                    if (!(rel <= 1e-5) && bad < 0) bad = (int64_t)i;
                }
                INFO("bf16 threads=", threads, " N=", N, " Cin=", Cin, " H=", H, " W=", W, " Cout=", Cout, " k=", k,
                     " stride=", s, " pad=", p, " dtype=", dtype_name(dt), " bias=", use_bias, " acc=", accumulate,
                     " max_abs=", max_abs, " max_rel=", max_rel, " first bad=", bad);
                CHECK(bad < 0);
                if (threads == 1) first = out;
                else CHECK(std::memcmp(first.data(), out.data(), out.size() * 4) == 0);
            }
        }
    set_precision(Precision::fp32);
    set_isa(best_isa());
    set_num_threads(0);
}
