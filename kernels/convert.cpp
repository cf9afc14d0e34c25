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
    const OpsTable& t = kernels().ops;
    const size_t es = dtype_size(src_dtype);
    for_chunks(n, [&](int64_t i, int64_t m) {
        t.to_f32(dst + i, static_cast<const char*>(src) + i * es, (int)src_dtype, m);
    });
}

void convert_from_f32(void* dst, DType dst_dtype, const float* src, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) {
        if (dst_dtype == DType::f32)
            std::memcpy(static_cast<float*>(dst) + i, src + i, (size_t)m * 4);
        else
            t.from_f32(static_cast<uint16_t*>(dst) + i, src + i, m, (int)dst_dtype);
    });
}

}  // namespace sd
