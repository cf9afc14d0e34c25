// elementwise.cpp — activations, GEGLU, adds, broadcasts, upsampling, transposes (one with an add), timestep
// embedding.
//
// The scalar entries (isa_scalar.cpp) are the plain formulas with libm; the SIMD entries (vec_body.inc) use
// vmath.inc's polynomial exp/erf, accurate to a few ulp. Upsampling, transposes and the timestep embedding are memory moves or
// tiny, so they have only the portable code here.
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/table.h"
#include "kernels/ops_split.h"

namespace sd {

void silu(float* y, const float* x, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.silu(y + i, x + i, m); });
}
void gelu(float* y, const float* x, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.gelu(y + i, x + i, m); });
}
void quick_gelu(float* y, const float* x, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.quick_gelu(y + i, x + i, m); });
}

void geglu(float* y, const float* x, int64_t rows, int64_t C) {
    const OpsTable& t = kernels().ops;
    for_rows(rows, C, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) t.gelu_mul(y + r * C, x + r * 2 * C, x + r * 2 * C + C, C);
    });
}

void add(float* y, const float* a, const float* b, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.add(y + i, a + i, b + i, m); });
}
void mul(float* y, const float* a, const float* b, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.mul(y + i, a + i, b + i, m); });
}
void scale_add(float* y, const float* x, float s, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.scale_add(y + i, x + i, s, m); });
}

void add_channel_bias(float* x, const float* b, int64_t N, int64_t C, int64_t HW) {
    const OpsTable& t = kernels().ops;
    for_rows(N * C, HW, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; p++) t.add_scalar(x + p * HW, b[p], HW);  // plane p = (n, c)
    });
}

void upsample_nearest2x(float* out, const float* in, int64_t NC, int64_t H, int64_t W) {
    for_rows(NC * H, 4 * W, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {  // input row r = (plane, y) → output rows 2y, 2y+1 of that plane
            const float* src = in + r * W;
            float* dst = out + r * 4 * W;
            for (int64_t x = 0; x < W; x++) dst[2 * x] = dst[2 * x + 1] = src[x];
            std::memcpy(dst + 2 * W, dst, (size_t)(2 * W) * sizeof(float));
        }
    });
}

void transpose(float* out, const float* in, int64_t rows, int64_t cols) {
    // Column tiles of T (split over threads: they are output rows); within one, strips of 8 input rows:
    // 8 sequential read streams and 8 contiguous floats written per column (~2x the plain tiled loop).
    constexpr int64_t T = 64;
    int64_t col_tiles = (cols + T - 1) / T;
    parallel_for(col_tiles, [&](int64_t t0, int64_t t1) {
        for (int64_t c0 = t0 * T; c0 < t1 * T && c0 < cols; c0 += T) {
            int64_t c1 = c0 + T < cols ? c0 + T : cols, r = 0;
            for (; r + 8 <= rows; r += 8) {
                const float* strip = in + r * cols;
                for (int64_t c = c0; c < c1; c++) {
                    float* o = out + c * rows + r;
                    for (int k = 0; k < 8; k++) o[k] = strip[k * cols + c];
                }
            }
            for (; r < rows; r++)
                for (int64_t c = c0; c < c1; c++) out[c * rows + r] = in[r * cols + c];
        }
    }, rows >= 64 ? 1 : 8);
}

void add_tokens(float* y, const float* x, const float* t, int64_t N, int64_t C, int64_t HW) {
    // transpose()'s loop with the add folded in: units (sample, tile of T channels) split over threads (they
    // are output rows); within one, strips of 8 tokens: 8 sequential read streams of t, 8 contiguous
    // floats of x read and of y written per channel.
    constexpr int64_t T = 64;
    int64_t tiles = (C + T - 1) / T;
    parallel_for(N * tiles, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            int64_t n = u / tiles, c0 = u % tiles * T, c1 = c0 + T < C ? c0 + T : C, p = 0;
            const float* tn = t + n * HW * C;
            const float* xn = x + n * C * HW;
            float* yn = y + n * C * HW;
            for (; p + 8 <= HW; p += 8) {
                const float* strip = tn + p * C;
                for (int64_t c = c0; c < c1; c++)
                    for (int k = 0; k < 8; k++) yn[c * HW + p + k] = xn[c * HW + p + k] + strip[k * C + c];
            }
            for (; p < HW; p++)
                for (int64_t c = c0; c < c1; c++) yn[c * HW + p] = xn[c * HW + p] + tn[p * C + c];
        }
    }, HW >= 64 ? 1 : 8);
}

void timestep_embedding(float* out, const float* t, int64_t n, int64_t dim, float max_period) {
    // Same float32 steps as ldm/diffusers, so the arguments of cos/sin round as theirs do; cos/sin
    // themselves are taken in double and rounded once.
    int64_t half = dim / 2;
    float log_max = (float)std::log((double)max_period);
    for (int64_t k = 0; k < n; k++) {
        float* o = out + k * dim;
        for (int64_t i = 0; i < half; i++) {
            float freq = std::exp(-log_max * (float)i / (float)half);
            double arg = (double)(t[k] * freq);
            o[i] = (float)std::cos(arg);
            o[half + i] = (float)std::sin(arg);
        }
        if (dim % 2) o[dim - 1] = 0.0f;  // odd dim: zero pad, as diffusers does
    }
}

}  // namespace sd
