// cost.h — what a pass costs, counted from the layer shapes: floating-point operations (for GFLOP/s figures
// against the machine's peak) and arena bytes (what a caller sizes its arena to). Kept apart from the
// networks so that a forward pass reads as the network only; all of it lives in models/cost.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sd {

struct UNet;
struct Vae;
struct ClipConfig;

// Floating-point operations of one unet_forward (2 per multiply-add): convolutions, linears and the two
// attention products; norms and elementwise ops are not counted. Depends only on unet.cfg.
double unet_flops(const UNet& unet, int64_t B, int64_t h, int64_t w, int64_t T);

// Multiply-adds ×2 of one decode of a (B, z, h, w) latent / one encode of a (B, 3, H, W) image, counted from
// the layer shapes: conv 2·Cout·Cin·k²·Ho·Wo, attention 4·N²·C (QKᵀ and AV); norms and adds left out.
double vae_decode_flops(const Vae& vae, int64_t B, int64_t h, int64_t w);
double vae_encode_flops(const Vae& vae, int64_t B, int64_t H, int64_t W);

// The most arena memory a VAE pass holds at once (bytes), from the layer shapes: what a caller should size its
// arena to. vae_decode / vae_encode reserve it on entry, so a fresh arena grows once rather than stage by stage.
size_t vae_decode_arena_bytes(const Vae& vae, int64_t B, int64_t h, int64_t w);
size_t vae_encode_arena_bytes(const Vae& vae, int64_t B, int64_t H, int64_t W);
// vae_decode_tiled's: the output image plus one tile's latent and decode, whatever the image size.
size_t vae_decode_tiled_arena_bytes(const Vae& vae, int64_t B, int64_t h, int64_t w, int tile_latent = 64,
                                    int overlap_latent = 16);

// The square tile (latent pixels) a tiled decode of an h × w latent uses: the fewest tiles per axis, k, whose pass
// fits `budget` bytes of arena, each ceil((L + (k − 1)·overlap) / k) for the longer side L; never below 64 (the
// fixed tile it replaces). SDXL at 1024² (1.56 GB in one pass): 2 × 2 tiles of 72, 0.5 GB, 1.27× one pass's work,
// where 3 × 3 tiles of 64 did 2.25×.
constexpr size_t kVaeTileBudget = (size_t)1 << 30;
int vae_decode_tile(const Vae& vae, int64_t h, int64_t w, size_t budget = kVaeTileBudget, int overlap_latent = 16);

// Rough working memory (bytes) one txt2img image of width × height needs beyond the mapped weights — the UNet
// pass (batch 2) or the decode, whichever is larger, plus slack — so a size that cannot fit is refused before
// anything is allocated. taesd: decoded by TAESD; vae_tile > 0: by vae_decode_tiled in tiles of vae_tile.
size_t txt2img_working_bytes(const UNet& unet, const Vae& vae, int64_t width, int64_t height, bool taesd,
                             int vae_tile);

// Multiply-adds ×2 of one clip_encode with all layers (projections, MLP, QKᵀ and AV; norms left out).
double clip_encode_flops(const ClipConfig& cfg);
// The same for one open_clip_encode through `run` layers.
double open_clip_encode_flops(const ClipConfig& cfg, int64_t run);

}  // namespace sd
