// vae.cpp — loading and running the SD 1.x KL-f8 autoencoder (ldm's taming-style Encoder/Decoder).
//
// Memory: at 512×512 the decoder's top level holds 128-channel 512² maps (134 MB each in f32), so the pass
// keeps only what it must. The running activation x always sits where the pass began: each stage allocates its
// output above it, and s.keep() gives back everything else and moves the output down there. Same-width res
// blocks and attention add into x in place, and conv1 writes over the norm1 output it reads; a width-changing
// block takes its 1×1 shortcut first and then normalises x in place, and where the width shrinks conv1 writes
// over x too; the upsampled map is never formed. vae_decode_arena_bytes() (cost.cpp) counts the peak from the
// shapes and the pass reserves it on entry. Numbers: docs/performance.md. Left out: posterior sampling.
// Tiling, for images whose peak here would not fit, is vae_tiled.cpp.
#include "models/vae.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "models/ops.h"
#include "models/weights.h"

namespace sd {

namespace {

// ---- binding ----------------------------------------------------------------------------------------------

VaeResBlock bind_res_block(Binder& w, const std::string& p, int64_t cin, int64_t cout) {
    VaeResBlock b;
    b.norm1 = w.norm(p + "norm1", cin);
    b.conv1 = w.conv(p + "conv1", cout, cin, 3);
    b.norm2 = w.norm(p + "norm2", cout);
    b.conv2 = w.conv(p + "conv2", cout, cout, 3);
    if (cin != cout) b.skip = w.conv(p + "nin_shortcut", cout, cin, 1);
    return b;
}

// ldm stores q/k/v/proj_out as 1×1 convs (C, C, 1, 1); some converted files store Linear weights (C, C).
VaeAttn bind_attn(Binder& w, const std::string& p, int64_t C) {
    VaeAttn t;
    t.norm = w.norm(p + "norm", C);
    t.q = w.proj(p + "q", C, C);
    t.k = w.proj(p + "k", C, C);
    t.v = w.proj(p + "v", C, C);
    t.proj_out = w.proj(p + "proj_out", C, C);
    return t;
}

VaeMid bind_mid(Binder& w, const std::string& p, int64_t C) {
    VaeMid m;
    m.block_1 = bind_res_block(w, p + "block_1.", C, C);
    m.attn_1 = bind_attn(w, p + "attn_1.", C);
    m.block_2 = bind_res_block(w, p + "block_2.", C, C);
    return m;
}

// Everything the code needs to know is in the decoder's shapes: level i's width is the output width of its
// first res block; the decoder has num_res_blocks + 1 blocks per level.
VaeConfig infer_config(const WeightLoader& w) {
    VaeConfig c;
    std::vector<int64_t> conv_in = w.shape("decoder.conv_in.weight");   // (Wlast, z, 3, 3)
    std::vector<int64_t> conv_out = w.shape("decoder.conv_out.weight");  // (3, W0, 3, 3)
    if (conv_in.size() != 4 || conv_out.size() != 4)
        throw std::runtime_error(w.file().path() + ": VAE tensor '" + w.prefix() +
                                 "decoder.conv_in.weight' or 'decoder.conv_out.weight' is not 4-D");
    c.z_channels = conv_in[1];
    c.image_channels = conv_out[0];
    const int64_t levels = w.count_indexed("decoder.up."), blocks = w.count_indexed("decoder.up.0.block.");
    for (int64_t i = 0; i < levels; i++)  // throws naming the tensor if a level lacks it
        c.widths.push_back(w.shape("decoder.up." + std::to_string(i) + ".block.0.conv1.weight").at(0));
    if (c.widths.empty() || blocks < 2)
        throw std::runtime_error(w.file().path() + ": no VAE decoder levels under '" + w.prefix() +
                                 "decoder.up.N.block.M.' (need at least one level with two blocks)");
    c.num_res_blocks = blocks - 1;
    return c;
}

VaeEncoder bind_encoder(Binder& w, const VaeConfig& c) {
    const std::vector<int64_t>& W = c.widths;
    const size_t L = W.size();
    VaeEncoder e;
    e.conv_in = w.conv("encoder.conv_in", W[0], c.image_channels, 3);
    for (size_t i = 0; i < L; i++) {
        std::string p = "encoder.down." + std::to_string(i) + ".";
        VaeLevel lv;
        for (int64_t j = 0; j < c.num_res_blocks; j++) {
            int64_t cin = j == 0 ? W[i ? i - 1 : 0] : W[i];
            lv.blocks.push_back(bind_res_block(w, p + "block." + std::to_string(j) + ".", cin, W[i]));
        }
        if (i + 1 < L) lv.resample = w.conv(p + "downsample.conv", W[i], W[i], 3);
        e.down.push_back(std::move(lv));
    }
    e.mid = bind_mid(w, "encoder.mid.", W[L - 1]);
    e.norm_out = w.norm("encoder.norm_out", W[L - 1]);
    e.conv_out = w.conv("encoder.conv_out", 2 * c.z_channels, W[L - 1], 3);
    return e;
}

VaeDecoder bind_decoder(Binder& w, const VaeConfig& c) {
    const std::vector<int64_t>& W = c.widths;
    const size_t L = W.size();
    VaeDecoder d;
    d.conv_in = w.conv("decoder.conv_in", W[L - 1], c.z_channels, 3);
    d.mid = bind_mid(w, "decoder.mid.", W[L - 1]);
    for (size_t i = 0; i < L; i++) {
        std::string p = "decoder.up." + std::to_string(i) + ".";
        VaeLevel lv;
        for (int64_t j = 0; j <= c.num_res_blocks; j++) {
            int64_t cin = j == 0 ? W[i + 1 < L ? i + 1 : L - 1] : W[i];
            lv.blocks.push_back(bind_res_block(w, p + "block." + std::to_string(j) + ".", cin, W[i]));
        }
        if (i > 0) lv.resample = w.conv(p + "upsample.conv", W[i], W[i], 3);
        d.up.push_back(std::move(lv));
    }
    d.norm_out = w.norm("decoder.norm_out", W[0]);
    d.conv_out = w.conv("decoder.conv_out", c.image_channels, W[0], 3);
    return d;
}

// ---- forward ----------------------------------------------------------------------------------------------

constexpr float kEps = 1e-6f;  // ldm Normalize(): GroupNorm(num_groups=32, eps=1e-6) — not torch's 1e-5

// x (N, Cin, H, W), the arena's top allocation → (N, Cout, H, W). Consumes x (its memory is reused).
Tensor res_block(const VaeResBlock& b, Tensor x, Arena& a) {
    const int64_t N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3], Cout = b.conv1.w.shape[0];
    if (!b.skip.w.data) {  // same width: x += conv2(silu(norm2(conv1(silu(norm1(x)))))), in place
        ArenaScope s(a);
        Tensor h = group_norm(a, x, b.norm1, kEps, /*silu=*/true);  // (N, C, H, W)
        conv_into(a, h, h, b.conv1);                         // conv1 over its own input
        group_norm_(h, b.norm2, kEps, /*silu=*/true);
        conv_into(a, x, h, b.conv2, /*accumulate=*/true);    // x += conv2(h)
        return x;
    }
    // Width changes: take the 1×1 shortcut first; x is then not needed again and is normalised in place, and
    // where the width shrinks (the decoder) conv1 writes its result over x instead of into a map of its own.
    Tensor out = conv(a, x, b.skip);  // (N, Cout, H, W)
    ArenaScope s(a);
    group_norm_(x, b.norm1, kEps, /*silu=*/true);
    Tensor h = Cout <= Cin ? Tensor::view_of(x.data, {N, Cout, H, W}) : a.alloc({N, Cout, H, W});
    conv_into(a, h, x, b.conv1);
    group_norm_(h, b.norm2, kEps, /*silu=*/true);
    conv_into(a, out, h, b.conv2, /*accumulate=*/true);      // out = skip(x) + conv2(h)
    return out;
}

// x (N, C, H, W) += proj_out(softmax(q kᵀ / sqrt(C)) v), q/k/v = 1×1 convs of norm(x): one head, the H·W
// positions as tokens. Computed in token layout (N, HW, C), where the 1×1 convs are Linear layers. In place.
Tensor attn_block(const VaeAttn& p, Tensor x, Arena& a) {
    ArenaScope s(a);
    Tensor h = group_norm_tokens(a, x, p.norm, kEps);  // (N, HW, C)
    Tensor q = linear(a, h, p.q);                      // (N, HW, C)
    Tensor k = linear(a, h, p.k);                      // (N, HW, C)
    Tensor v = linear(a, h, p.v);                      // (N, HW, C)
    add_tokens_(x, linear(a, attention(a, q, k, v, /*heads=*/1), p.proj_out));  // x += proj_out(o)
    return x;
}

// x (N, C, H, W) → (N, C, H+1, W+1): zeros appended on the right and at the bottom, as ldm's Downsample does
// (F.pad(x, (0, 1, 0, 1))) before its unpadded stride-2 conv; the conv kernel pads symmetrically only.
Tensor pad_right_bottom(Arena& a, const Tensor& x) {
    int64_t NC = x.shape[0] * x.shape[1], H = x.shape[2], W = x.shape[3];
    Tensor y = a.alloc({x.shape[0], x.shape[1], H + 1, W + 1});
    float* dst = y.f32();
    const float* src = x.f32();
    for (int64_t c = 0; c < NC; c++) {
        for (int64_t i = 0; i < H; i++, dst += W + 1, src += W) {
            std::memcpy(dst, src, W * sizeof(float));
            dst[W] = 0.0f;
        }
        std::memset(dst, 0, (W + 1) * sizeof(float));
        dst += W + 1;
    }
    return y;
}

Tensor mid_forward(const VaeMid& m, Tensor x, Arena& a) {
    x = res_block(m.block_1, x, a);
    x = attn_block(m.attn_1, x, a);
    return res_block(m.block_2, x, a);
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------------------------

Vae load_vae(const SafeTensors& st, const std::string& prefix) {
    std::string p = prefix;
    if (p.empty() && st.has("first_stage_model.decoder.conv_in.weight")) p = "first_stage_model.";
    WeightLoader file(st, p);
    Binder w(file);
    Vae vae;
    vae.cfg = infer_config(file);
    const int64_t z = vae.cfg.z_channels;
    vae.has_encoder = file.has("encoder.conv_in.weight");
    if (vae.has_encoder) {
        vae.encoder = bind_encoder(w, vae.cfg);
        vae.quant_conv = w.conv("quant_conv", 2 * z, 2 * z, 1);
    }
    vae.post_quant_conv = w.conv("post_quant_conv", z, z, 1);
    vae.decoder = bind_decoder(w, vae.cfg);
    return vae;
}

// D(z): decoder(post_quant_conv(z / scale)), from the UNet's latent scale back to the autoencoder's.
Tensor vae_decode(const Vae& vae, const Tensor& z, Arena& a) {
    check_input(z, vae.cfg.z_channels, "vae_decode");
    const VaeDecoder& d = vae.decoder;
    reserve(a, vae_decode_arena_bytes(vae, z.shape[0], z.shape[2], z.shape[3]));
    ArenaScope s(a);  // the running activation x always starts where s does
    Tensor x = a.alloc(z.dims());  // (B, z, h, w)
    const float* zp = z.f32();
    float* xp = x.f32();
    for (int64_t i = 0; i < z.numel(); i++) xp[i] = zp[i] / vae.scale;
    x = s.keep(conv(a, x, vae.post_quant_conv));  // (B, z, h, w)
    x = s.keep(conv(a, x, d.conv_in));            // (B, Wlast, h, w)
    x = mid_forward(d.mid, x, a);                        // (B, Wlast, h, w)
    for (size_t i = d.up.size(); i-- > 0;) {  // the deepest level first
        for (const VaeResBlock& b : d.up[i].blocks) x = s.keep(res_block(b, x, a));  // (B, W[i], ., .)
        if (d.up[i].resample.w.data) x = s.keep(upsample_conv(a, x, d.up[i].resample));  // (B, W[i], 2·, 2·)
    }
    group_norm_(x, d.norm_out, kEps, /*silu=*/true);
    return s.keep(conv(a, x, d.conv_out));  // (B, 3, 8h, 8w)
}

// E(x): the posterior mean μ, scaled by vae.scale (0.18215 for SD 1.x) into the UNet's latent space.
Tensor vae_encode(const Vae& vae, const Tensor& img, Arena& a) {
    if (!vae.has_encoder) throw std::runtime_error("vae_encode: this VAE has no encoder weights");
    check_input(img, vae.cfg.image_channels, "vae_encode");
    // Any size of at least one latent pixel: each downsampling floors the side (as ldm's, on the webui's
    // latent-upscale path, which encodes the image at its own size).
    const int64_t factor = vae.cfg.downscale();
    if (img.shape[2] < factor || img.shape[3] < factor)
        throw std::runtime_error("vae_encode: image size " + std::to_string(img.shape[3]) + "x" +
                                 std::to_string(img.shape[2]) + " is smaller than " + std::to_string(factor) + " pixels a side");
    const VaeEncoder& e = vae.encoder;
    const int64_t z = vae.cfg.z_channels;
    reserve(a, vae_encode_arena_bytes(vae, img.shape[0], img.shape[2], img.shape[3]));
    ArenaScope s(a);  // the running activation x always starts where s does
    Tensor x = conv(a, img, e.conv_in);  // (B, W0, H, W)
    for (const VaeLevel& lv : e.down) {
        for (const VaeResBlock& b : lv.blocks) x = s.keep(res_block(b, x, a));
        if (lv.resample.w.data) {
            x = s.keep(pad_right_bottom(a, x));                                    // (B, C, H+1, W+1)
            x = s.keep(conv(a, x, lv.resample, /*stride=*/2, /*pad=*/0));  // (B, C, H/2, W/2)
        }
    }
    x = mid_forward(e.mid, x, a);
    group_norm_(x, e.norm_out, kEps, /*silu=*/true);
    x = s.keep(conv(a, x, e.conv_out));  // (B, 2z, h, w): mean μ, log-variance
    // Only the mean is wanted: the first z output channels of quant_conv, i.e. the first z rows of its weight.
    Conv mean{Tensor::view_of(vae.quant_conv.w.data, {z, 2 * z, 1, 1}, vae.quant_conv.w.dtype),
              Tensor::view_of(vae.quant_conv.b.data, {z}, DType::F32), {}};
    x = s.keep(conv(a, x, mean));  // (B, z, h, w)
    float* xp = x.f32();
    for (int64_t i = 0; i < x.numel(); i++) xp[i] *= vae.scale;  // into UNet space
    return x;
}

}  // namespace sd
