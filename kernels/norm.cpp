// norm.cpp — group norm (optionally fused with SiLU), layer norm and row softmax.
//
// Statistics are two-pass: the mean first, then the variance as the mean of squared deviations from it,
// both accumulated in double (the SIMD entries sum short runs in f32 lanes and add those into double), so
// large offsets do not cancel. Each group / row is one unit of work, so the reduction order does not
// depend on the thread count.
#include <cassert>
#include <cmath>

#include "kernels/kernels.h"
#include "kernels/ops_internal.h"
#include "kernels/ops_split.h"

namespace sd {

namespace scalar_ops {
double sum(const float* x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}
double sum_sq_dev(const float* x, int64_t n, float mean) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - mean;
        s += d * d;
    }
    return s;
}
void affine(float* y, const float* x, float mean, float a, float b, int64_t n, bool silu) {
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * a + b;
        y[i] = silu ? v / (1.0f + std::exp(-v)) : v;
    }
}
void norm_affine(float* y, const float* x, float mean, float rstd, const float* gamma, const float* beta,
                 int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}
void softmax_row(float* x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = std::exp(x[i] - m);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}
}  // namespace scalar_ops

void group_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                int64_t HW, int64_t groups, float eps, bool silu) {
    assert(groups > 0 && C % groups == 0);
    const OpsTable& t = ops();
    int64_t Cg = C / groups, span = Cg * HW;  // one group of one sample is `span` contiguous values
    for_rows(N * groups, span, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {  // unit u = (sample, group)
            const float* xg = x + u * span;
            float* yg = y + u * span;
            float mean = (float)(t.sum(xg, span) / (double)span);
            double var = t.sum_sq_dev(xg, span, mean) / (double)span;
            float rstd = (float)(1.0 / std::sqrt(var + (double)eps));
            int64_t c0 = (u % groups) * Cg;
            for (int64_t c = 0; c < Cg; c++)
                t.affine(yg + c * HW, xg + c * HW, mean, rstd * gamma[c0 + c], beta[c0 + c], HW, silu);
        }
    });
}

void layer_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t C,
                float eps) {
    const OpsTable& t = ops();
    for_rows(rows, C, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            const float* xr = x + r * C;
            float mean = (float)(t.sum(xr, C) / (double)C);
            double var = t.sum_sq_dev(xr, C, mean) / (double)C;
            float rstd = (float)(1.0 / std::sqrt(var + (double)eps));
            t.norm_affine(y + r * C, xr, mean, rstd, gamma, beta, C);
        }
    });
}

void softmax_rows(float* x, int64_t rows, int64_t n) {
    const OpsTable& t = ops();
    for_rows(rows, n, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) t.softmax_row(x + r * n, n);
    });
}

}  // namespace sd
