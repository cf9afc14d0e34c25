// unet.cpp — the SD 1.x UNet: configuration inferred from the checkpoint, weights bound by ldm name, and a
// forward pass that reads like ldm's openaimodel.py / attention.py.
//
// Memory: every activation comes from the Arena and the arena is kept a stack of live tensors. Each block
// allocates its output, marks, computes with temporaries, releases (a spatial transformer adds onto the fresh
// res block output it follows, in place: no copy); between blocks, release_keeping() drops
// everything since the block began except its output, which moves down into the freed space. The skip
// connections are the input blocks' outputs, stacked in order; the up path consumes them last-first, so each
// output block's result lands exactly where the skip it consumed was. Peak = skips + one block's temporaries,
// of which the largest are the Winograd scratches (the transformed weights, 16·Cout·Cin floats: ~230 MiB for
// the 16×16 upsample conv at 1280 channels), each taken on top of the stack and given back after its conv.
#include "models/unet.h"

#include <cmath>
#include <cstring>
#include <set>

#include "models/ops.h"
#include "models/weights.h"

namespace sd {

// ---- structure ------------------------------------------------------------------------------------------

// One input/output block of ldm's UNetModel as the config lays it out: a res block (cin → cout), maybe a
// spatial transformer, maybe a down/upsample at the end. `level` is the resolution level it runs at (input).
struct BlockPlan {
    int level = 0;
    bool res = false, attn = false, down = false, up = false;
    int64_t cin = 0, cout = 0;
};

// ldm UNetModel.__init__: levels of num_res_blocks res blocks (+ transformer), a downsample between levels;
// on the way up num_res_blocks + 1 res blocks per level, each taking the newest unused skip, and an upsample
// ending every level but the top.
static void plan_blocks(const UNetConfig& c, std::vector<BlockPlan>& down, std::vector<BlockPlan>& up) {
    int64_t ch = c.model_channels;
    std::vector<int64_t> skip_channels = {ch};  // input_blocks.0 (conv_in) is the first skip
    for (int level = 0; level < c.levels(); level++) {
        for (int r = 0; r < c.num_res_blocks; r++) {
            BlockPlan b;
            b.level = level;
            b.res = true;
            b.cin = ch;
            b.cout = ch = c.channel_mult[level] * c.model_channels;
            b.attn = c.attention[level];
            down.push_back(b);
            skip_channels.push_back(ch);
        }
        if (level != c.levels() - 1) {
            BlockPlan b;
            b.level = level;
            b.down = true;
            b.cin = b.cout = ch;
            down.push_back(b);
            skip_channels.push_back(ch);
        }
    }
    for (int level = c.levels() - 1; level >= 0; level--) {
        for (int r = 0; r <= c.num_res_blocks; r++) {
            BlockPlan b;
            b.level = level;
            b.res = true;
            b.cin = ch + skip_channels.back();
            skip_channels.pop_back();
            b.cout = ch = c.channel_mult[level] * c.model_channels;
            b.attn = c.attention[level];
            b.up = level > 0 && r == c.num_res_blocks;
            up.push_back(b);
        }
    }
    assert(skip_channels.empty());
}

// Reads the configuration off the tensor names and shapes: input_blocks.N is either a res block
// (N.0.in_layers...), optionally followed by a transformer (N.1.norm), or a downsample (N.0.op) that ends a level.
static UNetConfig infer_config(const WeightLoader& w) {
    UNetConfig c;
    std::vector<int64_t> conv_in = w.shape("input_blocks.0.0.weight");  // (mc, in, 3, 3)
    if (conv_in.size() != 4)
        throw std::runtime_error(w.file().path() + ": '" + w.prefix() + "input_blocks.0.0.weight' is not a conv weight");
    c.model_channels = conv_in[0];
    c.in_channels = conv_in[1];
    c.time_embed_dim = w.shape("time_embed.0.weight")[0];
    c.out_channels = w.shape("out.2.weight")[0];
    c.context_dim = w.shape("middle_block.1.transformer_blocks.0.attn2.to_k.weight")[1];
    c.heads = 8;
    c.transformer_depth = 0;
    while (w.has("middle_block.1.transformer_blocks." + std::to_string(c.transformer_depth) + ".norm1.weight"))
        c.transformer_depth++;

    c.channel_mult.clear();
    c.attention.clear();
    std::vector<int> res_per_level = {0};
    for (int n = 1;; n++) {
        std::string p = "input_blocks." + std::to_string(n) + ".";
        if (w.has(p + "0.op.weight")) {  // downsample: the next res block starts a new level
            res_per_level.push_back(0);
            continue;
        }
        if (!w.has(p + "0.in_layers.2.weight")) break;
        int64_t cout = w.shape(p + "0.in_layers.2.weight")[0];
        if (res_per_level.back() == 0) {
            if (cout % c.model_channels)
                throw std::runtime_error(w.file().path() + ": '" + w.prefix() + p +
                                         "0.in_layers.2.weight' has a width that is not a multiple of " +
                                         std::to_string(c.model_channels) + " (the model channels)");
            c.channel_mult.push_back((int)(cout / c.model_channels));
            c.attention.push_back(w.has(p + "1.norm.weight"));
        }
        res_per_level.back()++;
    }
    c.num_res_blocks = res_per_level[0];
    for (int r : res_per_level)
        if (r != c.num_res_blocks || r == 0)
            throw std::runtime_error(w.file().path() + ": the UNet's input_blocks do not have the same number of "
                                     "res blocks at every level; not an SD 1.x layout");
    return c;
}

// ---- binding --------------------------------------------------------------------------------------------

// WeightLoader plus a record of the names bound, so the loader can refuse files it misread (unused tensors),
// and an error for a missing tensor that names the shape it should have had.
struct Binder {
    const WeightLoader& w;
    std::set<std::string> used;

    Tensor mat(const std::string& name, std::initializer_list<int64_t> shape) {
        require(name, shape);
        return w.mat(name, shape);
    }
    Tensor vec(const std::string& name, std::initializer_list<int64_t> shape) {
        require(name, shape);
        return w.vec(name, shape);
    }
    // 1×1 conv (SD1) or linear (SD2): the same (out, in) matrix, which is how we keep it.
    Tensor proj(const std::string& name, int64_t out, int64_t in) {
        if (w.has(name) && w.shape(name).size() == 2) return mat(name, {out, in});
        return mat(name, {out, in, 1, 1}).reshape({out, in});
    }
    void require(const std::string& name, std::initializer_list<int64_t> shape) {
        if (!w.has(name)) {
            Tensor expected;
            Tensor::set_shape(expected, shape);
            throw std::runtime_error(w.file().path() + ": missing tensor '" + w.prefix() + name +
                                     "' (expected shape " + expected.shape_str() + ")");
        }
        used.insert(name);
    }
};

static ResBlock bind_resblock(Binder& w, const std::string& p, int64_t cin, int64_t cout, int64_t temb) {
    ResBlock b;
    b.cin = cin;
    b.cout = cout;
    b.norm1_g = w.vec(p + "in_layers.0.weight", {cin});
    b.norm1_b = w.vec(p + "in_layers.0.bias", {cin});
    b.conv1_w = w.mat(p + "in_layers.2.weight", {cout, cin, 3, 3});
    b.conv1_b = w.vec(p + "in_layers.2.bias", {cout});
    b.emb_w = w.mat(p + "emb_layers.1.weight", {cout, temb});
    b.emb_b = w.vec(p + "emb_layers.1.bias", {cout});
    b.norm2_g = w.vec(p + "out_layers.0.weight", {cout});
    b.norm2_b = w.vec(p + "out_layers.0.bias", {cout});
    b.conv2_w = w.mat(p + "out_layers.3.weight", {cout, cout, 3, 3});
    b.conv2_b = w.vec(p + "out_layers.3.bias", {cout});
    if (cin != cout) {
        b.skip_w = w.mat(p + "skip_connection.weight", {cout, cin, 1, 1});
        b.skip_b = w.vec(p + "skip_connection.bias", {cout});
    }
    return b;
}

static Attention bind_attention(Binder& w, const std::string& p, int64_t C, int64_t kv_dim) {
    Attention a;
    a.q_w = w.mat(p + "to_q.weight", {C, C});
    a.k_w = w.mat(p + "to_k.weight", {C, kv_dim});
    a.v_w = w.mat(p + "to_v.weight", {C, kv_dim});
    a.out_w = w.mat(p + "to_out.0.weight", {C, C});
    a.out_b = w.vec(p + "to_out.0.bias", {C});
    return a;
}

static SpatialTransformer bind_transformer(Binder& w, const std::string& p, int64_t C, const UNetConfig& c) {
    SpatialTransformer st;
    st.channels = C;
    st.norm_g = w.vec(p + "norm.weight", {C});
    st.norm_b = w.vec(p + "norm.bias", {C});
    st.proj_in_w = w.proj(p + "proj_in.weight", C, C);
    st.proj_in_b = w.vec(p + "proj_in.bias", {C});
    for (int d = 0; d < c.transformer_depth; d++) {
        std::string q = p + "transformer_blocks." + std::to_string(d) + ".";
        TransformerBlock b;
        b.norm1_g = w.vec(q + "norm1.weight", {C});
        b.norm1_b = w.vec(q + "norm1.bias", {C});
        b.attn1 = bind_attention(w, q + "attn1.", C, C);
        b.norm2_g = w.vec(q + "norm2.weight", {C});
        b.norm2_b = w.vec(q + "norm2.bias", {C});
        b.attn2 = bind_attention(w, q + "attn2.", C, c.context_dim);
        b.norm3_g = w.vec(q + "norm3.weight", {C});
        b.norm3_b = w.vec(q + "norm3.bias", {C});
        b.ff1_w = w.mat(q + "ff.net.0.proj.weight", {8 * C, C});
        b.ff1_b = w.vec(q + "ff.net.0.proj.bias", {8 * C});
        b.ff2_w = w.mat(q + "ff.net.2.weight", {C, 4 * C});
        b.ff2_b = w.vec(q + "ff.net.2.bias", {C});
        st.blocks.push_back(b);
    }
    st.proj_out_w = w.proj(p + "proj_out.weight", C, C);
    st.proj_out_b = w.vec(p + "proj_out.bias", {C});
    return st;
}

UNet load_unet(const SafeTensors& st, const std::string& prefix, int64_t head_dim) {
    WeightLoader loader(st, prefix);
    Binder w{loader, {}};
    UNet u;
    u.cfg = infer_config(loader);
    u.cfg.head_dim = head_dim;
    for (size_t l = 0; head_dim > 0 && l < u.cfg.channel_mult.size(); l++)
        if ((u.cfg.channel_mult[l] * u.cfg.model_channels) % head_dim)
            throw std::runtime_error(st.path() + ": UNet width " +
                                     std::to_string(u.cfg.channel_mult[l] * u.cfg.model_channels) +
                                     " does not split into heads of " + std::to_string(head_dim) + " channels");
    const UNetConfig& c = u.cfg;
    int64_t mc = c.model_channels, temb = c.time_embed_dim;

    u.time1_w = w.mat("time_embed.0.weight", {temb, mc});
    u.time1_b = w.vec("time_embed.0.bias", {temb});
    u.time2_w = w.mat("time_embed.2.weight", {temb, temb});
    u.time2_b = w.vec("time_embed.2.bias", {temb});
    u.conv_in_w = w.mat("input_blocks.0.0.weight", {mc, c.in_channels, 3, 3});
    u.conv_in_b = w.vec("input_blocks.0.0.bias", {mc});

    std::vector<BlockPlan> down, up;
    plan_blocks(c, down, up);
    for (size_t i = 0; i < down.size(); i++) {
        const BlockPlan& pl = down[i];
        std::string p = "input_blocks." + std::to_string(i + 1) + ".";
        UNetBlock b;
        b.has_res = pl.res;
        b.has_attn = pl.attn;
        if (pl.res) b.res = bind_resblock(w, p + "0.", pl.cin, pl.cout, temb);
        if (pl.attn) b.attn = bind_transformer(w, p + "1.", pl.cout, c);
        if (pl.down) {
            b.down_w = w.mat(p + "0.op.weight", {pl.cout, pl.cin, 3, 3});
            b.down_b = w.vec(p + "0.op.bias", {pl.cout});
        }
        u.input_blocks.push_back(b);
    }

    int64_t ch = down.back().cout;
    u.mid_res1 = bind_resblock(w, "middle_block.0.", ch, ch, temb);
    u.mid_attn = bind_transformer(w, "middle_block.1.", ch, c);
    u.mid_res2 = bind_resblock(w, "middle_block.2.", ch, ch, temb);

    for (size_t i = 0; i < up.size(); i++) {
        const BlockPlan& pl = up[i];
        std::string p = "output_blocks." + std::to_string(i) + ".";
        UNetBlock b;
        b.has_res = true;
        b.has_attn = pl.attn;
        b.res = bind_resblock(w, p + "0.", pl.cin, pl.cout, temb);
        if (pl.attn) b.attn = bind_transformer(w, p + "1.", pl.cout, c);
        if (pl.up) {
            std::string q = p + (pl.attn ? "2" : "1") + ".conv.";
            b.up_w = w.mat(q + "weight", {pl.cout, pl.cout, 3, 3});
            b.up_b = w.vec(q + "bias", {pl.cout});
        }
        u.output_blocks.push_back(b);
    }

    u.out_norm_g = w.vec("out.0.weight", {mc});
    u.out_norm_b = w.vec("out.0.bias", {mc});
    u.conv_out_w = w.mat("out.2.weight", {c.out_channels, mc, 3, 3});
    u.conv_out_b = w.vec("out.2.bias", {c.out_channels});

    // A tensor we did not bind means the file has a structure we misread; better to refuse than to run it.
    for (const TensorInfo& t : st.tensors()) {
        if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
        if (!w.used.count(t.name.substr(prefix.size())))
            throw std::runtime_error(st.path() + ": tensor '" + t.name +
                                     "' is not part of the UNet layout inferred from this file");
    }
    return u;
}

// ---- forward --------------------------------------------------------------------------------------------

// Which 3×3 stride-1 convs go through Winograd F(2×2, 3×3) (conv2d_winograd, 4/9 of the multiply-adds). It
// transforms the whole weight on every call (16·Cout·Cin floats), a cost that only a large enough map repays.
// Measured CPU time against conv2d, SD1.5 shapes, f16 weights, 2 threads (Zen 4):
//   map (per image)       fp32, batch 2     bf16, batch 2     bf16, batch 1
//   64×64, 32×32          1.8–2.1× faster   1.5–1.9× faster
//   16×16                 1.5–1.6×          1.1–1.25×         0.86–0.97× (slower)
//   8×8, 4×4              0.4–0.7× (slower) 0.3–0.5×
// A larger batch spreads the transform less than a larger map (8×8 at batch 4: still 0.75× in fp32).
static bool use_winograd(int64_t N, int64_t H, int64_t W) {
    const int64_t pixels = H * W;
    return pixels >= 32 * 32 ||
           (pixels >= 16 * 16 && (active_precision() == Precision::FP32 || N >= 2));
}

// Same for nearest 2× upsample + 3×3 conv by conv2d_upsample2x (1/4 of the multiply-adds, the upsampled map
// never formed), against upsample_nearest2x + conv2d; H×W is the map before the upsample:
//   16×16 (and up)  fp32 2.2–3.4× faster, bf16 1.5–2.6×;   8×8  fp32 0.94–1.12×, bf16 0.56–0.63×;   4×4  0.2–0.3×
static bool use_upsample2x(int64_t H, int64_t W) { return H * W >= 16 * 16; }

// out (N, Cout, H, W) = or += conv3x3(x) + b (stride 1, pad 1): to a handful of output channels (conv_out, 4)
// directly (conv2d_small_cout, ~4× conv2d's speed there), where it pays by Winograd, else conv2d (also from
// a handful of input channels, conv_in, whose transformed products would be too thin).
static void conv3x3(Arena& a, float* out, const Tensor& x, const Tensor& w, const Tensor& b, bool accumulate) {
    const int64_t N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3], Cout = w.shape[0];
    assert(w.ndim == 4 && w.shape[1] == Cin && w.shape[2] == 3 && w.shape[3] == 3);
    if (Cout <= 4 && !accumulate) {
        conv2d_small_cout(out, x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout);
    } else if (Cin >= 8 && use_winograd(N, H, W)) {
        Arena::Mark m = a.mark();
        Tensor scratch = a.alloc({(int64_t)conv2d_winograd_scratch(Cin, H, W, Cout)});
        conv2d_winograd(out, x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout, scratch.f32(), accumulate);
        a.release(m);
    } else {
        sd::conv2d(out, x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout, 3, 1, 1, accumulate);
    }
}

// x (N, Cin, H, W) → conv3x3(x) + b (N, Cout, H, W), a new map.
static Tensor conv3x3(Arena& a, const Tensor& x, const Tensor& w, const Tensor& b) {
    Tensor y = a.alloc({x.shape[0], w.shape[0], x.shape[2], x.shape[3]});
    conv3x3(a, y.f32(), x, w, b, /*accumulate=*/false);
    return y;
}

// x (N, C, H, W) → conv3x3(upsample_nearest2x(x)) + b (N, Cout, 2H, 2W), ldm's Upsample.
static Tensor upsample_conv(Arena& a, const Tensor& x, const Tensor& w, const Tensor& b) {
    const int64_t N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3], Cout = w.shape[0];
    Tensor y = a.alloc({N, Cout, 2 * H, 2 * W});
    Arena::Mark m = a.mark();
    if (use_upsample2x(H, W)) {
        Tensor scratch = a.alloc({(int64_t)conv2d_upsample2x_scratch(Cin, H, W, Cout)});
        conv2d_upsample2x(y.f32(), x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout, scratch.f32());
    } else {
        Tensor u = a.alloc({N, Cin, 2 * H, 2 * W});
        upsample_nearest2x(u.f32(), x.f32(), N * Cin, H, W);
        conv3x3(a, y.f32(), u, w, b, /*accumulate=*/false);
    }
    a.release(m);
    return y;
}

// Releases everything allocated since `m` except `t`, which moves down to `m`. The new place is never above
// the old one (first fit from `m`, and `t` itself fits where it is), so memmove is safe.
static Tensor release_keeping(Arena& a, Arena::Mark m, const Tensor& t) {
    a.release(m);
    Tensor kept = a.alloc(t.dims());
    if (kept.data != t.data) std::memmove(kept.data, t.data, t.nbytes());
    return kept;
}

// (N, C1, H, W) ‖ (N, C2, H, W) → (N, C1 + C2, H, W): torch.cat(dim=1), the up path's skip connection.
static Tensor concat_channels(Arena& a, const Tensor& x, const Tensor& y) {
    assert(x.ndim == 4 && y.ndim == 4 && x.shape[0] == y.shape[0] && x.shape[2] == y.shape[2] &&
           x.shape[3] == y.shape[3]);
    int64_t N = x.shape[0], HW = x.shape[2] * x.shape[3], C1 = x.shape[1], C2 = y.shape[1];
    Tensor z = a.alloc({N, C1 + C2, x.shape[2], x.shape[3]});
    for (int64_t n = 0; n < N; n++) {
        std::memcpy(z.f32() + n * (C1 + C2) * HW, x.f32() + n * C1 * HW, C1 * HW * sizeof(float));
        std::memcpy(z.f32() + (n * (C1 + C2) + C1) * HW, y.f32() + n * C2 * HW, C2 * HW * sizeof(float));
    }
    return z;
}

Tensor resblock(const ResBlock& b, const Tensor& x, const Tensor& emb, Arena& a) {
    int64_t N = x.shape[0], H = x.shape[2], W = x.shape[3];
    assert(x.ndim == 4 && x.shape[1] == b.cin);
    Tensor out = a.alloc({N, b.cout, H, W});
    Arena::Mark m = a.mark();
    // The skip path goes into `out` first; the last conv then accumulates onto it.
    if (b.skip_w.data)
        sd::conv2d(out.f32(), x.f32(), b.skip_w.data, b.skip_w.dtype, b.skip_b.f32(), N, b.cin, H, W, b.cout, 1, 1, 0);
    else
        std::memcpy(out.data, x.data, x.nbytes());

    Tensor h = group_norm(a, x, b.norm1_g, b.norm1_b, /*silu=*/true);   // (N, cin, H, W)
    h = conv3x3(a, h, b.conv1_w, b.conv1_b);                              // (N, cout, H, W)
    Tensor e = a.alloc(emb.dims());
    silu(e.f32(), emb.f32(), emb.numel());
    e = linear(a, e, b.emb_w, b.emb_b);                                   // (N, cout)
    add_channel_bias(h.f32(), e.f32(), N, b.cout, H * W);
    sd::group_norm(h.f32(), h.f32(), b.norm2_g.f32(), b.norm2_b.f32(), N, b.cout, H * W, 32, 1e-5f, true);
    conv3x3(a, out.f32(), h, b.conv2_w, b.conv2_b, /*accumulate=*/true);
    a.release(m);
    return out;
}

// x (N, L, C) += to_out(attention(to_q(h), to_k(src), to_v(src))); src is h itself (self-attention) or the
// text context (N, T, Ckv) (cross-attention).
static void attention_residual(Tensor& x, const Attention& at, const Tensor& h, const Tensor& src, int64_t heads,
                               Arena& a) {
    int64_t N = x.shape[0], L = x.shape[1], C = x.shape[2], T = src.shape[1], D = C / heads;
    Arena::Mark m = a.mark();
    Tensor q = linear(a, h, at.q_w, Tensor());    // (N, L, C), head i in columns [i·D, (i+1)·D)
    Tensor k = linear(a, src, at.k_w, Tensor());  // (N, T, C)
    Tensor v = linear(a, src, at.v_w, Tensor());  // (N, T, C)
    Tensor o = a.alloc({N, L, C});
    attention(o.f32(), C, q.f32(), C, k.f32(), C, v.f32(), C, N, L, T, heads, D, 1.0f / std::sqrt((float)D), false);
    gemm(x.f32(), C, o.f32(), C, at.out_w.data, at.out_w.dtype, C, at.out_b.f32(), N * L, C, C, Act::None,
         /*accumulate=*/true);
    a.release(m);
}

// x (N, L, C) += ff.net.2(geglu(ff.net.0.proj(h))). Done in chunks of tokens: the 8C-wide projection of all
// tokens would be 84 MB at a 64×64 latent with batch 2; 1024-token chunks keep it at 10 MB and are still
// large products.
static void feed_forward_residual(Tensor& x, const TransformerBlock& b, const Tensor& h, Arena& a) {
    int64_t rows = x.numel() / x.dim(-1), C = x.dim(-1), inner = b.ff2_w.shape[1];  // inner = 4C
    int64_t chunk = rows < 1024 ? rows : 1024;
    Arena::Mark m = a.mark();
    Tensor proj = a.alloc({chunk, 2 * inner});  // value | gate
    Tensor g = a.alloc({chunk, inner});
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
        gemm(proj.f32(), 2 * inner, h.f32() + r0 * C, C, b.ff1_w.data, b.ff1_w.dtype, C, b.ff1_b.f32(), n,
             2 * inner, C);
        geglu(g.f32(), proj.f32(), n, inner);
        gemm(x.f32() + r0 * C, C, g.f32(), inner, b.ff2_w.data, b.ff2_w.dtype, inner, b.ff2_b.f32(), n, C, inner,
             Act::None, /*accumulate=*/true);
    }
    a.release(m);
}

// ldm BasicTransformerBlock on tokens x (N, L, C), in place.
static void transformer_block(const TransformerBlock& b, Tensor& x, const Tensor& context, int64_t heads,
                              Arena& a) {
    Arena::Mark m = a.mark();
    int64_t rows = x.numel() / x.dim(-1), C = x.dim(-1);
    Tensor h = layer_norm(a, x, b.norm1_g, b.norm1_b);
    attention_residual(x, b.attn1, h, h, heads, a);        // self-attention over the pixels
    sd::layer_norm(h.f32(), x.f32(), b.norm2_g.f32(), b.norm2_b.f32(), rows, C, 1e-5f);
    attention_residual(x, b.attn2, h, context, heads, a);  // cross-attention to the text
    sd::layer_norm(h.f32(), x.f32(), b.norm3_g.f32(), b.norm3_b.f32(), rows, C, 1e-5f);
    feed_forward_residual(x, b, h, a);
    a.release(m);
}

void spatial_transformer(const SpatialTransformer& st, Tensor& x, const Tensor& context, int64_t heads, Arena& a) {
    int64_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
    assert(C == st.channels && context.ndim == 3 && context.shape[0] == N);
    Arena::Mark m = a.mark();
    // The norm writes tokens straight away (one pixel per row), so proj_in, a 1×1 conv, is a plain linear.
    Tensor h = a.alloc({N, HW, C});
    group_norm_tokens(h.f32(), x.f32(), st.norm_g.f32(), st.norm_b.f32(), N, C, HW, 32, 1e-6f);  // ldm: eps 1e-6
    Tensor t = linear(a, h, st.proj_in_w, st.proj_in_b);  // (N, HW, C)
    t = release_keeping(a, m, t);                         // h is dead
    for (const TransformerBlock& b : st.blocks) transformer_block(b, t, context, heads, a);
    t = linear(a, t, st.proj_out_w, st.proj_out_b);       // (N, HW, C)
    add_tokens(x.f32(), x.f32(), t.f32(), N, C, HW);      // residual, back in (N, C, H, W)
    a.release(m);
}

// What follows a block's res block, in ldm's order: transformer, then downsample (3×3 stride 2) or upsample
// (nearest 2×, 3×3).
static Tensor block_tail(const UNetBlock& b, Tensor h, const Tensor& context, int64_t heads, Arena& a) {
    if (b.has_attn) spatial_transformer(b.attn, h, context, heads, a);
    if (b.down_w.data) h = conv2d(a, h, b.down_w, b.down_b, /*stride=*/2, /*pad=*/1);
    if (b.up_w.data) h = upsample_conv(a, h, b.up_w, b.up_b);
    return h;
}

Tensor unet_forward(const UNet& u, const Tensor& x, const float* timesteps, const Tensor& context, Arena& a) {
    const UNetConfig& c = u.cfg;
    if (x.ndim != 4 || x.shape[1] != c.in_channels || x.dtype != DType::F32)
        throw std::runtime_error("UNet: the latent must be f32 (B, " + std::to_string(c.in_channels) +
                                 ", h, w); got " + x.shape_str());
    int64_t B = x.shape[0], H = x.shape[2], W = x.shape[3], ds = c.downscale();
    if (H % ds || W % ds || H == 0 || W == 0)
        throw std::runtime_error("UNet: latent size " + std::to_string(H) + "x" + std::to_string(W) +
                                 " is not a multiple of " + std::to_string(ds) + " (images must be multiples of " +
                                 std::to_string(ds * 8) + " pixels on each side)");
    if (context.ndim != 3 || context.shape[0] != B || context.shape[2] != c.context_dim ||
        context.dtype != DType::F32)
        throw std::runtime_error("UNet: the context must be f32 (" + std::to_string(B) + ", T, " +
                                 std::to_string(c.context_dim) + "); got " + context.shape_str());
    Arena::Mark start = a.mark();

    // Timestep → sinusoid (cos first) → linear, SiLU → linear: (B, temb), shared by every res block.
    Tensor t = a.alloc({B, c.model_channels});
    timestep_embedding(t.f32(), timesteps, B, c.model_channels);
    Tensor emb = linear(a, linear(a, t, u.time1_w, u.time1_b, Act::SiLU), u.time2_w, u.time2_b);
    emb = release_keeping(a, start, emb);

    // Down: every input block's output is a skip; they stay stacked in the arena in order.
    std::vector<Tensor> skips;
    std::vector<Arena::Mark> skip_at;
    Arena::Mark m = a.mark();
    Tensor h = conv3x3(a, x, u.conv_in_w, u.conv_in_b);  // (B, mc, H, W)
    skips.push_back(h);
    skip_at.push_back(m);
    for (const UNetBlock& b : u.input_blocks) {
        m = a.mark();
        Tensor y = b.has_res ? resblock(b.res, h, emb, a) : h;
        h = release_keeping(a, m, block_tail(b, y, context, c.heads_at(b.attn.channels), a));
        skips.push_back(h);
        skip_at.push_back(m);
    }

    m = a.mark();
    Tensor y = resblock(u.mid_res1, h, emb, a);
    spatial_transformer(u.mid_attn, y, context, c.heads_at(u.mid_attn.channels), a);
    y = resblock(u.mid_res2, y, emb, a);
    h = release_keeping(a, m, y);

    // Up: each block takes the newest skip; its output replaces that skip in the arena. Once the res block has
    // read the concatenation, the skip, the previous h and the concatenation are all dead: drop them at once.
    for (const UNetBlock& b : u.output_blocks) {
        Tensor skip = skips.back();
        m = skip_at.back();
        skips.pop_back();
        skip_at.pop_back();
        y = release_keeping(a, m, resblock(b.res, concat_channels(a, h, skip), emb, a));
        h = release_keeping(a, m, block_tail(b, y, context, c.heads_at(b.attn.channels), a));
    }
    assert(skips.empty());

    y = group_norm(a, h, u.out_norm_g, u.out_norm_b, /*silu=*/true);
    y = conv3x3(a, y, u.conv_out_w, u.conv_out_b);  // (B, out, H, W)
    return release_keeping(a, start, y);
}

// ---- cost -----------------------------------------------------------------------------------------------

double unet_flops(const UNet& u, int64_t B, int64_t h, int64_t w, int64_t T) {
    const UNetConfig& c = u.cfg;
    auto conv = [&](double cout, double cin, double k, double ho, double wo) { return 2 * B * cout * cin * k * k * ho * wo; };
    auto linear = [](double M, double N, double K) { return 2 * M * N * K; };
    auto res = [&](const BlockPlan& p, double H, double W) {
        return conv(p.cout, p.cin, 3, H, W) + conv(p.cout, p.cout, 3, H, W) +
               (p.cin != p.cout ? conv(p.cout, p.cin, 1, H, W) : 0) + linear(B, p.cout, c.time_embed_dim);
    };
    auto transformer = [&](double C, double H, double W) {
        double L = H * W, rows = B * L;
        double f = 2 * linear(rows, C, C);  // proj_in, proj_out
        double self = 4 * linear(rows, C, C) + B * 4 * L * L * C;  // q, k, v, out; QKᵀ and AV (heads·D = C)
        double cross = 2 * linear(rows, C, C) + 2 * linear(B * T, C, c.context_dim) + B * 4 * L * T * C;
        double ff = linear(rows, 8 * C, C) + linear(rows, C, 4 * C);
        return f + c.transformer_depth * (self + cross + ff);
    };

    std::vector<BlockPlan> down, up;
    plan_blocks(c, down, up);
    double mc = c.model_channels;
    double f = linear(B, c.time_embed_dim, mc) + linear(B, c.time_embed_dim, c.time_embed_dim);
    f += conv(mc, c.in_channels, 3, h, w);
    for (const BlockPlan& p : down) {
        double H = h >> p.level, W = w >> p.level;
        if (p.res) f += res(p, H, W);
        if (p.attn) f += transformer(p.cout, H, W);
        if (p.down) f += conv(p.cout, p.cin, 3, H / 2, W / 2);
    }
    BlockPlan mid;
    mid.cin = mid.cout = down.back().cout;
    double Hm = h >> (c.levels() - 1), Wm = w >> (c.levels() - 1);
    f += 2 * res(mid, Hm, Wm) + transformer(mid.cout, Hm, Wm);
    for (const BlockPlan& p : up) {
        double H = h >> p.level, W = w >> p.level;
        f += res(p, H, W);
        if (p.attn) f += transformer(p.cout, H, W);
        if (p.up) f += conv(p.cout, p.cout, 3, 2 * H, 2 * W);
    }
    f += conv(c.out_channels, mc, 3, h, w);
    return f;
}

}  // namespace sd
