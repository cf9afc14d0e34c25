// gemm.cpp — matrix products: the public gemm / matmul_nn, the precision setting, and the blocked driver that runs
// one product on the active ISA's kernels (table.h), split over the threads by output tiles; beside it, its
// scalar twin, the textbook triple loop.
//
// Loop nest per thread, over its own rectangle of C (BLIS-like, with the A panel packed just in time):
//   for each nc-wide column block:            B (K × nc) packed once, all of K
//     for each mc-row block:                  C block (mc × nc) stays in L2 across the K slices
//       for each kc-deep slice of K:          same slices for every thread count → same bits;
//                                             the B slice (kc × nc) is read from L2
//         for each mr-row panel of A:         A panel (kc × mr) packed, stays in L1
//           for each nr-wide panel of B:      micro-kernel: mr×nr sums in registers
// The first slice adds the bias (and C when accumulating), later slices add into C, the last applies the activation.
// Left out: splitting K across threads (it would make the bits depend on the split). BF16 precision picks the bf16
// table, whose panels hold pairs along k (GemmKernels::kpair); the loop nest is the same.
#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "clock.h"
#include "kernels/half.h"
#include "kernels/kernels.h"
#include "kernels/table.h"

namespace sd {

static_assert((int)DType::f32 == kF32 && (int)DType::f16 == kF16 && (int)DType::bf16 == kBF16, "dtype codes");
static_assert((int)Act::none == kActNone && (int)Act::gelu == kActGelu && (int)Act::quick_gelu == kActQuickGelu &&
                  (int)Act::silu == kActSilu, "activation codes");

// ---- precision ---------------------------------------------------------------------------------------------
static Precision& requested_precision() {  // SD_PRECISION if set, else fp32
    static Precision p = [] {
        const char* env = std::getenv("SD_PRECISION");
        if (!env || !*env) return Precision::fp32;
        Precision p = parse_precision(env);
        if (!precision_supported(p))
            throw std::runtime_error(std::string("SD_PRECISION=") + env + " asks for " + precision_name(p) +
                                     " products, which need AVX512_BF16 (x86-64) or BF16 (ARM64); this CPU (or "
                                     "SD_ISA) runs fp32 only");
        return p;
    }();
    return p;
}

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

Precision parse_precision(const char* name) {
    std::string s = name;
    if (s == "fp32") return Precision::fp32;
    if (s == "bf16") return Precision::bf16;
    throw std::runtime_error("unknown precision '" + s + "' (valid: fp32, bf16)");
}

bool precision_supported(Precision p) { return p == Precision::fp32 || (kernels().gemm_bf16 && cpu_has_bf16()); }

double fma_peak_flops(int64_t iters) { return kernels().fma_peak(iters); }

double bf16_speedup() {
    const KernelTable& kr = kernels();
    if (!kr.fma_peak_bf16 || !cpu_has_bf16()) return 0.0;
    double rate[2] = {0.0, 0.0};  // fp32 FMA, bf16 dot: FLOP per CPU-second of this thread, best of three ~1 ms runs
    for (int rep = 0; rep < 3; rep++)
        for (int k = 0; k < 2; k++) {
            double c0 = thread_cpu_seconds(), flops = (k ? kr.fma_peak_bf16 : kr.fma_peak)(100000);
            rate[k] = std::max(rate[k], flops / std::max(thread_cpu_seconds() - c0, 1e-9));
        }
    return rate[1] / rate[0];
}

// bf16 only where its dot products outrun the FMAs enough to pay for the pair packing: at 2x (Zen 4) the products run
// 1.6-1.85x faster; at 0.5x (Intel Sapphire/Emerald Rapids) they run at ~0.6x fp32's speed.
Precision best_precision() {
    if (!precision_supported(Precision::bf16)) return Precision::fp32;
    static const double speedup = bf16_speedup();
    return speedup >= 1.3 ? Precision::bf16 : Precision::fp32;
}

Precision active_precision() {
    return requested_precision() == Precision::bf16 && precision_supported(Precision::bf16) ? Precision::bf16
                                                                                              : Precision::fp32;
}

void set_precision(Precision p) {
    if (!precision_supported(p))
        throw std::runtime_error(std::string("precision ") + precision_name(p) +
                                 " needs the AVX-512 or NEON kernels and bf16 dot products, AVX512_BF16 or ARM64 BF16 "
                                 "(this CPU has " +
                                 (cpu_has_bf16() ? "them, but the active instruction set is " +
                                                       std::string(isa_name(active_isa()))
                                                 : std::string("neither")) +
                                 "); use fp32");
    requested_precision() = p;
}

// ---- the blocked product -----------------------------------------------------------------------------------
namespace {

// Per-thread packing buffers, grown on demand and kept for the next call; 64-byte aligned.
thread_local std::vector<float> tl_pack_a, tl_pack_b;
float* pack_buffer(std::vector<float>& buf, size_t floats) {
    if (buf.size() < floats + 16) buf.resize(floats + 16);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
}

// Packs B's columns [j0, j0+n) × rows [k0, k0+kc) into nr-wide panels.
void pack_b_block(const GemmKernels& kr, const GemmProblem& p, float* dst, int64_t j0, int64_t n, int64_t k0,
                  int64_t kc) {
    const int64_t steps = ceil_div(kc, kr.kpair);  // panel words per column
    for (int64_t jp = 0; jp < n; jp += kr.nr) {
        int w = (int)std::min<int64_t>(kr.nr, n - jp);
        float* d = dst + jp * steps;
        int64_t j = j0 + jp;
        if (p.b_kind == kBRowsNK) {
            const size_t es = p.b_dtype == kF32 ? 4 : 2;
            kr.pack_rows(d, kr.nr, static_cast<const char*>(p.B) + (size_t)(j * p.ldb + k0) * es, p.b_dtype, p.ldb, w,
                         kc, 1.0f);
        } else if (p.b_kind == kBRowsKN) {
            kr.pack_kn(d, static_cast<const float*>(p.B) + k0 * p.ldb + j, p.ldb, w, kc);
        } else {
            kr.pack_im2col(d, p.conv, k0, kc, j, w);
        }
    }
}

// C rows [m0, m1) × columns [n0, n1), on the calling thread.
void run_block(const GemmKernels& kr, const GemmProblem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const int64_t K = std::max<int64_t>(p.K, 1), slices = ceil_div(K, kr.kc);
    // Column blocks: all of B's K rows for nc columns are packed at once (at most ~16 MB), so that an
    // mc×nc block of C can then stay in L2 while every K slice adds into it. The blocks get equal
    // widths: a narrow last block would repack all of A for a few columns.
    int64_t nc = std::max<int64_t>(kr.nr, std::min<int64_t>(kr.nc, (int64_t(4) << 20) / K));
    nc = ceil_div(ceil_div(n1 - n0, ceil_div(n1 - n0, nc)), kr.nr) * kr.nr;
    const int64_t mc = std::max<int64_t>(1, kr.mc / kr.mr) * kr.mr;
    // Panel words: kr.kc is a multiple of kpair, so slice s starts at word k0/kpair of each column.
    float* bbuf = pack_buffer(tl_pack_b, (size_t)(ceil_div(K, kr.kpair) * nc));
    float* abuf = pack_buffer(tl_pack_a, (size_t)(ceil_div(std::min<int64_t>(kr.kc, K), kr.kpair) * kr.mr));
    const size_t a_es = p.a_dtype == kF32 ? 4 : 2;
    for (int64_t jc = n0; jc < n1; jc += nc) {
        int64_t ncur = std::min(nc, n1 - jc);
        for (int64_t s = 0; s < slices; s++) {  // slice s at bbuf + k0/kpair · (ncur rounded up to nr)
            int64_t k0 = s * kr.kc, kc = std::min<int64_t>(kr.kc, p.K - k0);
            if (kc > 0) pack_b_block(kr, p, bbuf + k0 / kr.kpair * ceil_div(ncur, kr.nr) * kr.nr, jc, ncur, k0, kc);
        }
        for (int64_t ic = m0; ic < m1; ic += mc) {
            int64_t mcur = std::min(mc, m1 - ic);
            for (int64_t s = 0; s < slices; s++) {
                int64_t k0 = s * kr.kc, kc = std::max<int64_t>(0, std::min<int64_t>(kr.kc, p.K - k0));
                const float* bslice = bbuf + k0 / kr.kpair * ceil_div(ncur, kr.nr) * kr.nr;
                TileArgs args;
                args.load_c = p.accumulate || s > 0;
                args.act = s == slices - 1 ? p.act : kActNone;
                for (int64_t i = ic; i < ic + mcur; i += kr.mr) {
                    int rows = (int)std::min<int64_t>(kr.mr, ic + mcur - i);
                    const char* a = static_cast<const char*>(p.A) + (size_t)(i * p.lda + k0) * a_es;
                    kr.pack_rows(abuf, kr.mr, a, p.a_dtype, p.lda, rows, kc, p.alpha);
                    args.bias_m = s == 0 && p.bias_m ? p.bias_m + i : nullptr;
                    // While the tiles run, fetch the next A panel's rows (same slice) into the caches:
                    // A is read from memory once per column block, and its short rows defeat the
                    // hardware prefetcher.
                    int64_t next = i + kr.mr;
                    int next_rows = (int)std::max<int64_t>(0, std::min<int64_t>(kr.mr, ic + mcur - next));
                    int64_t row_bytes = kc * (int64_t)a_es, tiles = ceil_div(ncur, kr.nr);
                    int rows_per_tile = (int)ceil_div(next_rows, tiles), r_next = 0;
                    const char* a_next = static_cast<const char*>(p.A) + (size_t)(next * p.lda + k0) * a_es;
                    for (int64_t jp = 0; jp < ncur; jp += kr.nr) {
                        for (int e = std::min(next_rows, r_next + rows_per_tile); r_next < e; r_next++)
                            for (int64_t b = 0; b < row_bytes; b += 64)
                                __builtin_prefetch(a_next + (size_t)(r_next * p.lda) * a_es + b, 0, 3);
                        args.bias_n = s == 0 && p.bias_n ? p.bias_n + jc + jp : nullptr;
                        kr.tile(kc, abuf, bslice + jp * ceil_div(kc, kr.kpair), p.C + i * p.ldc + jc + jp, p.ldc, rows,
                                (int)std::min<int64_t>(kr.nr, ncur - jp), &args);
                    }
                }
            }
        }
    }
}

// M <= 4 Linear: dot products straight from the stored weights, split over columns.
void run_dot(const GemmKernels& kr, const GemmProblem& p) {
    size_t es = p.b_dtype == kF32 ? 4 : 2;
    parallel_for(p.N, [&](int64_t j0, int64_t j1) {
        std::vector<float> dots(p.M * (j1 - j0));
        kr.dot(dots.data(), j1 - j0, static_cast<const float*>(p.A), p.lda, (int)p.M,
               static_cast<const char*>(p.B) + (size_t)(j0 * p.ldb) * es, p.b_dtype, p.ldb, (int)(j1 - j0), p.K);
        for (int64_t i = 0; i < p.M; i++) {
            float* c = p.C + i * p.ldc;
            for (int64_t j = j0; j < j1; j++) {
                float r = dots[i * (j1 - j0) + j - j0];
                if (p.bias_n) r += p.bias_n[j];
                c[j] = p.accumulate ? r + c[j] : r;
            }
            kernels_scalar().ops.act(c + j0, c + j0, j1 - j0, p.act);  // libm's, as the textbook loop
        }
    }, 64);
}

// The scalar twin: C(i, j) = act(alpha · Σ_k A(i, k) B(k, j) + bias [+ C]), one output at a time, sums in
// k order; split over the threads by rows of C.
void run_textbook(const GemmProblem& p) {
    assert(p.b_kind != kBIm2col);  // conv2d runs its own textbook loop
    auto b_at = [&](int64_t k, int64_t j) {  // (N, K) weights or (K, N) f32
        return p.b_kind == kBRowsNK ? value_f32(p.B, p.b_dtype, j * p.ldb + k) : value_f32(p.B, kF32, k * p.ldb + j);
    };
    parallel_for(p.M, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) {
            float* c = p.C + i * p.ldc;
            for (int64_t j = 0; j < p.N; j++) {
                float s = 0.0f;
                for (int64_t k = 0; k < p.K; k++) s += value_f32(p.A, p.a_dtype, i * p.lda + k) * p.alpha * b_at(k, j);
                if (p.bias_n) s += p.bias_n[j];
                if (p.bias_m) s += p.bias_m[i];
                c[j] = p.accumulate ? s + c[j] : s;
            }
            kernels_scalar().ops.act(c, c, p.N, p.act);
        }
    });
}

}  // namespace

void gemm_run(const GemmProblem& p) {
    if (p.M <= 0 || p.N <= 0) return;
    const KernelTable& table = kernels();
    if (!table.gemm) return run_textbook(p);
    const GemmKernels& kr = active_precision() == Precision::bf16 ? *table.gemm_bf16 : *table.gemm;
    assert(kr.kc % kr.kpair == 0);  // every K slice but the last starts on a pair boundary
    if (p.M <= 4 && p.b_kind == kBRowsNK && p.a_dtype == kF32 && p.alpha == 1.0f && !p.bias_m) {
        run_dot(kr, p);
        return;
    }
    // Split C into one rectangle per thread, along M or N, whichever keeps more reuse of the packed
    // panels (each packed A element feeds min(N_part, nc) columns, each packed B element M_part rows)
    // and balances the tiles better.
    const int64_t T = num_threads(), tiles_m = ceil_div(p.M, kr.mr), tiles_n = ceil_div(p.N, kr.nr);
    auto score = [&](int64_t tiles, bool along_m) {
        int64_t parts = std::min(T, tiles);
        double balance = (double)tiles / (double)(ceil_div(tiles, parts) * parts);
        double m_part = along_m ? (double)p.M / parts : (double)p.M;
        double n_part = along_m ? (double)p.N : (double)p.N / parts;
        // Weighted by the share of threads kept busy: a split with fewer parts than threads leaves cores idle
        // (e.g. N = 16 pixels is one tile along N, so only an M split can use two threads).
        return std::min(m_part, std::min(n_part, (double)kr.nc)) * balance * (double)parts / (double)T;
    };
    bool along_m = score(tiles_m, true) > score(tiles_n, false);
    int64_t tiles = along_m ? tiles_m : tiles_n, parts = std::min(T, tiles);
    // Waking a worker costs tens of microseconds: give each at least ~1M multiply-adds.
    parts = std::max<int64_t>(1, std::min<int64_t>(parts, p.M * p.N * std::max<int64_t>(p.K, 1) >> 20));
    parallel_for(parts, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; t++) {
            int64_t t0 = tiles * t / parts, t1 = tiles * (t + 1) / parts;
            if (along_m)
                run_block(kr, p, t0 * kr.mr, std::min(p.M, t1 * kr.mr), 0, p.N);
            else
                run_block(kr, p, 0, p.M, t0 * kr.nr, std::min(p.N, t1 * kr.nr));
        }
    });
}

void gemm(float* C, int64_t ldc, const float* A, int64_t lda, const void* B, DType b_dtype, int64_t ldb,
          const float* bias, int64_t M, int64_t N, int64_t K, Act act, bool accumulate) {
    assert(!accumulate || act == Act::none);
    GemmProblem p = {};
    p.C = C; p.ldc = ldc; p.M = M; p.N = N; p.K = K;
    p.A = A; p.a_dtype = kF32; p.lda = lda; p.alpha = 1.0f;
    p.b_kind = kBRowsNK; p.B = B; p.b_dtype = (int)b_dtype; p.ldb = ldb;
    p.bias_n = bias; p.act = (int)act; p.accumulate = accumulate;
    gemm_run(p);
}

void matmul_nn(float* C, int64_t ldc, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t M,
               int64_t N, int64_t K, float alpha) {
    GemmProblem p = {};
    p.C = C; p.ldc = ldc; p.M = M; p.N = N; p.K = K;
    p.A = A; p.a_dtype = kF32; p.lda = lda; p.alpha = alpha;
    p.b_kind = kBRowsKN; p.B = B; p.b_dtype = kF32; p.ldb = ldb;
    gemm_run(p);
}

}  // namespace sd
