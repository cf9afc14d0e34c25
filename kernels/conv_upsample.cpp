// conv_upsample.cpp — conv3x3(upsample_nearest2x(x)) + bias (ldm's and diffusers' Upsample) without the upsampled
// map and with 1/4 of its multiply-adds.
//
// Output pixel (2i+p, 2j+q) reads the upsampled rows 2i+p-1 .. 2i+p+1, which are x rows i+p-1 and i+p only (two
// of the three taps land on the same x row), likewise for columns. So each of the four output phases (p, q) is a
// 2×2 conv of x whose taps are sums of the 3×3 ones (4/9 of the multiply-adds), and each of those runs as
// Winograd F(2×2, 2×2) on tiles of 2×2 x positions: 9 multiplies per tile instead of 16 (9/16 again, with
// transforms that only add). Per band of tile rows and phase, V (9, Cin, tiles) and 9 matrix products
// M_ξ = U_ξ · V_ξ; the two phases of a row parity p are then written together, their columns interleaved.
// The transforms are winograd_body.inc's; the products run through matmul_nn, so the active ISA and
// precision apply. Rounding: a few ulps of the partial sums off conv2d's. Left out: strides, other kernel sizes,
// other upsampling modes.
#include <algorithm>
#include <vector>

#include "kernels/table.h"
#include "kernels/kernels.h"

namespace sd {

size_t conv2d_upsample2x_scratch(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t band_rows) {
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nt = winograd_band_rows(th, tw, band_rows) * tw;
    return winograd_pad16(36 * Cout * Cin) + winograd_pad16(9 * Cin * nt) + 2 * winograd_pad16(9 * Cout * nt);
}

void conv2d_upsample2x(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                       int64_t Cin, int64_t H, int64_t W, int64_t Cout, float* scratch, int64_t band_rows) {
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nb = winograd_band_rows(th, tw, band_rows), nt_max = nb * tw;
    float* u = scratch;                        // (4 phases, 9, Cout, Cin)
    float* v = u + winograd_pad16(36 * Cout * Cin);     // (9, Cin, band tiles)
    float* m[2] = {v + winograd_pad16(9 * Cin * nt_max), nullptr};
    m[1] = m[0] + winograd_pad16(9 * Cout * nt_max);    // (9, Cout, band tiles) for q = 0 and 1
    const WinogradKernels& kr = kernels().winograd;
    const size_t esize = dtype_size(w_dtype);
    // U per phase (p, q), output and input channel: the 2×2 taps f (sums of the 3×3 ones, the conv of the upsampled
    // map seen from x), then G f Gᵀ. u (4 phases, 9, Cout, Cin).
    parallel_for(Cout, [&](int64_t c0, int64_t c1) {
        std::vector<float> taps(Cin * 9);
        const int64_t step = Cout * Cin;  // between positions ξ of u
        for (int64_t co = c0; co < c1; co++) {
            convert_to_f32(taps.data(), static_cast<const char*>(w) + (size_t)(co * Cin * 9) * esize, w_dtype, Cin * 9);
            for (int p = 0; p < 2; p++)
                for (int q = 0; q < 2; q++)
                    for (int64_t ci = 0; ci < Cin; ci++) {
                        float f[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++)
                                f[(p + ky + 1) / 2 - p][(q + kx + 1) / 2 - q] += taps[ci * 9 + 3 * ky + kx];
                        const float r[3][2] = {{f[0][0], f[0][1]}, {f[0][0] + f[1][0], f[0][1] + f[1][1]}, {f[1][0], f[1][1]}};
                        float* out = u + (int64_t)(2 * p + q) * 9 * step + co * Cin + ci;
                        for (int i = 0; i < 3; i++) {
                            out[(3 * i) * step] = r[i][0];
                            out[(3 * i + 1) * step] = r[i][0] + r[i][1];
                            out[(3 * i + 2) * step] = r[i][1];
                        }
                    }
        }
    }, 8);
    for (int64_t n = 0; n < N; n++) {
        const float* x = in + n * Cin * H * W;  // (Cin, H, W)
        float* y = out + n * Cout * 4 * H * W;   // (Cout, 2H, 2W)
        for (int64_t ty0 = 0; ty0 < th; ty0 += nb) {
            const int64_t rows = std::min(nb, th - ty0), nt = rows * tw;
            for (int p = 0; p < 2; p++) {
                for (int q = 0; q < 2; q++) {
                    parallel_for(Cin, [&](int64_t c0, int64_t c1) {
                        std::vector<float> work(upsample_input_work(tw, rows));
                        kr.up_input(v, x, Cin, H, W, tw, ty0, rows, p, q, c0, c1, work.data());
                    }, 4);
                    const float* up = u + (int64_t)(2 * p + q) * 9 * Cout * Cin;
                    for (int xi = 0; xi < 9; xi++)
                        matmul_nn(m[q] + xi * Cout * nt, nt, up + xi * Cout * Cin, Cin, v + xi * Cin * nt, nt, Cout, nt,
                                  Cin);
                }
                parallel_for(Cout, [&](int64_t c0, int64_t c1) {
                    std::vector<float> work(upsample_output_work(tw));
                    kr.up_output(y, m[0], m[1], bias, Cout, H, W, tw, ty0, rows, p, c0, c1, work.data());
                }, 4);
            }
        }
    }
}

}  // namespace sd
