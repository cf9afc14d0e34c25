// conv_reference.h — the slow, obvious twin of the fast 3×3 convolutions (direct, Winograd, upsample-then-conv,
// few output channels), in double, plus a scratch buffer with a guard band for kernels that take scratch memory.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace sd::test {

// ref (N, Cout, up·H, up·W) = conv3x3, pad 1, of in (N, Cin, H, W) nearest-upsampled by `up` (1 or 2), with
// weights w (Cout, Cin, 3, 3) and bias (Cout) or null; mag = Σ|terms| + |bias| + |result| per output, the scale
// f32 rounding of any summation order is measured against.
inline void conv3x3_reference(const float* in, int64_t N, int64_t Cin, int64_t H, int64_t W, const float* w,
                              const float* bias, int64_t Cout, int up, std::vector<double>& ref,
                              std::vector<double>& mag) {
    const int64_t Ho = up * H, Wo = up * W;
    ref.assign(N * Cout * Ho * Wo, 0.0);
    mag.assign(ref.size(), 0.0);
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double sum = bias ? bias[co] : 0.0, m = std::fabs(sum);
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int64_t uy = oy - 1 + ky, ux = ox - 1 + kx;  // in the (upsampled) map
                                if (uy < 0 || uy >= Ho || ux < 0 || ux >= Wo) continue;
                                double t = (double)in[((n * Cin + ci) * H + uy / up) * W + ux / up] *
                                           w[(co * Cin + ci) * 9 + ky * 3 + kx];
                                sum += t;
                                m += std::fabs(t);
                            }
                    int64_t o = ((n * Cout + co) * Ho + oy) * Wo + ox;
                    ref[o] = sum;
                    mag[o] = m + std::fabs(sum);
                }
}

// Scratch of `floats` (64-byte aligned) followed by a guard band that must come back untouched.
struct GuardedScratch {
    std::vector<float> buf;
    size_t n;
    static constexpr size_t kGuard = 64;
    explicit GuardedScratch(size_t floats) : buf(floats + kGuard + 16, -7.0f), n(floats) {}
    float* data() {
        uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
        return buf.data() + ((64 - p % 64) % 64) / 4;
    }
    bool guard_intact() {
        float* g = data() + n;
        for (size_t i = 0; i < kGuard; i++)
            if (g[i] != -7.0f) return false;
        return true;
    }
};

}  // namespace sd::test
