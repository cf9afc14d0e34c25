// conv_small.cpp — a direct 3×3 convolution for a few output channels (the VAE's and TAESD's last conv to RGB),
// where conv2d's implicit GEMM would waste most of its register tile (why: docs/performance.md, "Kernel design
// notes"). The weights are widened to f32 once per call, in (Cin, 3, 3, Cout) order. Threads split the output
// rows, so the bits do not depend on the thread count. Left out: strides, other kernel sizes, accumulate.
#include <vector>

#include "kernels/table.h"
#include "kernels/kernels.h"

namespace sd {

void conv2d_small_cout(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                       int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    const ConvSmallKernels& kr = kernels().conv_small;
    if (!kr.rows) return conv2d(out, in, w, w_dtype, bias, N, Cin, H, W, Cout, 3, 1, 1);  // scalar: the textbook loop
    std::vector<float> taps(Cout * Cin * 9), wt(Cout * Cin * 9);  // (Cout, Cin, 3, 3) → (Cin, 3, 3, Cout)
    convert_to_f32(taps.data(), w, w_dtype, Cout * Cin * 9);
    for (int64_t co = 0; co < Cout; co++)
        for (int64_t k = 0; k < Cin * 9; k++) wt[k * Cout + co] = taps[co * Cin * 9 + k];
    const int64_t R = kr.rows_per_block, blocks = (H + R - 1) / R;
    parallel_for(N * blocks, [&](int64_t b0, int64_t b1) {
        std::vector<float> work(conv_small_work(kr.rows_per_block, kr.width, W));
        for (int64_t b = b0; b < b1; b++) {
            const int64_t n = b / blocks, y0 = b % blocks * R, y1 = y0 + R < H ? y0 + R : H;
            kr.rows(out + n * Cout * H * W, in + n * Cin * H * W, wt.data(), bias, Cin, H, W, Cout, y0, y1,
                    work.data());
        }
    }, 2);
}

}  // namespace sd
