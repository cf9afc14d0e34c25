// vec_avx512.cpp — the AVX-512 kernel table for everything but the matrix products (see ops_internal.h):
// the vector wrapper over zmm registers, then the shared bodies vec_body.inc and attention_body.inc.
//
// Zen 4 runs zmm FMAs on its two 256-bit pipes, so the gain over AVX2 is fewer instructions, 32 registers
// (a 8-key × 48-query scores tile and an 8-column × 48-query P·V tile, 24 accumulators each) and
// vscalefps for 2^n.
// GCC 12 warns about the deliberately undefined pass-through operand inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/ops_internal.h"

namespace sd {
namespace {

typedef __m512 vf;
const int VL = 16;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vabs(vf a) { return _mm512_abs_ps(a); }
inline vf vround(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vpow2i(vf n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
inline vf vldexp(vf p, vf n) { return _mm512_scalef_ps(p, n); }
inline vf vblend_lt(vf a, vf b, vf x, vf y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x);
}
inline vf vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
inline void vstore_f16(uint16_t* p, vf v) {
    _mm256_storeu_si256((__m256i*)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline vf vload_bf16(const uint16_t* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
// Integer round to nearest even as in half.h (vcvtneps2bf16 would flush subnormals); NaN stays quiet NaN.
inline void vstore_bf16(uint16_t* p, vf v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    _mm256_storeu_si256((__m256i*)p, _mm512_cvtepi32_epi16(r));
}

const int ATT_QV = 3, ATT_KB = 8, ATT_DB = 8, ATT_NK = 64, ATT_TILE_BYTES = 32768;

}  // namespace

#include "kernels/vec_body.inc"
#include "kernels/attention_body.inc"

const OpsTable& ops_avx512() {
    static const OpsTable t = {
        k_f16_to_f32, k_bf16_to_f32, k_f32_to_f16, k_f32_to_bf16,
        k_silu, k_gelu, k_quick_gelu, k_gelu_mul, k_add, k_mul, k_scale_add, k_add_scalar,
        k_sum, k_sum_sq_dev, k_affine, k_norm_affine, k_softmax_row,
        ATT_MQ, k_attention,
    };
    return t;
}

}  // namespace sd
