// norm.cpp — group norm (optionally fused with SiLU, or written in token layout), layer norm and row softmax.
//
// Statistics are two-pass: the mean first, then the variance as the mean of squared deviations from it, both
// accumulated in double (the SIMD entries sum short runs in f32 lanes and add those into double), so large offsets do
// not cancel. Each group / row is one unit of work, so the reduction order does not depend on the thread count.
#include <cassert>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/table.h"
#include "kernels/ops_split.h"

namespace sd {

void group_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                int64_t HW, int64_t groups, float eps, bool silu) {
    assert(groups > 0 && C % groups == 0);
    const OpsTable& t = kernels().ops;
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

void group_norm_tokens(float* y, const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                       int64_t HW, int64_t groups, float eps) {
    assert(groups > 0 && C % groups == 0);
    const OpsTable& t = kernels().ops;
    int64_t Cg = C / groups, span = Cg * HW;
    // Pass 1: each (sample, group)'s statistics, computed exactly as group_norm does, kept per channel as the
    // (mean, a = rstd·gamma) its affine step uses.
    std::vector<float> mean(N * C), a(N * C);
    for_rows(N * groups, span, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            const float* xg = x + u * span;
            float m = (float)(t.sum(xg, span) / (double)span);
            double var = t.sum_sq_dev(xg, span, m) / (double)span;
            float rstd = (float)(1.0 / std::sqrt(var + (double)eps));
            int64_t c0 = (u % groups) * Cg;
            for (int64_t c = 0; c < Cg; c++) {
                mean[u * Cg + c] = m;
                a[u * Cg + c] = rstd * gamma[c0 + c];
            }
        }
    });
    // Pass 2: tiles of kTile pixels. Each channel's run of the tile goes through the same affine entry as
    // group_norm (so the same bits) into a (C, kTile) scratch that stays in L2, which is then written out
    // as kTile contiguous token rows.
    constexpr int64_t kTile = 64;
    int64_t tiles = (HW + kTile - 1) / kTile;
    for_rows(N * tiles, kTile * C, [&](int64_t u0, int64_t u1) {
        std::vector<float> buf(C * kTile);
        for (int64_t u = u0; u < u1; u++) {  // unit u = (sample n, pixel tile)
            int64_t n = u / tiles, p0 = u % tiles * kTile, P = HW - p0 < kTile ? HW - p0 : kTile;
            for (int64_t c = 0; c < C; c++)
                t.affine(buf.data() + c * kTile, x + (n * C + c) * HW + p0, mean[n * C + c], a[n * C + c], beta[c],
                         P, false);
            // Strips of 8 channels: 8 sequential read streams, 8 contiguous floats written per token.
            float* yt = y + (n * HW + p0) * C;
            int64_t c0 = 0;
            for (; c0 + 8 <= C; c0 += 8) {
                const float* strip = buf.data() + c0 * kTile;
                for (int64_t p = 0; p < P; p++)
                    for (int k = 0; k < 8; k++) yt[p * C + c0 + k] = strip[k * kTile + p];
            }
            for (; c0 < C; c0++)
                for (int64_t p = 0; p < P; p++) yt[p * C + c0] = buf[c0 * kTile + p];
        }
    });
}

void layer_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t C,
                float eps) {
    const OpsTable& t = kernels().ops;
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
    const OpsTable& t = kernels().ops;
    for_rows(rows, n, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) t.softmax_row(x + r * n, n);
    });
}

}  // namespace sd
