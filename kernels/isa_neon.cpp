// isa_neon.cpp — the kernel table for ARM64 Advanced SIMD: every body compiled over simd_neon.h (4 floats).
// With 32 registers: an 8×12 GEMM tile (24 accumulators, 3 for B, the A values broadcast from memory); attention
// tiles of 4 keys (or 4 output columns) × 16 queries; small-Cout conv blocks of 8 rows × 4 columns × 3 channels
// (24 accumulators). BF16 dot products (BFDOT/BFMMLA) are detected at run time but not used yet (isa.cpp).
#include "kernels/simd_neon.h"
#include "kernels/table.h"

namespace sd {
namespace {
const int GEMM_MR = 7, GEMM_NV = 3, FMA_CHAINS = 16;
const int ATT_QV = 4, ATT_KB = 4, ATT_DB = 4, ATT_NK = 64, ATT_TILE_BYTES = 32768;
const int CONV_SMALL_ROWS = 4;
}  // namespace
}  // namespace sd

#include "kernels/vmath.inc"
#include "kernels/vec_body.inc"
#include "kernels/attention_body.inc"
#include "kernels/gemm_body.inc"
#include "kernels/winograd_body.inc"
#include "kernels/conv_small_body.inc"

namespace sd {

const KernelTable& kernels_neon() {
    static const GemmKernels gemm = {MR, NR, 384, 96, 480, 1, tile_kernel, pack_rows, pack_kn, pack_im2col, dot_rows};
    static const KernelTable t = {
        {k_f16_to_f32, k_bf16_to_f32, k_f32_to_f16, k_f32_to_bf16, k_silu, k_gelu, k_quick_gelu, k_gelu_mul, k_add,
         k_mul, k_scale_add, k_add_scalar, k_sum, k_sum_sq_dev, k_affine, k_norm_affine, k_softmax_row, ATT_MQ,
         k_attention},
        &gemm, nullptr,
        {winograd_input, winograd_output, upsample_input, upsample_output},
        {CONV_SMALL_ROWS, VL, rows_kernel},
        fma_peak, nullptr,
    };
    return t;
}

}  // namespace sd
