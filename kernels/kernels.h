// kernels.h — the only kernel header model code includes.
//
// Every function here works on raw f32 buffers with explicit sizes, splits its work over the thread pool
// by outputs (never across a reduction: 1 and N threads give the same bits), and dispatches to the code
// compiled for the instruction set chosen at startup (scalar, AVX2+FMA, AVX-512, NEON). Weights may be
// f32, f16 or bf16 (as stored in the checkpoint); activations are always f32. Layouts are PyTorch's:
// Linear weights (out, in), Conv2d weights (out, in, kh, kw), images NCHW, tokens (batch, seq, channels).
#pragma once
#include <cstdint>

#include "kernels/pool.h"
#include "tensor.h"

namespace sd {

// ---- instruction set selection -----------------------------------------------------------------------
enum class Isa { scalar, avx2, avx512, neon };
const char* isa_name(Isa isa);
bool isa_supported(Isa isa);       // compiled in and the CPU (and OS) supports it
Isa best_isa();                    // the best supported level
Isa active_isa();                  // chosen once: SD_ISA env var if set, else best_isa()
void set_isa(Isa isa);             // tests and benchmarks switch levels; throws if unsupported
bool cpu_has_bf16();  // bf16 dot products: AVX512_BF16 (x86-64) or FEAT_BF16 BFDOT (ARM64, HWCAP2_BF16)
// The CPU's vector features that matter here, as detected (cpuid on x86-64, the kernel's hardware capability
// bits on ARM64), e.g. "avx2 fma f16c avx512f avx512bf16" or "neon fp16 bf16 i8mm"; for --version and bench.
const char* cpu_features();

// ---- matrix product precision --------------------------------------------------------------------------
// FP32: f32 products and sums. BF16: gemm, matmul_nn and conv2d round both operands to bfloat16 (nearest even) and
// sum the exact products in f32 (AVX512_BF16 vdpbf16ps, ARM64 BFDOT); attention, norms, elementwise ops and the
// M <= 4 Linear path stay f32. The library starts in FP32 (what the tests check) unless SD_PRECISION=fp32|bf16 says
// otherwise; the CLI picks best_precision(). BF16 runs on the AVX-512 or NEON kernels only: after set_isa() to another
// level the products are f32 again, and active_precision() says so.
enum class Precision { fp32, bf16 };
const char* precision_name(Precision p);      // "fp32" | "bf16"
Precision parse_precision(const char* name);  // throws with the valid names
bool precision_supported(Precision p);        // FP32 always; BF16 with AVX-512 or NEON active and cpu_has_bf16()
Precision best_precision();                   // BF16 where supported and bf16_speedup() >= 1.3, else FP32
Precision active_precision();                 // what the matrix products run at now
void set_precision(Precision p);              // throws if unsupported

// The active ISA's register-only loop of independent fp32 FMA chains, `iters` rounds on the calling thread; returns
// the flops done. The yardstick every throughput figure is quoted against (sd bench measures its rate).
double fma_peak_flops(int64_t iters);
// The bf16 dot product's register-only throughput over the fp32 FMA's on the calling thread (a few ms of CPU): 2.0
// on Zen 4, ~0.5 on Intel Sapphire/Emerald Rapids. 0 without bf16 kernels or bf16 in the CPU.
double bf16_speedup();

// ---- dtype conversion --------------------------------------------------------------------------------
void convert_to_f32(float* dst, const void* src, DType src_dtype, int64_t n);
void convert_from_f32(void* dst, DType dst_dtype, const float* src, int64_t n);  // round to nearest even

// ---- matrix products ---------------------------------------------------------------------------------
enum class Act { none, gelu /*erf*/, quick_gelu, silu };

// C(M,N) = act(A(M,K) · B(N,K)^T + bias(N)) — a Linear layer: A row stride lda, B row stride ldb
// (B in f32/f16/bf16, the PyTorch weight layout), C row stride ldc. bias may be null.
// If accumulate, C += result (act must be None) — used for residual adds.
void gemm(float* C, int64_t ldc, const float* A, int64_t lda, const void* B, DType b_dtype, int64_t ldb,
          const float* bias, int64_t M, int64_t N, int64_t K, Act act = Act::none, bool accumulate = false);

// Plain f32 C(M,N) = alpha * A(M,K) · B(K,N) (both row-major, strides lda/ldb/ldc), for activations × activations.
void matmul_nn(float* C, int64_t ldc, const float* A, int64_t lda, const float* B, int64_t ldb,
               int64_t M, int64_t N, int64_t K, float alpha = 1.0f);

// out(N,Cout,Ho,Wo) = conv2d(in(N,Cin,H,W), w(Cout,Cin,k,k)) + bias(Cout); k in {1,3}, stride in {1,2},
// zero padding pad; Ho = (H + 2*pad - k)/stride + 1. bias may be null. If accumulate, out += result.
void conv2d(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
            int64_t Cin, int64_t H, int64_t W, int64_t Cout, int k, int stride, int pad, bool accumulate = false);
inline int64_t conv_out_size(int64_t in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

// out(N,Cout,2H,2W) = conv2d(upsample_nearest2x(in(N,Cin,H,W)), w) + bias, 3×3 pad 1, without the upsampled map and
// with 1/4 of the multiply-adds (Winograd F(2×2, 2×2) per output phase, conv_winograd.cpp): a few ulps off conv2d's.
// scratch: conv2d_upsample2x_scratch() floats, 64-byte aligned; band_rows (rows of 2×2 tiles of `in` per step) 0
// picks a size, any value gives the same bits.
void conv2d_upsample2x(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                       int64_t Cin, int64_t H, int64_t W, int64_t Cout, float* scratch, int64_t band_rows = 0);
size_t conv2d_upsample2x_scratch(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t band_rows = 0);
// out(N,Cout,H,W) (+)= conv2d(in(N,Cin,H,W), w) + bias, 3×3 stride 1 pad 1, by Winograd F(2×2, 3×3): 4/9 of the
// multiply-adds, a few ulps off conv2d's (in BF16 ~3× its squared error: the transformed operands are rounded). out
// may be in when Cout <= Cin and not accumulating. scratch and band_rows (output tile rows) as conv2d_upsample2x's.
void conv2d_winograd(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                     int64_t Cin, int64_t H, int64_t W, int64_t Cout, float* scratch, bool accumulate = false,
                     int64_t band_rows = 0);
size_t conv2d_winograd_scratch(int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t band_rows = 0);
// out(N,Cout,H,W) = conv2d(in, w) + bias, 3×3 stride 1 pad 1, computed directly (conv_small.cpp): for a few
// output channels (an RGB output conv), where conv2d's implicit GEMM would waste most of its register tile.
void conv2d_small_cout(float* out, const float* in, const void* w, DType w_dtype, const float* bias, int64_t N,
                       int64_t Cin, int64_t H, int64_t W, int64_t Cout);

// ---- attention -----------------------------------------------------------------------------------------
// Multi-head scaled dot-product attention by tiles with an online softmax: O(Nq + Nk) memory, never Nq·Nk. q (B, Nq,
// heads*D) row stride ldq; k, v (B, Nk, heads*D) row strides ldk, ldv; out (B, Nq, heads*D) row stride ldo. Head h
// uses columns [h*D, (h+1)*D); causal masks keys j > i; scale is usually 1/sqrt(D).
void attention(float* out, int64_t ldo, const float* q, int64_t ldq, const float* k, int64_t ldk,
               const float* v, int64_t ldv, int64_t B, int64_t Nq, int64_t Nk, int64_t heads, int64_t D,
               float scale, bool causal);

// ---- normalisation ---------------------------------------------------------------------------------------
// x (N, C, HW): per sample and group of C/groups channels, normalise, then y = x̂·gamma[c] + beta[c],
// then SiLU if silu. gamma/beta f32 of length C. y may equal x.
void group_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                int64_t HW, int64_t groups, float eps, bool silu);
// The same group norm (no SiLU) written in token layout: x (N, C, HW) → y (N, HW, C), bit for bit group_norm
// followed by a transpose, in one pass (a spatial transformer's input). y must not overlap x.
void group_norm_tokens(float* y, const float* x, const float* gamma, const float* beta, int64_t N, int64_t C,
                       int64_t HW, int64_t groups, float eps);
// x (rows, C): per row normalise, then y = x̂·gamma + beta. y may equal x.
void layer_norm(float* y, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t C,
                float eps);
// In place, per row of n values: x = softmax(x).
void softmax_rows(float* x, int64_t rows, int64_t n);

// ---- elementwise ---------------------------------------------------------------------------------------------
// y = act(x): SiLU x·sigmoid(x), GELU exact x·Φ(x) with erf, QuickGELU x·sigmoid(1.702x) (None copies).
void activation(float* y, const float* x, int64_t n, Act act);
// x (rows, 2C) → y (rows, C): y = x[:, :C] · gelu(x[:, C:]) (diffusers/ldm GEGLU order).
void geglu(float* y, const float* x, int64_t rows, int64_t C);
void add(float* y, const float* a, const float* b, int64_t n);  // y = a + b (y may alias either)
void scale_add(float* y, const float* x, float s, int64_t n);   // y += s·x
// x (N, C, HW) += b(N, C) broadcast over HW (time-embedding add in res blocks).
void add_channel_bias(float* x, const float* b, int64_t N, int64_t C, int64_t HW);
// in (NC, H, W) → out (NC, 2H, 2W), nearest neighbour.
void upsample_nearest2x(float* out, const float* in, int64_t NC, int64_t H, int64_t W);
// in (rows, cols) → out (cols, rows); used to move between NCHW feature maps and token layouts.
void transpose(float* out, const float* in, int64_t rows, int64_t cols);
// y (N, C, HW) = x (N, C, HW) + t (N, HW, C) transposed: a token branch added back onto a feature map (the
// spatial transformer's residual). y may equal x; t must not overlap y.
void add_tokens(float* y, const float* x, const float* t, int64_t N, int64_t C, int64_t HW);

// ---- choosing a convolution algorithm (conv_choose.cpp) ----------------------------------------------------
// One rule for every model, from the shape and the active precision: model code never reads the precision or the
// instruction set. Thresholds and their measurements: docs/performance.md ("Choosing a conv algorithm").
enum class ConvAlgo {
    direct,            // conv2d (implicit GEMM): any k, stride, pad
    winograd,          // conv2d_winograd: 3×3 stride 1 pad 1, 4/9 of the multiply-adds; scratch
    small_cout,         // conv2d_small_cout: 3×3 stride 1 pad 1 to at most 4 channels (an image or latent out)
    upsample2x,        // conv2d_upsample2x: nearest 2× then 3×3, fused, 1/4 of the multiply-adds; scratch
    upsample_then_conv,  // upsample_nearest2x into a map, then the 3×3 conv chosen for the upsampled shape
};
struct ConvShape {
    int64_t N = 1, Cin = 0, H = 0, W = 0, Cout = 0;  // input (N, Cin, H, W), before any upsample
    int k = 3, stride = 1, pad = 1;
    bool upsample2x = false;  // nearest 2× of the input first (ldm's Upsample)
    bool accumulate = false;  // out += conv(in)
    bool in_place = false;    // out is in's memory (Cout <= Cin): only Winograd allows it, so it is chosen
};
ConvAlgo choose_conv(const ConvShape& s);
size_t conv_scratch_floats(ConvAlgo algo, const ConvShape& s);  // what `algo` needs at `s`; 0 for none

}  // namespace sd
