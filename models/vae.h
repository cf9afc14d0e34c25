// vae.h — the SD 1.x first-stage autoencoder (ldm AutoencoderKL, "KL-f8"): image (3, H, W) ↔ latent (4, H/8, W/8).
//
// Weights are bound by their ldm single-file names ("first_stage_model.encoder.down.0.block.1.conv2.weight", ...),
// views into the mapped checkpoint, which must outlive the Vae. The configuration (block widths per level,
// res blocks per level, latent channels) is read off the tensor shapes, so the same code loads the real 83M VAE
// (widths 128/256/512/512) and tiny test ones. Left out: sampling from the posterior (encode returns the mean),
// attention at levels other than mid (SD's VAE has none), diffusers key names (renamed elsewhere).
// Tiled decoding for large images: vae_tiled.cpp.
#pragma once
#include <string>
#include <vector>

#include "models/weights.h"
#include "tensor.h"

namespace sd {

// The SD 1.x latent scale: the UNet sees 0.18215 × the VAE's latent.
constexpr float kVaeScale = 0.18215f;

struct VaeConfig {
    std::vector<int64_t> widths;  // output channels of each resolution level, top (full resolution) first
    int64_t num_res_blocks = 0;   // per encoder level; the decoder has one more per level
    int64_t z_channels = 0;       // 4: latent channels (the encoder makes 2·z: mean and log-variance)
    int64_t image_channels = 0;   // 3
};

// norm1 → SiLU → conv1 → norm2 → SiLU → conv2, plus x (through a 1×1 nin_shortcut when widths differ).
struct VaeResBlock {
    Tensor norm1_w, norm1_b;  // (Cin)
    Tensor conv1_w, conv1_b;  // (Cout, Cin, 3, 3), (Cout)
    Tensor norm2_w, norm2_b;  // (Cout)
    Tensor conv2_w, conv2_b;  // (Cout, Cout, 3, 3), (Cout)
    Tensor skip_w, skip_b;    // nin_shortcut (Cout, Cin, 1, 1), (Cout); empty when Cin == Cout
};

// Single-head self-attention over the H·W positions, channels as features; q/k/v/proj_out are 1×1 convs,
// kept here as (C, C) matrices (the same bytes as (C, C, 1, 1)).
struct VaeAttn {
    Tensor norm_w, norm_b;  // (C)
    Tensor q_w, q_b;        // (C, C), (C)
    Tensor k_w, k_b;        // (C, C), (C)
    Tensor v_w, v_b;        // (C, C), (C)
    Tensor proj_w, proj_b;  // (C, C), (C)
};

struct VaeMid {
    VaeResBlock block_1;
    VaeAttn attn_1;
    VaeResBlock block_2;
};

// One resolution level: res blocks, then (all but the last encoder level / the first decoder level) a
// resampling conv: encoder stride-2 3×3 after padding right and bottom by one; decoder nearest 2× then 3×3.
struct VaeLevel {
    std::vector<VaeResBlock> blocks;
    Tensor resample_w, resample_b;  // (C, C, 3, 3), (C); empty where the level does not resample
};

struct VaeEncoder {
    Tensor conv_in_w, conv_in_b;    // (W0, 3, 3, 3), (W0)
    std::vector<VaeLevel> down;     // down[i] ends at widths[i]
    VaeMid mid;
    Tensor norm_out_w, norm_out_b;  // (Wlast)
    Tensor conv_out_w, conv_out_b;  // (2z, Wlast, 3, 3), (2z)
};

struct VaeDecoder {
    Tensor conv_in_w, conv_in_b;    // (Wlast, z, 3, 3), (Wlast)
    VaeMid mid;
    std::vector<VaeLevel> up;       // up[i] ends at widths[i]; run from the last index down to 0
    Tensor norm_out_w, norm_out_b;  // (W0)
    Tensor conv_out_w, conv_out_b;  // (3, W0, 3, 3), (3)
};

struct Vae {
    VaeConfig cfg;
    bool has_encoder = false;  // some VAE files ship the decoder only
    VaeEncoder encoder;
    Tensor quant_conv_w, quant_conv_b;            // (2z, 2z, 1, 1), (2z); empty without encoder
    Tensor post_quant_conv_w, post_quant_conv_b;  // (z, z, 1, 1), (z)
    VaeDecoder decoder;
};

// Binds the VAE in `st` under `prefix`; an empty prefix means: "first_stage_model." if the file has it,
// else no prefix (a standalone ldm-named VAE file). Throws naming any missing or misshaped tensor.
Vae load_vae(const SafeTensors& st, const std::string& prefix = "");

// z (B, z, h, w), the UNet-space latent → image (B, 3, 8h, 8w), ≈[-1, 1], not clamped.
// = decoder(post_quant_conv(z / 0.18215)). The result is allocated in `arena` where the arena's top was on
// entry; everything else the pass used is released again.
Tensor vae_decode(const Vae& vae, const Tensor& z, Arena& arena);

// vae_decode for latents too large for one pass: overlapping tile × tile latent tiles (neighbours overlap by at
// least `overlap_latent`; border tiles shifted inward, all one size), each decoded by vae_decode, cross-faded
// over the overlaps. The arena holds the output plus one tile's pass (vae_decode_tiled_arena_bytes), whatever
// the image size. An approximation of vae_decode (each tile's GroupNorm statistics and attention see only the
// tile); exactly vae_decode when one tile covers the latent. Throws unless 1 <= tile and 0 <= overlap < tile.
Tensor vae_decode_tiled(const Vae& vae, const Tensor& z, Arena& arena, int tile_latent = 64, int overlap_latent = 16);
size_t vae_decode_tiled_arena_bytes(const Vae& vae, int64_t B, int64_t h, int64_t w, int tile_latent = 64,
                                    int overlap_latent = 16);
// Where tiles of `tile` start along an axis of `length` (latent pixels): the fewest tiles with overlaps of at
// least `overlap`, spread evenly, the first at 0 and the last ending at `length`; {0} when one tile covers it.
std::vector<int64_t> vae_tile_starts(int64_t length, int64_t tile, int64_t overlap);

// img (B, 3, H, W) in [-1, 1], H and W multiples of 8 → latent (B, z, H/8, W/8) in UNet space:
// 0.18215 × the posterior mean (the first z of quant_conv's 2z output channels).
Tensor vae_encode(const Vae& vae, const Tensor& img, Arena& arena);

// The most arena memory the pass holds at once (bytes), from the layer shapes: what a caller should size its
// arena to. vae_decode / vae_encode reserve it on entry, so a fresh arena grows once rather than stage by stage.
size_t vae_decode_arena_bytes(const Vae& vae, int64_t B, int64_t h, int64_t w);
size_t vae_encode_arena_bytes(const Vae& vae, int64_t B, int64_t H, int64_t W);

// Multiply-adds ×2 of one decode of a (B, z, h, w) latent / one encode of a (B, 3, H, W) image, counted from
// the layer shapes: conv 2·Cout·Cin·k²·Ho·Wo, attention 4·N²·C (QKᵀ and AV); norms and adds left out.
double vae_decode_flops(const Vae& vae, int64_t B, int64_t h, int64_t w);
double vae_encode_flops(const Vae& vae, int64_t B, int64_t H, int64_t W);

}  // namespace sd
