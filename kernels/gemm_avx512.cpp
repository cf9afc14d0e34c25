// gemm_avx512.cpp — the matrix-product kernels for AVX-512 (zmm, 14×32 register tile: 28 accumulators).
//
// Zen 4 splits each 512-bit FMA over its two 256-bit pipes, so the gain over AVX2 is fewer instructions
// and 32 registers (a bigger tile: fewer loads per FMA), not more FLOPs per cycle.
// GCC 12 warns about the deliberately undefined pass-through operand inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_internal.h"
#include "kernels/half.h"

namespace sd {
namespace {

typedef __m512 vf;
const int VL = 16;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vabs(vf a) { return _mm512_abs_ps(a); }
inline vf vcopysign(vf mag, vf sign) {
    __m512i m = _mm512_set1_epi32((int)0x80000000u);  // bitwise select m ? sign : mag (imm 0xca)
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(m, _mm512_castps_si512(sign), _mm512_castps_si512(mag), 0xca));
}
inline vf vround(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vpow2i(vf n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
inline vf vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
inline vf vload_bf16(const uint16_t* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
inline float vsum(vf v) { return _mm512_reduce_add_ps(v); }

const int MR = 14, NV = 2, KC = 384, MC = 112, NC = 512, FMA_CHAINS = 12;

void pack_rows_transposing(float* dst, int width, const void* src, int dtype, int64_t ld, int rows, int64_t kc,
                           float alpha);
#define GEMM_PACK_ROWS pack_rows_transposing

}  // namespace

#define GEMM_SUFFIX(name) name##avx512
#include "kernels/gemm_body.inc"

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

// pack_rows by 16×16 register transposes: 16 rows × 16 k values loaded (and converted) as 16 vectors,
// stored as 16 k-rows of the panel. The k tail goes through the generic packer's element order.
void pack_rows_transposing(float* dst, int width, const void* src, int dtype, int64_t ld, int rows, int64_t kc,
                           float alpha) {
    const int64_t k16 = kc / 16 * 16;
    const size_t es = dtype == kF32 ? 4 : 2;
    const char* base = static_cast<const char*>(src);
    const vf scale = vset1(alpha);
    for (int g = 0; g < width; g += 16) {
        int lanes = width - g < 16 ? width - g : 16;
        __mmask16 mask = (__mmask16)((1u << lanes) - 1);
        for (int64_t k0 = 0; k0 < k16; k0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                int row = g + i;
                if (row >= rows || i >= lanes) { r[i] = vzero(); continue; }
                const char* p = base + (size_t)(row * ld + k0) * es;
                __builtin_prefetch(p + 4 * 64, 0, 3);
                r[i] = dtype == kF32 ? vload((const float*)p)
                     : dtype == kF16 ? vload_f16((const uint16_t*)p) : vload_bf16((const uint16_t*)p);
                if (alpha != 1.0f) r[i] = vmul(r[i], scale);
            }
            transpose16(r);
            for (int k = 0; k < 16; k++) _mm512_mask_storeu_ps(dst + (k0 + k) * width + g, mask, r[k]);
        }
    }
    if (k16 < kc)  // the last kc % 16 k-rows of the panel
        pack_rows(dst + k16 * width, width, base + k16 * es, dtype, ld, rows, kc - k16, alpha);
}

}  // namespace

}  // namespace sd
