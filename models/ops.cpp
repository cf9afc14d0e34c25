// ops.cpp — the model-level operations of ops.h: shape checks, arena outputs, and the kernel calls behind them.
#include "models/ops.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace sd {

Tensor ArenaScope::keep(const Tensor& y) {
    a_.release(start_);
    Tensor kept = a_.alloc(y.dims(), y.dtype);
    if (kept.data != y.data) std::memmove(kept.data, y.data, y.nbytes());
    end_ = a_.mark();
    return kept;
}

Tensor ArenaScope::drop_all_but(const Tensor& y) {
    const Arena::Mark end = end_;
    Tensor kept = keep(y);
    end_ = end;
    return kept;
}

void reserve(Arena& a, size_t bytes) {
    Arena::Mark m = a.mark();
    a.bytes(bytes);
    a.release(m);
}

void check_input(const Tensor& t, int64_t channels, const char* what) {
    if (t.dtype != DType::f32 || t.ndim != 4 || t.shape[1] != channels)
        throw std::runtime_error(std::string(what) + ": expected an F32 (B, " + std::to_string(channels) +
                                 ", H, W) tensor, got " + dtype_name(t.dtype) + " " + t.shape_str());
}

// ---- linear -------------------------------------------------------------------------------------------------

namespace {

// y (M, ldy) += scale·(x·downᵀ)·upᵀ for each of a layer's run-time LoRAs: two thin products through an (M, rank)
// middle, which lives in a per-thread buffer (linear_into and linear_add have no arena; it is M·rank floats).
void add_low_rank(float* y, int64_t ldy, const float* x, int64_t M, int64_t K, const std::vector<LowRank>& lr) {
    thread_local std::vector<float> mid;
    for (const LowRank& d : lr) {
        const int64_t r = d.rank, n = d.up.shape[0];
        assert(d.down.ndim == 2 && d.down.shape[1] == K && d.up.ndim == 2 && r <= d.up.shape[1]);
        if (r == 0) continue;
        mid.resize((size_t)(M * r));
        gemm(mid.data(), r, x, K, d.down.data, d.down.dtype, K, nullptr, M, r, K);  // (M, r) = x·downᵀ
        for (float& v : mid) v *= d.scale;
        gemm(y + d.col0, ldy, mid.data(), r, d.up.data, d.up.dtype, d.up.shape[1], nullptr, M, n, r, Act::none,
             /*accumulate=*/true);                                                   // y += mid·upᵀ
    }
}

void activate(float* y, int64_t n, Act act) {
    if (act != Act::none) activation(y, y, n, act);
}

}  // namespace

Tensor linear(Arena& a, const Tensor& x, const Linear& l, Act act) {
    std::vector<int64_t> s = x.dims();
    s.back() = l.w.shape[0];
    Tensor y = a.alloc(s);
    linear_into(y, x, l, act);
    return y;
}

void linear_into(Tensor& y, const Tensor& x, const Linear& l, Act act) {
    const int64_t K = x.dim(-1), N = l.w.shape[0], M = x.numel() / K;
    assert(l.w.ndim == 2 && l.w.shape[1] == K && y.dim(-1) == N && y.numel() == M * N);
    assert(!l.b.data || (l.b.dtype == DType::f32 && l.b.numel() == N));
    const bool lr = !l.low_rank.empty();  // then the activation follows the LoRAs' sum
    gemm(y.f32(), N, x.f32(), K, l.w.data, l.w.dtype, K, l.b.data ? l.b.f32() : nullptr, M, N, K, lr ? Act::none : act);
    if (lr) {
        add_low_rank(y.f32(), N, x.f32(), M, K, l.low_rank);
        activate(y.f32(), M * N, act);
    }
}

void linear_add(Tensor& x, const Tensor& h, const Linear& l) {
    const int64_t K = h.dim(-1), N = l.w.shape[0], M = h.numel() / K;
    assert(l.w.ndim == 2 && l.w.shape[1] == K && x.dim(-1) == N && x.numel() == M * N);
    gemm(x.f32(), N, h.f32(), K, l.w.data, l.w.dtype, K, l.b.data ? l.b.f32() : nullptr, M, N, K, Act::none,
         /*accumulate=*/true);
    add_low_rank(x.f32(), N, h.f32(), M, K, l.low_rank);
}

// ---- convolution --------------------------------------------------------------------------------------------

namespace {

// out = or += the conv of x described by s, by algorithm `algo`; scratch from the arena, given back after.
void run_conv(Arena& a, ConvAlgo algo, const ConvShape& s, float* out, const Tensor& x, const Conv& c) {
    const float* bias = c.b.data ? c.b.f32() : nullptr;
    const void* w = c.w.data;
    const DType wt = c.w.dtype;
    ArenaScope scope(a);
    const size_t scratch_floats = conv_scratch_floats(algo, s);
    float* scratch = scratch_floats ? a.alloc({(int64_t)scratch_floats}).f32() : nullptr;
    switch (algo) {
        case ConvAlgo::direct:
            sd::conv2d(out, x.f32(), w, wt, bias, s.N, s.Cin, s.H, s.W, s.Cout, s.k, s.stride, s.pad, s.accumulate);
            break;
        case ConvAlgo::winograd:
            conv2d_winograd(out, x.f32(), w, wt, bias, s.N, s.Cin, s.H, s.W, s.Cout, scratch, s.accumulate);
            break;
        case ConvAlgo::small_cout:
            conv2d_small_cout(out, x.f32(), w, wt, bias, s.N, s.Cin, s.H, s.W, s.Cout);
            break;
        case ConvAlgo::upsample2x:
            conv2d_upsample2x(out, x.f32(), w, wt, bias, s.N, s.Cin, s.H, s.W, s.Cout, scratch);
            break;
        case ConvAlgo::upsample_then_conv: {
            Tensor u = a.alloc({s.N, s.Cin, 2 * s.H, 2 * s.W});  // (N, Cin, 2H, 2W)
            upsample_nearest2x(u.f32(), x.f32(), s.N * s.Cin, s.H, s.W);
            ConvShape t = s;
            t.H *= 2, t.W *= 2, t.upsample2x = false;
            run_conv(a, choose_conv(t), t, out, u, c);
            break;
        }
    }
}

ConvShape shape_of(const Tensor& x, const Conv& c, int stride, int pad) {
    assert(x.ndim == 4 && c.w.ndim == 4 && c.w.shape[1] == x.shape[1] && c.w.shape[2] == c.w.shape[3]);
    ConvShape s;
    s.N = x.shape[0], s.Cin = x.shape[1], s.H = x.shape[2], s.W = x.shape[3], s.Cout = c.w.shape[0];
    s.k = (int)c.w.shape[2];
    s.stride = stride;
    s.pad = pad < 0 ? s.k / 2 : pad;
    return s;
}

}  // namespace

Tensor conv(Arena& a, const Tensor& x, const Conv& c, int stride, int pad) {
    const ConvShape s = shape_of(x, c, stride, pad);
    Tensor y = a.alloc({s.N, s.Cout, conv_out_size(s.H, s.k, s.stride, s.pad), conv_out_size(s.W, s.k, s.stride, s.pad)});
    run_conv(a, choose_conv(s), s, y.f32(), x, c);
    if (!c.low_rank.empty()) {  // a 1×1 conv's run-time LoRAs, per sample: y (Cout, HW) += scale·up·(down·x)
        assert(s.k == 1 && s.stride == 1 && s.pad == 0);
        const int64_t HW = s.H * s.W;
        ArenaScope scope(a);
        for (const LowRank& d : c.low_rank) {
            const int64_t r = d.rank, n = d.up.shape[0];
            assert(d.down.dtype == DType::f32 && d.up.dtype == DType::f32 && d.down.shape[1] == s.Cin);
            if (r == 0) continue;
            Tensor mid = a.alloc({r, HW}), u = a.alloc({n, HW});
            for (int64_t i = 0; i < s.N; i++) {
                float* yi = y.f32() + (i * s.Cout + d.col0) * HW;
                matmul_nn(mid.f32(), HW, d.down.f32(), s.Cin, x.f32() + i * s.Cin * HW, HW, r, HW, s.Cin);
                matmul_nn(u.f32(), HW, d.up.f32(), d.up.shape[1], mid.f32(), HW, n, HW, r, d.scale);
                add(yi, yi, u.f32(), n * HW);
            }
        }
    }
    return y;
}

void conv_into(Arena& a, Tensor& out, const Tensor& x, const Conv& c, bool accumulate) {
    ConvShape s = shape_of(x, c, 1, 1);
    assert(c.low_rank.empty());  // 3×3 LoRAs are merged (pipeline/loras.h)
    assert(s.k == 3 && out.ndim == 4 && out.shape[1] == s.Cout && out.shape[2] == s.H && out.shape[3] == s.W);
    s.accumulate = accumulate;
    s.in_place = out.data == x.data;
    const ConvAlgo algo = choose_conv(s);
    assert(!s.in_place || (algo == ConvAlgo::winograd && s.Cout <= s.Cin && !accumulate));
    run_conv(a, algo, s, out.f32(), x, c);
}

Tensor upsample_conv(Arena& a, const Tensor& x, const Conv& c) {
    ConvShape s = shape_of(x, c, 1, 1);
    assert(s.k == 3 && c.low_rank.empty());
    s.upsample2x = true;
    Tensor y = a.alloc({s.N, s.Cout, 2 * s.H, 2 * s.W});
    run_conv(a, choose_conv(s), s, y.f32(), x, c);
    return y;
}

// ---- normalisation ------------------------------------------------------------------------------------------

Tensor group_norm(Arena& a, const Tensor& x, const Norm& n, float eps, bool silu, int64_t groups) {
    const int64_t N = x.shape[0], C = x.shape[1], HW = x.numel() / (N * C);
    assert(n.w.numel() == C && n.b.numel() == C);
    Tensor y = a.alloc(x.dims());
    sd::group_norm(y.f32(), x.f32(), n.w.f32(), n.b.f32(), N, C, HW, groups, eps, silu);
    return y;
}

void group_norm_(Tensor& x, const Norm& n, float eps, bool silu, int64_t groups) {
    const int64_t N = x.shape[0], C = x.shape[1], HW = x.numel() / (N * C);
    assert(n.w.numel() == C && n.b.numel() == C);
    sd::group_norm(x.f32(), x.f32(), n.w.f32(), n.b.f32(), N, C, HW, groups, eps, silu);
}

Tensor group_norm_tokens(Arena& a, const Tensor& x, const Norm& n, float eps, int64_t groups) {
    assert(x.ndim == 4);
    const int64_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
    assert(n.w.numel() == C && n.b.numel() == C);
    Tensor y = a.alloc({N, HW, C});
    sd::group_norm_tokens(y.f32(), x.f32(), n.w.f32(), n.b.f32(), N, C, HW, groups, eps);
    return y;
}

Tensor layer_norm(Arena& a, const Tensor& x, const Norm& n, float eps) {
    Tensor y = a.alloc(x.dims());
    layer_norm_into(y, x, n, eps);
    return y;
}

void layer_norm_into(Tensor& y, const Tensor& x, const Norm& n, float eps) {
    const int64_t C = x.dim(-1);
    assert(y.numel() == x.numel() && n.w.numel() == C && n.b.numel() == C);
    sd::layer_norm(y.f32(), x.f32(), n.w.f32(), n.b.f32(), x.numel() / C, C, eps);
}

// ---- attention, concat, residual ----------------------------------------------------------------------------

Tensor attention(Arena& a, const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, bool causal) {
    const int64_t C = q.dim(-1), L = q.dim(-2), T = k.dim(-2), N = q.numel() / (L * C), D = C / heads;
    assert(k.dim(-1) == C && v.dim(-1) == C && k.numel() == N * T * C && v.numel() == k.numel() && D * heads == C);
    Tensor o = a.alloc(q.dims());
    sd::attention(o.f32(), C, q.f32(), C, k.f32(), C, v.f32(), C, N, L, T, heads, D, 1.0f / std::sqrt((float)D),
                  causal);
    return o;
}

Tensor attention_qkv(Arena& a, const Tensor& qkv, int64_t heads, bool causal) {
    const int64_t C = qkv.dim(-1) / 3, L = qkv.dim(-2), N = qkv.numel() / (L * 3 * C), D = C / heads;
    assert(qkv.dim(-1) == 3 * C && D * heads == C);
    std::vector<int64_t> s = qkv.dims();
    s.back() = C;
    Tensor o = a.alloc(s);
    const float* q = qkv.f32();
    sd::attention(o.f32(), C, q, 3 * C, q + C, 3 * C, q + 2 * C, 3 * C, N, L, L, heads, D,
                  1.0f / std::sqrt((float)D), causal);
    return o;
}

Tensor silu(Arena& a, const Tensor& x) {
    Tensor y = a.alloc(x.dims());
    activation(y.f32(), x.f32(), x.numel(), Act::silu);
    return y;
}

void geglu_into(Tensor& y, const Tensor& x) {
    const int64_t F = y.dim(-1), rows = y.numel() / F;
    assert(x.dim(-1) == 2 * F && x.numel() == 2 * y.numel());
    geglu(y.f32(), x.f32(), rows, F);
}

Tensor concat_channels(Arena& a, const Tensor& x, const Tensor& y) {
    assert(x.ndim == 4 && y.ndim == 4 && x.shape[0] == y.shape[0] && x.shape[2] == y.shape[2] &&
           x.shape[3] == y.shape[3]);
    const int64_t N = x.shape[0], HW = x.shape[2] * x.shape[3], C1 = x.shape[1], C2 = y.shape[1];
    Tensor z = a.alloc({N, C1 + C2, x.shape[2], x.shape[3]});
    for (int64_t n = 0; n < N; n++) {
        std::memcpy(z.f32() + n * (C1 + C2) * HW, x.f32() + n * C1 * HW, C1 * HW * sizeof(float));
        std::memcpy(z.f32() + (n * (C1 + C2) + C1) * HW, y.f32() + n * C2 * HW, C2 * HW * sizeof(float));
    }
    return z;
}

Tensor copy(Arena& a, const Tensor& x) {
    Tensor y = a.alloc(x.dims(), x.dtype);
    std::memcpy(y.data, x.data, x.nbytes());
    return y;
}

void embed_tokens(Tensor& x, const Tensor& table, const int* ids, const float* const* token_rows) {
    const int64_t T = x.dim(0), C = x.dim(-1), V = table.shape[0];
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= V)
            throw std::runtime_error("token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                     " is outside the text encoder's vocabulary [0, " + std::to_string(V) + ")");
    const size_t row_bytes = (size_t)C * dtype_size(table.dtype);
    for (int64_t t = 0; t < T; t++) {
        if (token_rows && token_rows[t]) {
            std::memcpy(x.f32() + t * C, token_rows[t], C * sizeof(float));
            continue;
        }
        const char* row = static_cast<const char*>(table.data) + (size_t)ids[t] * row_bytes;
        convert_to_f32(x.f32() + t * C, row, table.dtype, C);
    }
}

void add_(Tensor& x, const Tensor& y) {
    assert(x.numel() == y.numel());
    sd::add(x.f32(), x.f32(), y.f32(), x.numel());
}

void add_tokens_(Tensor& x, const Tensor& t) {
    assert(x.ndim == 4 && t.numel() == x.numel() && t.dim(-1) == x.shape[1]);
    sd::add_tokens(x.f32(), x.f32(), t.f32(), x.shape[0], x.shape[1], x.shape[2] * x.shape[3]);
}

void add_channel_bias_(Tensor& x, const Tensor& e) {
    assert(x.ndim == 4 && e.numel() == x.shape[0] * x.shape[1]);
    add_channel_bias(x.f32(), e.f32(), x.shape[0], x.shape[1], x.shape[2] * x.shape[3]);
}

void timestep_embedding(float* out, const float* t, int64_t n, int64_t dim, float max_period) {
    // Same float32 steps as ldm/diffusers, so the arguments of cos/sin round as theirs do; cos/sin
    // themselves are taken in double and rounded once.
    int64_t half = dim / 2;
    float log_max = (float)std::log((double)max_period);
    for (int64_t k = 0; k < n; k++) {
        float* o = out + k * dim;
        for (int64_t i = 0; i < half; i++) {
            float freq = std::exp(-log_max * (float)i / (float)half);
            double arg = (double)(t[k] * freq);
            o[i] = (float)std::cos(arg);
            o[half + i] = (float)std::sin(arg);
        }
        if (dim % 2) o[dim - 1] = 0.0f;  // odd dim: zero pad, as diffusers does
    }
}

}  // namespace sd
