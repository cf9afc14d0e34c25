// conv_winograd_internal.h — the per-ISA transform kernels behind conv2d_winograd (conv_winograd.cpp): one
// body, conv_winograd_body.inc, compiled plainly (the scalar table) and with AVX2 / AVX-512 flags, where the
// compiler vectorises its loops along the tiles. Plain types only: the ISA files include it.
#pragma once
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
};

inline int64_t winograd_input_work(int64_t tw, int64_t rows) { return (2 * rows + 2) * 4 * tw + 2 * (tw + 2); }
inline int64_t winograd_output_work(int64_t tw) { return 10 * tw; }

const WinogradKernels* winograd_kernels_scalar();
const WinogradKernels* winograd_kernels_avx2();
const WinogradKernels* winograd_kernels_avx512();

}  // namespace sd
