// isa_avx512.cpp — the kernel table for AVX-512 (zmm, 16 floats): every body compiled over simd_avx512.h, plus a
// transposing row packer and, where the CPU has AVX512_BF16, the bf16 matrix product (the second GEMM table).
// With 32 registers: a 14×32 GEMM tile, 8 × 48 attention tiles, 8-row small-Cout conv blocks (the measurements:
// docs/performance.md, "Kernel design notes").
#include "kernels/simd_avx512.h"
#include "kernels/table.h"

namespace sd {
namespace {
const int GEMM_MR = 14, GEMM_NV = 2, FMA_CHAINS = 12;
const int ATT_QV = 3, ATT_KB = 8, ATT_DB = 8, ATT_NK = 64, ATT_TILE_BYTES = 32768;
const int CONV_SMALL_ROWS = 8;
}  // namespace
}  // namespace sd

#include "kernels/bodies.inc"

namespace sd {
namespace {

// In place: r[i] lane j ↔ r[j] lane i.
inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {  // r[4i+j], 128-bit lane L: rows 4i..4i+3 at column 4L+j
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    __m512 out[16];
    for (int j = 0; j < 4; j++) {
        __m512 x = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88), y = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        __m512 z = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88), w = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
        out[j] = _mm512_shuffle_f32x4(x, z, 0x88);
        out[8 + j] = _mm512_shuffle_f32x4(x, z, 0xdd);
        out[4 + j] = _mm512_shuffle_f32x4(y, w, 0x88);
        out[12 + j] = _mm512_shuffle_f32x4(y, w, 0xdd);
    }
    for (int i = 0; i < 16; i++) r[i] = out[i];
}

// ---- bf16 products, f32 sums (AVX512_BF16) -----------------------------------------------------------------
// Panels hold table.h's bf16 pairs: vdpbf16ps multiplies a broadcast A pair by 16 B pairs and adds both exact
// products to 16 f32 sums. Operands are rounded to nearest even (vcvtne2ps2bf16, which, like vdpbf16ps, treats
// denormals as zero) while packing; the epilogue is the f32 one.

const int KC_BF16 = 384;  // even: every slice but the last starts on a pair boundary
static_assert(KC_BF16 % 2 == 0, "bf16 slices start at even k");

inline __m512bh as_bf16x32(__m512i v) { return (__m512bh)v; }

// 16 pair words: lo's values in the low halves (k even), hi's in the high halves (k odd). vcvtne2ps2bf16 puts
// lo's 16 values in the low half of the vector and hi's in the high half; the word shuffle interleaves them.
inline void vstore_pairs(float* dst, vf lo, vf hi) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    _mm512_storeu_si512(dst, _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(hi, lo)));
}

// min(len, 16) values of a dtype from p as f32, zeros past len (masked-off lanes are never read).
inline vf load_masked(const void* p, int dtype, int len) {
    __mmask16 m = (__mmask16)(len >= 16 ? 0xffffu : len <= 0 ? 0u : (1u << len) - 1);
    if (dtype == kF32) return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (dtype == kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// pack_rows by 16×16 register transposes of 32-bit words: per 16 rows, each row's next 16 words (16 values, or
// with Kpair 2, 32 values made 16 bf16 pairs: a row's pairs are adjacent in memory) loaded as one vector, then
// stored as 16 word-rows of the panel.
template <int Kpair>
void pack_rows_transposing(float* dst, int width, const void* src, int dtype, int64_t ld, int rows, int64_t kc,
                           float alpha) {
    const size_t es = dtype == kF32 ? 4 : 2;
    const char* base = static_cast<const char*>(src);
    const vf scale = vset1(alpha);
    for (int g = 0; g < width; g += 16) {
        int lanes = width - g < 16 ? width - g : 16;
        __mmask16 mask = (__mmask16)((1u << lanes) - 1);
        for (int64_t k0 = 0; k0 < kc; k0 += 16 * Kpair) {
            int len = kc - k0 < 16 * Kpair ? (int)(kc - k0) : 16 * Kpair;
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                int row = g + i;
                if (row >= rows || i >= lanes) { r[i] = vzero(); continue; }
                const char* p = base + (size_t)(row * ld + k0) * es;
                __builtin_prefetch(p + 4 * 64, 0, 3);
                r[i] = load_masked(p, dtype, len);
                if (alpha != 1.0f) r[i] = vmul(r[i], scale);
                if (Kpair == 2) {  // word t = values 2t, 2t+1
                    vf hi = load_masked(p + 16 * es, dtype, len - 16);
                    if (alpha != 1.0f) hi = vmul(hi, scale);
                    r[i] = _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(hi, r[i]));
                }
            }
            transpose16(r);
            for (int t = 0; t < (len + Kpair - 1) / Kpair; t++)
                _mm512_mask_storeu_ps(dst + (k0 / Kpair + t) * width + g, mask, r[t]);
        }
    }
}

void tile_kernel_bf16(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc, int m, int n,
                      const TileArgs* args) {
    static_assert(NV == 2 && NR == 32, "one B load per 16 columns");
    vf acc[MR][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = vzero();
    const char* a = reinterpret_cast<const char*>(a_panel);
    const char* b = reinterpret_cast<const char*>(b_panel);
    for (int64_t t = 0, steps = (kc + 1) / 2; t < steps; t++) {
        __m512bh b0 = as_bf16x32(_mm512_loadu_si512(b)), b1 = as_bf16x32(_mm512_loadu_si512(b + 64));
#pragma GCC unroll 32
        for (int i = 0; i < MR; i++) {
            int32_t pair;
            std::memcpy(&pair, a + 4 * i, 4);
            __m512bh ai = as_bf16x32(_mm512_set1_epi32(pair));
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
        a += 4 * MR;
        b += 4 * NR;
    }
    tile_store(acc, c, ldc, m, n, args);
}

double dpbf16_peak(int64_t iters) {
    const __m512bh x = _mm512_cvtne2ps_pbh(vset1(0.999f), vset1(0.999f));
    const __m512bh y = _mm512_cvtne2ps_pbh(vset1(1e-7f), vset1(1e-7f));
    return 4.0 * chains(iters, [=](vf acc) { return _mm512_dpbf16_ps(acc, x, y); });
}

}  // namespace
}  // namespace sd

#include "kernels/gemm_bf16_body.inc"

namespace sd {

const KernelTable& kernels_avx512() {
    static const GemmKernels gemm = {MR, NR, 384, 112, 512, 1, tile_kernel, pack_rows_transposing<1>, pack_kn,
                                     pack_im2col, dot_rows};
    static const GemmKernels gemm_bf16 = {MR, NR, KC_BF16, 112, 512, 2, tile_kernel_bf16, pack_rows_transposing<2>,
                                          pack_kn_bf16, pack_im2col_bf16, dot_rows};
    static const KernelTable t = vector_table(&gemm, &gemm_bf16, dpbf16_peak);
    return t;
}

}  // namespace sd
