// isa_neon.cpp — the kernel table for ARM64 Advanced SIMD: every body compiled over simd_neon.h (4 floats).
// With 32 registers: a 7×12 GEMM tile, 4 × 16 attention tiles, 4-row small-Cout conv blocks (docs/performance.md,
// "Kernel design notes"). The bf16 GEMM (BFDOT) below is compiled for FEAT_BF16 and chosen at run time.
#include "kernels/simd_neon.h"
#include "kernels/table.h"

namespace sd {
namespace {
const int GEMM_MR = 7, GEMM_NV = 3, FMA_CHAINS = 16;
const int ATT_QV = 4, ATT_KB = 4, ATT_DB = 4, ATT_NK = 64, ATT_TILE_BYTES = 32768;
const int CONV_SMALL_ROWS = 4;
}  // namespace
}  // namespace sd

#include "kernels/bodies.inc"

// ---- bf16 products, f32 sums (FEAT_BF16: Graviton 3/4, Neoverse V1/V2/N2; used only where cpu_has_bf16()) ----
// The panels are table.h's bf16 pairs, as on AVX-512. BFDOT by element multiplies 4 B pairs (4 columns) by one A
// pair (a row) and adds both exact products to 4 f32 sums: the 7×12 tile of the f32 kernel, two multiply-adds per
// lane per instruction. BFCVT rounds to nearest even while packing; BFDOT flushes denormals and rounds its two
// additions to odd (Arm ARM, BFDotAdd): at most 1 ulp of f32 per step, inside the tests' f32 tolerance.
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+bf16")  // as arm_neon.h declares the bf16 intrinsics
namespace sd {
namespace {

void tile_kernel_bf16(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc, int m, int n,
                      const TileArgs* args) {
    static_assert(MR == 7 && NV == 3, "A pairs of rows 0-3 and 3-6 in two registers, 3 B registers");
    vf acc[MR][NV];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = acc[i][2] = vzero();
    const bfloat16_t* a = reinterpret_cast<const bfloat16_t*>(a_panel);
    const bfloat16_t* b = reinterpret_cast<const bfloat16_t*>(b_panel);
    for (int64_t t = 0, steps = (kc + 1) / 2; t < steps; t++, a += 2 * MR, b += 2 * NR) {
        bfloat16x8_t b0 = vld1q_bf16(b), b1 = vld1q_bf16(b + 8), b2 = vld1q_bf16(b + 16);
        bfloat16x8_t a0 = vld1q_bf16(a), a1 = vld1q_bf16(a + 6);  // pairs of rows 0..3 and 3..6
#define SD_ROW(i, av, lane)                                      \
    acc[i][0] = vbfdotq_laneq_f32(acc[i][0], b0, av, lane);     \
    acc[i][1] = vbfdotq_laneq_f32(acc[i][1], b1, av, lane);     \
    acc[i][2] = vbfdotq_laneq_f32(acc[i][2], b2, av, lane);
        SD_ROW(0, a0, 0) SD_ROW(1, a0, 1) SD_ROW(2, a0, 2) SD_ROW(3, a0, 3)
        SD_ROW(4, a1, 1) SD_ROW(5, a1, 2) SD_ROW(6, a1, 3)
#undef SD_ROW
    }
    tile_store(acc, c, ldc, m, n, args);
}

// Each row converted as the f32 packer does, rounded to bf16 (its k pairs are then adjacent), its pair words stored
// down the panel's column r; an odd kc's last pair padded with 0.
void pack_rows_bf16(float* dst, int width, const void* src, int dtype, int64_t ld, int rows, int64_t kc,
                    float alpha) {
    const int64_t chunk = 256, es = dtype == kF32 ? 4 : 2;
    float row[chunk];
    uint32_t pairs[chunk / 2];
    uint32_t* d = reinterpret_cast<uint32_t*>(dst);
    for (int r = 0; r < width; r++)
        for (int64_t k0 = 0; k0 < kc; k0 += chunk) {
            const int64_t len = kc - k0 < chunk ? kc - k0 : chunk, words = (len + 1) / 2;
            for (int64_t k = 0; k < chunk; k++) row[k] = 0.0f;
            if (r < rows) load_f32(row, static_cast<const char*>(src) + (r * ld + k0) * es, dtype, len);
            for (int64_t k = 0; k < len; k += VL)
                vst1_bf16(reinterpret_cast<bfloat16_t*>(pairs) + k, vcvt_bf16_f32(vmul(vload(row + k), vset1(alpha))));
            for (int64_t t = 0; t < words; t++) d[(k0 / 2 + t) * width + r] = pairs[t];
        }
}

// VL pair words from lo (k even) and hi (k odd): both rounded to bf16, interleaved.
inline void vstore_pairs(float* dst, vf lo, vf hi) {
    uint16x4x2_t z = vzip_u16(vreinterpret_u16_bf16(vcvt_bf16_f32(lo)), vreinterpret_u16_bf16(vcvt_bf16_f32(hi)));
    vst1q_u16(reinterpret_cast<uint16_t*>(dst), vcombine_u16(z.val[0], z.val[1]));
}

// gemm_body.inc's chains() written out: a loop compiled outside this bf16 region would call the step, not inline it.
double bfdot_peak(int64_t iters) {
    vf acc[FMA_CHAINS];
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = vset1((float)i);
    const bfloat16x4_t h = vcvt_bf16_f32(vset1(0.999f)), l = vcvt_bf16_f32(vset1(1e-7f));
    const bfloat16x8_t x = vcombine_bf16(h, h), y = vcombine_bf16(l, l);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 32
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = vbfdotq_f32(acc[i], x, y);
    }
    vf s = vzero();
    for (int i = 0; i < FMA_CHAINS; i++) s = vadd(s, acc[i]);
    volatile float sink = vsum(s);
    (void)sink;
    return 4.0 * VL * FMA_CHAINS * (double)iters;
}

}  // namespace
}  // namespace sd

#include "kernels/gemm_bf16_body.inc"
#pragma GCC pop_options

namespace sd {

const KernelTable& kernels_neon() {
    static const GemmKernels gemm = {MR, NR, 384, 96, 480, 1, tile_kernel, pack_rows, pack_kn, pack_im2col, dot_rows};
    static const GemmKernels gemm_bf16 = {MR, NR, 384, 96, 480, 2, tile_kernel_bf16, pack_rows_bf16, pack_kn_bf16,
                                          pack_im2col_bf16, dot_rows};
    static const KernelTable t = vector_table(&gemm, &gemm_bf16, bfdot_peak);
    return t;
}

}  // namespace sd
