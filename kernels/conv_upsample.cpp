// conv_upsample.cpp — conv3x3(upsample_nearest2x(x)) (ldm's and diffusers' Upsample) without the upsampled map
// and with 4/9 of its multiply-adds.
//
// Output pixel (2i+p, 2j+q) of conv3x3(nearest2x(x)) reads the upsampled rows 2i+p-1..2i+p+1,
// which are x rows i+p-1 and i+p only (two of the three taps land on the same x row), likewise for columns. So
// each of the four output phases (p, q) is a 2×2 conv of x whose weights are sums of the 3×3 taps: a matrix
// product (Cout, 4·Cin) · (4·Cin, positions) of 4/9 the multiply-adds, with no upsampled map. Per band of x rows
// the shifted copies of x the products read are built once per p and shared by both q (their column shifts
// overlap), and the two products are interleaved into the output rows 2i+p.
//
// The products run through matmul_nn, so the active ISA and precision apply; the copies are split over the
// threads by output rows. Left out: strides, other kernel sizes, other upsampling modes.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace sd {

namespace {

// Input positions per band: enough columns for both threads' products to reuse each packed weight panel over
// 512 columns (the products repack their weights for every 512 columns they get), few enough that the shifted
// copies (6·Cin rows of them) stay a small fraction of the maps at 512².
constexpr int64_t kBandPositions = 2048;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows per band: the caller's choice, or about kBandPositions positions.
int64_t band_of(int64_t H, int64_t W, int64_t band_rows) {
    return std::min(H, band_rows > 0 ? band_rows : ceil_div(kBandPositions, W));
}

size_t pad16(size_t floats) { return (floats + 15) & ~size_t(15); }  // keeps each scratch part 64-byte aligned

// dst[0, W) = src row shifted by `shift` columns (dst[j] = src[j + shift]), zero where that leaves the row.
void shifted_row(float* dst, const float* src, int64_t W, int shift) {
    if (shift == 0) {
        std::memcpy(dst, src, (size_t)W * sizeof(float));
    } else if (shift < 0) {
        dst[0] = 0.0f;
        std::memcpy(dst + 1, src, (size_t)(W - 1) * sizeof(float));
    } else {
        std::memcpy(dst, src + 1, (size_t)(W - 1) * sizeof(float));
        dst[W - 1] = 0.0f;
    }
}

}  // namespace

size_t conv2d_upsample2x_scratch(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t band_rows) {
    const int64_t nb = band_of(H, W, band_rows);
    return pad16(16 * Cout * Cin) + pad16(6 * Cin * nb * W) + 2 * pad16(Cout * nb * W);
}

void conv2d_upsample2x(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                       int64_t Cin, int64_t H, int64_t W, int64_t Cout, float* scratch, int64_t band_rows) {
    const int64_t nb = band_of(H, W, band_rows), K = 4 * Cin;
    // Phase weights (4 phases, Cout, 4·Cin): phase 2p+q, column (2·dx + dy)·Cin + ci sums the 3×3 taps (ky, kx)
    // that land on x row i+p-1+dy, column j+q-1+dx: ky lands on dy = (p+ky+1)/2 - p, kx likewise.
    float* phase_w = scratch;
    float* shifted = phase_w + pad16(16 * Cout * Cin);  // (3 column shifts, 2 dy, Cin, band positions)
    float* res[2] = {shifted + pad16(6 * Cin * nb * W), nullptr};
    res[1] = res[0] + pad16(Cout * nb * W);  // (Cout, band positions) for q = 0 and 1
    const size_t esize = dtype_size(w_dtype);
    parallel_for(Cout, [&](int64_t c0, int64_t c1) {
        std::vector<float> taps(Cin * 9);  // one output channel's weights (Cin, 3, 3) in f32
        for (int64_t co = c0; co < c1; co++) {
            convert_to_f32(taps.data(), static_cast<const char*>(w) + (size_t)(co * Cin * 9) * esize, w_dtype, Cin * 9);
            for (int p = 0; p < 2; p++)
                for (int q = 0; q < 2; q++) {
                    float* pw = phase_w + ((2 * p + q) * Cout + co) * K;
                    std::memset(pw, 0, (size_t)K * sizeof(float));
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int dy = (p + ky + 1) / 2 - p, dx = (q + kx + 1) / 2 - q;
                            float* col = pw + (2 * dx + dy) * Cin;
                            for (int64_t ci = 0; ci < Cin; ci++) col[ci] += taps[ci * 9 + ky * 3 + kx];
                        }
                }
        }
    }, 8);
    for (int64_t n = 0; n < N; n++) {
        const float* x = in + n * Cin * H * W;  // (Cin, H, W)
        float* y = out + n * Cout * 4 * H * W;   // (Cout, 2H, 2W)
        for (int64_t i0 = 0; i0 < H; i0 += nb) {
            const int64_t rows = std::min(nb, H - i0), cols = rows * W;
            for (int p = 0; p < 2; p++) {
                // shifted row (s, dy, ci), band row r: x[ci][i0 + r + p - 1 + dy][j + s - 1]. Phase q reads the
                // 4·Cin rows from s = q on: column shifts q-1 and q, as its weights' column order expects.
                parallel_for(6 * Cin, [&](int64_t r0, int64_t r1) {
                    for (int64_t row = r0; row < r1; row++) {
                        const int64_t s = row / (2 * Cin), dy = row / Cin % 2, ci = row % Cin;
                        for (int64_t r = 0; r < rows; r++) {
                            float* d = shifted + row * cols + r * W;
                            const int64_t iy = i0 + r + p - 1 + dy;
                            if (iy < 0 || iy >= H) std::memset(d, 0, (size_t)W * sizeof(float));
                            else shifted_row(d, x + (ci * H + iy) * W, W, (int)s - 1);
                        }
                    }
                }, 16);
                for (int q = 0; q < 2; q++)
                    matmul_nn(res[q], cols, phase_w + (2 * p + q) * Cout * K, K, shifted + q * 2 * Cin * cols, cols,
                              Cout, cols, K);
                parallel_for(Cout, [&](int64_t c0, int64_t c1) {  // into output rows 2i+p, columns 2j and 2j+1
                    for (int64_t co = c0; co < c1; co++) {
                        const float b = bias ? bias[co] : 0.0f;
                        for (int64_t r = 0; r < rows; r++) {
                            const float* e = res[0] + co * cols + r * W;
                            const float* o = res[1] + co * cols + r * W;
                            float* d = y + (co * 2 * H + 2 * (i0 + r) + p) * 2 * W;
                            for (int64_t j = 0; j < W; j++) {
                                d[2 * j] = e[j] + b;
                                d[2 * j + 1] = o[j] + b;
                            }
                        }
                    }
                }, 4);
            }
        }
    }
}

}  // namespace sd
