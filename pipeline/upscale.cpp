// upscale.cpp — the webui's tiled model upscale (upscaler_utils.upscale_with_model with images.split_grid and
// images.combine_grid) and its scale loop (upscaler.Upscaler.upscale), in 8-bit RGB as the webui works in PIL.
//
// Kept exactly, oddities included: a tile that sticks out of a small image is a black-padded crop (PIL's crop),
// so the model sees black beyond the top/left edge; the overlap blend is a linear ramp in 8 bits (PIL's paste with
// an "L" mask). One deliberate difference: an image no wider than the overlap gets one tile (the webui's grid has
// zero columns there and returns a black image).
#include "pipeline/upscale.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "pipeline/resample.h"


namespace sd {

std::vector<int> grid_origins(int size, int tile, int overlap) {
    // images.split_grid: cols = ceil((w - overlap) / (tile - overlap)), spread evenly, the last flush right.
    const int n = std::max(1, (int)std::ceil((double)(size - overlap) / (tile - overlap)));
    const double step = n > 1 ? (double)(size - tile) / (n - 1) : 0.0;
    std::vector<int> origins;
    for (int i = 0; i < n; i++) {
        int x = (int)(i * step);
        if (x + tile >= size) x = size - tile;
        origins.push_back(x);
    }
    return origins;
}

namespace {

// img.crop((x, y, x + w, y + h)): pixels outside the image are black.
Image crop(const Image& img, int x, int y, int w, int h) {
    Image t;
    t.width = w; t.height = h; t.channels = 3;
    t.pixels.assign((size_t)w * h * 3, 0);
    for (int r = std::max(0, -y); r < h && y + r < img.height; r++)
        for (int c = std::max(0, -x); c < w && x + c < img.width; c++)
            for (int k = 0; k < 3; k++)
                t.pixels[((size_t)r * w + c) * 3 + k] = img.pixels[((size_t)(y + r) * img.width + x + c) * 3 + k];
    return t;
}

// upscaler_utils.upscale_pil_patch: RGB 8-bit → BGR / 255 → the network → clamp(0, 1) · 255, rounded half to
// even (numpy's round) → RGB 8-bit.
Image upscale_patch(const Upscaler& u, const Image& tile, Arena& arena) {
    const int64_t H = tile.height, W = tile.width, HW = H * W;
    ArenaScope s(arena);
    Tensor x = arena.alloc({1, 3, H, W});
    for (int64_t i = 0; i < HW; i++)
        for (int c = 0; c < 3; c++) x.f32()[(2 - c) * HW + i] = (float)(tile.pixels[i * 3 + c] / 255.0);
    Tensor y = upscaler_forward(u, x, arena);  // (1, 3, sH, sW), BGR
    Image out;
    out.height = (int)y.shape[2]; out.width = (int)y.shape[3]; out.channels = 3;
    const int64_t OHW = y.shape[2] * y.shape[3];
    out.pixels.resize(OHW * 3);
    for (int64_t i = 0; i < OHW; i++)
        for (int c = 0; c < 3; c++) {
            const float v = std::min(std::max(y.f32()[(2 - c) * OHW + i], 0.0f), 1.0f) * 255.0f;
            out.pixels[i * 3 + c] = (uint8_t)std::nearbyint(v);
        }
    return out;
}

// PIL's dst.paste(src.crop((sx, sy, sx + w, sy + h)), (dx, dy), mask): clipped to dst; with a mask, each pixel
// becomes (dst·(255 - m) + src·m) / 255 in PIL's integer rounding. The masks here are ramps along one axis:
// ramp_x[c] for column c of the pasted region, or ramp_y[r] for row r.
void paste(Image& dst, const Image& src, int sx, int sy, int w, int h, int dx, int dy,
           const std::vector<uint8_t>* ramp_x = nullptr, const std::vector<uint8_t>* ramp_y = nullptr) {
    for (int r = std::max(0, -dy); r < h && dy + r < dst.height; r++)
        for (int c = std::max(0, -dx); c < w && dx + c < dst.width; c++) {
            uint8_t* o = &dst.pixels[((size_t)(dy + r) * dst.width + dx + c) * 3];
            const uint8_t* i = &src.pixels[((size_t)(sy + r) * src.width + sx + c) * 3];
            if (!ramp_x && !ramp_y) { o[0] = i[0]; o[1] = i[1]; o[2] = i[2]; continue; }
            const unsigned m = ramp_x ? (*ramp_x)[c] : (*ramp_y)[r];
            for (int k = 0; k < 3; k++) {
                const unsigned t = o[k] * (255 - m) + i[k] * m + 128;
                o[k] = (uint8_t)(((t >> 8) + t) >> 8);
            }
        }
}

// combine_grid's make_mask_image: r · 255 / overlap in float32, truncated to 8 bits, r = 0 .. overlap - 1.
std::vector<uint8_t> ramp(int overlap) {
    std::vector<uint8_t> m(overlap);
    for (int r = 0; r < overlap; r++) m[r] = (uint8_t)((float)r * 255.0f / (float)overlap);
    return m;
}

}  // namespace

Image upscale_with_model(const Upscaler& u, const Image& img, UpscaleTiling tiling, const UpscaleProgress& progress) {
    if (img.channels != 3 || img.width < 1 || img.height < 1)
        throw std::runtime_error("upscale_with_model: expected a non-empty RGB image");
    Arena arena;
    if (tiling.tile <= 0) {
        Image out = upscale_patch(u, img, arena);
        if (progress) progress(1, 1);
        return out;
    }
    if (tiling.overlap < 0 || tiling.overlap >= tiling.tile)
        throw std::runtime_error("the tile overlap (" + std::to_string(tiling.overlap) +
                                 ") must be at least 0 and less than the tile size (" + std::to_string(tiling.tile) + ")");
    const int T = tiling.tile;
    const std::vector<int> xs = grid_origins(img.width, T, tiling.overlap);
    const std::vector<int> ys = grid_origins(img.height, T, tiling.overlap);
    const int total = (int)(xs.size() * ys.size());
    const int s = u.scale, ov = tiling.overlap * s, TS = T * s;  // scale_factor = output.width // tile.width
    const std::vector<uint8_t> ramp_s = ramp(ov);

    Image out;
    out.width = img.width * s; out.height = img.height * s; out.channels = 3;
    out.pixels.assign((size_t)out.width * out.height * 3, 0);
    Image row;
    row.width = out.width; row.height = TS; row.channels = 3;
    int done = 0;
    for (int y : ys) {
        row.pixels.assign((size_t)row.width * row.height * 3, 0);
        for (int x : xs) {
            const Image t = upscale_patch(u, crop(img, x, y, T, T), arena);  // (TS, TS)
            arena.reset();
            if (x == 0) {
                paste(row, t, 0, 0, TS, TS, 0, 0);
            } else {  // the first `ov` columns fade in over the previous tile, the rest replace
                paste(row, t, 0, 0, ov, TS, x * s, 0, &ramp_s);
                paste(row, t, ov, 0, TS - ov, TS, x * s + ov, 0);
            }
            if (progress) progress(++done, total);
        }
        if (y == 0) {
            paste(out, row, 0, 0, row.width, TS, 0, 0);
        } else {
            paste(out, row, 0, 0, row.width, ov, 0, y * s, nullptr, &ramp_s);
            paste(out, row, 0, ov, row.width, TS - ov, 0, y * s + ov);
        }
    }
    return out;
}

Image upscaler_upscale(const Image& img, double scale, const std::function<Image(const Image&)>& do_upscale) {
    const int dest_w = (int)(std::floor(img.width * scale / 8) * 8), dest_h = (int)(std::floor(img.height * scale / 8) * 8);
    Image cur = img;
    for (int i = 0; i < 3; i++) {
        if (cur.width >= dest_w && cur.height >= dest_h && (i > 0 || scale != 1)) break;
        const int w0 = cur.width, h0 = cur.height;
        cur = do_upscale(cur);
        if (cur.width == w0 && cur.height == h0) break;
    }
    if (cur.width != dest_w || cur.height != dest_h) cur = pil_resize(cur, dest_w, dest_h, PilFilter::lanczos);
    return cur;
}

Image upscale_image(const Upscaler& u, const Image& img, double scale, UpscaleTiling tiling,
                    const UpscaleProgress& progress) {
    if (!(scale > 0 && scale <= 16))
        throw std::runtime_error("the upscale factor must be above 0 and at most 16");
    const int dest_w = (int)(std::floor(img.width * scale / 8) * 8), dest_h = (int)(std::floor(img.height * scale / 8) * 8);
    if (dest_w < 8 || dest_h < 8)
        throw std::runtime_error("upscaling " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                                 " by " + std::to_string(scale) + " gives less than 8 pixels a side");
    return upscaler_upscale(img, scale, [&](const Image& x) { return upscale_with_model(u, x, tiling, progress); });
}

}  // namespace sd
