// attention.cpp — multi-head scaled dot-product attention, softmax(q·kᵀ·scale)·v, optionally causal, split over the
// threads in units of (batch, head, block of query rows). The scalar entry (isa_scalar.cpp) is the plain per-row
// version (scores, softmax, weighted sum of v); the SIMD entries (attention_body.inc) run a tiled online softmax.
#include "kernels/kernels.h"
#include "kernels/table.h"

namespace sd {

void attention(float* out, int64_t ldo, const float* q, int64_t ldq, const float* k, int64_t ldk,
               const float* v, int64_t ldv, int64_t B, int64_t Nq, int64_t Nk, int64_t heads, int64_t D,
               float scale, bool causal) {
    if (B <= 0 || Nq <= 0 || heads <= 0 || D <= 0) return;
    if (Nk <= 0) {  // no keys: the weighted sum is empty (PyTorch gives zeros too)
        for (int64_t r = 0; r < B * Nq; r++)
            for (int64_t c = 0; c < heads * D; c++) out[r * ldo + c] = 0.0f;
        return;
    }
    const OpsTable& t = kernels().ops;
    AttnArgs a = {out, ldo, q, ldq, k, ldk, v, ldv, B, Nq, Nk, heads, D, scale, causal};
    int64_t units = B * heads * ((Nq + t.attn_block_q - 1) / t.attn_block_q);
    parallel_for(units, [&](int64_t u0, int64_t u1) { t.attention(a, u0, u1); });
}

}  // namespace sd
