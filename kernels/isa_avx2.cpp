// isa_avx2.cpp — the kernel table for AVX2 + FMA + F16C: every body compiled over simd_avx2.h (ymm, 8 floats).
// With 16 registers: a 6×16 GEMM tile, 6 × 16 attention tiles, 4-row small-Cout conv blocks (docs/performance.md,
// "Kernel design notes").
#include "kernels/simd_avx2.h"
#include "kernels/table.h"

namespace sd {
namespace {
const int GEMM_MR = 6, GEMM_NV = 2, FMA_CHAINS = 12;
const int ATT_QV = 2, ATT_KB = 6, ATT_DB = 6, ATT_NK = 60, ATT_TILE_BYTES = 32768;
const int CONV_SMALL_ROWS = 4;
}  // namespace
}  // namespace sd

#include "kernels/bodies.inc"

namespace sd {

const KernelTable& kernels_avx2() {
    static const GemmKernels gemm = {MR, NR, 384, 96, 512, 1, tile_kernel, pack_rows, pack_kn, pack_im2col, dot_rows};
    static const KernelTable t = vector_table(&gemm, nullptr, nullptr);
    return t;
}

}  // namespace sd
