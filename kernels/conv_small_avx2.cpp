// conv_small_avx2.cpp — the direct small-Cout conv (conv_small_body.inc) over ymm vectors: blocks of 4 rows ×
// 8 columns × 3 channels, 12 accumulators of the 16 registers.
#include <immintrin.h>

#include "kernels/conv_small_internal.h"

namespace sd {
namespace {

typedef __m256 vf;
const int VL = 8;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vset1(float x) { return _mm256_set1_ps(x); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }

}  // namespace
}  // namespace sd

#define CONV_SMALL_ROWS 4
#define CONV_SMALL_SUFFIX(name) name##avx2
#include "kernels/conv_small_body.inc"
