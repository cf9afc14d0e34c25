// table.h — the kernel table: what each instruction set provides, and the one switch that picks it. The scalar
// table (isa_scalar.cpp) holds the plain loops, the readable twin of every entry. How the ISA files build theirs, and
// why plain C types only here: docs/architecture.md ("From a layer to the kernels").
#pragma once
#include <cstddef>
#include <cstdint>

namespace sd {

enum { kF32 = 0, kF16 = 1, kBF16 = 2 };                 // = DType's order
enum { kActNone = 0, kActGelu = 1, kActQuickGelu = 2, kActSilu = 3 };  // = Act's order

// ---- conversion, elementwise, normalisation, attention ---------------------------------------------------------
// One attention call, as passed to kernels.h's attention(); see there for the meaning of each field.
struct AttnArgs {
    float* out; int64_t ldo;
    const float* q; int64_t ldq;
    const float* k; int64_t ldk;
    const float* v; int64_t ldv;
    int64_t B, Nq, Nk, heads, D;
    float scale;
    bool causal;
};

// Each entry does one thread's share of work on contiguous data; kernels.h's functions split the work.
struct OpsTable {
    // dtype conversion of n values: any dtype code to f32; f32 to kF16 or kBF16, rounding to nearest even
    void (*to_f32)(float* dst, const void* src, int dtype, int64_t n);
    void (*from_f32)(uint16_t* dst, const float* src, int64_t n, int dtype);
    // elementwise over n values (y may equal any input)
    void (*act)(float* y, const float* x, int64_t n, int act);              // y = act(x), act a kAct code
    void (*gelu_mul)(float* y, const float* a, const float* g, int64_t n);  // y = a · gelu(g)
    void (*add)(float* y, const float* a, const float* b, int64_t n);
    void (*scale_add)(float* y, const float* x, float s, int64_t n);      // y += s·x
    // reductions and normalisation pieces over n values
    double (*sum)(const float* x, int64_t n);
    double (*sum_sq_dev)(const float* x, int64_t n, float mean);  // Σ (x - mean)²
    // y = (x - mean)·a + b, then SiLU if silu (group norm's per-channel apply: a = rstd·gamma, b = beta)
    void (*affine)(float* y, const float* x, float mean, float a, float b, int64_t n, bool silu);
    // y = (x - mean)·rstd·gamma + beta (layer norm's per-row apply)
    void (*norm_affine)(float* y, const float* x, float mean, float rstd, const float* gamma, const float* beta,
                        int64_t n);
    void (*softmax_row)(float* x, int64_t n);
    // attention in units (batch, head, block of attn_block_q query rows), batch-major; runs units [u0, u1)
    int64_t attn_block_q;
    void (*attention)(const AttnArgs& a, int64_t u0, int64_t u1);
};

// ---- the blocked matrix product (BLIS style; driver in gemm.cpp) ------------------------------------------------
// What the micro-kernel does with its MR×NR sums (c = C at the tile, row stride ldc):
// c = act(sum + bias_n[j] + bias_m[i] + (load_c ? c : 0)); null biases are skipped, act 0 is none.
struct TileArgs {
    const float* bias_n;  // per column (Linear bias), at the tile's first column
    const float* bias_m;  // per row (conv bias per output channel), at the tile's first row
    int load_c, act;
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
    int mr, nr;      // register tile
    int kc, mc, nc;  // cache blocks: a kc×nc B slice and an mc×nc block of C share L2, an mr×kc A panel L1
    int kpair;       // k values per panel word: 1 (f32) or 2 (bf16 pairs); kc is a multiple of it
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
};

// ---- Winograd transforms (conv_winograd.cpp): F(2×2, 3×3) with T = 4, F(2×2, 2×2) per upsampling phase with T = 3 ---
// A tile is 2×2 outputs (or x positions of a phase); a band is `rows` tile rows of tw tiles.
struct WinogradKernels {
    // U = G g Gᵀ for output channel co, g (3, 3, Cin) its taps in f32: u (16, Cout, Cin) for T = 4; for T = 3, the
    // four upsampling phases' U, u (4, 9, Cout, Cin).
    void (*filter)(int T, float* u, const float* g, int64_t Cin, int64_t Cout, int64_t co);
    // V = Bᵀ d B for channels [c0, c1) of x (Cin, H, W): v (T·T, Cin, rows·tw); tile (r, tx) reads x rows
    // iy0 + 2r .. iy0 + 2r + T - 1 and columns 2tx + shift - 1 .. 2tx + shift + T - 2 (zero outside).
    void (*input)(int T, float* v, const float* x, int64_t Cin, int64_t H, int64_t W, int64_t tw, int64_t iy0,
                  int64_t rows, int shift, int64_t c0, int64_t c1, float* work);
    // Y = Aᵀ M A + bias for channels [c0, c1) of tile rows [ty0, ty0 + rows), M = m[q] (T·T, Cout, rows·tw). T = 4:
    // y (Cout, H, W) (+)= Y. T = 3: the products of phases (p, 0) and (p, 1), written interleaved into the rows of
    // parity p of y (Cout, 2H, 2W).
    void (*output)(int T, float* y, const float* const* m, const float* bias, int64_t Cout, int64_t H, int64_t W,
                   int64_t tw, int64_t ty0, int64_t rows, int p, int accumulate, int64_t c0, int64_t c1, float* work);
};
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// The work buffers of input and output, in floats.
inline int64_t winograd_input_work(int T, int64_t tw, int64_t rows) {
    return (2 * rows + T - 2) * T * tw + 2 * (tw + 2);
}
inline int64_t winograd_output_work(int T, int64_t tw) { return T == 4 ? 10 * tw : 16 * tw; }

// ---- the direct small-Cout 3×3 conv (conv_small.cpp) -------------------------------------------------------------
struct ConvSmallKernels {
    int rows_per_block;  // output rows one register block covers: split the work in multiples of it
    int width;           // columns one register block covers
    // Output rows [y0, y1) of one image: out (Cout, H, W) = conv3x3(in (Cin, H, W)) + bias (pad 1), weights in
    // f32 laid out (Cin, 3, 3, Cout). bias may be null. work: conv_small_work(rows_per_block, width, W) floats.
    // Null in the scalar table: conv2d's textbook loop is the twin.
    void (*rows)(float* out, const float* in, const float* w, const float* bias, int64_t Cin, int64_t H, int64_t W,
                 int64_t Cout, int64_t y0, int64_t y1, float* work);
};
// A chunk of 16 input channels' rows, zero-padded, and the partial sums.
inline int64_t conv_small_work(int rows, int width, int64_t W) {
    const int64_t blocks = (W + width - 1) / width;
    return 16 * (rows + 2) * (blocks * width + 2) + blocks * rows * 3 * width;
}

// ---- one instruction set's table -----------------------------------------------------------------------------------
struct KernelTable {
    OpsTable ops;
    const GemmKernels* gemm;       // null in the scalar table: gemm.cpp then runs its textbook loop
    const GemmKernels* gemm_bf16;  // bf16 products with f32 sums where the ISA has them, else null
    WinogradKernels winograd;
    ConvSmallKernels conv_small;
    // Register-only throughput loops for the FMA peak: iters rounds of independent FMA (bf16: dot-product)
    // chains; return the flops done (2 per multiply-add per lane). fma_peak_bf16 null without bf16 kernels.
    double (*fma_peak)(int64_t iters);
    double (*fma_peak_bf16)(int64_t iters);
};
const KernelTable& kernels_scalar();
const KernelTable& kernels_avx2();    // x86-64 builds only
const KernelTable& kernels_avx512();  // x86-64 builds only
const KernelTable& kernels_neon();    // ARM64 builds only
const KernelTable& kernels();         // the active instruction set's (isa.cpp)

// ---- the matrix-product driver (gemm.cpp), shared by gemm, matmul_nn and conv2d ------------------------------------
// C(M,N) = act(alpha·A(M,K)·B + bias [+ C]) for the active ISA and precision, split over the threads by output
// tiles. B is one of: (N,K) rows of weights, (K,N) f32 rows, or an im2col view of an image.
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

}  // namespace sd
