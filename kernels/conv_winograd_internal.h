// conv_winograd_internal.h — the per-ISA Winograd transform kernels behind conv2d_winograd (conv_winograd.cpp)
// and conv2d_upsample2x (conv_upsample.cpp): one body, conv_winograd_body.inc, over a one-float vector wrapper
// (the scalar table) and AVX2 / AVX-512 ones. Plain types only: the ISA files include it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sd {

struct WinogradKernels {
    // U = G g Gᵀ for output channel co: g (9, Cin) its filter taps in f32, tap-major; u (16, Cout, Cin).
    void (*weights)(float* u, const float* g, int64_t Cin, int64_t Cout, int64_t co);
    // V = Bᵀ d B for channels [c0, c1) of tile rows [ty0, ty0 + rows) of x (Cin, H, W): v (16, Cin, rows·tw).
    // work: winograd_input_work(tw, rows) floats.
    void (*input)(float* v, const float* x, int64_t Cin, int64_t H, int64_t W, int64_t tw, int64_t ty0,
                  int64_t rows, int64_t c0, int64_t c1, float* work);
    // y (Cout, H, W) (+)= Aᵀ M A + bias for channels [c0, c1) of those tile rows, m (16, Cout, rows·tw).
    // work: winograd_output_work(tw) floats.
    void (*output)(float* y, const float* m, const float* bias, int64_t Cout, int64_t H, int64_t W, int64_t tw,
                   int64_t ty0, int64_t rows, int accumulate, int64_t c0, int64_t c1, float* work);

    // The upsampling phases of conv_upsample.cpp, F(2×2, 2×2). U of output channel co for the four phases:
    // u (4, 9, Cout, Cin) from g as above.
    void (*up_weights)(float* u, const float* g, int64_t Cin, int64_t Cout, int64_t co);
    // V (9, Cin, rows·tw) of phase (p, q) for channels [c0, c1) of x tile rows [ty0, ty0 + rows) (2×2 x positions
    // a tile). work: upsample_input_work(tw, rows) floats.
    void (*up_input)(float* v, const float* x, int64_t Cin, int64_t H, int64_t W, int64_t tw, int64_t ty0,
                     int64_t rows, int p, int q, int64_t c0, int64_t c1, float* work);
    // y (Cout, 2H, 2W): its rows of phase p for channels [c0, c1) of those tile rows, from the products of phases
    // (p, 0) and (p, 1), m0 and m1 (9, Cout, rows·tw), plus bias. work: upsample_output_work(tw) floats.
    void (*up_output)(float* y, const float* m0, const float* m1, const float* bias, int64_t Cout, int64_t H,
                      int64_t W, int64_t tw, int64_t ty0, int64_t rows, int p, int64_t c0, int64_t c1, float* work);
};

inline int64_t upsample_input_work(int64_t tw, int64_t rows) { return (2 * rows + 1) * 3 * tw + 2 * (tw + 2); }
inline int64_t upsample_output_work(int64_t tw) { return 20 * tw; }
inline int64_t winograd_input_work(int64_t tw, int64_t rows) { return (2 * rows + 2) * 4 * tw + 2 * (tw + 2); }
inline int64_t winograd_output_work(int64_t tw) { return 10 * tw; }

// The driver helpers conv_winograd.cpp and conv_upsample.cpp share (defined in conv_winograd.cpp, which is
// compiled without ISA flags, so no AVX-512 copy of them can reach a caller on another CPU).
const WinogradKernels& winograd_kernels_active();
// Tile rows per band: `band_rows` when given, else about 1024 tiles — enough columns for both threads'
// products to reuse each packed weight panel over 512 columns, few enough that V and M stay a small fraction
// of the large maps (at 512², 256 → 128 channels: 4 tile rows, V 16 and M 8 MiB next to 128 MiB maps).
int64_t winograd_band_rows(int64_t th, int64_t tw, int64_t band_rows);
// Floats rounded up to a multiple of 16, so each part of a scratch buffer stays 64-byte aligned.
inline size_t winograd_pad16(size_t floats) { return (floats + 15) & ~size_t(15); }

const WinogradKernels* winograd_kernels_scalar();
const WinogradKernels* winograd_kernels_avx2();
const WinogradKernels* winograd_kernels_avx512();

}  // namespace sd
