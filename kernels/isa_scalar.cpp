// isa_scalar.cpp — the scalar kernel table: every entry as the plain loop, in portable C++ with libm. These are the
// readable twins of the vector bodies (vec_body.inc, attention_body.inc), the fallback for CPUs without a vector ISA we
// support, and what SD_ISA=scalar runs. The Winograd transforms are the one body compiled here over one-float "vectors"
// (simd_scalar.h); the matrix product's twin, the textbook triple loop, sits beside its fast driver in gemm.cpp (the
// GEMM entry here is null), and the convolutions' in conv.cpp.
#include <cmath>
#include <vector>

#include "kernels/half.h"
#include "kernels/simd_scalar.h"
#include "kernels/table.h"

namespace sd {
namespace {

#include "kernels/winograd_body.inc"

namespace scalar {  // (the public kernels.h functions carry the same names)

// ---- conversion: exact, round to nearest even (half.h) ---------------------------------------------------------
void to_f32(float* dst, const void* src, int dtype, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = value_f32(src, dtype, i);
}
void from_f32(uint16_t* dst, const float* src, int64_t n, int dtype) {
    for (int64_t i = 0; i < n; i++) dst[i] = dtype == kF16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
}

// ---- elementwise -----------------------------------------------------------------------------------------------
float act1(float x, int act) {
    switch (act) {
        // Φ(x) = erfc(-x/√2)/2 keeps full relative accuracy in the far negative tail, where 1 + erf(x/√2) cancels.
        case kActGelu: return 0.5f * x * std::erfc(-x * 0.70710678118654752f);
        case kActQuickGelu: return x / (1.0f + std::exp(-1.702f * x));  // x·sigmoid(1.702x)
        case kActSilu: return x / (1.0f + std::exp(-x));                // x·sigmoid(x)
    }
    return x;
}
void act(float* y, const float* x, int64_t n, int a) {
    for (int64_t i = 0; i < n; i++) y[i] = act1(x[i], a);
}
void gelu_mul(float* y, const float* a, const float* g, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * act1(g[i], kActGelu);
}
void add(float* y, const float* a, const float* b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
void scale_add(float* y, const float* x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += s * x[i];
}

// ---- reductions and norms: sums in double ------------------------------------------------------------------------
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
        y[i] = silu ? act1(v, kActSilu) : v;
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

// ---- attention: one query row at a time: scores, softmax (minus the row's max), weighted sum of v ----------------
const int64_t attn_block_q = 16;

void attention(const AttnArgs& a, int64_t u0, int64_t u1) {
    int64_t qblocks = (a.Nq + attn_block_q - 1) / attn_block_q;
    std::vector<float> s(a.Nk), o(a.D);  // one query row's scores and output
    for (int64_t u = u0; u < u1; u++) {
        int64_t b = u / (a.heads * qblocks), h = u / qblocks % a.heads, qb = u % qblocks;
        int64_t i0 = qb * attn_block_q, i1 = i0 + attn_block_q < a.Nq ? i0 + attn_block_q : a.Nq;
        const float* k = a.k + b * a.Nk * a.ldk + h * a.D;
        const float* v = a.v + b * a.Nk * a.ldv + h * a.D;
        for (int64_t i = i0; i < i1; i++) {
            const float* q = a.q + (b * a.Nq + i) * a.ldq + h * a.D;
            int64_t nk = a.causal && i + 1 < a.Nk ? i + 1 : a.Nk;  // keys j > i are masked
            float m = -INFINITY;
            for (int64_t j = 0; j < nk; j++) {
                float d = 0;
                for (int64_t c = 0; c < a.D; c++) d += q[c] * k[j * a.ldk + c];
                s[j] = d * a.scale;
                m = s[j] > m ? s[j] : m;
            }
            double l = 0;
            for (int64_t c = 0; c < a.D; c++) o[c] = 0;
            for (int64_t j = 0; j < nk; j++) {
                float p = std::exp(s[j] - m);
                l += p;
                for (int64_t c = 0; c < a.D; c++) o[c] += p * v[j * a.ldv + c];
            }
            float inv = (float)(1.0 / l);
            float* out = a.out + (b * a.Nq + i) * a.ldo + h * a.D;
            for (int64_t c = 0; c < a.D; c++) out[c] = o[c] * inv;
        }
    }
}

double fma_peak_scalar(int64_t iters) {  // 8 independent multiply-add chains
    float acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int64_t it = 0; it < iters; it++)
        for (float& a : acc) a = a * 0.999999f + 1e-7f;
    volatile float sink = acc[0] + acc[7];
    (void)sink;
    return 2.0 * 8 * (double)iters;
}

}  // namespace scalar
}  // namespace

const KernelTable& kernels_scalar() {
    static const KernelTable t = {
        {scalar::to_f32, scalar::from_f32, scalar::act, scalar::gelu_mul, scalar::add, scalar::scale_add,
         scalar::sum, scalar::sum_sq_dev, scalar::affine, scalar::norm_affine, scalar::softmax_row,
         scalar::attn_block_q, scalar::attention},
        nullptr, nullptr,
        {winograd_filter, winograd_input, winograd_output},
        {1, 1, nullptr},  // conv2d_small_cout runs conv2d's textbook loop
        scalar::fma_peak_scalar, nullptr,
    };
    return t;
}

}  // namespace sd
