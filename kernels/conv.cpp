// conv.cpp — 2-D convolution (NCHW, square kernels, stride 1/2, zero padding), first simple version.
//
// Direct loops split over output channels; the implicit-GEMM version replaces this.
#include "kernels/half.h"
#include "kernels/kernels.h"

namespace sd {

void conv2d(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
            int64_t Cin, int64_t H, int64_t W, int64_t Cout, int k, int stride, int pad, bool accumulate) {
    int64_t Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    int64_t K = Cin * k * k;
    auto weight = [&](int64_t i) -> float {
        if (w_dtype == DType::F32) return static_cast<const float*>(w)[i];
        uint16_t h = static_cast<const uint16_t*>(w)[i];
        return w_dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    };
    parallel_for(N * Cout, [&](int64_t b, int64_t e) {
        for (int64_t nc = b; nc < e; nc++) {
            int64_t n = nc / Cout, co = nc % Cout;
            const float* x = in + n * Cin * H * W;
            float* y = out + nc * Ho * Wo;
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    float s = bias ? bias[co] : 0.0f;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < k; ky++) {
                            int64_t iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H) continue;
                            for (int kx = 0; kx < k; kx++) {
                                int64_t ix = ox * stride - pad + kx;
                                if (ix < 0 || ix >= W) continue;
                                s += x[(ci * H + iy) * W + ix] * weight(co * K + (ci * k + ky) * k + kx);
                            }
                        }
                    float* o = y + oy * Wo + ox;
                    *o = accumulate ? *o + s : s;
                }
        }
    });
}

}  // namespace sd
