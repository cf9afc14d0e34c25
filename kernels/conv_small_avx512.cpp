// conv_small_avx512.cpp — the direct small-Cout conv (conv_small_body.inc) over zmm vectors: blocks of 8 rows ×
// 16 columns × 3 channels, 24 accumulators of the 32 registers.
#include <immintrin.h>

#include "kernels/conv_small_internal.h"

namespace sd {
namespace {

typedef __m512 vf;
const int VL = 16;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }

}  // namespace
}  // namespace sd

#define CONV_SMALL_ROWS 8
#define CONV_SMALL_SUFFIX(name) name##avx512
#include "kernels/conv_small_body.inc"
