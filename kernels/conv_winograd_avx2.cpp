// conv_winograd_avx2.cpp — the Winograd transforms (conv_winograd_body.inc) over ymm vectors: 8 tiles a step.
#include <immintrin.h>

#include "kernels/conv_winograd_internal.h"

namespace sd {
namespace {

typedef __m256 vf;
const int VL = 8;
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vset1(float x) { return _mm256_set1_ps(x); }
inline void vdeinterleave(const float* p, vf& even, vf& odd) {
    vf a = vload(p), b = vload(p + 8);  // shuffle within 128-bit lanes, then put the 64-bit pairs in order
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}
// first, second = lo[0] hi[0] lo[1] hi[1] ...: the two vectors interleaved
inline void vzip(vf lo, vf hi, vf& first, vf& second) {
    __m256 a = _mm256_unpacklo_ps(lo, hi), b = _mm256_unpackhi_ps(lo, hi);  // pairs 0,1 | 4,5 and 2,3 | 6,7
    first = _mm256_permute2f128_ps(a, b, 0x20);
    second = _mm256_permute2f128_ps(a, b, 0x31);
}

}  // namespace
}  // namespace sd

#define WINOGRAD_SUFFIX(name) name##avx2
#include "kernels/conv_winograd_body.inc"
