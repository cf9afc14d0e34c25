// ops.h — the model-level operations: kernels applied to Tensors, outputs taken from the scratch arena.
//
// Model code (CLIP, UNet, VAE) is written with these, so it reads like the PyTorch forward it mirrors.
// Each op checks the shapes it relies on (assert) and returns a fresh arena tensor; none keeps state.
#pragma once
#include <cassert>

#include "kernels/kernels.h"
#include "tensor.h"

namespace sd {

// x (..., K) · w(N, K)^T + b(N) → (..., N). w in its stored dtype; b f32 or empty.
inline Tensor linear(Arena& a, const Tensor& x, const Tensor& w, const Tensor& b, Act act = Act::None) {
    int64_t K = x.dim(-1), N = w.shape[0], M = x.numel() / K;
    assert(w.ndim == 2 && w.shape[1] == K);
    assert(!b.data || (b.dtype == DType::F32 && b.numel() == N));
    std::vector<int64_t> s = x.dims();
    s.back() = N;
    Tensor y = a.alloc(s);
    gemm(y.f32(), N, x.f32(), K, w.data, w.dtype, K, b.data ? b.f32() : nullptr, M, N, K, act);
    return y;
}

// x (N, C, H, W) → conv2d with w (Cout, C, k, k) and bias b (Cout) or empty.
inline Tensor conv2d(Arena& a, const Tensor& x, const Tensor& w, const Tensor& b, int stride = 1, int pad = -1) {
    assert(x.ndim == 4 && w.ndim == 4 && w.shape[1] == x.shape[1] && w.shape[2] == w.shape[3]);
    int k = (int)w.shape[2];
    if (pad < 0) pad = k / 2;
    int64_t Ho = conv_out_size(x.shape[2], k, stride, pad), Wo = conv_out_size(x.shape[3], k, stride, pad);
    Tensor y = a.alloc({x.shape[0], w.shape[0], Ho, Wo});
    sd::conv2d(y.f32(), x.f32(), w.data, w.dtype, b.data ? b.f32() : nullptr, x.shape[0], x.shape[1],
               x.shape[2], x.shape[3], w.shape[0], k, stride, pad);
    return y;
}

// x (N, C, H, W) or (N, C, HW): group norm with 32 groups (SD's default), optionally fused SiLU.
inline Tensor group_norm(Arena& a, const Tensor& x, const Tensor& gamma, const Tensor& beta, bool silu,
                         int64_t groups = 32, float eps = 1e-5f) {
    int64_t N = x.shape[0], C = x.shape[1], HW = x.numel() / (N * C);
    Tensor y = a.alloc(x.dims());
    sd::group_norm(y.f32(), x.f32(), gamma.f32(), beta.f32(), N, C, HW, groups, eps, silu);
    return y;
}

// x (..., C): layer norm over the last dim.
inline Tensor layer_norm(Arena& a, const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps = 1e-5f) {
    int64_t C = x.dim(-1);
    Tensor y = a.alloc(x.dims());
    sd::layer_norm(y.f32(), x.f32(), gamma.f32(), beta.f32(), x.numel() / C, C, eps);
    return y;
}

inline Tensor add(Arena& a, const Tensor& x, const Tensor& y) {
    assert(x.numel() == y.numel());
    Tensor z = a.alloc(x.dims());
    sd::add(z.f32(), x.f32(), y.f32(), x.numel());
    return z;
}

}  // namespace sd
