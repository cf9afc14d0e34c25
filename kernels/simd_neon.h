// simd_neon.h — the vector wrapper over ARM64 Advanced SIMD (NEON, 4 floats) that every kernel body is written in
// (names as in simd_avx2.h). Every ARM64 CPU has it, with FMA, division, rounding and the native f16 conversions
// (fcvtl/fcvtn), so nothing here is optional. Included only by isa_neon.cpp.
#pragma once
#include <arm_neon.h>

#include <cstdint>

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
inline vf vround(vf x) { return vrndnq_f32(x); }
inline vf vldexp(vf x, vf n) {  // x·2^n, n integral in [-126, 127]
    return vmulq_f32(x, vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23)));
}
inline vf vblend_lt(vf a, vf b, vf x, vf y) { return vbslq_f32(vcltq_f32(a, b), x, y); }
inline float vsum(vf v) { return vaddvq_f32(v); }
inline vf vload_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline void vstore_f16(uint16_t* p, vf v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }  // FPCR: RNE
inline vf vload_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
inline void vstore_bf16(uint16_t* p, vf v) {
    uint32x4_t u = vreinterpretq_u32_f32(v);
    uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    uint32x4_t r = vshrq_n_u32(vaddq_u32(u, vaddq_u32(odd, vdupq_n_u32(0x7fff))), 16);
    uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
    r = vbslq_u32(nan, vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40)), r);
    vst1_u16(p, vmovn_u32(r));
}
inline void vdeinterleave(const float* p, vf& even, vf& odd) {
    float32x4x2_t t = vld2q_f32(p);  // ld2: the structure load splits even and odd elements itself
    even = t.val[0];
    odd = t.val[1];
}
inline void vzip(vf lo, vf hi, vf& first, vf& second) {
    first = vzip1q_f32(lo, hi);
    second = vzip2q_f32(lo, hi);
}

}  // namespace
}  // namespace sd
