// conv_winograd.cpp — 3×3 stride-1 pad-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2015): 16 multiplies per 2×2 output tile instead of 36.
//
// Per (output channel co, input channel ci) the 3×3 filter g becomes U = G g Gᵀ (4×4); per input channel and
// 2×2 output tile the 4×4 input patch d (rows 2ty-1..2ty+2, zero outside) becomes V = Bᵀ d B; then each of the 16
// positions ξ of the 4×4 transformed tile is one matrix product M_ξ (Cout, tiles) = U_ξ (Cout, Cin) · V_ξ (Cin,
// tiles), run by matmul_nn (so the active ISA and precision apply), and Y = Aᵀ M A gives the 2×2 outputs:
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 -1 -1].
// The image is processed a band of ~1024 tiles at a time, so V and M (16 values per channel and tile) stay
// bounded whatever the image size. A band's outputs are written only after the next band's V is built, which
// lets `out` be `in` itself (narrowing convs write over their input).
// Results differ from conv2d's by a few ulps of the partial sums, never with the thread count or band height.
// Left out: other tile sizes (docs/performance.md, "Kernel design notes"), strides, other kernel sizes.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include "kernels/table.h"
#include "kernels/kernels.h"

namespace sd {

int64_t winograd_band_rows(int64_t th, int64_t tw, int64_t band_rows) {
    return std::min(th, band_rows > 0 ? band_rows : ceil_div(1024, tw));
}

size_t conv2d_winograd_scratch(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t band_rows) {
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nt = winograd_band_rows(th, tw, band_rows) * tw;
    return winograd_pad16(16 * Cout * Cin) + winograd_pad16(16 * Cin * nt) + winograd_pad16(16 * Cout * nt);
}

void conv2d_winograd(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                     int64_t Cin, int64_t H, int64_t W, int64_t Cout, float* scratch, bool accumulate,
                     int64_t band_rows) {
    assert(out != in || (Cout <= Cin && !accumulate));
    const int64_t th = ceil_div(H, 2), tw = ceil_div(W, 2), nb = winograd_band_rows(th, tw, band_rows), nt_max = nb * tw;
    float* u = scratch;                           // (16, Cout, Cin)
    float* v = u + winograd_pad16(16 * Cout * Cin);        // (16, Cin, band tiles)
    float* m = v + winograd_pad16(16 * Cin * nt_max);      // (16, Cout, band tiles)
    const WinogradKernels& kr = kernels().winograd;
    const size_t esize = dtype_size(w_dtype);
    parallel_for(Cout, [&](int64_t c0, int64_t c1) {  // U = G g Gᵀ per (co, ci); u (16, Cout, Cin)
        std::vector<float> taps(Cin * 9);
        const int64_t step = Cout * Cin;  // between positions ξ of u
        for (int64_t co = c0; co < c1; co++) {
            convert_to_f32(taps.data(), static_cast<const char*>(w) + (size_t)(co * Cin * 9) * esize, w_dtype, Cin * 9);
            for (int64_t ci = 0; ci < Cin; ci++) {
                const float* k = &taps[ci * 9];
                float t[4][3];
                for (int c = 0; c < 3; c++) {  // G g: the filter's rows combined
                    t[0][c] = k[c];
                    t[1][c] = 0.5f * (k[c] + k[3 + c] + k[6 + c]);
                    t[2][c] = 0.5f * (k[c] - k[3 + c] + k[6 + c]);
                    t[3][c] = k[6 + c];
                }
                for (int i = 0; i < 4; i++) {  // (G g) Gᵀ: then its columns
                    float* ui = u + (int64_t)(4 * i) * step + co * Cin + ci;
                    ui[0] = t[i][0];
                    ui[step] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                    ui[2 * step] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                    ui[3 * step] = t[i][2];
                }
            }
        }
    }, 8);
    // The band whose products sit in m, not yet written: image, first tile row, tile rows. Image n's output at
    // out + n·Cout·H·W never reaches input rows a later band still reads (Cout <= Cin when out is in).
    int64_t held_n = -1, held_ty0 = 0, held_rows = 0;
    auto write_held = [&] {
        if (held_n < 0) return;
        parallel_for(Cout, [&](int64_t c0, int64_t c1) {
            std::vector<float> work(winograd_output_work(tw));
            kr.output(out + held_n * Cout * H * W, m, bias, Cout, H, W, tw, held_ty0, held_rows, accumulate, c0, c1,
                      work.data());
        }, 4);
    };
    for (int64_t n = 0; n < N; n++)
        for (int64_t ty0 = 0; ty0 < th; ty0 += nb) {
            const int64_t rows = std::min(nb, th - ty0), nt = rows * tw;
            parallel_for(Cin, [&](int64_t c0, int64_t c1) {
                std::vector<float> work(winograd_input_work(tw, rows));
                kr.input(v, in + n * Cin * H * W, Cin, H, W, tw, ty0, rows, c0, c1, work.data());
            }, 4);
            write_held();  // after this band's V: it was the last reader of the held band's input rows
            for (int xi = 0; xi < 16; xi++)
                matmul_nn(m + xi * Cout * nt, nt, u + xi * Cout * Cin, Cin, v + xi * Cin * nt, nt, Cout, nt, Cin);
            held_n = n, held_ty0 = ty0, held_rows = rows;
        }
    write_held();
}

}  // namespace sd

