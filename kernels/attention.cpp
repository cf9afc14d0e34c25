// attention.cpp — multi-head scaled dot-product attention, softmax(q·kᵀ·scale)·v, optionally causal.
//
// The work is split into units of (batch, head, block of query rows); a unit never needs more than O(Nk)
// scratch, never an Nq×Nk matrix. The scalar entry here is the plain per-row version (scores for one
// query row, softmax, weighted sum of v); the SIMD entries (attention_*.cpp) run a tiled online softmax.
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ops_internal.h"

namespace sd {

namespace scalar_ops {
const int64_t attn_block_q = 16;

void attention(const AttnArgs& a, int64_t u0, int64_t u1) {
    int64_t qblocks = (a.Nq + attn_block_q - 1) / attn_block_q;
    std::vector<float> s(a.Nk), o(a.D);  // one query row's scores and output
    for (int64_t u = u0; u < u1; u++) {
        int64_t b = u / (a.heads * qblocks), h = u / qblocks % a.heads, qb = u % qblocks;
        int64_t i0 = qb * attn_block_q, i1 = i0 + attn_block_q < a.Nq ? i0 + attn_block_q : a.Nq;
        const float* k = a.k + b * a.Nk * a.ldk + h * a.D;
        const float* v = a.v + b * a.Nk * a.ldv + h * a.D;
        for (int64_t i = i0; i < i1; i++) {
            const float* q = a.q + (b * a.Nq + i) * a.ldq + h * a.D;
            int64_t nk = a.causal && i + 1 < a.Nk ? i + 1 : a.Nk;  // keys j > i are masked
            float m = -INFINITY;
            for (int64_t j = 0; j < nk; j++) {
                float d = 0;
                for (int64_t c = 0; c < a.D; c++) d += q[c] * k[j * a.ldk + c];
                s[j] = d * a.scale;
                m = s[j] > m ? s[j] : m;
            }
            double l = 0;
            for (int64_t c = 0; c < a.D; c++) o[c] = 0;
            for (int64_t j = 0; j < nk; j++) {
                float p = std::exp(s[j] - m);
                l += p;
                for (int64_t c = 0; c < a.D; c++) o[c] += p * v[j * a.ldv + c];
            }
            float inv = (float)(1.0 / l);
            float* out = a.out + (b * a.Nq + i) * a.ldo + h * a.D;
            for (int64_t c = 0; c < a.D; c++) out[c] = o[c] * inv;
        }
    }
}
}  // namespace scalar_ops

void attention(float* out, int64_t ldo, const float* q, int64_t ldq, const float* k, int64_t ldk,
               const float* v, int64_t ldv, int64_t B, int64_t Nq, int64_t Nk, int64_t heads, int64_t D,
               float scale, bool causal) {
    if (B <= 0 || Nq <= 0 || heads <= 0 || D <= 0) return;
    if (Nk <= 0) {  // no keys: the weighted sum is empty (PyTorch gives zeros too)
        for (int64_t r = 0; r < B * Nq; r++)
            for (int64_t c = 0; c < heads * D; c++) out[r * ldo + c] = 0.0f;
        return;
    }
    const OpsTable& t = ops();
    AttnArgs a = {out, ldo, q, ldq, k, ldk, v, ldv, B, Nq, Nk, heads, D, scale, causal};
    int64_t units = B * heads * ((Nq + t.attn_block_q - 1) / t.attn_block_q);
    parallel_for(units, [&](int64_t u0, int64_t u1) { t.attention(a, u0, u1); });
}

}  // namespace sd
