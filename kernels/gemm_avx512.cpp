// gemm_avx512.cpp — the matrix-product kernels for AVX-512 (zmm, 14×32 register tile: 28 accumulators).
//
// Zen 4 splits each 512-bit FMA over its two 256-bit pipes, so the gain over AVX2 is fewer instructions
// and 32 registers (a bigger tile: fewer loads per FMA), not more FLOPs per cycle.
// GCC 12 warns about the deliberately undefined pass-through operand inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_internal.h"
#include "kernels/half.h"

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
inline vf vcopysign(vf mag, vf sign) {
    __m512i m = _mm512_set1_epi32((int)0x80000000u);  // bitwise select m ? sign : mag (imm 0xca)
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(m, _mm512_castps_si512(sign), _mm512_castps_si512(mag), 0xca));
}
inline vf vround(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vpow2i(vf n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
inline vf vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
inline vf vload_bf16(const uint16_t* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
inline float vsum(vf v) { return _mm512_reduce_add_ps(v); }

const int MR = 14, NV = 2, KC = 256, NC = 512, FMA_CHAINS = 12;

}  // namespace

#define GEMM_SUFFIX(name) name##avx512
#include "kernels/gemm_body.inc"

}  // namespace sd
