// conv_winograd.cpp — the two Winograd convolutions (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2015): the 3×3 stride-1 pad-1 conv by F(2×2, 3×3), and conv3x3(upsample_nearest2x(x)) (ldm's and
// diffusers' Upsample) by F(2×2, 2×2) per upsampling phase, without the upsampled map.
//
// Both go the same way: each filter is transformed once per call (U = G g Gᵀ); per band of tile rows the input
// tiles are transformed (V = Bᵀ d B, winograd_body.inc); each position ξ of the transformed tile is one matrix
// product M_ξ (Cout, tiles) = U_ξ (Cout, Cin) · V_ξ (Cin, tiles), run by matmul_nn (so the active ISA and
// precision apply); the output transform Y = Aᵀ M A writes the outputs. A band holds ~1024 tiles, so V and M stay
// bounded whatever the image size. Results differ from conv2d's by a few ulps of the partial sums, never with the
// thread count or band height. Left out: other tile sizes (docs/performance.md), strides, kernel sizes, upsamplings.
#include <algorithm>
#include <cassert>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/table.h"

namespace sd {

// Tile rows per band: `band_rows` when given, else about 1024 tiles (docs/performance.md, "Kernel design notes").
static int64_t band_height(int64_t th, int64_t tw, int64_t band_rows) {
    return std::min(th, band_rows > 0 ? band_rows : ceil_div(1024, tw));
}

// Floats rounded up to a multiple of 16, so each part of a scratch buffer stays 64-byte aligned.
static size_t pad16(size_t floats) { return (floats + 15) & ~size_t(15); }

// U = G g Gᵀ for every filter (table.h's filter entry), its taps widened to f32 and made tap-major (3, 3, Cin).
static void transform_filters(int T, float* u, const void* w, DType w_dtype, int64_t Cout, int64_t Cin) {
    parallel_for(Cout, [&](int64_t c0, int64_t c1) {
        std::vector<float> taps(Cin * 9), g(9 * Cin);
        for (int64_t co = c0; co < c1; co++) {
            convert_to_f32(taps.data(), static_cast<const char*>(w) + (size_t)(co * Cin * 9) * dtype_size(w_dtype),
                           w_dtype, Cin * 9);
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int k = 0; k < 9; k++) g[k * Cin + ci] = taps[ci * 9 + k];
            kernels().winograd.filter(T, u, g.data(), Cin, Cout, co);
        }
    }, 8);
}

// ---- F(2×2, 3×3) -----------------------------------------------------------------------------------------------
// Per 2×2 output tile, the 4×4 input patch d (rows 2ty-1..2ty+2, zero outside): 16 multiplies instead of 36.
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 -1 -1].
// A band's outputs are written only after the next band's V is built, which lets `out` be `in` itself
// (narrowing convs write over their input).

size_t conv2d_winograd_scratch(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t band_rows) {
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nt = band_height(th, tw, band_rows) * tw;
    return pad16(16 * Cout * Cin) + pad16(16 * Cin * nt) + pad16(16 * Cout * nt);
}

void conv2d_winograd(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                     int64_t Cin, int64_t H, int64_t W, int64_t Cout, float* scratch, bool accumulate,
                     int64_t band_rows) {
    assert(out != in || (Cout <= Cin && !accumulate));
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nb = band_height(th, tw, band_rows), nt_max = nb * tw;
    float* u = scratch;                          // (16, Cout, Cin)
    float* v = u + pad16(16 * Cout * Cin);       // (16, Cin, band tiles)
    float* m = v + pad16(16 * Cin * nt_max);  // (16, Cout, band tiles)
    const WinogradKernels& kr = kernels().winograd;
    transform_filters(4, u, w, w_dtype, Cout, Cin);
    // The band whose products sit in m, not yet written: image, first tile row, tile rows. Image n's output at
    // out + n·Cout·H·W never reaches input rows a later band still reads (Cout <= Cin when out is in).
    int64_t held_n = -1, held_ty0 = 0, held_rows = 0;
    auto write_held = [&] {
        if (held_n < 0) return;
        parallel_for(Cout, [&](int64_t c0, int64_t c1) {
            std::vector<float> work(winograd_output_work(4, tw));
            kr.output(4, out + held_n * Cout * H * W, &m, bias, Cout, H, W, tw, held_ty0, held_rows, 0, accumulate, c0,
                      c1, work.data());
        }, 4);
    };
    for (int64_t n = 0; n < N; n++)
        for (int64_t ty0 = 0; ty0 < th; ty0 += nb) {
            const int64_t rows = std::min(nb, th - ty0), nt = rows * tw;
            parallel_for(Cin, [&](int64_t c0, int64_t c1) {
                std::vector<float> work(winograd_input_work(4, tw, rows));
                kr.input(4, v, in + n * Cin * H * W, Cin, H, W, tw, 2 * ty0 - 1, rows, 0, c0, c1, work.data());
            }, 4);
            write_held();  // after this band's V: it was the last reader of the held band's input rows
            for (int xi = 0; xi < 16; xi++)
                matmul_nn(m + xi * Cout * nt, nt, u + xi * Cout * Cin, Cin, v + xi * Cin * nt, nt, Cout, nt, Cin);
            held_n = n, held_ty0 = ty0, held_rows = rows;
        }
    write_held();
}

// ---- the upsample conv: F(2×2, 2×2) per phase ----------------------------------------------------------------
// Output pixel (2i+p, 2j+q) reads the upsampled rows 2i+p-1 .. 2i+p+1, which are x rows i+p-1 and i+p only (two of the
// three taps land on the same x row), likewise for columns. So each of the four output phases (p, q) is a 2×2 conv of x
// whose tap (dy, dx) sums the 3×3 taps (ky, kx) with dy = (p+ky+1)/2 - p, dx = (q+kx+1)/2 - q (4/9 of the
// multiply-adds), reading x rows i+p-1+dy and columns j+q-1+dx; each of those runs as F(2×2, 2×2) on tiles of 2×2 x
// positions: 9 multiplies per tile instead of 16 (9/16 again, with transforms that only add). Per band and phase, V (9,
// Cin, tiles) and 9 products; the two phases of a row parity p are then written together, their columns interleaved.

size_t conv2d_upsample2x_scratch(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t band_rows) {
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nt = band_height(th, tw, band_rows) * tw;
    return pad16(36 * Cout * Cin) + pad16(9 * Cin * nt) + 2 * pad16(9 * Cout * nt);
}

void conv2d_upsample2x(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                       int64_t Cin, int64_t H, int64_t W, int64_t Cout, float* scratch, int64_t band_rows) {
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nb = band_height(th, tw, band_rows), nt_max = nb * tw;
    float* u = scratch;                                  // (4 phases, 9, Cout, Cin)
    float* v = u + pad16(36 * Cout * Cin);               // (9, Cin, band tiles)
    float* m[2] = {v + pad16(9 * Cin * nt_max), nullptr};
    m[1] = m[0] + pad16(9 * Cout * nt_max);         // (9, Cout, band tiles) for q = 0 and 1
    const WinogradKernels& kr = kernels().winograd;
    const int64_t step = Cout * Cin;  // between positions ξ of u
    transform_filters(3, u, w, w_dtype, Cout, Cin);
    for (int64_t n = 0; n < N; n++) {
        const float* x = in + n * Cin * H * W;  // (Cin, H, W)
        float* y = out + n * Cout * 4 * H * W;   // (Cout, 2H, 2W)
        for (int64_t ty0 = 0; ty0 < th; ty0 += nb) {
            const int64_t rows = std::min(nb, th - ty0), nt = rows * tw;
            for (int p = 0; p < 2; p++) {
                for (int q = 0; q < 2; q++) {
                    parallel_for(Cin, [&](int64_t c0, int64_t c1) {
                        std::vector<float> work(winograd_input_work(3, tw, rows));
                        kr.input(3, v, x, Cin, H, W, tw, 2 * ty0 + p - 1, rows, q, c0, c1, work.data());
                    }, 4);
                    const float* up = u + (int64_t)(2 * p + q) * 9 * step;
                    for (int xi = 0; xi < 9; xi++)
                        matmul_nn(m[q] + xi * Cout * nt, nt, up + xi * step, Cin, v + xi * Cin * nt, nt, Cout, nt,
                                  Cin);
                }
                parallel_for(Cout, [&](int64_t c0, int64_t c1) {
                    std::vector<float> work(winograd_output_work(3, tw));
                    kr.output(3, y, m, bias, Cout, H, W, tw, ty0, rows, p, 0, c0, c1, work.data());
                }, 4);
            }
        }
    }
}

}  // namespace sd
