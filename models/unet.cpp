// unet.cpp — the SD 1.x UNet: configuration inferred from the checkpoint, weights bound by ldm name, and a
// forward pass that reads like ldm's openaimodel.py / attention.py (see unet.h for the papers).
//
// Memory: every activation comes from the arena, kept a stack of live tensors. Each block runs in an
// ArenaScope and keeps only its output, which moves down to where the block began. The skip connections are the
// input blocks' outputs, stacked in order; the up path consumes them last-first, so each output block's result
// lands exactly where the skip it consumed was. Peak = skips + one block's temporaries (docs/performance.md).
#include "models/unet.h"

#include <cmath>
#include <cstring>
#include <set>

#include "models/ops.h"
#include "models/weights.h"

namespace sd {

// ---- structure ------------------------------------------------------------------------------------------

// ldm UNetModel.__init__: levels of num_res_blocks res blocks (+ transformer), a downsample between levels;
// on the way up num_res_blocks + 1 res blocks per level, each taking the newest unused skip, and an upsample
// ending every level but the top.
void unet_plan(const UNetConfig& c, std::vector<UNetBlockPlan>& down, std::vector<UNetBlockPlan>& up) {
    int64_t ch = c.model_channels;
    std::vector<int64_t> skip_channels = {ch};  // input_blocks.0 (conv_in) is the first skip
    for (int level = 0; level < c.levels(); level++) {
        for (int r = 0; r < c.num_res_blocks; r++) {
            UNetBlockPlan b;
            b.level = level;
            b.res = true;
            b.cin = ch;
            b.cout = ch = c.channel_mult[level] * c.model_channels;
            b.attn = c.attention[level];
            down.push_back(b);
            skip_channels.push_back(ch);
        }
        if (level != c.levels() - 1) {
            UNetBlockPlan b;
            b.level = level;
            b.down = true;
            b.cin = b.cout = ch;
            down.push_back(b);
            skip_channels.push_back(ch);
        }
    }
    for (int level = c.levels() - 1; level >= 0; level--) {
        for (int r = 0; r <= c.num_res_blocks; r++) {
            UNetBlockPlan b;
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

// Transformer blocks of the spatial transformer at prefix p (its transformer_blocks.K that exist).
static int count_blocks(const WeightLoader& w, const std::string& p) {
    int n = 0;
    while (w.has(p + "transformer_blocks." + std::to_string(n) + ".norm1.weight")) n++;
    return n;
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
    c.middle_depth = count_blocks(w, "middle_block.1.");
    if (w.has("label_emb.0.0.weight")) c.adm_in_channels = w.shape("label_emb.0.0.weight").at(1);

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
            c.transformer_depth.push_back(c.attention.back() ? count_blocks(w, p + "1.") : 0);
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

static ResBlock bind_resblock(Binder& w, const std::string& p, int64_t cin, int64_t cout, int64_t temb) {
    ResBlock b;
    b.cin = cin;
    b.cout = cout;
    b.norm1 = w.norm(p + "in_layers.0", cin);
    b.conv1 = w.conv(p + "in_layers.2", cout, cin, 3);
    b.emb = w.linear(p + "emb_layers.1", cout, temb);
    b.norm2 = w.norm(p + "out_layers.0", cout);
    b.conv2 = w.conv(p + "out_layers.3", cout, cout, 3);
    if (cin != cout) b.skip = w.conv(p + "skip_connection", cout, cin, 1);
    return b;
}

static Attention bind_attention(Binder& w, const std::string& p, int64_t C, int64_t kv_dim) {
    Attention a;
    a.q = w.linear(p + "to_q", C, C, /*bias=*/false);
    a.k = w.linear(p + "to_k", C, kv_dim, /*bias=*/false);
    a.v = w.linear(p + "to_v", C, kv_dim, /*bias=*/false);
    a.out = w.linear(p + "to_out.0", C, C);
    return a;
}

static SpatialTransformer bind_transformer(Binder& w, const std::string& p, int64_t C, const UNetConfig& c,
                                           int depth) {
    SpatialTransformer st;
    st.channels = C;
    st.norm = w.norm(p + "norm", C);
    st.proj_in = w.proj(p + "proj_in", C, C);
    for (int d = 0; d < depth; d++) {
        std::string q = p + "transformer_blocks." + std::to_string(d) + ".";
        TransformerBlock b;
        b.norm1 = w.norm(q + "norm1", C);
        b.attn1 = bind_attention(w, q + "attn1.", C, C);
        b.norm2 = w.norm(q + "norm2", C);
        b.attn2 = bind_attention(w, q + "attn2.", C, c.context_dim);
        b.norm3 = w.norm(q + "norm3", C);
        b.ff1 = w.linear(q + "ff.net.0.proj", 8 * C, C);
        b.ff2 = w.linear(q + "ff.net.2", C, 4 * C);
        st.blocks.push_back(b);
    }
    st.proj_out = w.proj(p + "proj_out", C, C);
    return st;
}

UNet load_unet(const SafeTensors& st, const std::string& prefix, int64_t head_dim, const LowRankTable* low_rank) {
    WeightLoader loader(st, prefix, low_rank);
    Binder w(loader);
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

    u.time1 = w.linear("time_embed.0", temb, mc);
    u.time2 = w.linear("time_embed.2", temb, temb);
    if (c.adm_in_channels) {
        u.label1 = w.linear("label_emb.0.0", temb, c.adm_in_channels);
        u.label2 = w.linear("label_emb.0.2", temb, temb);
    }
    u.conv_in = w.conv("input_blocks.0.0", mc, c.in_channels, 3);

    std::vector<UNetBlockPlan> down, up;
    unet_plan(c, down, up);
    for (size_t i = 0; i < down.size(); i++) {
        const UNetBlockPlan& pl = down[i];
        std::string p = "input_blocks." + std::to_string(i + 1) + ".";
        UNetBlock b;
        b.has_res = pl.res;
        b.has_attn = pl.attn;
        if (pl.res) b.res = bind_resblock(w, p + "0.", pl.cin, pl.cout, temb);
        if (pl.attn) b.attn = bind_transformer(w, p + "1.", pl.cout, c, c.transformer_depth[pl.level]);
        if (pl.down) b.down = w.conv(p + "0.op", pl.cout, pl.cin, 3);
        u.input_blocks.push_back(b);
    }

    int64_t ch = down.back().cout;
    u.mid_res1 = bind_resblock(w, "middle_block.0.", ch, ch, temb);
    u.mid_attn = bind_transformer(w, "middle_block.1.", ch, c, c.middle_depth);
    u.mid_res2 = bind_resblock(w, "middle_block.2.", ch, ch, temb);

    for (size_t i = 0; i < up.size(); i++) {
        const UNetBlockPlan& pl = up[i];
        std::string p = "output_blocks." + std::to_string(i) + ".";
        UNetBlock b;
        b.has_res = true;
        b.has_attn = pl.attn;
        b.res = bind_resblock(w, p + "0.", pl.cin, pl.cout, temb);
        if (pl.attn) b.attn = bind_transformer(w, p + "1.", pl.cout, c, c.transformer_depth[pl.level]);
        if (pl.up) b.up = w.conv(p + (pl.attn ? "2" : "1") + ".conv", pl.cout, pl.cout, 3);
        u.output_blocks.push_back(b);
    }

    u.out_norm = w.norm("out.0", mc);
    u.conv_out = w.conv("out.2", c.out_channels, mc, 3);

    // A tensor we did not bind means the file has a structure we misread; better to refuse than to run it.
    w.refuse_unused("UNet layout");
    return u;
}

// ---- forward --------------------------------------------------------------------------------------------

namespace {

// ldm's eps: GroupNorm(32, eps 1e-5) in the res blocks and at the output (openaimodel's normalization()),
// GroupNorm(32, eps 1e-6) before a spatial transformer, torch's default LayerNorm eps 1e-5 in its blocks.
constexpr float kResNormEps = 1e-5f, kTransformerNormEps = 1e-6f, kLayerNormEps = 1e-5f;

}  // namespace

// x (N, cin, H, W), emb (N, temb) → (N, cout, H, W): ldm's ResBlock, the Wide-ResNet block with group norm of
// DDPM (Ho et al. 2020), the timestep embedding added between the two convs.
Tensor resblock(const ResBlock& b, const Tensor& x, const Tensor& emb, Arena& a) {
    assert(x.ndim == 4 && x.shape[1] == b.cin);
    // out (N, cout, H, W) = skip(x) first; conv2 then accumulates onto it.
    Tensor out = b.skip.w.data ? conv(a, x, b.skip) : copy(a, x);
    ArenaScope s(a);
    Tensor h = group_norm(a, x, b.norm1, kResNormEps, /*silu=*/true);       // (N, cin, H, W)
    h = conv(a, h, b.conv1);                                         // (N, cout, H, W)
    Tensor e = linear(a, silu(a, emb), b.emb);                              // (N, cout)
    add_channel_bias_(h, e);                                                // h += e, per channel
    group_norm_(h, b.norm2, kResNormEps, /*silu=*/true);
    conv_into(a, out, h, b.conv2, /*accumulate=*/true);              // out = skip(x) + conv2(h)
    return out;
}

// x (N, L, C) += to_out(attention(to_q(h), to_k(src), to_v(src))); src is h itself (self-attention) or the
// text context (N, T, Ckv) (cross-attention: LDM §3.3, Q from the image, K and V from τ_θ(y)).
static void attention_add(Tensor& x, const Attention& at, const Tensor& h, const Tensor& src, int64_t heads,
                          Arena& a) {
    ArenaScope s(a);
    Tensor q = linear(a, h, at.q);     // (N, L, C), head i in columns [i·D, (i+1)·D)
    Tensor k = linear(a, src, at.k);   // (N, T, C)
    Tensor v = linear(a, src, at.v);   // (N, T, C)
    linear_add(x, attention(a, q, k, v, heads), at.out);
}

// x (N, L, C) += ff.net.2(geglu(ff.net.0.proj(h))), GEGLU as in Shazeer 2020 ("GLU Variants Improve
// Transformer"): value · GELU(gate), both halves of one projection. Done in chunks of tokens: the 8C-wide projection of all
// tokens would be 84 MB at a 64×64 latent with batch 2; 1024-token chunks keep it at 10 MB and are still
// large products.
static void feed_forward_add(Tensor& x, const TransformerBlock& b, const Tensor& h, Arena& a) {
    const int64_t tokens = x.numel() / x.dim(-1), inner = b.ff2.w.shape[1];  // inner = 4C
    const int64_t chunk = tokens < 1024 ? tokens : 1024;
    ArenaScope s(a);
    Tensor proj = a.alloc({chunk, 2 * inner});  // value | gate
    Tensor g = a.alloc({chunk, inner});
    for (int64_t r0 = 0; r0 < tokens; r0 += chunk) {
        const int64_t n = tokens - r0 < chunk ? tokens - r0 : chunk;
        Tensor xn = rows(x, r0, n), pn = rows(proj, 0, n), gn = rows(g, 0, n);
        linear_into(pn, rows(h, r0, n), b.ff1);  // (n, 8C): value | gate
        geglu_into(gn, pn);                      // (n, 4C) = value · gelu(gate)
        linear_add(xn, gn, b.ff2);               // x += ff.net.2(g)
    }
}

// ldm BasicTransformerBlock on tokens x (N, L, C), in place: self-attention over the pixels, cross-attention
// to the text, feed-forward, each pre-norm and added to the residual stream. The cross-attention is how the
// text conditions the image (LDM, Rombach et al. 2022, §3.3): softmax(QKᵀ/√d)·V with Q = W_Q·φ(z_t) from the
// image tokens and K = W_K·τ_θ(y), V = W_V·τ_θ(y) from the text encoding.
static void transformer_block(const TransformerBlock& b, Tensor& x, const Tensor& context, int64_t heads,
                              Arena& a) {
    ArenaScope s(a);
    Tensor h = layer_norm(a, x, b.norm1, kLayerNormEps);  // (N, L, C)
    attention_add(x, b.attn1, h, h, heads, a);            // x += attn1(h, h)
    layer_norm_into(h, x, b.norm2, kLayerNormEps);
    attention_add(x, b.attn2, h, context, heads, a);      // x += attn2(h, context)
    layer_norm_into(h, x, b.norm3, kLayerNormEps);
    feed_forward_add(x, b, h, a);                         // x += ff(h)
}

// x (N, C, H, W) += proj_out(blocks(proj_in(norm(x)) as tokens)), in place: ldm's SpatialTransformer.
void spatial_transformer(const SpatialTransformer& st, Tensor& x, const Tensor& context, int64_t heads, Arena& a) {
    const int64_t N = x.shape[0], C = x.shape[1];
    assert(C == st.channels && context.ndim == 3 && context.shape[0] == N);
    ArenaScope s(a);
    // The norm writes tokens straight away (one pixel per row), so proj_in, a 1×1 conv, is a plain linear.
    Tensor h = group_norm_tokens(a, x, st.norm, kTransformerNormEps);  // (N, HW, C)
    Tensor t = s.drop_all_but(linear(a, h, st.proj_in));              // (N, HW, C); h is dead
    for (const TransformerBlock& b : st.blocks) transformer_block(b, t, context, heads, a);
    add_tokens_(x, linear(a, t, st.proj_out));                         // x += proj_out(t), in (N, C, H, W)
}

// What follows a block's res block, in ldm's order: transformer, then downsample (3×3 stride 2) or upsample
// (nearest 2×, 3×3).
static Tensor block_tail(const UNetBlock& b, Tensor h, const Tensor& context, int64_t heads, Arena& a) {
    if (b.has_attn) spatial_transformer(b.attn, h, context, heads, a);
    if (b.down.w.data) h = conv(a, h, b.down, /*stride=*/2, /*pad=*/1);  // (N, C, H/2, W/2)
    if (b.up.w.data) h = upsample_conv(a, h, b.up);                      // (N, C, 2H, 2W)
    return h;
}

static void check_inputs(const UNetConfig& c, const Tensor& x, const Tensor& context) {
    if (x.ndim != 4 || x.shape[1] != c.in_channels || x.dtype != DType::F32)
        throw std::runtime_error("UNet: the latent must be f32 (B, " + std::to_string(c.in_channels) +
                                 ", h, w); got " + x.shape_str());
    const int64_t B = x.shape[0], H = x.shape[2], W = x.shape[3], ds = c.downscale();
    if (H % ds || W % ds || H == 0 || W == 0)
        throw std::runtime_error("UNet: latent size " + std::to_string(H) + "x" + std::to_string(W) +
                                 " is not a multiple of " + std::to_string(ds) + " (images must be multiples of " +
                                 std::to_string(ds * 8) + " pixels on each side)");
    if (context.ndim != 3 || context.shape[0] != B || context.shape[2] != c.context_dim ||
        context.dtype != DType::F32)
        throw std::runtime_error("UNet: the context must be f32 (" + std::to_string(B) + ", T, " +
                                 std::to_string(c.context_dim) + "); got " + context.shape_str());
}

// ε_θ(z_t, t, τ_θ(y)) (LDM §3.3): conv_in, the input blocks (each output kept as a skip), the middle block,
// the output blocks (each consuming the newest skip), then norm, SiLU, conv_out.
Tensor unet_forward(const UNet& u, const Tensor& x, const float* timesteps, const Tensor& context, Arena& a,
                    const Tensor* vec) {
    const UNetConfig& c = u.cfg;
    check_inputs(c, x, context);
    if (c.adm_in_channels && (!vec || vec->ndim != 2 || vec->shape[0] != x.shape[0] ||
                              vec->shape[1] != c.adm_in_channels || vec->dtype != DType::F32))
        throw std::runtime_error("UNet: this SDXL UNet needs the f32 vector y (" + std::to_string(x.shape[0]) + ", " +
                                 std::to_string(c.adm_in_channels) + ")" + (vec ? "; got " + vec->shape_str() : ""));
    if (!c.adm_in_channels && vec) throw std::runtime_error("UNet: a vector y was given, but this UNet has no label_emb");
    const int64_t B = x.shape[0];
    ArenaScope pass(a);

    // Timestep → sinusoid (cos first; DDPM's Transformer position embedding) → linear, SiLU → linear:
    // (B, temb), shared by every res block.
    Tensor t = a.alloc({B, c.model_channels});
    timestep_embedding(t.f32(), timesteps, B, c.model_channels);
    Tensor emb = pass.keep(linear(a, linear(a, t, u.time1, Act::SiLU), u.time2));  // (B, temb)
    if (c.adm_in_channels) {  // SDXL: emb += label_emb(y), the same MLP shape on the size/text vector
        ArenaScope s(a);
        add_(emb, linear(a, linear(a, *vec, u.label1, Act::SiLU), u.label2));
    }

    // Down: every input block's output is a skip, kept stacked in the arena in order.
    struct Skip { Arena::Mark at; Tensor t; };
    std::vector<Skip> skips;
    Arena::Mark at = a.mark();
    Tensor h = conv(a, x, u.conv_in);  // (B, mc, H, W)
    skips.push_back({at, h});
    for (const UNetBlock& b : u.input_blocks) {
        ArenaScope s(a);
        Tensor y = b.has_res ? resblock(b.res, h, emb, a) : h;   // (B, cout, ., .)
        h = s.keep(block_tail(b, y, context, c.heads_at(b.attn.channels), a));  // transformer; downsample
        skips.push_back({s.start(), h});
    }

    {  // Middle: res block, transformer, res block at the lowest resolution.
        ArenaScope s(a);
        Tensor y = resblock(u.mid_res1, h, emb, a);
        spatial_transformer(u.mid_attn, y, context, c.heads_at(u.mid_attn.channels), a);
        h = s.keep(resblock(u.mid_res2, y, emb, a));
    }

    // Up: each block takes the newest skip, and its output replaces that skip in the arena. Once the res block
    // has read the concatenation, the skip, the previous h and the concatenation are all dead.
    for (const UNetBlock& b : u.output_blocks) {
        Skip skip = skips.back();
        skips.pop_back();
        ArenaScope s(a, skip.at);
        Tensor y = s.keep(resblock(b.res, concat_channels(a, h, skip.t), emb, a));  // (B, cout, ., .)
        h = s.keep(block_tail(b, y, context, c.heads_at(b.attn.channels), a));     // transformer; upsample
    }
    assert(skips.empty());

    Tensor y = group_norm(a, h, u.out_norm, kResNormEps, /*silu=*/true);
    return pass.keep(conv(a, y, u.conv_out));  // (B, out, H, W)
}

}  // namespace sd
