// ops_internal.h — the per-instruction-set kernel table behind convert.cpp, elementwise.cpp, norm.cpp and
// attention.cpp (everything in kernels.h except the matrix products and convolutions).
//
// Each entry does one thread's share of work on contiguous data; the public functions in kernels.h split
// the work over the pool and call the entry of the active instruction set. Every ISA file fills in what it
// speeds up and leaves the rest null, which falls back to the scalar entry. This header is included by the
// ISA files, so it holds plain types only: no intrinsics, no STL.
#pragma once
#include <cstdint>

namespace sd {

// One attention call, as passed to kernels.h's attention(); see there for the meaning of each field.
struct AttnArgs {
    float* out;
    int64_t ldo;
    const float* q;
    int64_t ldq;
    const float* k;
    int64_t ldk;
    const float* v;
    int64_t ldv;
    int64_t B, Nq, Nk, heads, D;
    float scale;
    bool causal;
};

struct OpsTable {
    // dtype conversion of n contiguous values; f32 → f16/bf16 rounds to nearest even.
    void (*f16_to_f32)(float* dst, const uint16_t* src, int64_t n);
    void (*bf16_to_f32)(float* dst, const uint16_t* src, int64_t n);
    void (*f32_to_f16)(uint16_t* dst, const float* src, int64_t n);
    void (*f32_to_bf16)(uint16_t* dst, const float* src, int64_t n);

    // elementwise over n values (y may equal any input)
    void (*silu)(float* y, const float* x, int64_t n);
    void (*gelu)(float* y, const float* x, int64_t n);
    void (*quick_gelu)(float* y, const float* x, int64_t n);
    void (*gelu_mul)(float* y, const float* a, const float* g, int64_t n);  // y = a · gelu(g)
    void (*add)(float* y, const float* a, const float* b, int64_t n);
    void (*mul)(float* y, const float* a, const float* b, int64_t n);
    void (*scale_add)(float* y, const float* x, float s, int64_t n);      // y += s·x
    void (*add_scalar)(float* x, float b, int64_t n);                     // x += b

    // reductions and normalisation pieces, over n contiguous values
    double (*sum)(const float* x, int64_t n);
    double (*sum_sq_dev)(const float* x, int64_t n, float mean);  // Σ (x - mean)²
    // y = (x - mean)·a + b, then SiLU if silu (group norm's per-channel apply: a = rstd·gamma, b = beta)
    void (*affine)(float* y, const float* x, float mean, float a, float b, int64_t n, bool silu);
    // y = (x - mean)·rstd·gamma + beta (layer norm's per-row apply)
    void (*norm_affine)(float* y, const float* x, float mean, float rstd, const float* gamma,
                        const float* beta, int64_t n);
    void (*softmax_row)(float* x, int64_t n);

    // attention: the work is split into units (batch, head, block of attn_block_q query rows), ordered
    // batch-major then head then query block; this runs units [u0, u1).
    int64_t attn_block_q;
    void (*attention)(const AttnArgs& a, int64_t u0, int64_t u1);
};

// The scalar table (complete), and the ISA tables (null entries fall back to scalar). The ISA tables
// exist only on the architecture they are compiled for.
const OpsTable& ops_scalar();
const OpsTable& ops_avx2();
const OpsTable& ops_avx512();
const OpsTable& ops_neon();
// The active instruction set's table with every null entry filled from the scalar one.
const OpsTable& ops();

// Scalar entries, defined in convert.cpp, elementwise.cpp, norm.cpp and attention.cpp.
namespace scalar_ops {
void f16_to_f32(float* dst, const uint16_t* src, int64_t n);
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n);
void f32_to_f16(uint16_t* dst, const float* src, int64_t n);
void f32_to_bf16(uint16_t* dst, const float* src, int64_t n);
void silu(float* y, const float* x, int64_t n);
void gelu(float* y, const float* x, int64_t n);
void quick_gelu(float* y, const float* x, int64_t n);
void gelu_mul(float* y, const float* a, const float* g, int64_t n);
void add(float* y, const float* a, const float* b, int64_t n);
void mul(float* y, const float* a, const float* b, int64_t n);
void scale_add(float* y, const float* x, float s, int64_t n);
void add_scalar(float* x, float b, int64_t n);
double sum(const float* x, int64_t n);
double sum_sq_dev(const float* x, int64_t n, float mean);
void affine(float* y, const float* x, float mean, float a, float b, int64_t n, bool silu);
void norm_affine(float* y, const float* x, float mean, float rstd, const float* gamma, const float* beta,
                 int64_t n);
void softmax_row(float* x, int64_t n);
extern const int64_t attn_block_q;
void attention(const AttnArgs& a, int64_t u0, int64_t u1);
}  // namespace scalar_ops

}  // namespace sd
