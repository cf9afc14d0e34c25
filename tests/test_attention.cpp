// attention() against a naive double-precision softmax(q·kᵀ·scale)·v: awkward shapes, causal masks,
// q/k/v interleaved in one (B, N, 3·C) buffer or in separate buffers with padded row strides, logits large
// enough to need the running max; every ISA this CPU runs, 1..3 threads, and the same bits for every thread
// count. A skipped case times the Stable Diffusion shapes (run with --no-skip -tc="*attention timing*").
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace sd;

namespace {

std::vector<Isa> supported_isas() {
    std::vector<Isa> v;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon})
        if (isa_supported(isa)) v.push_back(isa);
    return v;
}

struct Shape { int64_t B, Nq, Nk, heads, D; bool causal; float logit_gain; };

// q, k, v with their row strides: self-attention shapes share one interleaved (B, N, 3·C) buffer like a
// fused qkv projection's output; others get separate buffers with rows padded past C.
struct Inputs {
    std::vector<float> q_buf, kv_buf;
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv;
};

Inputs make_inputs(const Shape& s, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    int64_t C = s.heads * s.D;
    Inputs in;
    if (s.Nq == s.Nk) {
        in.q_buf.resize(s.B * s.Nq * 3 * C);
        for (auto& x : in.q_buf) x = nd(rng);
        in.q = in.q_buf.data();
        in.k = in.q + C;
        in.v = in.q + 2 * C;
        in.ldq = in.ldk = in.ldv = 3 * C;
    } else {
        in.ldq = C + 3;
        in.ldk = C + 1;
        in.ldv = 2 * C + 7;
        in.q_buf.resize(s.B * s.Nq * in.ldq);
        in.kv_buf.resize(s.B * s.Nk * (in.ldk + in.ldv));
        for (auto& x : in.q_buf) x = nd(rng);
        for (auto& x : in.kv_buf) x = nd(rng);
        in.q = in.q_buf.data();
        in.k = in.kv_buf.data();
        in.v = in.kv_buf.data() + s.B * s.Nk * in.ldk;
    }
    return in;
}

// out[b, i, h] = Σ_j softmax_j(scale · q_i·k_j) v_j over the keys j <= i (causal) or all keys, in double.
std::vector<double> reference(const Shape& s, const Inputs& in, float scale) {
    int64_t C = s.heads * s.D;
    std::vector<double> out(s.B * s.Nq * C), w(s.Nk);
    for (int64_t b = 0; b < s.B; b++)
        for (int64_t h = 0; h < s.heads; h++)
            for (int64_t i = 0; i < s.Nq; i++) {
                const float* q = in.q + (b * s.Nq + i) * in.ldq + h * s.D;
                int64_t nk = s.causal ? std::min(i + 1, s.Nk) : s.Nk;
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < nk; j++) {
                    const float* k = in.k + (b * s.Nk + j) * in.ldk + h * s.D;
                    double d = 0;
                    for (int64_t c = 0; c < s.D; c++) d += (double)q[c] * k[c];
                    w[j] = d * scale;
                    m = std::max(m, w[j]);
                }
                for (int64_t j = 0; j < nk; j++) sum += (w[j] = std::exp(w[j] - m));
                double* o = &out[(b * s.Nq + i) * C + h * s.D];
                for (int64_t j = 0; j < nk; j++) {
                    const float* v = in.v + (b * s.Nk + j) * in.ldv + h * s.D;
                    for (int64_t c = 0; c < s.D; c++) o[c] += w[j] / sum * v[c];
                }
            }
    return out;
}

}  // namespace

TEST_CASE("attention matches a naive double softmax(q·kᵀ·scale)·v") {
    const Shape shapes[] = {
        {1, 1, 1, 1, 1, false, 1},     {2, 7, 5, 3, 4, false, 1},    {1, 77, 77, 2, 64, true, 1},
        {2, 65, 13, 8, 40, false, 1},  {1, 300, 300, 1, 40, false, 1}, {1, 300, 300, 1, 40, true, 1},
        {1, 5, 9, 2, 8, true, 1},      {2, 50, 77, 2, 80, false, 1},  {1, 33, 154, 1, 160, false, 1},
        {1, 100, 100, 1, 512, false, 1}, {1, 70, 200, 2, 24, false, 6}, {1, 40, 40, 3, 7, true, 4},
        // logits of several hundred: e^x overflows unless the running max is subtracted (causal too)
        {1, 70, 90, 2, 40, false, 60},  {2, 90, 90, 2, 40, true, 60},  {1, 33, 33, 1, 8, true, 150},
    };
    for (const Shape& s : shapes) {
        int64_t C = s.heads * s.D;
        // logit_gain > 1 scales the logits up (to ~±60 at 4-6, several hundred at 60-150), so the online softmax must
        // rescale its running sums, and e^x overflows without the running max
        float scale = s.logit_gain / std::sqrt((float)s.D);
        Inputs in = make_inputs(s, (uint32_t)(s.Nq * 131 + s.Nk * 7 + s.D));
        std::vector<double> want = reference(s, in, scale);
        int64_t ldo = C + 5;  // padded rows: the padding must stay untouched
        std::vector<float> first;
        Isa saved = active_isa();
        for (Isa isa : supported_isas()) {
            set_isa(isa);
            for (int threads : {1, 2, 3}) {
                set_num_threads(threads);
                CAPTURE(isa_name(isa));
                CAPTURE(threads);
                CAPTURE(s.B);
                CAPTURE(s.Nq);
                CAPTURE(s.Nk);
                CAPTURE(s.heads);
                CAPTURE(s.D);
                CAPTURE(s.causal);
                std::vector<float> out(s.B * s.Nq * ldo, 12345.0f);
                attention(out.data(), ldo, in.q, in.ldq, in.k, in.ldk, in.v, in.ldv, s.B, s.Nq, s.Nk, s.heads,
                          s.D, scale, s.causal);
                double max_err = 0, max_ref = 0;
                int pad_touched = 0;
                for (int64_t r = 0; r < s.B * s.Nq; r++) {
                    for (int64_t c = 0; c < C; c++) {
                        double e = std::fabs(out[r * ldo + c] - want[r * C + c]);
                        if (!(e <= max_err)) max_err = e;
                        max_ref = std::max(max_ref, std::fabs(want[r * C + c]));
                    }
                    for (int64_t c = C; c < ldo; c++) pad_touched += out[r * ldo + c] != 12345.0f;
                }
                // f32 dot products of length D and sums over Nk terms, outputs of size ~|v| <= 5;
                // larger logits amplify the logits' own rounding
                double tol = 2e-5 * s.logit_gain;
                if (max_err > tol) std::printf("attention max abs err %.3g (max |ref| %.3g)\n", max_err, max_ref);
                CHECK(max_err <= tol);
                CHECK(pad_touched == 0);
                if (threads == 1) first = out;
                CHECK(std::memcmp(out.data(), first.data(), out.size() * 4) == 0);
            }
        }
        set_isa(saved);
        set_num_threads(0);
    }
}

TEST_CASE("attention with no keys writes zeros") {
    std::vector<float> q(2 * 3 * 8, 1.0f), out(2 * 3 * 10, 7.0f), kv(1, 0.0f);
    attention(out.data(), 10, q.data(), 8, kv.data(), 8, kv.data(), 8, 2, 3, 0, 2, 4, 0.5f, false);
    int bad = 0;
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 10; c++) bad += out[r * 10 + c] != (c < 8 ? 0.0f : 7.0f);
    CHECK(bad == 0);
}

TEST_CASE("attention timing for the Stable Diffusion shapes" * doctest::skip()) {
    const Shape shapes[] = {
        {2, 4096, 4096, 8, 40, false, 1}, {2, 1024, 1024, 8, 80, false, 1}, {2, 256, 256, 8, 160, false, 1},
        {2, 4096, 77, 8, 40, false, 1},   {1, 77, 77, 12, 64, true, 1},      {1, 4096, 4096, 1, 512, false, 1},
    };
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        for (const Shape& s : shapes) {
            Inputs in = make_inputs(s, 1);
            int64_t C = s.heads * s.D;
            std::vector<float> out(s.B * s.Nq * C);
            double flops = 4.0 * s.B * s.heads * s.Nq * s.Nk * s.D, best = 1e30;
            for (int rep = 0; rep < 3; rep++) {
                auto t0 = std::chrono::steady_clock::now();
                attention(out.data(), C, in.q, in.ldq, in.k, in.ldk, in.v, in.ldv, s.B, s.Nq, s.Nk, s.heads, s.D,
                          1.0f / std::sqrt((float)s.D), s.causal);
                best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            std::printf("attention %s threads=%d B=%lld Nq=%lld Nk=%lld heads=%lld D=%lld%s: %.2f ms, %.1f GFLOP/s\n",
                        isa_name(active_isa()), threads, (long long)s.B, (long long)s.Nq, (long long)s.Nk,
                        (long long)s.heads, (long long)s.D, s.causal ? " causal" : "", best * 1e3, flops / best * 1e-9);
        }
    }
    set_num_threads(0);
}
