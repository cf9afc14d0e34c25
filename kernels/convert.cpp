// convert.cpp — f16 / bf16 <-> f32 conversion of whole buffers (weights widened at load, outputs narrowed).
//
// The scalar entries use half.h (exact, round to nearest even); the vector ones the hardware conversions (F16C,
// AVX-512, NEON fcvtl/fcvtn) and integer rounding for bf16. Work is split into fixed chunks over the pool.
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/table.h"
#include "kernels/ops_split.h"

namespace sd {

void convert_to_f32(float* dst, const void* src, DType src_dtype, int64_t n) {
    const auto widen = src_dtype == DType::F16 ? kernels().ops.f16_to_f32 : kernels().ops.bf16_to_f32;
    const uint16_t* s16 = static_cast<const uint16_t*>(src);
    for_chunks(n, [&](int64_t i, int64_t m) {
        if (src_dtype == DType::F32)
            std::memcpy(dst + i, static_cast<const float*>(src) + i, (size_t)m * 4);
        else
            widen(dst + i, s16 + i, m);
    });
}

void convert_from_f32(void* dst, DType dst_dtype, const float* src, int64_t n) {
    const auto narrow = dst_dtype == DType::F16 ? kernels().ops.f32_to_f16 : kernels().ops.f32_to_bf16;
    uint16_t* d16 = static_cast<uint16_t*>(dst);
    for_chunks(n, [&](int64_t i, int64_t m) {
        if (dst_dtype == DType::F32)
            std::memcpy(static_cast<float*>(dst) + i, src + i, (size_t)m * 4);
        else
            narrow(d16 + i, src + i, m);
    });
}

}  // namespace sd
