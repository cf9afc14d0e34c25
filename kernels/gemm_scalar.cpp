// gemm_scalar.cpp — the matrix-product kernels in portable C++ (one float per "vector", 4×4 tile): the
// reference and fallback for CPUs without a vector ISA we support.
#include <cmath>
#include <cstring>

#include "kernels/gemm_internal.h"
#include "kernels/half.h"

namespace sd {
namespace {

typedef float vf;
const int VL = 1;
inline vf vzero() { return 0.0f; }
inline vf vset1(float x) { return x; }
inline vf vload(const float* p) { return *p; }
inline void vstore(float* p, vf v) { *p = v; }
inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
inline vf vadd(vf a, vf b) { return a + b; }
inline vf vsub(vf a, vf b) { return a - b; }
inline vf vmul(vf a, vf b) { return a * b; }
inline vf vdiv(vf a, vf b) { return a / b; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vabs(vf a) { return std::fabs(a); }
inline vf vcopysign(vf mag, vf sign) { return std::copysign(mag, sign); }
inline vf vround(vf x) { return std::nearbyint(x); }
inline vf vpow2i(vf n) { return bits_to_f32((uint32_t)((int)n + 127) << 23); }
inline vf vload_f16(const uint16_t* p) { return f16_to_f32(*p); }
inline vf vload_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
inline float vsum(vf v) { return v; }

const int MR = 4, NV = 4, KC = 256, MC = 64, NC = 512, FMA_CHAINS = 12;

}  // namespace

#define GEMM_SUFFIX(name) name##scalar
#include "kernels/gemm_body.inc"

}  // namespace sd
