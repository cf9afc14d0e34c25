// half.h — scalar f16 / bf16 <-> f32 conversion (IEEE binary16, bfloat16), exact and round-to-nearest-even.
// Used by the reference paths, tests and the scalar kernels; SIMD files use the hardware instructions.
#pragma once
#include <cstdint>
#include <cstring>

namespace sd {

inline float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }
inline uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13));  // inf / nan
    if (exp == 0) {  // zero or subnormal: man · 2^-24
        const float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

inline uint16_t f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);  // nan
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // overflow (rounds to inf)
    if (a < 0x38800000u) {                                   // subnormal or zero in f16
        // add 0.5 (as f32) to shift the mantissa into place; the FPU rounds to nearest even
        float v = bits_to_f32(a) + 0.5f;
        return (uint16_t)(sign | (f32_to_bits(v) - 0x3f000000u));
    }
    uint32_t mant_odd = (a >> 13) & 1;
    a += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
    return (uint16_t)(sign | (a >> 13));
}

// Element i of a buffer of dtype code 0 (f32), 1 (f16) or 2 (bf16) (table.h's kF32, kF16, kBF16), as f32.
inline float value_f32(const void* base, int dtype, int64_t i) {
    return dtype == 0 ? static_cast<const float*>(base)[i]
         : dtype == 1 ? f16_to_f32(static_cast<const uint16_t*>(base)[i])
                      : bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
}

}  // namespace sd
