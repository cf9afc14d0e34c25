// conv.cpp — 2-D convolution (NCHW, square kernels, stride 1/2, zero padding) as an implicit GEMM: out(Cout, Ho·Wo) =
// W(Cout, Cin·k·k) · im2col(Cin·k·k, Ho·Wo) per image. The weights are already contiguous in (Cout, Cin·k·k) order; the
// im2col panels are gathered from the image inside the B packer, one kc×nr panel at a time, so no full im2col buffer
// ever exists. A 1×1 stride-1 conv is a plain GEMM. Beside it, its scalar twin: the convolution's definition as six
// nested loops.
#include "kernels/half.h"
#include "kernels/kernels.h"
#include "kernels/table.h"

namespace sd {

// out[n][co][oy][ox] (+)= bias[co] + Σ_{ci, ky, kx} w[co][ci][ky][kx] · in[n][ci][oy·s - pad + ky][ox·s - pad + kx]
static void conv2d_textbook(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                     int64_t Cin, int64_t H, int64_t W, int64_t Cout, int k, int s, int pad, bool accumulate) {
    const int64_t Ho = conv_out_size(H, k, s, pad), Wo = conv_out_size(W, k, s, pad);
    parallel_for(N * Cout, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; p++) {  // output plane p = (n, co)
            const int64_t n = p / Cout, co = p % Cout;
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    float sum = 0.0f;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                const int64_t iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const float wv = value_f32(w, (int)w_dtype, ((co * Cin + ci) * k + ky) * k + kx);
                                sum += wv * in[((n * Cin + ci) * H + iy) * W + ix];
                            }
                    float* o = out + (p * Ho + oy) * Wo + ox;
                    *o = (accumulate ? *o : 0.0f) + sum + (bias ? bias[co] : 0.0f);
                }
        }
    });
}

void conv2d(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
            int64_t Cin, int64_t H, int64_t W, int64_t Cout, int k, int stride, int pad, bool accumulate) {
    if (!kernels().gemm) return conv2d_textbook(out, in, w, w_dtype, bias, N, Cin, H, W, Cout, k, stride, pad, accumulate);
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
        p.accumulate = accumulate;
        gemm_run(p);
    }
}

}  // namespace sd
