// gemm_neon.cpp — the matrix-product kernels for ARM64 NEON (float32x4, 8×12 register tile: 24
// accumulators of the 32 vector registers, 3 for B, the A values broadcast from memory).
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm_internal.h"
#include "kernels/half.h"

namespace sd {
namespace {

typedef float32x4_t vf;
const int VL = 4;
inline vf vzero() { return vdupq_n_f32(0.0f); }
inline vf vset1(float x) { return vdupq_n_f32(x); }
inline vf vload(const float* p) { return vld1q_f32(p); }
inline void vstore(float* p, vf v) { vst1q_f32(p, v); }
inline vf vfma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
inline vf vadd(vf a, vf b) { return vaddq_f32(a, b); }
inline vf vsub(vf a, vf b) { return vsubq_f32(a, b); }
inline vf vmul(vf a, vf b) { return vmulq_f32(a, b); }
inline vf vdiv(vf a, vf b) { return vdivq_f32(a, b); }
inline vf vmin(vf a, vf b) { return vminq_f32(a, b); }
inline vf vmax(vf a, vf b) { return vmaxq_f32(a, b); }
inline vf vabs(vf a) { return vabsq_f32(a); }
inline vf vcopysign(vf mag, vf sign) { return vbslq_f32(vdupq_n_u32(0x80000000u), sign, mag); }
inline vf vround(vf x) { return vrndnq_f32(x); }
inline vf vpow2i(vf n) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23));
}
inline vf vload_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline vf vload_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
inline float vsum(vf v) { return vaddvq_f32(v); }

const int MR = 8, NV = 3, KC = 384, MC = 96, NC = 480, FMA_CHAINS = 16;

}  // namespace

#define GEMM_SUFFIX(name) name##neon
#include "kernels/gemm_body.inc"

}  // namespace sd
