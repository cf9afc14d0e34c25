// gemm_internal.h — the per-ISA pieces of the blocked matrix product (BLIS style) and the driver that
// strings them together; shared by gemm.cpp, conv.cpp and the kernel benchmark, never by model code.
//
// Each ISA file (gemm_scalar/avx2/avx512/neon.cpp) compiles one body, gemm_body.inc, over its own small
// vector wrapper and exports a table of plain functions: an MR×NR register-tile micro-kernel over packed
// panels, the packers (weights converted from f16/bf16 on the fly, im2col panels gathered straight from
// an NCHW image) and a dot-product kernel for a handful of rows. Plain C types only (no tensor.h, no STL):
// ISA files must not instantiate templates that could leak to callers compiled for another ISA.
#pragma once
#include <cstdint>

namespace sd {

enum { kF32 = 0, kF16 = 1, kBF16 = 2 };                        // = DType's order
enum { kActNone = 0, kActGelu = 1, kActQuickGelu = 2, kActSilu = 3 };  // = Act's order

// What the micro-kernel does with its MR×NR sums (c = C at the tile, row stride ldc):
// c = act(sum + bias_n[j] + bias_m[i] + (load_c ? c : 0)); null biases are skipped, act 0 is none.
struct TileArgs {
    const float* bias_n;  // per column (Linear bias), at the tile's first column
    const float* bias_m;  // per row (conv bias per output channel), at the tile's first row
    int load_c;
    int act;
};

// One image's geometry for im2col packing: B(kk, p) = in[ci][oy*stride - pad + ky][ox*stride - pad + kx]
// with kk = (ci*k + ky)*k + kx and p = oy*Wo + ox; zero outside the image.
struct ConvGeom {
    const float* in;  // (Cin, H, W)
    int64_t Cin, H, W, Wo;
    int k, stride, pad;
};

// A packed panel is a run of 32-bit words, `width` per step along k: with kpair 1 each word is an f32 value
// (panel (kc, width)); with kpair 2 each word is a pair of bf16 values at k = 2t (low half) and 2t+1 (high
// half), the operand order of vdpbf16ps (panel (ceil(kc/2), width), an odd kc's last pair padded with 0).
struct GemmKernels {
    int mr, nr;  // register tile
    int kc, mc, nc;  // cache blocks: a kc×nc B slice and an mc×nc block of C share L2, an mr×kc A panel L1
    int kpair;   // k values per panel word: 1 (f32) or 2 (bf16 pairs); kc is a multiple of it
    // c(m,n) (m <= mr, n <= nr) from kc steps of an A panel (kc, mr) and a B panel (kc, nr).
    void (*tile)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                 const TileArgs* args);
    // rows (<= width) rows of kc values, row stride ld, dtype kF32/kF16/kBF16, times alpha
    // → panel dst(kc, width), zero-padded rows. Packs A (width mr) and (N,K) weights (width nr).
    void (*pack_rows)(float* dst, int width, const void* src, int dtype, int64_t ld, int rows, int64_t kc,
                      float alpha);
    // B stored (K, N) f32: n (<= nr) columns of kc rows → panel dst(kc, nr), zero-padded.
    void (*pack_kn)(float* dst, const float* src, int64_t ld, int n, int64_t kc);
    // im2col rows k0..k0+kc, pixels p0..p0+n (n <= nr) → panel dst(kc, nr), zero-padded.
    void (*pack_im2col)(float* dst, const ConvGeom* g, int64_t k0, int64_t kc, int64_t p0, int n);
    // c[i*ldc + j] = sum_k A[i*lda + k] * B[j*ldb + k] for i < m (<= 4), j < n: the tiny-M Linear path.
    // Always f32 (also in the bf16 table): these products are memory-bound.
    void (*dot)(float* c, int64_t ldc, const float* A, int64_t lda, int m, const void* B, int dtype, int64_t ldb,
                int n, int64_t K);
    // Register-only throughput loop for the benchmark: iters rounds of independent FMA (bf16 table: vdpbf16ps)
    // chains; returns the flops done (2 per multiply-add per lane).
    double (*fma_peak)(int64_t iters);
};

const GemmKernels* gemm_kernels_scalar();
#if defined(__x86_64__)
const GemmKernels* gemm_kernels_avx2();
const GemmKernels* gemm_kernels_avx512();
// bf16 products with f32 sums (vdpbf16ps, 14×32 tile, kpair 2); needs AVX512_BF16 on top of AVX-512.
const GemmKernels* gemm_kernels_avx512_bf16();
#endif
#if defined(__aarch64__)
const GemmKernels* gemm_kernels_neon();
#endif

// One matrix product C(M,N) = act(alpha·A(M,K)·B + bias [+ C]) for the active ISA, split over the threads
// by output tiles. B is one of: (N,K) rows of weights, (K,N) f32 rows, or an im2col view of an image.
enum { kBRowsNK = 0, kBRowsKN = 1, kBIm2col = 2 };
struct GemmProblem {
    float* C; int64_t ldc;
    int64_t M, N, K;
    const void* A; int a_dtype; int64_t lda; float alpha;
    int b_kind; const void* B; int b_dtype; int64_t ldb;
    const ConvGeom* conv;  // for kBIm2col
    const float* bias_n;   // (N) or null
    const float* bias_m;   // (M) or null
    int act;
    bool accumulate;
};
void gemm_run(const GemmProblem& p);
const GemmKernels* gemm_kernels_active();  // the active ISA's f32 kernels
const GemmKernels* gemm_kernels_run();     // what gemm_run uses: the bf16 kernels when active_precision() is BF16

}  // namespace sd
