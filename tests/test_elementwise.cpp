// Elementwise kernels against plain double-precision formulas: activations (incl. far tails), GEGLU,
// adds, channel bias, upsampling, transpose, add_tokens; every ISA this CPU runs, 1..3 threads, and the same
// bits for every thread count.
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

// Runs body() for every supported ISA and 1, 2, 3 threads, restoring both afterwards.
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

// Normal(0, scale) values followed by edge cases for the activations' range reductions.
std::vector<float> test_inputs(int64_t n, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    const float edges[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-3f, -1e-3f, 0.5f, -0.5f, 0.6f, -0.6f, 1.0f, -1.0f,
                           2.5f, -2.5f, 3.0f, -3.0f, 5.0f, -5.0f, 8.0f, -8.0f, 10.0f, -10.0f, 13.0f, -13.0f,
                           20.0f, -20.0f, 50.0f, -50.0f, 87.0f, -87.0f, 89.0f, -89.0f, 100.0f, -100.0f,
                           1e4f, -1e4f, 1e30f, -1e30f};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]) && i < (size_t)n; i++) v[i] = edges[i];
    return v;
}

double ref_silu(double x) { return x / (1.0 + std::exp(-x)); }
double ref_gelu(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
double ref_quick_gelu(double x) { return x / (1.0 + std::exp(-(double)1.702f * x)); }

// |got - want| <= tol, reporting the worst element relative to its tolerance.
void check_close(const float* got, const std::vector<double>& want, const std::vector<double>& tol,
                 const char* what) {
    double worst = 0, worst_err = 0;
    int64_t worst_i = -1;
    for (size_t i = 0; i < want.size(); i++) {
        double err = std::fabs((double)got[i] - want[i]);
        double excess = err == 0 ? 0 : err / tol[i];
        if (!(excess <= worst)) { worst = excess; worst_err = err; worst_i = (int64_t)i; }
    }
    if (worst > 1)
        std::printf("%s: element %lld got %.9g want %.9g (err %.3g, %.2fx the tolerance)\n", what,
                    (long long)worst_i, got[worst_i], want[worst_i], worst_err, worst);
    CHECK(worst <= 1);
}

// A few ulp of f32 relative to the value, plus the rounding of the f32 argument `arg` of an exp() inside
// the function (|arg|·2^-23 relative), plus an absolute floor far below anything a network notices for the
// results that underflow (e.g. silu(-100) = -4e-42).
std::vector<double> tolerance(const std::vector<double>& want, const std::vector<double>& arg, double rel) {
    std::vector<double> t(want.size());
    for (size_t i = 0; i < want.size(); i++) t[i] = std::fabs(want[i]) * (rel + 1.2e-7 * std::fabs(arg[i])) + 1e-30;
    return t;
}

}  // namespace

TEST_CASE("silu, gelu, quick_gelu match double references, tails included") {
    for (int64_t n : {1, 3, 7, 65, 77, 1000, 100003}) {
        std::vector<float> x = test_inputs(n, 4.0f, (uint32_t)n);
        std::vector<double> ws(n), wg(n), wq(n), zero(n, 0.0), gelu_arg(n), qg_arg(n);
        for (int64_t i = 0; i < n; i++) {
            ws[i] = ref_silu(x[i]);
            wg[i] = ref_gelu(x[i]);
            wq[i] = ref_quick_gelu(x[i]);
            gelu_arg[i] = (double)x[i] * x[i] / 2;  // erfc(z) ~ exp(-z²)
            qg_arg[i] = 1.702 * x[i];
        }
        std::vector<double> ts = tolerance(ws, zero, 1e-6), tg = tolerance(wg, gelu_arg, 1e-6),
                            tq = tolerance(wq, qg_arg, 1e-6);
        std::vector<float> first_s, first_g, first_q;
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            CAPTURE(n);
            std::vector<float> s(n), g(n), q(n + 1, 42.0f);
            activation(s.data(), x.data(), n, Act::silu);
            activation(g.data(), x.data(), n, Act::gelu);
            activation(q.data(), x.data(), n, Act::quick_gelu);
            check_close(s.data(), ws, ts, "silu");
            check_close(g.data(), wg, tg, "gelu");
            check_close(q.data(), wq, tq, "quick_gelu");
            CHECK(q[n] == 42.0f);
            if (threads == 1) { first_s = s; first_g = g; first_q = q; }
            CHECK(std::memcmp(s.data(), first_s.data(), n * 4) == 0);
            CHECK(std::memcmp(g.data(), first_g.data(), n * 4) == 0);
            CHECK(std::memcmp(q.data(), first_q.data(), n * 4) == 0);
            std::vector<float> inplace = x;  // y may equal x
            activation(inplace.data(), inplace.data(), n, Act::silu);
            CHECK(std::memcmp(inplace.data(), s.data(), n * 4) == 0);
        });
    }
}

TEST_CASE("geglu: y = x[:, :C] * gelu(x[:, C:])") {
    for (auto rc : {std::make_pair(1, 1), std::make_pair(3, 7), std::make_pair(7, 65), std::make_pair(77, 40),
                    std::make_pair(130, 1280)}) {
        int64_t rows = rc.first, C = rc.second;
        std::vector<float> x = test_inputs(rows * 2 * C, 3.0f, (uint32_t)(rows * C));
        std::vector<double> want(rows * C), arg(rows * C);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < C; c++) {
                float g = x[r * 2 * C + C + c];
                want[r * C + c] = (double)x[r * 2 * C + c] * ref_gelu(g);
                arg[r * C + c] = (double)g * g / 2;
            }
        std::vector<double> tol = tolerance(want, arg, 2e-6);
        std::vector<float> first;
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            CAPTURE(rows);
            CAPTURE(C);
            std::vector<float> y(rows * C);
            geglu(y.data(), x.data(), rows, C);
            check_close(y.data(), want, tol, "geglu");
            if (threads == 1) first = y;
            CHECK(std::memcmp(y.data(), first.data(), y.size() * 4) == 0);
        });
    }
}

TEST_CASE("add, scale_add (and aliasing), add_channel_bias") {
    for (int64_t n : {1, 3, 7, 65, 77, 100003}) {
        std::vector<float> a = test_inputs(n, 2.0f, 1), b = test_inputs(n, 2.0f, 2);
        for (int64_t i = 0; i < n && i < 40; i++) b[i] = 1.5f;  // keep the edge values away from overflow
        std::vector<double> wa(n), ws(n), zero(n, 0.0);
        for (int64_t i = 0; i < n; i++) {
            wa[i] = (double)a[i] + b[i];
            ws[i] = (double)b[i] + (double)0.37f * a[i];
        }
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            CAPTURE(n);
            std::vector<float> y(n), ya = a, yb = b, s = b;
            add(y.data(), a.data(), b.data(), n);
            check_close(y.data(), wa, tolerance(wa, zero, 6e-8), "add");  // one rounding of the exact result
            add(ya.data(), ya.data(), b.data(), n);  // y aliases a
            CHECK(std::memcmp(ya.data(), y.data(), n * 4) == 0);
            add(yb.data(), a.data(), yb.data(), n);  // y aliases b
            CHECK(std::memcmp(yb.data(), y.data(), n * 4) == 0);
            scale_add(s.data(), a.data(), 0.37f, n);
            // y + s·x rounds once (fused) or twice: within an ulp of the larger term
            int bad = 0;
            for (int64_t i = 0; i < n; i++)
                bad += !(std::fabs(s[i] - ws[i]) <= 1.2e-7 * (std::fabs(b[i]) + std::fabs(0.37f * a[i])));
            CHECK(bad == 0);
        });
    }
    for (auto d : {std::vector<int64_t>{1, 1, 1}, std::vector<int64_t>{2, 3, 7}, std::vector<int64_t>{2, 320, 65},
                   std::vector<int64_t>{1, 5, 77}}) {
        int64_t N = d[0], C = d[1], HW = d[2];
        std::vector<float> x0 = test_inputs(N * C * HW, 1.0f, 3), bias = test_inputs(N * C, 1.0f, 4);
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            std::vector<float> x = x0;
            add_channel_bias(x.data(), bias.data(), N, C, HW);
            int bad = 0;
            for (int64_t i = 0; i < N * C * HW; i++) bad += x[i] != x0[i] + bias[i / HW];
            CHECK(bad == 0);
        });
    }
}

TEST_CASE("upsample_nearest2x and transpose move values exactly") {
    for (auto d : {std::vector<int64_t>{1, 1, 1}, std::vector<int64_t>{3, 7, 5}, std::vector<int64_t>{4, 65, 33}}) {
        int64_t NC = d[0], H = d[1], W = d[2];
        std::vector<float> in = test_inputs(NC * H * W, 1.0f, 5);
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            std::vector<float> out(NC * 4 * H * W, -1.0f);
            upsample_nearest2x(out.data(), in.data(), NC, H, W);
            int bad = 0;
            for (int64_t p = 0; p < NC; p++)
                for (int64_t y = 0; y < 2 * H; y++)
                    for (int64_t x = 0; x < 2 * W; x++)
                        bad += out[(p * 2 * H + y) * 2 * W + x] != in[(p * H + y / 2) * W + x / 2];
            CHECK(bad == 0);
        });
    }
    for (auto rc : {std::make_pair(1, 1), std::make_pair(1, 7), std::make_pair(7, 1), std::make_pair(65, 77),
                    std::make_pair(320, 1000)}) {
        int64_t rows = rc.first, cols = rc.second;
        std::vector<float> in = test_inputs(rows * cols, 1.0f, 6);
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            std::vector<float> out(rows * cols, -1.0f);
            transpose(out.data(), in.data(), rows, cols);
            int bad = 0;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++) bad += out[c * rows + r] != in[r * cols + c];
            CHECK(bad == 0);
        });
    }
}

TEST_CASE("add_tokens: y = x + t transposed, exactly, in place too") {
    // Channel tiles of 64 with a tail (70), token strips of 8 with a tail (13), the small-map grain (HW < 64).
    for (auto d : {std::vector<int64_t>{1, 1, 1}, std::vector<int64_t>{2, 70, 13}, std::vector<int64_t>{2, 5, 100},
                   std::vector<int64_t>{1, 130, 64}}) {
        int64_t N = d[0], C = d[1], HW = d[2];
        std::vector<float> x = test_inputs(N * C * HW, 1.0f, 7), t = test_inputs(N * HW * C, 3.0f, 8);
        std::vector<float> want(N * C * HW);
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t p = 0; p < HW; p++)
                    want[(n * C + c) * HW + p] = x[(n * C + c) * HW + p] + t[(n * HW + p) * C + c];
        for_each_config([&](Isa isa, int threads) {
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            CAPTURE(C);
            CAPTURE(HW);
            std::vector<float> y(N * C * HW, -1.0f), inplace = x;
            add_tokens(y.data(), x.data(), t.data(), N, C, HW);
            add_tokens(inplace.data(), inplace.data(), t.data(), N, C, HW);
            CHECK(std::memcmp(y.data(), want.data(), y.size() * 4) == 0);
            CHECK(std::memcmp(inplace.data(), want.data(), y.size() * 4) == 0);
        });
    }
}
