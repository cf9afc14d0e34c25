// group_norm (with and without SiLU), layer_norm and softmax_rows against two-pass double references (and
// group_norm_tokens against group_norm + transpose):
// awkward sizes, groups dividing C, inputs with a large offset (which a one-pass variance would lose),
// in-place use; every ISA this CPU runs, 1..3 threads, and the same bits for every thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace sd;

namespace {

std::vector<Isa> supported_isas() {
    std::vector<Isa> v;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon})
        if (isa_supported(isa)) v.push_back(isa);
    return v;
}

void for_each_config(const std::function<void(Isa, int)>& body) {
    Isa saved = active_isa();
    for (Isa isa : supported_isas()) {
        set_isa(isa);
        for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            body(isa, threads);
        }
    }
    set_isa(saved);
    set_num_threads(0);
}

std::vector<float> normal(int64_t n, float mean, float stddev, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(mean, stddev);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

double max_abs_err(const float* got, const std::vector<double>& want) {
    double m = 0;
    for (size_t i = 0; i < want.size(); i++) {
        double e = std::fabs((double)got[i] - want[i]);
        if (!(e <= m)) m = e;  // NaN counts as worst
    }
    return m;
}

}  // namespace

TEST_CASE("group_norm (+SiLU) against a two-pass double reference") {
    struct Case { int64_t N, C, HW, groups; float offset; };
    for (Case cs : {Case{1, 1, 1, 1, 0}, Case{1, 4, 1, 2, 0}, Case{2, 6, 7, 3, 0}, Case{1, 12, 65, 4, 100},
                    Case{2, 32, 9, 32, 0}, Case{1, 64, 77, 32, -30}, Case{2, 15, 33, 5, 1000},
                    Case{2, 64, 1600, 32, 3}}) {
        int64_t N = cs.N, C = cs.C, HW = cs.HW, G = cs.groups, Cg = C / G;
        std::vector<float> x = normal(N * C * HW, cs.offset, 1.0f, (uint32_t)(C * HW));
        std::vector<float> gamma = normal(C, 1.0f, 0.5f, 11), beta = normal(C, 0.0f, 0.5f, 12);
        const float eps = 1e-5f;
        for (bool silu : {false, true}) {
            std::vector<double> want(N * C * HW);
            for (int64_t n = 0; n < N; n++)
                for (int64_t g = 0; g < G; g++) {
                    const float* xg = x.data() + (n * C + g * Cg) * HW;
                    double mean = 0, var = 0;
                    for (int64_t i = 0; i < Cg * HW; i++) mean += xg[i];
                    mean /= (double)(Cg * HW);
                    for (int64_t i = 0; i < Cg * HW; i++) var += (xg[i] - mean) * (xg[i] - mean);
                    var /= (double)(Cg * HW);
                    for (int64_t c = g * Cg; c < (g + 1) * Cg; c++)
                        for (int64_t i = 0; i < HW; i++) {
                            int64_t at = (n * C + c) * HW + i;
                            double v = (x[at] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
                            want[at] = silu ? v / (1 + std::exp(-v)) : v;
                        }
                }
            std::vector<float> first;
            for_each_config([&](Isa isa, int threads) {
                CAPTURE(isa_name(isa));
                CAPTURE(threads);
                CAPTURE(N);
                CAPTURE(C);
                CAPTURE(HW);
                CAPTURE(G);
                CAPTURE(silu);
                std::vector<float> y(N * C * HW);
                group_norm(y.data(), x.data(), gamma.data(), beta.data(), N, C, HW, G, eps, silu);
                double err = max_abs_err(y.data(), want);
                // outputs are O(1); an offset of 1000 costs the input itself ~3e-5 of relative precision
                double tol = cs.offset >= 1000 ? 1e-3 : cs.offset >= 100 ? 1e-4 : 1e-5;
                if (err > tol) std::printf("group_norm max abs err %.3g\n", err);
                CHECK(err <= tol);
                if (threads == 1) first = y;
                CHECK(std::memcmp(y.data(), first.data(), y.size() * 4) == 0);
                std::vector<float> inplace = x;  // y may equal x
                group_norm(inplace.data(), inplace.data(), gamma.data(), beta.data(), N, C, HW, G, eps, silu);
                CHECK(std::memcmp(inplace.data(), y.data(), y.size() * 4) == 0);
            });
        }
    }
}

TEST_CASE("group_norm_tokens: group_norm then a transpose, bit for bit") {
    // Tiles of 64 pixels with tails, channel counts off the 8-wide strips, several tiles per sample.
    struct Case { int64_t N, C, HW, groups; };
    for (Case cs : {Case{1, 1, 1, 1}, Case{2, 6, 7, 3}, Case{1, 12, 65, 4}, Case{2, 36, 130, 4},
                    Case{2, 64, 200, 32}}) {
        int64_t N = cs.N, C = cs.C, HW = cs.HW, G = cs.groups;
        std::vector<float> x = normal(N * C * HW, 2.0f, 1.5f, (uint32_t)(7 * C + HW));
        std::vector<float> gamma = normal(C, 1.0f, 0.5f, 13), beta = normal(C, 0.0f, 0.5f, 14);
        const float eps = 1e-6f;
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            CAPTURE(N);
            CAPTURE(C);
            CAPTURE(HW);
            std::vector<float> maps(N * C * HW), want(N * HW * C), got(N * HW * C, -1.0f);
            group_norm(maps.data(), x.data(), gamma.data(), beta.data(), N, C, HW, G, eps, false);
            for (int64_t n = 0; n < N; n++) transpose(want.data() + n * HW * C, maps.data() + n * C * HW, C, HW);
            group_norm_tokens(got.data(), x.data(), gamma.data(), beta.data(), N, C, HW, G, eps);
            int64_t bad = 0, first = -1;
            for (size_t i = 0; i < want.size(); i++)
                if (std::memcmp(&got[i], &want[i], 4) != 0 && bad++ == 0) first = (int64_t)i;
            if (bad) std::printf("group_norm_tokens: %lld values differ, first at %lld: %g vs %g\n", (long long)bad,
                                 (long long)first, got[first], want[first]);
            CHECK(bad == 0);
        });
    }
}

TEST_CASE("layer_norm against a two-pass double reference") {
    for (auto rc : {std::make_pair(1, 1), std::make_pair(3, 3), std::make_pair(7, 65), std::make_pair(77, 768),
                    std::make_pair(300, 320), std::make_pair(5, 1280)}) {
        int64_t rows = rc.first, C = rc.second;
        for (float offset : {0.0f, 50.0f}) {
            std::vector<float> x = normal(rows * C, offset, 2.0f, (uint32_t)(rows + C));
            std::vector<float> gamma = normal(C, 1.0f, 0.5f, 13), beta = normal(C, 0.0f, 0.5f, 14);
            const float eps = 1e-5f;
            std::vector<double> want(rows * C);
            for (int64_t r = 0; r < rows; r++) {
                const float* xr = x.data() + r * C;
                double mean = 0, var = 0;
                for (int64_t i = 0; i < C; i++) mean += xr[i];
                mean /= (double)C;
                for (int64_t i = 0; i < C; i++) var += (xr[i] - mean) * (xr[i] - mean);
                var /= (double)C;
                for (int64_t i = 0; i < C; i++)
                    want[r * C + i] = (xr[i] - mean) / std::sqrt(var + eps) * gamma[i] + beta[i];
            }
            std::vector<float> first;
            for_each_config([&](Isa isa, int threads) {
                CAPTURE(isa_name(isa));
                CAPTURE(threads);
                CAPTURE(rows);
                CAPTURE(C);
                CAPTURE(offset);
                std::vector<float> y(rows * C);
                layer_norm(y.data(), x.data(), gamma.data(), beta.data(), rows, C, eps);
                double err = max_abs_err(y.data(), want);
                double tol = offset > 0 ? 3e-5 : 1e-5;  // offset 50 over stddev 2: the input's own rounding
                if (err > tol) std::printf("layer_norm max abs err %.3g\n", err);
                CHECK(err <= tol);
                if (threads == 1) first = y;
                CHECK(std::memcmp(y.data(), first.data(), y.size() * 4) == 0);
                std::vector<float> inplace = x;
                layer_norm(inplace.data(), inplace.data(), gamma.data(), beta.data(), rows, C, eps);
                CHECK(std::memcmp(inplace.data(), y.data(), y.size() * 4) == 0);
            });
        }
    }
}

TEST_CASE("softmax_rows against a double reference, large logits included") {
    // (rows, n, offset): rows of logits offset ± 5; offsets of several hundred overflow (or underflow) exp() in
    // every lane unless the row's max is subtracted first
    struct Case { int64_t rows, n; float offset; };
    for (Case c : {Case{1, 1, 0}, Case{3, 3, 0}, Case{7, 65, 0}, Case{2, 77, 0}, Case{5, 1000, 0}, Case{40, 4096, 0},
                   Case{3, 37, 300}, Case{2, 77, 600}, Case{4, 19, -400}, Case{1, 1, 500}}) {
        int64_t rows = c.rows, n = c.n;
        std::vector<float> x = normal(rows * n, c.offset, 5.0f, (uint32_t)(rows * n));
        if (n > 3) { x[1] = 80.0f; x[2] = -200.0f; }  // a logit that overflows exp() without the max shift
        std::vector<double> want(rows * n), tol(rows * n);
        for (int64_t r = 0; r < rows; r++) {
            const float* xr = x.data() + r * n;
            double m = -INFINITY, s = 0;
            for (int64_t i = 0; i < n; i++) m = std::fmax(m, xr[i]);
            for (int64_t i = 0; i < n; i++) s += std::exp(xr[i] - m);
            for (int64_t i = 0; i < n; i++) {
                want[r * n + i] = std::exp(xr[i] - m) / s;
                // a few ulp, plus the rounding of x - max in f32, which exp turns into a relative error
                tol[r * n + i] = want[r * n + i] * (2e-6 + 1.2e-7 * std::fabs(xr[i] - m)) + 1e-37;
            }
        }
        std::vector<float> first;
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            CAPTURE(rows);
            CAPTURE(n);
            std::vector<float> y = x;
            softmax_rows(y.data(), rows, n);
            int bad = 0;
            for (int64_t i = 0; i < rows * n; i++) {
                if (!(std::fabs(y[i] - want[i]) <= tol[i]) && bad++ < 3)
                    std::printf("softmax [%lld] got %.9g want %.9g\n", (long long)i, y[i], want[i]);
            }
            CHECK(bad == 0);
            if (threads == 1) first = y;
            CHECK(std::memcmp(y.data(), first.data(), y.size() * 4) == 0);
        });
    }
}
