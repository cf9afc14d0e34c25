// conv.cpp — 2-D convolution (NCHW, square kernels, stride 1/2, zero padding) as an implicit GEMM:
// out(Cout, Ho·Wo) = W(Cout, Cin·k·k) · im2col(Cin·k·k, Ho·Wo) per image. The weights are already
// contiguous in (Cout, Cin·k·k) order; the im2col panels are gathered from the image inside the B packer,
// one kc×nr panel at a time, so no full im2col buffer ever exists. A 1×1 stride-1 conv is a plain GEMM.
#include "kernels/gemm_internal.h"
#include "kernels/kernels.h"

namespace sd {

void conv2d(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
            int64_t Cin, int64_t H, int64_t W, int64_t Cout, int k, int stride, int pad, bool accumulate) {
    int64_t Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    for (int64_t n = 0; n < N; n++) {
        const float* x = in + n * Cin * H * W;  // (Cin, H, W)
        ConvGeom g = {x, Cin, H, W, Wo, k, stride, pad};
        GemmProblem p = {};
        p.C = out + n * Cout * Ho * Wo;  // (Cout, Ho*Wo)
        p.ldc = Ho * Wo;
        p.M = Cout; p.N = Ho * Wo; p.K = Cin * k * k;
        p.A = w; p.a_dtype = (int)w_dtype; p.lda = p.K; p.alpha = 1.0f;
        if (k == 1 && stride == 1 && pad == 0) {
            p.b_kind = kBRowsKN; p.B = x; p.b_dtype = kF32; p.ldb = H * W;  // (Cin, H*W) already
        } else {
            p.b_kind = kBIm2col; p.conv = &g;
        }
        p.bias_m = bias;
        p.act = kActNone;
        p.accumulate = accumulate;
        gemm_run(p);
    }
}

}  // namespace sd
