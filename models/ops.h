// ops.h — the vocabulary the networks are written in: layer-level operations on Tensors, taking the weight
// structs the binders produce (weights.h), outputs taken from the scratch arena.
//
// CLIP, OpenCLIP, the UNet, the VAE and TAESD are written with these, so a forward pass reads like the PyTorch module
// it mirrors: `h = group_norm(a, x, b.norm1, eps, /*silu=*/true); h = conv(a, h, b.conv1);`. Each op checks
// the shapes it relies on (assert) and either returns a fresh arena tensor or, where the name says so, writes
// into a tensor it is given (`_into`) or changes its first argument in place (a trailing `_`, as in PyTorch:
// add_(x, y) is x += y, a residual). How a conv runs (direct, Winograd, small-Cout, fused
// upsample) is the kernel layer's choice (choose_conv), the same rule for every model.
#pragma once
#include <cassert>
#include <map>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "tensor.h"

namespace sd {

// ---- weights ------------------------------------------------------------------------------------------------

// A low-rank update added at run time instead of merged into the weight (a LoRA: models/lora.h): the layer's
// output columns [col0, col0 + n) gain scale · (x·downᵀ)·upᵀ, two thin products through an (M, rank) middle.
struct LowRank {
    Tensor down;        // (r, in): only its first `rank` rows are used (the tag's dyn=)
    Tensor up;          // (n, r): only its first `rank` columns. Any dtype on a Linear, f32 on a Conv (matmul_nn)
    int64_t rank = 0;   // <= r
    float scale = 1;    // multiplier · alpha / r
    int64_t col0 = 0;   // a block of output rows of a fused weight (OpenCLIP's q | k | v)
};
// The checkpoint's weight name → the low-rank updates the binders attach to that layer.
using LowRankTable = std::map<std::string, std::vector<LowRank>>;

// Weights in their stored dtype, biases f32 (empty: none); low_rank: LoRAs added at run time (empty: none).
struct Linear { Tensor w, b; std::vector<LowRank> low_rank; };  // w (out, in), b (out)
struct Conv { Tensor w, b; std::vector<LowRank> low_rank; };    // w (Cout, Cin, k, k), b (Cout); low_rank: 1×1 only
struct Norm { Tensor w, b; };    // (C) f32: the scale γ and shift β (PyTorch's "weight" and "bias")

// ---- arena scopes -------------------------------------------------------------------------------------------

// Everything allocated in `arena` while the scope lives is given back when it ends, except what keep() kept:
//   ArenaScope s(a);  Tensor t = ...temporaries...;  return s.keep(y);
// keep(y) releases everything since the scope began (earlier kept tensors included) and moves y down to where
// the scope began, so a running activation x = s.keep(stage(x)) always sits at the same place. Scopes nest
// like the calls that open them.
class ArenaScope {
public:
    explicit ArenaScope(Arena& a) : a_(a), start_(a.mark()), end_(start_) {}
    // A scope that begins at an earlier mark: what was allocated from there on is the scope's (the UNet's up
    // path puts each block's output where the skip it consumed was).
    ArenaScope(Arena& a, Arena::Mark from) : a_(a), start_(from), end_(from) {}
    ~ArenaScope() { a_.release(end_); }
    ArenaScope(const ArenaScope&) = delete;
    ArenaScope& operator=(const ArenaScope&) = delete;

    Arena::Mark start() const { return start_; }
    // y (allocated in this scope, above everything kept) → the same values at the scope's start. The new place
    // is never above the old one (first fit from the start, and y fits where it is), so memmove is safe.
    Tensor keep(const Tensor& y);
    // The same move, but y stays a temporary of the scope (given back when it ends): drops what y was computed
    // from before the scope goes on (a spatial transformer's normed input once proj_in has read it).
    Tensor drop_all_but(const Tensor& y);

private:
    Arena& a_;
    Arena::Mark start_, end_;  // end_: just past the kept tensor (start_ while nothing is kept)
};

// Grows the arena, if need be, by one block that holds `bytes` from its top, then gives it back: the pass
// that follows allocates from it instead of adding a block per stage (an arena keeps every block it added).
void reserve(Arena& a, size_t bytes);

// Throws, naming `what`, unless t is an f32 (B, channels, H, W) tensor.
void check_input(const Tensor& t, int64_t channels, const char* what);

// ---- layers -------------------------------------------------------------------------------------------------

// x (..., in) → x·wᵀ + b (..., out), then act.
Tensor linear(Arena& a, const Tensor& x, const Linear& l, Act act = Act::none);
// y (..., out) = act(x·wᵀ + b), into a given tensor (a chunk of a larger buffer).
void linear_into(Tensor& y, const Tensor& x, const Linear& l, Act act = Act::none);
// x (..., out) += h (..., in)·wᵀ + b: a projection added onto the residual stream, in place.
void linear_add(Tensor& x, const Tensor& h, const Linear& l);

// x (N, Cin, H, W) → conv(x) + b (N, Cout, Ho, Wo), k×k from the weight, pad k/2 unless given.
Tensor conv(Arena& a, const Tensor& x, const Conv& c, int stride = 1, int pad = -1);
// out (N, Cout, H, W) = or += conv3x3(x) + b (stride 1, pad 1). out may be x's own memory (Cout <= Cin, not
// accumulating): conv1 of a VAE res block writes over the norm output it reads.
void conv_into(Arena& a, Tensor& out, const Tensor& x, const Conv& c, bool accumulate = false);
// x (N, Cin, H, W) → conv3x3(upsample_nearest2x(x)) + b (N, Cout, 2H, 2W): ldm's Upsample.
Tensor upsample_conv(Arena& a, const Tensor& x, const Conv& c);

// x (N, C, ...) → GroupNorm(groups, eps) with γ, β, then SiLU if silu. In place: group_norm_(x, ...).
Tensor group_norm(Arena& a, const Tensor& x, const Norm& n, float eps, bool silu, int64_t groups = 32);
void group_norm_(Tensor& x, const Norm& n, float eps, bool silu, int64_t groups = 32);
// x (N, C, H, W) → GroupNorm(groups, eps) with γ, β written as tokens (N, H·W, C), bit for bit group_norm then
// a transpose: the input of an attention over the pixels.
Tensor group_norm_tokens(Arena& a, const Tensor& x, const Norm& n, float eps, int64_t groups = 32);
// x (..., C) → LayerNorm over C with γ, β. Into a given tensor: layer_norm_into(y, x, ...).
Tensor layer_norm(Arena& a, const Tensor& x, const Norm& n, float eps);
void layer_norm_into(Tensor& y, const Tensor& x, const Norm& n, float eps);

// softmax(q kᵀ / sqrt(D)) v per head: q (N, L, heads·D), k and v (N, T, heads·D) → (N, L, heads·D); head i in
// columns [i·D, (i+1)·D). 2-D inputs are one sample. causal: position i sees keys 0..i only.
Tensor attention(Arena& a, const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, bool causal = false);
// The same from one fused projection: qkv (N, L, 3C), each row q | k | v (OpenCLIP's in_proj) → (N, L, C).
Tensor attention_qkv(Arena& a, const Tensor& qkv, int64_t heads, bool causal = false);

// x → SiLU(x) = x·sigmoid(x), a new tensor.
Tensor silu(Arena& a, const Tensor& x);
// x (rows, 2F) → value · gelu(gate) (rows, F), value | gate the two halves of each row: GEGLU, into y.
void geglu_into(Tensor& y, const Tensor& x);

// (N, C1, H, W) ‖ (N, C2, H, W) → (N, C1 + C2, H, W): torch.cat(dim=1).
Tensor concat_channels(Arena& a, const Tensor& x, const Tensor& y);
// Rows [r0, r0 + n) of x (..., C) as an (n, C) view of the same memory (a chunk of tokens).
inline Tensor rows(const Tensor& x, int64_t r0, int64_t n) {
    const int64_t C = x.dim(-1);
    assert(r0 >= 0 && (r0 + n) * C <= x.numel());
    char* base = static_cast<char*>(const_cast<void*>(x.data));
    return Tensor::view_of(base + r0 * C * (int64_t)dtype_size(x.dtype), {n, C}, x.dtype);
}
// nn.Embedding: x (T, C) = rows ids[0..T) of table (V, C), converted from its stored dtype; where token_rows[t]
// is given (a textual-inversion vector), that row instead. Throws naming an id outside [0, V).
void embed_tokens(Tensor& x, const Tensor& table, const int* ids, const float* const* token_rows = nullptr);
// A copy of x in the arena.
Tensor copy(Arena& a, const Tensor& x);
// x += y (same element count), in place: a residual connection.
void add_(Tensor& x, const Tensor& y);
// x (N, C, H, W) += t (N, H·W, C): a branch computed on tokens added back onto a feature map, in place.
void add_tokens_(Tensor& x, const Tensor& t);
// x (N, C, H, W) += e (N, C), the same value over every pixel of a channel (a res block's time embedding).
void add_channel_bias_(Tensor& x, const Tensor& e);

// Sinusoidal timestep embedding as in ldm/diffusers (flip_sin_to_cos=True, shift 0): for each t,
// out = [cos(t·f_0..f_{h-1}), sin(t·f_0..f_{h-1})], f_i = exp(-ln(max_period)·i/h), h = dim/2.
void timestep_embedding(float* out, const float* t, int64_t n, int64_t dim, float max_period = 10000.0f);

}  // namespace sd
