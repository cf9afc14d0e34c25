// cost.cpp — FLOP counts and arena-byte needs of the model passes, from the layer shapes (see cost.h). Each
// count walks the network in the order its forward pass runs; a change to a forward's memory scheme must be
// mirrored here, which the arena-peak tests (tests/test_vae.cpp, test_vae_tiled.cpp) check.
#include "models/cost.h"

#include <algorithm>
#include <vector>

#include "models/clip.h"
#include "models/unet.h"
#include "models/vae.h"

namespace sd {

// ---- UNet ---------------------------------------------------------------------------------------------------

double unet_flops(const UNet& u, int64_t B, int64_t h, int64_t w, int64_t T) {
    const UNetConfig& c = u.cfg;
    auto conv = [&](double cout, double cin, double k, double ho, double wo) { return 2 * B * cout * cin * k * k * ho * wo; };
    auto linear = [](double M, double N, double K) { return 2 * M * N * K; };
    auto res = [&](const UNetBlockPlan& p, double H, double W) {
        return conv(p.cout, p.cin, 3, H, W) + conv(p.cout, p.cout, 3, H, W) +
               (p.cin != p.cout ? conv(p.cout, p.cin, 1, H, W) : 0) + linear(B, p.cout, c.time_embed_dim);
    };
    auto transformer = [&](double C, double H, double W, int depth) {
        double L = H * W, rows = B * L;
        double f = 2 * linear(rows, C, C);  // proj_in, proj_out
        double self = 4 * linear(rows, C, C) + B * 4 * L * L * C;  // q, k, v, out; QKᵀ and AV (heads·D = C)
        double cross = 2 * linear(rows, C, C) + 2 * linear(B * T, C, c.context_dim) + B * 4 * L * T * C;
        double ff = linear(rows, 8 * C, C) + linear(rows, C, 4 * C);
        return f + depth * (self + cross + ff);
    };

    std::vector<UNetBlockPlan> down, up;
    unet_plan(c, down, up);
    double mc = c.model_channels;
    double f = linear(B, c.time_embed_dim, mc) + linear(B, c.time_embed_dim, c.time_embed_dim);
    if (c.adm_in_channels)  // SDXL's label_emb
        f += linear(B, c.time_embed_dim, c.adm_in_channels) + linear(B, c.time_embed_dim, c.time_embed_dim);
    f += conv(mc, c.in_channels, 3, h, w);
    for (const UNetBlockPlan& p : down) {
        double H = h >> p.level, W = w >> p.level;
        if (p.res) f += res(p, H, W);
        if (p.attn) f += transformer(p.cout, H, W, c.transformer_depth[p.level]);
        if (p.down) f += conv(p.cout, p.cin, 3, H / 2, W / 2);
    }
    UNetBlockPlan mid;
    mid.cin = mid.cout = down.back().cout;
    double Hm = h >> (c.levels() - 1), Wm = w >> (c.levels() - 1);
    f += 2 * res(mid, Hm, Wm) + transformer(mid.cout, Hm, Wm, c.middle_depth);
    for (const UNetBlockPlan& p : up) {
        double H = h >> p.level, W = w >> p.level;
        f += res(p, H, W);
        if (p.attn) f += transformer(p.cout, H, W, c.transformer_depth[p.level]);
        if (p.up) f += conv(p.cout, p.cout, 3, 2 * H, 2 * W);
    }
    f += conv(c.out_channels, mc, 3, h, w);
    return f;
}

// ---- VAE: memory --------------------------------------------------------------------------------------------

namespace {

// What each stage of vae_decode / vae_encode holds at once (vae.cpp's memory scheme), the largest kept.
struct PeakMeter {
    int64_t B;
    size_t peak = 0;
    size_t map(int64_t C, int64_t h, int64_t w) const { return floats(B * C * h * w); }
    static size_t floats(int64_t n) { return ((size_t)n * 4 + 63) & ~size_t(63); }  // as Arena::bytes rounds
    void stage(size_t live) { peak = live > peak ? live : peak; }
    size_t conv_scratch(ConvShape s) const {
        s.N = B;
        return floats((int64_t)conv_scratch_floats(choose_conv(s), s));
    }
    size_t conv3x3_scratch(int64_t cin, int64_t c, int64_t h, int64_t w) const {
        ConvShape s;
        s.Cin = cin, s.H = h, s.W = w, s.Cout = c;
        return conv_scratch(s);
    }
    size_t upsample_conv_scratch(int64_t cin, int64_t c, int64_t h, int64_t w) const {
        ConvShape s;
        s.Cin = cin, s.H = h, s.W = w, s.Cout = c, s.upsample2x = true;
        return conv_scratch(s);
    }
    // res_block: same width: x and the norm1 output (conv1 writes over it), plus a conv's scratch; else x and the
    // shortcut output, conv1's output unless it writes over x (narrowing), plus a conv's scratch.
    void res_block(int64_t cin, int64_t c, int64_t h, int64_t w) {
        size_t scratch = std::max(conv3x3_scratch(cin, c, h, w), conv3x3_scratch(c, c, h, w));
        if (cin == c) stage(2 * map(c, h, w) + scratch);
        else stage(map(cin, h, w) + map(c, h, w) + (c < cin ? 0 : map(c, h, w)) + scratch);
    }
    // mid: its res blocks, and attention's x, normed tokens, q, k, v, attention output, projection.
    void mid(int64_t C, int64_t h, int64_t w) {
        res_block(C, C, h, w);
        stage(7 * map(C, h, w));
    }
};

}  // namespace

size_t vae_decode_arena_bytes(const Vae& vae, int64_t B, int64_t h, int64_t w) {
    const std::vector<int64_t>& W = vae.cfg.widths;
    const int64_t z = vae.cfg.z_channels;
    PeakMeter m{B};
    m.stage(2 * m.map(z, h, w));                          // scaled z, post_quant_conv output
    m.stage(m.map(z, h, w) + m.map(W.back(), h, w) + m.conv3x3_scratch(z, W.back(), h, w));  // conv_in
    m.mid(W.back(), h, w);
    int64_t cin = W.back();
    for (size_t i = W.size(); i-- > 0;) {
        for (int64_t j = 0; j <= vae.cfg.num_res_blocks; j++, cin = W[i]) m.res_block(cin, W[i], h, w);
        if (i > 0) {  // x, the upsampling conv's output and its scratch
            m.stage(m.map(W[i], h, w) + m.map(W[i], 2 * h, 2 * w) + m.upsample_conv_scratch(W[i], W[i], h, w));
            h *= 2, w *= 2;
        }
    }
    m.stage(m.map(W[0], h, w) + m.map(vae.cfg.image_channels, h, w) +  // conv_out
            m.conv3x3_scratch(W[0], vae.cfg.image_channels, h, w));
    return m.peak;
}

size_t vae_encode_arena_bytes(const Vae& vae, int64_t B, int64_t H, int64_t W_) {
    const std::vector<int64_t>& W = vae.cfg.widths;
    const int64_t z = vae.cfg.z_channels;
    PeakMeter m{B};
    int64_t h = H, w = W_, cin = W[0];
    m.stage(m.map(W[0], h, w) + m.conv3x3_scratch(vae.cfg.image_channels, W[0], h, w));  // conv_in; image: caller's
    for (size_t i = 0; i < W.size(); i++) {
        for (int64_t j = 0; j < vae.cfg.num_res_blocks; j++, cin = W[i]) m.res_block(cin, W[i], h, w);
        if (i + 1 < W.size()) {  // x and its padded copy, then that and the stride-2 conv output
            m.stage(m.map(W[i], h, w) + m.map(W[i], h + 1, w + 1));
            m.stage(m.map(W[i], h + 1, w + 1) + m.map(W[i], h / 2, w / 2));
            h /= 2, w /= 2;
        }
    }
    m.mid(W.back(), h, w);
    m.stage(m.map(W.back(), h, w) + m.map(2 * z, h, w) + m.conv3x3_scratch(W.back(), 2 * z, h, w));  // conv_out
    m.stage(m.map(2 * z, h, w) + m.map(z, h, w));         // the mean half of quant_conv
    return m.peak;
}

size_t vae_decode_tiled_arena_bytes(const Vae& vae, int64_t B, int64_t h, int64_t w, int tile_latent,
                                    int overlap_latent) {
    vae_check_tiling(tile_latent, overlap_latent);
    if (h <= tile_latent && w <= tile_latent) return vae_decode_arena_bytes(vae, B, h, w);  // one plain pass
    const int64_t f = vae.cfg.downscale(), th = std::min<int64_t>(h, tile_latent), tw = std::min<int64_t>(w, tile_latent);
    return PeakMeter::floats(B * vae.cfg.image_channels * h * f * w * f) +  // the output
           PeakMeter::floats(B * vae.cfg.z_channels * th * tw) +            // one tile's latent
           vae_decode_arena_bytes(vae, B, th, tw);                          // its decode
}

int vae_decode_tile(const Vae& vae, int64_t h, int64_t w, size_t budget, int overlap_latent) {
    const int64_t L = std::max(h, w);
    for (int64_t k = 2;; k++) {
        const int64_t tile = (L + (k - 1) * overlap_latent + k - 1) / k;
        if (tile <= 64) return 64;
        if (vae_decode_tiled_arena_bytes(vae, 1, h, w, (int)tile, overlap_latent) <= budget) return (int)tile;
    }
}

// ---- txt2img: working memory -------------------------------------------------------------------------------

size_t txt2img_working_bytes(const UNet& unet, const Vae& vae, int64_t width, int64_t height, bool taesd,
                             int vae_tile) {
    const int64_t h = height / 8, w = width / 8;
    // UNet (batch 2): the largest level holds ~ a dozen (2, C0, h, w) maps plus the skip stack, and one
    // attention tile set per thread; measured arena peaks scale with h·w.
    size_t u = (size_t)2 * unet.cfg.model_channels * h * w * sizeof(float) * 40;
    size_t v = taesd       ? (size_t)64 * 4 * width * height * sizeof(float)
               : vae_tile ? vae_decode_tiled_arena_bytes(vae, 1, h, w, vae_tile)
                           : vae_decode_arena_bytes(vae, 1, h, w);
    return std::max(u, v) + ((size_t)256 << 20);
}

// ---- VAE: FLOPs ---------------------------------------------------------------------------------------------

namespace {

// 2 × multiply-adds of a conv or linear weight applied at `positions` output positions: 2·Cout·Cin·k²·positions.
double weight_flops(const Tensor& w, double positions) { return w.data ? 2.0 * (double)w.numel() * positions : 0.0; }

double res_block_flops(const VaeResBlock& b, double positions) {
    return weight_flops(b.conv1.w, positions) + weight_flops(b.conv2.w, positions) + weight_flops(b.skip.w, positions);
}

double mid_flops(const VaeMid& m, double B, double HW) {
    const VaeAttn& t = m.attn_1;
    double C = (double)t.q.w.shape[0];
    double attn = weight_flops(t.q.w, B * HW) + weight_flops(t.k.w, B * HW) + weight_flops(t.v.w, B * HW) +
                  weight_flops(t.proj_out.w, B * HW) + B * 4.0 * HW * HW * C;  // QKᵀ and AV
    return res_block_flops(m.block_1, B * HW) + attn + res_block_flops(m.block_2, B * HW);
}

}  // namespace

double vae_decode_flops(const Vae& vae, int64_t B, int64_t h, int64_t w) {
    const VaeDecoder& d = vae.decoder;
    double pos = (double)(B * h * w);  // output positions at the current resolution
    double f = weight_flops(vae.post_quant_conv.w, pos) + weight_flops(d.conv_in.w, pos);
    f += mid_flops(d.mid, (double)B, (double)(h * w));
    for (size_t i = d.up.size(); i-- > 0;) {
        for (const VaeResBlock& b : d.up[i].blocks) f += res_block_flops(b, pos);
        if (d.up[i].resample.w.data) {
            pos *= 4;
            f += weight_flops(d.up[i].resample.w, pos);
        }
    }
    return f + weight_flops(d.conv_out.w, pos);
}

double vae_encode_flops(const Vae& vae, int64_t B, int64_t H, int64_t W) {
    if (!vae.has_encoder) return 0.0;
    const VaeEncoder& e = vae.encoder;
    double pos = (double)(B * H * W);
    double f = weight_flops(e.conv_in.w, pos);
    int64_t h = H, w = W;
    for (const VaeLevel& lv : e.down) {
        for (const VaeResBlock& b : lv.blocks) f += res_block_flops(b, pos);
        if (lv.resample.w.data) {
            h /= 2, w /= 2;
            pos = (double)(B * h * w);
            f += weight_flops(lv.resample.w, pos);
        }
    }
    f += mid_flops(e.mid, (double)B, (double)(h * w));
    return f + weight_flops(e.conv_out.w, pos) + weight_flops(vae.quant_conv.w, pos) / 2;  // mean half only
}

// ---- CLIP ---------------------------------------------------------------------------------------------------

double clip_encode_flops(const ClipConfig& c) {
    const double T = (double)c.positions, C = (double)c.width, F = (double)c.mlp;
    double per_layer = 2 * T * C * C * 4       // q, k, v, out projections
                       + 2 * T * C * F * 2     // fc1, fc2
                       + 2 * T * T * C * 2;    // QKᵀ and AV (causal masking not subtracted)
    return per_layer * (double)c.layers;
}

double open_clip_encode_flops(const ClipConfig& c, int64_t run) {
    const double T = (double)c.positions, C = (double)c.width, F = (double)c.mlp;
    double per_layer = 2 * T * C * C * 4 + 2 * T * C * F * 2 + 2 * T * T * C * 2;  // as clip_encode_flops
    return per_layer * (double)run;
}

}  // namespace sd
