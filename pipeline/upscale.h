// upscale.h — upscaling an image with an ESRGAN-family model (models/upscaler.h) as the webui v1.10.1 does it:
// upscaler_utils.upscale_with_model (tiles from images.split_grid, each through the network as BGR in [0, 1],
// clamped and rounded to 8 bits, blended back by images.combine_grid) and Upscaler.upscale (passes of the model
// until the requested scale is reached, then a Lanczos resize to it). Tiles bound the memory: a 192² tile of a
// 23-block RRDBNet peaks at ~0.5 GB RSS whatever the image size.
#pragma once
#include <functional>

#include "pipeline/image.h"
#include "models/upscaler.h"

namespace sd {

// The webui's options ESRGAN_tile and ESRGAN_tile_overlap (shared_options.py, defaults 192 and 8); tile 0 runs
// the whole image at once.
struct UpscaleTiling {
    int tile = 192;
    int overlap = 8;
};

// Called after each tile with (tiles done, tiles in all); may throw to stop (the CLI's Ctrl-C).
using UpscaleProgress = std::function<void(int done, int total)>;

// One pass of the model over an RGB image: (W, H) → (scale·W, scale·H), 8-bit RGB. The hires fix's and
// `sd upscale`'s building block (upscaler_utils.upscale_with_model).
Image upscale_with_model(const Upscaler& u, const Image& img, UpscaleTiling tiling = {},
                         const UpscaleProgress& progress = nullptr);

// Upscaler.upscale(img, scale) for any upscaler's do_upscale (a model pass, or the Lanczos / Nearest filters of
// the hires fix): the target is int(W·scale) // 8 · 8 by int(H·scale) // 8 · 8; do_upscale runs (at most 3
// times, stopping early when it no longer changes the size) until the image reaches it, then a Lanczos resize
// makes it exact.
Image upscaler_upscale(const Image& img, double scale, const std::function<Image(const Image&)>& do_upscale);

// upscaler_upscale with the model's passes (tiled): `sd upscale`. scale in (0, 16].
Image upscale_image(const Upscaler& u, const Image& img, double scale, UpscaleTiling tiling = {},
                    const UpscaleProgress& progress = nullptr);

// The pieces, for tests. The webui's grid over a W×H image: tile origins per axis (images.split_grid; negative
// when the image is smaller than a tile, whose crop is then padded with black).
std::vector<int> grid_origins(int size, int tile, int overlap);

}  // namespace sd
