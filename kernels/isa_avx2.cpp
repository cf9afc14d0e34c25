// isa_avx2.cpp — the kernel table for AVX2 + FMA + F16C: every body compiled over simd_avx2.h (ymm, 8 floats).
// With 16 registers: a 6×16 GEMM tile (12 accumulators); attention tiles of 6 keys (or 6 output columns) × 16
// queries (12 accumulators, 2 query vectors, 1 broadcast; 4 × 24 needs all 16 registers and GCC then re-loads the
// query vectors inside the loop: ~20% slower on Zen 4); small-Cout conv blocks of 4 rows × 8 columns × 3 channels.
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
