// conv_small_internal.h — the per-ISA row kernels behind conv2d_small_cout (conv_small.cpp). Plain types
// only: the ISA files include it.
#pragma once
#include <cstdint>

namespace sd {

struct ConvSmallKernels {
    int rows_per_block;  // output rows one register block covers: split the work in multiples of it
    int width;           // columns one register block covers
    // Output rows [y0, y1) of one image: out (Cout, H, W) = conv3x3(in (Cin, H, W)) + bias (pad 1), with the
    // weights in f32 laid out (Cin, 3, 3, Cout) so one input channel's taps are contiguous. bias may be null.
    // work: conv_small_work(rows_per_block, width, W) floats.
    void (*rows)(float* out, const float* in, const float* w, const float* bias, int64_t Cin, int64_t H, int64_t W,
                 int64_t Cout, int64_t y0, int64_t y1, float* work);
};

// The kernels' work buffer: a chunk of 16 input channels' rows, zero-padded, and the partial sums.
inline int64_t conv_small_work(int rows, int width, int64_t W) {
    const int64_t blocks = (W + width - 1) / width;
    return 16 * (rows + 2) * (blocks * width + 2) + blocks * rows * 3 * width;
}

const ConvSmallKernels* conv_small_kernels_scalar();
const ConvSmallKernels* conv_small_kernels_avx2();
const ConvSmallKernels* conv_small_kernels_avx512();

}  // namespace sd
