// gemm / matmul_nn against a naive double-accumulating reference: awkward sizes, padded strides, every
// weight dtype, bias, fused activation and accumulate; every ISA this CPU runs, 1..3 threads, and the
// same bits for every thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "skip.h"

using namespace sd;

namespace {

std::vector<Isa> supported_isas() {
    std::vector<Isa> v;
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
        if (isa_supported(isa)) v.push_back(isa);
    return v;
}

// Weights as stored (f32 / f16 / bf16 bits) plus the f32 values the reference uses.
struct Weights {
    std::vector<uint8_t> raw;
    std::vector<float> value;
};
Weights make_weights(std::mt19937& rng, DType dt, int64_t n) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Weights w;
    w.raw.resize(n * dtype_size(dt));
    w.value.resize(n);
    for (int64_t i = 0; i < n; i++) {
        float x = nd(rng);
        if (dt == DType::F32) { std::memcpy(&w.raw[i * 4], &x, 4); w.value[i] = x; continue; }
        uint16_t h = dt == DType::F16 ? f32_to_f16(x) : f32_to_bf16(x);
        std::memcpy(&w.raw[i * 2], &h, 2);
        w.value[i] = dt == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    return w;
}

double ref_act(double x, Act act) {
    switch (act) {
        case Act::None: return x;
        case Act::GELU: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
        case Act::QuickGELU: return x / (1.0 + std::exp(-1.702 * x));
        case Act::SiLU: return x / (1.0 + std::exp(-x));
    }
    return x;
}

// Compares C (M rows of N at stride ldc) to ref with a tolerance of 1e-5 relative to the magnitude
// (sum |a||b| and the other terms); the padding after each row must be untouched (the same bits as in orig).
void check_close(const std::vector<float>& C, const std::vector<float>& orig, const std::vector<double>& ref,
                 const std::vector<double>& mag, int64_t M, int64_t N, int64_t ldc, const char* what) {
    double max_abs = 0, max_rel = 0;
    int64_t bad = -1;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double d = std::fabs(C[i * ldc + j] - ref[i * N + j]);
            double rel = d / (mag[i * N + j] + 1e-6);
            if (d > max_abs) max_abs = d;
            if (rel > max_rel) max_rel = rel;
            if (!(rel <= 1e-5) && bad < 0) bad = i * N + j;
        }
        for (int64_t j = N; j < ldc; j++)
            if (std::memcmp(&C[i * ldc + j], &orig[i * ldc + j], 4) != 0 && bad < 0) bad = i * N + j;
    }
    INFO(std::string(what), " max_abs=", max_abs, " max_rel(to sum|a||b|)=", max_rel, " first bad index=", bad);
    CHECK(bad < 0);
}

struct GemmCase { int64_t M, N, K; };

}  // namespace

TEST_CASE("gemm matches the double reference for every ISA, dtype, bias, activation and thread count") {
    std::mt19937 rng(1234);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const GemmCase cases[] = {{1, 1, 1},   {1, 65, 17},  {2, 37, 300},  {3, 7, 17},  {7, 17, 65},
                              {17, 3, 7},  {17, 65, 33}, {65, 70, 129}, {33, 1100, 20}, {150, 97, 700}, {5, 40, 1000},
                              {300, 40, 300}, {40, 300, 300}};  // the last two: big enough to split 3 ways, along M / N
    const Act acts[] = {Act::None, Act::GELU, Act::QuickGELU, Act::SiLU};
    int variant = 0;
    for (const GemmCase& gc : cases)
        for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
            int64_t M = gc.M, N = gc.N, K = gc.K, lda = K + 3, ldb = K + 5, ldc = N + 2;
            std::vector<float> A(M * lda), bias(N), C0(M * ldc);
            for (float& x : A) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            for (float& x : C0) x = nd(rng);
            Weights B = make_weights(rng, dt, N * ldb);
            // The products with double accumulation, and their magnitude for the tolerance.
            std::vector<double> prod(M * N), mag(M * N);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0, m = 0;
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)A[i * lda + k] * B.value[j * ldb + k];
                        s += p;
                        m += std::fabs(p);
                    }
                    prod[i * N + j] = s;
                    mag[i * N + j] = m;
                }
            for (Act act : acts) {
                variant++;
                bool use_bias = variant % 2 == 0, accumulate = act == Act::None && variant % 3 != 0;
                std::vector<double> ref(M * N), tol(M * N);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double x = prod[i * N + j] + (use_bias ? bias[j] : 0.0);
                        double y = ref_act(x, act);
                        ref[i * N + j] = accumulate ? y + C0[i * ldc + j] : y;
                        // the activation's slope is at most ~1.13; bias, activation and C0 add a rounding each
                        tol[i * N + j] = 1.2 * (mag[i * N + j] + std::fabs(bias[j])) + std::fabs(ref[i * N + j]) +
                                         std::fabs(C0[i * ldc + j]);
                    }
                for (Isa isa : supported_isas()) {
                    set_isa(isa);
                    std::vector<float> first;
                    for (int threads : {1, 2, 3}) {
                        set_num_threads(threads);
                        std::vector<float> C = C0;
                        if (!accumulate)
                            for (int64_t i = 0; i < M; i++)
                                for (int64_t j = 0; j < N; j++) C[i * ldc + j] = NAN;
                        gemm(C.data(), ldc, A.data(), lda, B.raw.data(), dt, ldb, use_bias ? bias.data() : nullptr,
                             M, N, K, act, accumulate);
                        char what[160];
                        std::snprintf(what, sizeof what,
                                      "isa=%s threads=%d M=%lld N=%lld K=%lld dtype=%s bias=%d act=%d acc=%d",
                                      isa_name(isa), threads, (long long)M, (long long)N, (long long)K,
                                      dtype_name(dt), use_bias, (int)act, accumulate);
                        check_close(C, C0, ref, tol, M, N, ldc, what);
                        if (threads == 1) first = C;
                        else {
                            INFO(std::string(what));
                            CHECK(std::memcmp(first.data(), C.data(), C.size() * 4) == 0);
                        }
                    }
                }
            }
        }
    set_isa(best_isa());
    set_num_threads(0);
}

TEST_CASE("matmul_nn matches the double reference for every ISA and thread count") {
    std::mt19937 rng(99);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const GemmCase cases[] = {{1, 1, 1}, {3, 7, 17}, {17, 65, 7}, {64, 77, 40}, {70, 33, 300}, {130, 600, 64}};
    for (const GemmCase& gc : cases) {
        int64_t M = gc.M, N = gc.N, K = gc.K, lda = K + 1, ldb = N + 3, ldc = N + 2;
        float alpha = 0.125f;
        std::vector<float> A(M * lda), B(K * ldb);
        for (float& x : A) x = nd(rng);
        for (float& x : B) x = nd(rng);
        std::vector<double> ref(M * N), mag(M * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0, m = 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = (double)A[i * lda + k] * B[k * ldb + j] * alpha;
                    s += p;
                    m += std::fabs(p);
                }
                ref[i * N + j] = s;
                mag[i * N + j] = m;
            }
        for (Isa isa : supported_isas()) {
            set_isa(isa);
            std::vector<float> first;
            for (int threads : {1, 2, 3}) {
                set_num_threads(threads);
                std::vector<float> C(M * ldc, -7.0f), orig = C;
                matmul_nn(C.data(), ldc, A.data(), lda, B.data(), ldb, M, N, K, alpha);
                char what[128];
                std::snprintf(what, sizeof what, "isa=%s threads=%d M=%lld N=%lld K=%lld", isa_name(isa), threads,
                              (long long)M, (long long)N, (long long)K);
                check_close(C, orig, ref, mag, M, N, ldc, what);
                if (threads == 1) first = C;
                else {
                    INFO(std::string(what));
                    CHECK(std::memcmp(first.data(), C.data(), C.size() * 4) == 0);
                }
            }
        }
    }
    set_isa(best_isa());
    set_num_threads(0);
}

// ---- bf16 precision ------------------------------------------------------------------------------------------
// The reference rounds both operands to bf16 (nearest even, as the packers do) and sums the exact products in
// double, so the only error left is the kernel's f32 summation: the same 1e-5 of sum |a||b| as for f32. An f32
// product would miss it by ~2^-9/sqrt(K) of sum |a||b| (the rounding the reference applied), which K >= 300
// makes ~1e-4, so the bigger cases also prove the bf16 path ran.

namespace {
float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }
}  // namespace

TEST_CASE("precision: names, and bf16 is refused with a clear message where the CPU lacks AVX512_BF16 / BF16") {
    CHECK(parse_precision("fp32") == Precision::FP32);
    CHECK(parse_precision("bf16") == Precision::BF16);
    CHECK_THROWS_WITH_AS(parse_precision("fp16"), doctest::Contains("valid: fp32, bf16"), std::runtime_error);
    CHECK(precision_supported(Precision::FP32));
    CHECK(active_precision() == Precision::FP32);  // the library's default unless SD_PRECISION says otherwise
    set_isa(best_isa());  // AVX-512 or NEON where the CPU has bf16 dot products
    bool bf16 = cpu_has_bf16() && (best_isa() == Isa::Avx512 || best_isa() == Isa::Neon);
    CHECK(precision_supported(Precision::BF16) == bf16);
    // bf16 by default only where its dot products measure faster (Zen 4: 2x; Intel Sapphire/Emerald Rapids: 0.5x)
    const double speedup = bf16_speedup();
    if (bf16) CHECK((speedup > 0.2 && speedup < 4.0));
    else CHECK(speedup == 0.0);
    CHECK(best_precision() == (bf16 && speedup >= 1.3 ? Precision::BF16 : Precision::FP32));
    if (!bf16) {
        CHECK_THROWS_WITH_AS(set_precision(Precision::BF16), doctest::Contains("AVX512_BF16"), std::runtime_error);
        CHECK(active_precision() == Precision::FP32);
        SKIPPED("no AVX512_BF16 or ARM64 BF16 on this CPU: only the refusal was checked");
        return;
    }
    // bf16 runs on the AVX-512 or NEON kernels only: another instruction set means f32 products again.
    set_precision(Precision::BF16);
    CHECK(active_precision() == Precision::BF16);
    set_isa(Isa::Scalar);
    CHECK(active_precision() == Precision::FP32);
    CHECK_THROWS_WITH_AS(set_precision(Precision::BF16), doctest::Contains("active instruction set is scalar"),
                         std::runtime_error);
    set_isa(best_isa());
    CHECK(active_precision() == Precision::BF16);
    set_precision(Precision::FP32);
    CHECK(active_precision() == Precision::FP32);
}

TEST_CASE("gemm and matmul_nn in bf16 match the bf16-rounded double reference, same bits for 1..3 threads") {
    set_isa(best_isa());
    if (!precision_supported(Precision::BF16)) {  // the case above checks the refusal
        SKIPPED("no AVX512_BF16 or ARM64 BF16 on this CPU");
        return;
    }
    set_precision(Precision::BF16);
    std::mt19937 rng(4242);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    // odd K (a padded last pair), K across slice boundaries (384), partial tiles, splits along M and N
    const GemmCase cases[] = {{5, 1, 1},     {7, 17, 3},     {17, 65, 33},   {65, 70, 129}, {33, 100, 385},
                              {150, 97, 700}, {300, 40, 301}, {40, 300, 300}, {29, 33, 800}};
    const Act acts[] = {Act::None, Act::GELU, Act::SiLU};
    int variant = 0;
    for (const GemmCase& gc : cases)
        for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
            int64_t M = gc.M, N = gc.N, K = gc.K, lda = K + 3, ldb = K + 1, ldc = N + 2;
            std::vector<float> A(M * lda), bias(N), C0(M * ldc);
            for (float& x : A) x = nd(rng);
            for (float& x : bias) x = nd(rng);
            for (float& x : C0) x = nd(rng);
            Weights B = make_weights(rng, dt, N * ldb);
            Act act = acts[variant % 3];
            bool use_bias = variant % 2 == 0, accumulate = act == Act::None && variant % 4 != 0;
            variant++;
            std::vector<double> ref(M * N), tol(M * N);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0, m = 0;
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)round_bf16(A[i * lda + k]) * round_bf16(B.value[j * ldb + k]);
                        s += p;
                        m += std::fabs(p);
                    }
                    double y = ref_act(s + (use_bias ? bias[j] : 0.0), act);
                    ref[i * N + j] = accumulate ? y + C0[i * ldc + j] : y;
                    tol[i * N + j] = 1.2 * (m + std::fabs(bias[j])) + std::fabs(ref[i * N + j]) + std::fabs(C0[i * ldc + j]);
                }
            std::vector<float> first;
            for (int threads : {1, 2, 3}) {
                set_num_threads(threads);
                std::vector<float> C = C0;
                gemm(C.data(), ldc, A.data(), lda, B.raw.data(), dt, ldb, use_bias ? bias.data() : nullptr, M, N, K,
                     act, accumulate);
                char what[160];
                std::snprintf(what, sizeof what, "bf16 threads=%d M=%lld N=%lld K=%lld dtype=%s bias=%d act=%d acc=%d",
                              threads, (long long)M, (long long)N, (long long)K, dtype_name(dt), use_bias, (int)act,
                              accumulate);
                check_close(C, C0, ref, tol, M, N, ldc, what);
                if (threads == 1) first = C;
                else {
                    INFO(std::string(what));
                    CHECK(std::memcmp(first.data(), C.data(), C.size() * 4) == 0);
                }
            }
        }

    const GemmCase nn_cases[] = {{3, 7, 17}, {17, 65, 7}, {64, 77, 41}, {70, 33, 300}, {130, 600, 64}};
    for (const GemmCase& gc : nn_cases) {
        int64_t M = gc.M, N = gc.N, K = gc.K, lda = K + 1, ldb = N + 3, ldc = N + 2;
        float alpha = 0.125f;  // a power of two: rounding alpha·a to bf16 = alpha · (a rounded)
        std::vector<float> A(M * lda), B(K * ldb);
        for (float& x : A) x = nd(rng);
        for (float& x : B) x = nd(rng);
        std::vector<double> ref(M * N), mag(M * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0, m = 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = (double)round_bf16(A[i * lda + k]) * round_bf16(B[k * ldb + j]) * alpha;
                    s += p;
                    m += std::fabs(p);
                }
                ref[i * N + j] = s;
                mag[i * N + j] = m;
            }
        std::vector<float> first;
        for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            std::vector<float> C(M * ldc, -7.0f), orig = C;
            matmul_nn(C.data(), ldc, A.data(), lda, B.data(), ldb, M, N, K, alpha);
            char what[128];
            std::snprintf(what, sizeof what, "bf16 matmul_nn threads=%d M=%lld N=%lld K=%lld", threads, (long long)M,
                          (long long)N, (long long)K);
            check_close(C, orig, ref, mag, M, N, ldc, what);
            if (threads == 1) first = C;
            else {
                INFO(std::string(what));
                CHECK(std::memcmp(first.data(), C.data(), C.size() * 4) == 0);
            }
        }
    }
    set_precision(Precision::FP32);
    set_isa(best_isa());
    set_num_threads(0);
}
