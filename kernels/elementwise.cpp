// elementwise.cpp — activations, GEGLU, adds, broadcasts, upsampling, transposes (one with an add).
//
// The scalar entries (isa_scalar.cpp) are the plain formulas with libm; the SIMD entries (vec_body.inc) use vmath.inc's
// polynomial exp/erf, accurate to a few ulp. Upsampling and transposes are memory moves, so they have only the portable
// code here.
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/table.h"
#include "kernels/ops_split.h"

namespace sd {

void activation(float* y, const float* x, int64_t n, Act act) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.act(y + i, x + i, m, (int)act); });
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
void scale_add(float* y, const float* x, float s, int64_t n) {
    const OpsTable& t = kernels().ops;
    for_chunks(n, [&](int64_t i, int64_t m) { t.scale_add(y + i, x + i, s, m); });
}

void add_channel_bias(float* x, const float* b, int64_t N, int64_t C, int64_t HW) {
    const OpsTable& t = kernels().ops;
    for_rows(N * C, HW, [&](int64_t p0, int64_t p1) {  // plane p = (n, c): x = (x - 0)·1 + b, exactly x + b
        for (int64_t p = p0; p < p1; p++) t.affine(x + p * HW, x + p * HW, 0.0f, 1.0f, b[p], HW, false);
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

// out (N, cols, rows) = in (N, rows, cols) transposed per sample, plus add (N, cols, rows) when not null. Units
// (sample, tile of T output rows) split over threads; within one, strips of 8 input rows: 8 sequential read
// streams and 8 contiguous floats written per output row (~2x the plain tiled loop). Add is a template argument so
// that the inner loops carry no branch.
template <bool Add>
static void transpose_add(float* out, const float* in, const float* add, int64_t N, int64_t rows, int64_t cols) {
    constexpr int64_t T = 64;
    const int64_t tiles = (cols + T - 1) / T;
    parallel_for(N * tiles, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            const int64_t n = u / tiles, c0 = u % tiles * T, c1 = c0 + T < cols ? c0 + T : cols;
            const float* src = in + n * rows * cols;
            const float* a = Add ? add + n * rows * cols : nullptr;
            float* dst = out + n * rows * cols;
            int64_t r = 0;
            for (; r + 8 <= rows; r += 8)
                for (int64_t c = c0; c < c1; c++)
                    for (int k = 0; k < 8; k++) {
                        const float v = src[(r + k) * cols + c];
                        dst[c * rows + r + k] = Add ? a[c * rows + r + k] + v : v;
                    }
            for (; r < rows; r++)
                for (int64_t c = c0; c < c1; c++)
                    dst[c * rows + r] = Add ? a[c * rows + r] + src[r * cols + c] : src[r * cols + c];
        }
    }, rows >= 64 ? 1 : 8);
}
void transpose(float* out, const float* in, int64_t rows, int64_t cols) {
    transpose_add<false>(out, in, nullptr, 1, rows, cols);
}
void add_tokens(float* y, const float* x, const float* t, int64_t N, int64_t C, int64_t HW) {
    transpose_add<true>(y, t, x, N, HW, C);
}

}  // namespace sd
