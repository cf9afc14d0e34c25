// vec_avx2.cpp — the AVX2+FMA+F16C kernel table for everything but the matrix products (see
// ops_internal.h): the vector wrapper over ymm registers, then the shared bodies vec_body.inc and
// attention_body.inc. With 16 registers the attention tiles are 6 keys (or 6 output columns) × 16
// queries: 12 accumulators, 2 query vectors and 1 broadcast. (4 × 24 needs all 16 registers, and GCC
// then re-loads the query vectors inside the loop: ~20% slower on Zen 4.)
#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/ops_internal.h"

namespace sd {
namespace {

typedef __m256 vf;
const int VL = 8;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float x) { return _mm256_set1_ps(x); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vabs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
inline vf vround(vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vpow2i(vf n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
inline vf vldexp(vf p, vf n) { return _mm256_mul_ps(p, vpow2i(n)); }
inline vf vblend_lt(vf a, vf b, vf x, vf y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
inline vf vload_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
inline void vstore_f16(uint16_t* p, vf v) {
    _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline vf vload_bf16(const uint16_t* p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
// Integer round to nearest even as in half.h; NaN stays a quiet NaN.
inline void vstore_bf16(uint16_t* p, vf v) {
    __m256i u = _mm256_castps_si256(v);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff))), 16);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);  // 16-bit lanes 0..7 in order
    _mm_storeu_si128((__m128i*)p, _mm256_castsi256_si128(packed));
}

const int ATT_QV = 2, ATT_KB = 6, ATT_DB = 6, ATT_NK = 60, ATT_TILE_BYTES = 32768;

}  // namespace

#include "kernels/vec_body.inc"
#include "kernels/attention_body.inc"

const OpsTable& ops_avx2() {
    static const OpsTable t = {
        k_f16_to_f32, k_bf16_to_f32, k_f32_to_f16, k_f32_to_bf16,
        k_silu, k_gelu, k_quick_gelu, k_gelu_mul, k_add, k_mul, k_scale_add, k_add_scalar,
        k_sum, k_sum_sq_dev, k_affine, k_norm_affine, k_softmax_row,
        ATT_MQ, k_attention,
    };
    return t;
}

}  // namespace sd
