// conv_winograd_avx512.cpp — the Winograd transforms (conv_winograd_body.inc) over zmm vectors: 16 tiles a step.
#include <immintrin.h>

#include "kernels/conv_winograd_internal.h"

namespace sd {
namespace {

typedef __m512 vf;
const int VL = 16;
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline void vdeinterleave(const float* p, vf& even, vf& odd) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    vf a = vload(p), b = vload(p + 16);
    even = _mm512_permutex2var_ps(a, ie, b);
    odd = _mm512_permutex2var_ps(a, io, b);
}
// first, second = lo[0] hi[0] lo[1] hi[1] ...: the two vectors interleaved
inline void vzip(vf lo, vf hi, vf& first, vf& second) {
    const __m512i i0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i i1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    first = _mm512_permutex2var_ps(lo, i0, hi);
    second = _mm512_permutex2var_ps(lo, i1, hi);
}

}  // namespace
}  // namespace sd

#define WINOGRAD_SUFFIX(name) name##avx512
#include "kernels/conv_winograd_body.inc"
