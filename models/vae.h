// vae.h — the SD 1.x first-stage autoencoder (ldm AutoencoderKL, "KL-f8"): image (3, H, W) ↔ latent (4, H/8, W/8).
//
// The perceptual compression of Rombach et al. 2022 (LDM), §3.1: an encoder E and a decoder D
// with x ≈ D(E(x)), the latent 8× smaller on each side; the "KL" variant regularises the latent with a slight
// KL penalty towards N(0, I), as in the variational autoencoder of Kingma & Welling 2014 ("Auto-Encoding
// Variational Bayes": a Gaussian encoder q(z|x) = N(z; μ, σ²I) whose mean and
// log-variance are the encoder's 2·z output channels). Here the encoder returns the mean μ (no sampling). FLOP counts and
// arena needs: models/cost.h.
//
// Weights are bound by their ldm single-file names ("first_stage_model.encoder.down.0.block.1.conv2.weight", ...),
// views into the mapped checkpoint, which must outlive the Vae. The configuration (block widths per level,
// res blocks per level, latent channels) is read off the tensor shapes, so the same code loads the real 83M VAE
// (widths 128/256/512/512) and tiny test ones. Left out: sampling from the posterior (encode returns the mean),
// attention at levels other than mid (SD's VAE has none), diffusers key names (renamed elsewhere).
// Tiled decoding and encoding for large images: vae_tiled.cpp.
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
    int64_t downscale() const { return int64_t(1) << (widths.size() - 1); }  // image side / latent side: 8
};

// norm1 → SiLU → conv1 → norm2 → SiLU → conv2, plus x (through a 1×1 nin_shortcut when widths differ).
struct VaeResBlock {
    Norm norm1;   // (Cin)
    Conv conv1;   // (Cout, Cin, 3, 3), (Cout)
    Norm norm2;   // (Cout)
    Conv conv2;   // (Cout, Cout, 3, 3), (Cout)
    Conv skip;    // nin_shortcut (Cout, Cin, 1, 1), (Cout); empty when Cin == Cout
};

// Single-head self-attention over the H·W positions, channels as features; q/k/v/proj_out are 1×1 convs,
// kept here as (C, C) matrices (the same bytes as (C, C, 1, 1)).
struct VaeAttn {
    Norm norm;        // (C)
    Linear q, k, v;   // (C, C), (C)
    Linear proj_out;  // (C, C), (C)
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
    Conv resample;    // (C, C, 3, 3), (C); empty where the level does not resample
};

struct VaeEncoder {
    Conv conv_in;                // (W0, 3, 3, 3), (W0)
    std::vector<VaeLevel> down;  // down[i] ends at widths[i]
    VaeMid mid;
    Norm norm_out;               // (Wlast)
    Conv conv_out;               // (2z, Wlast, 3, 3), (2z)
};

struct VaeDecoder {
    Conv conv_in;                // (Wlast, z, 3, 3), (Wlast)
    VaeMid mid;
    std::vector<VaeLevel> up;    // up[i] ends at widths[i]; run from the last index down to 0
    Norm norm_out;               // (W0)
    Conv conv_out;               // (3, W0, 3, 3), (3)
};

struct Vae {
    VaeConfig cfg;
    bool has_encoder = false;  // some VAE files ship the decoder only
    VaeEncoder encoder;
    Conv quant_conv;           // (2z, 2z, 1, 1), (2z); empty without encoder
    Conv post_quant_conv;      // (z, z, 1, 1), (z)
    VaeDecoder decoder;
    float scale = kVaeScale;   // the UNet's latent = scale × the VAE's: 0.18215 SD 1.x/2.x, 0.13025 SDXL
};

// Binds the VAE in `st` under `prefix`; an empty prefix means: "first_stage_model." if the file has it,
// else no prefix (a standalone ldm-named VAE file). Throws naming any missing or misshaped tensor.
Vae load_vae(const SafeTensors& st, const std::string& prefix = "");

// z (B, z, h, w), the UNet-space latent → image (B, 3, 8h, 8w), ≈[-1, 1], not clamped.
// = decoder(post_quant_conv(z / vae.scale)). The result is allocated in `arena` where the arena's top was on
// entry; everything else the pass used is released again.
Tensor vae_decode(const Vae& vae, const Tensor& z, Arena& arena);

// vae_decode for latents too large for one pass: overlapping tile × tile latent tiles (neighbours overlap by at
// least `overlap_latent`; border tiles shifted inward, all one size), each decoded by vae_decode, cross-faded
// over the overlaps. The arena holds the output plus one tile's pass (vae_decode_tiled_arena_bytes), whatever
// the image size. An approximation of vae_decode (each tile's GroupNorm statistics and attention see only the
// tile); exactly vae_decode when one tile covers the latent. Throws unless 1 <= tile and 0 <= overlap < tile.
Tensor vae_decode_tiled(const Vae& vae, const Tensor& z, Arena& arena, int tile_latent = 64, int overlap_latent = 16);
// vae_encode for images too large for one pass (vae_tiled.cpp): the pixel tiles of tile × tile latent tiles
// placed as vae_decode_tiled's, each encoded by vae_encode, the latents cross-faded with the same ramps. An
// approximation of vae_encode (per-tile GroupNorm statistics and attention); exactly vae_encode when one tile covers
// the image. H and W multiples of 8. Throws unless 1 <= tile and 0 <= overlap < tile.
Tensor vae_encode_tiled(const Vae& vae, const Tensor& img, Arena& arena, int tile_latent = 64, int overlap_latent = 16);
// Throws unless 1 <= tile and 0 <= overlap < tile (both in latent pixels).
void vae_check_tiling(int tile_latent, int overlap_latent);
// Where tiles of `tile` start along an axis of `length` (latent pixels): the fewest tiles with overlaps of at
// least `overlap`, spread evenly, the first at 0 and the last ending at `length`; {0} when one tile covers it.
std::vector<int64_t> vae_tile_starts(int64_t length, int64_t tile, int64_t overlap);

// img (B, 3, H, W) in [-1, 1], H, W >= 8 → latent (B, z, H/8, W/8) in UNet space (each stride-2 downsampling,
// after ldm's right/bottom zero pad, floors an odd side: floor(H/8) for any H):
// vae.scale × the posterior mean (the first z of quant_conv's 2z output channels).
Tensor vae_encode(const Vae& vae, const Tensor& img, Arena& arena);

}  // namespace sd

#include "models/cost.h"
