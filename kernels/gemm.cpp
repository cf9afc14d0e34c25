// gemm.cpp — matrix products (Linear layers and activation × activation), first simple version.
//
// Straightforward loops split over output rows; the blocked, packed kernels replace this.
#include <cmath>

#include "kernels/half.h"
#include "kernels/kernels.h"

namespace sd {
namespace {

float load_weight(const void* B, DType dt, int64_t i) {
    switch (dt) {
        case DType::F32: return static_cast<const float*>(B)[i];
        case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(B)[i]);
        case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(B)[i]);
    }
    return 0;
}

float apply_act(float x, Act act) {
    switch (act) {
        case Act::None: return x;
        case Act::GELU: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
        case Act::QuickGELU: return x / (1.0f + std::exp(-1.702f * x));
        case Act::SiLU: return x / (1.0f + std::exp(-x));
    }
    return x;
}

}  // namespace

void gemm(float* C, int64_t ldc, const float* A, int64_t lda, const void* B, DType b_dtype, int64_t ldb,
          const float* bias, int64_t M, int64_t N, int64_t K, Act act, bool accumulate) {
    parallel_for(M, [&](int64_t m0, int64_t m1) {
        for (int64_t i = m0; i < m1; i++)
            for (int64_t j = 0; j < N; j++) {
                float s = bias ? bias[j] : 0.0f;
                for (int64_t k = 0; k < K; k++) s += A[i * lda + k] * load_weight(B, b_dtype, j * ldb + k);
                s = apply_act(s, act);
                C[i * ldc + j] = accumulate ? C[i * ldc + j] + s : s;
            }
    });
}

void matmul_nn(float* C, int64_t ldc, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t M,
               int64_t N, int64_t K, float alpha) {
    parallel_for(M, [&](int64_t m0, int64_t m1) {
        for (int64_t i = m0; i < m1; i++) {
            float* c = C + i * ldc;
            for (int64_t j = 0; j < N; j++) c[j] = 0;
            for (int64_t k = 0; k < K; k++) {
                float a = alpha * A[i * lda + k];
                const float* b = B + k * ldb;
                for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    });
}

}  // namespace sd
