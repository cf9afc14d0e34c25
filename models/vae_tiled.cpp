// vae_tiled.cpp — decoding a latent too large for one VAE pass, tile by tile, with the seams blended away.
//
// The untiled decoder's arena peak grows with the image: four 128-channel full-resolution maps, 2 GiB at
// 1024², 8 GiB at 2048². Here the latent is cut into overlapping tiles of one size (tile × tile latent
// pixels; an axis that fits is one tile), each decoded on its own by vae_decode, and the decoded tiles are
// summed into the output with per-pixel weights that ramp from ~0 at a tile's inner edge to 1 across the
// overlap, then divided by the summed weight. The peak is then the output image plus one tile's pass.
//
// Placement: per axis the fewest tiles that keep neighbours overlapping by at least `overlap`, spread evenly
// over the axis, so border tiles are shifted inward instead of shrunk (no slivers with little context), and
// overlaps differ by at most one latent pixel. Weights: a tile's weight is wy(y)·wx(x), the product of one
// ramp per axis, so the summed weight is (Σ wy)(Σ wx) too and two 1-D arrays normalise it (no weight map).
// Where two tiles overlap, the ramps are complementary raised cosines over the whole overlap, so the blend is a
// cross-fade in which a tile's edge, where its zero padding disturbs it most, counts least. (On the tiny test
// model a linear ramp gives the same error within 1%, and leaving the overlap's outer quarters to the
// neighbour alone 3-5% more: the error is mostly each tile's own statistics, not its edges.)
//
// Approximation (why tiled ≠ untiled): each tile's GroupNorms see only that tile's statistics and its mid-block
// attention only that tile's positions, and tile borders are zero-padded where the image continues. The tests
// measure how close it stays (tests/test_vae_tiled.cpp).
//
// Encoding (vae_encode_tiled) is the same scheme run the other way: the image is cut into the pixel tiles of the
// latent tiles above (8× as large), each is encoded by vae_encode, and the latent tiles are cross-faded with the
// same ramps (in latent pixels). The same approximation: each tile's GroupNorms see that tile's statistics only
// (on the tiny test model 23.5 dB below the latent's range at 16-pixel latent tiles; real tiles are 512 pixels, where the
// statistics of a tile of a photo are much closer to the image's).
// Left out: GroupNorm statistics over the whole image (the "tiled VAE" extensions' approach: every tile is run
// up to each GroupNorm, the statistics are summed over all tiles, then every tile goes on). It needs all tiles'
// activations at each norm, or the encoder re-run per norm (~30 of them), and would trade that for accuracy not
// yet measured to matter.
#include <cassert>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/ops.h"
#include "models/vae.h"

namespace sd {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Weight of a pixel `d` pixels in from a tile's edge, on a side that overlaps the neighbour by `len` pixels:
// a raised cosine from ~0 at the edge to ~1 at the overlap's far end, 1 beyond. ramp(d) + ramp(len - 1 - d) = 1,
// so the two tiles of an overlap cross-fade with weights summing to one, and the weight's slope is zero at both
// ends (no kink where the fade starts). Pixel centres (d + 0.5) keep it positive.
double ramp(int64_t d, int64_t len) {
    if (d >= len) return 1.0;
    return 0.5 - 0.5 * std::cos(kPi * ((double)d + 0.5) / (double)len);
}

// The weight of each of a tile's `size` pixels along one axis (pixel units), given its overlaps (pixels) with
// the tile before and after it (0: none, the image border).
std::vector<float> axis_weights(int64_t size, int64_t overlap_before, int64_t overlap_after) {
    std::vector<float> w((size_t)size);
    for (int64_t p = 0; p < size; p++) {
        double v = 1.0;
        if (overlap_before > 0) v *= ramp(p, overlap_before);
        if (overlap_after > 0) v *= ramp(size - 1 - p, overlap_after);
        w[(size_t)p] = (float)v;
    }
    return w;
}

// One axis of the tiling in pixel units: each tile's start and weights, and the summed weight per pixel.
struct AxisTiling {
    int64_t tile_px = 0;                        // every tile's length along this axis
    std::vector<int64_t> start_px;              // (tiles)
    std::vector<std::vector<float>> weights;    // (tiles, tile_px)
    std::vector<float> inv_sum;                 // (length_px): 1 / Σ over tiles of weights
};

AxisTiling tile_axis(int64_t length, int64_t tile, int64_t overlap, int64_t factor) {
    AxisTiling a;
    std::vector<int64_t> starts = vae_tile_starts(length, tile, overlap);
    const int64_t t = length < tile ? length : tile;
    a.tile_px = t * factor;
    a.inv_sum.assign((size_t)(length * factor), 0.0f);
    std::vector<double> sum((size_t)(length * factor), 0.0);
    for (size_t i = 0; i < starts.size(); i++) {
        int64_t before = i > 0 ? (starts[i - 1] + t - starts[i]) * factor : 0;
        int64_t after = i + 1 < starts.size() ? (starts[i] + t - starts[i + 1]) * factor : 0;
        a.start_px.push_back(starts[i] * factor);
        a.weights.push_back(axis_weights(a.tile_px, before, after));
        for (int64_t p = 0; p < a.tile_px; p++) sum[(size_t)(starts[i] * factor + p)] += a.weights.back()[(size_t)p];
    }
    for (size_t p = 0; p < sum.size(); p++) {
        assert(sum[p] > 0);  // every pixel has a tile whose weight there is positive
        a.inv_sum[p] = (float)(1.0 / sum[p]);
    }
    return a;
}

// tile (planes, th, tw) = the window of src (planes, H, W) whose top-left corner is (y0, x0).
void crop(float* tile, const float* src, int64_t planes, int64_t H, int64_t W, int64_t y0, int64_t x0, int64_t th,
          int64_t tw) {
    for (int64_t c = 0; c < planes; c++)
        for (int64_t y = 0; y < th; y++)
            std::memcpy(tile + (c * th + y) * tw, src + (c * H + y0 + y) * W + x0, (size_t)tw * sizeof(float));
}

// out (planes, H, W) += wy(y) · wx(x) · tile over tile i of ty and tile j of tx (in out's pixels).
void add_weighted(float* out, const float* tile, int64_t planes, int64_t H, int64_t W, const AxisTiling& ty,
                  size_t i, const AxisTiling& tx, size_t j) {
    const float* wy = ty.weights[i].data();
    const float* wx = tx.weights[j].data();
    const int64_t Y0 = ty.start_px[i], X0 = tx.start_px[j], TH = ty.tile_px, TW = tx.tile_px;
    for (int64_t c = 0; c < planes; c++)
        for (int64_t y = 0; y < TH; y++) {
            const float* src = tile + (c * TH + y) * TW;
            float* dst = out + (c * H + Y0 + y) * W + X0;
            for (int64_t x = 0; x < TW; x++) dst[x] += wy[y] * wx[x] * src[x];
        }
}

// out (planes, H, W) /= Σ wy(y) · Σ wx(x): the weighted sum becomes a weighted mean.
void normalise(float* out, int64_t planes, int64_t H, int64_t W, const AxisTiling& ty, const AxisTiling& tx) {
    for (int64_t c = 0; c < planes; c++)
        for (int64_t y = 0; y < H; y++) {
            float* row = out + (c * H + y) * W;
            for (int64_t x = 0; x < W; x++) row[x] *= ty.inv_sum[(size_t)y] * tx.inv_sum[(size_t)x];
        }
}

}  // namespace

void vae_check_tiling(int tile_latent, int overlap_latent) {
    if (tile_latent < 1 || overlap_latent < 0 || overlap_latent >= tile_latent)
        throw std::runtime_error("vae_decode_tiled: need tile >= 1 and 0 <= overlap < tile, got tile " +
                                 std::to_string(tile_latent) + ", overlap " + std::to_string(overlap_latent));
}

std::vector<int64_t> vae_tile_starts(int64_t length, int64_t tile, int64_t overlap) {
    assert(tile >= 1 && overlap >= 0 && overlap < tile && length >= 1);
    if (length <= tile) return {0};
    // k tiles cover `length` with overlaps >= `overlap` when k·tile − (k−1)·overlap >= length.
    const int64_t gaps = (length - tile + (tile - overlap) - 1) / (tile - overlap);  // k − 1
    std::vector<int64_t> starts;
    for (int64_t i = 0; i <= gaps; i++) starts.push_back((i * (length - tile) + gaps / 2) / gaps);  // rounded
    return starts;
}

Tensor vae_decode_tiled(const Vae& vae, const Tensor& z, Arena& a, int tile_latent, int overlap_latent) {
    vae_check_tiling(tile_latent, overlap_latent);
    check_input(z, vae.cfg.z_channels, "vae_decode_tiled");
    const int64_t B = z.shape[0], Cz = z.shape[1], h = z.shape[2], w = z.shape[3];
    if (h <= tile_latent && w <= tile_latent) return vae_decode(vae, z, a);  // one tile: exactly the plain decode

    const int64_t f = vae.cfg.downscale(), C = vae.cfg.image_channels, H = h * f, W = w * f;
    // Grow the arena once for the whole pass (output + tile latent + tile decode), not tile stage by stage.
    reserve(a, vae_decode_tiled_arena_bytes(vae, B, h, w, tile_latent, overlap_latent));

    Tensor out = a.alloc({B, C, H, W});  // (B, C, H, W): Σ weight · tile, then normalised
    std::memset(out.data, 0, out.nbytes());
    const AxisTiling ty = tile_axis(h, tile_latent, overlap_latent, f);
    const AxisTiling tx = tile_axis(w, tile_latent, overlap_latent, f);
    const int64_t th = ty.tile_px / f, tw = tx.tile_px / f;
    float* o = out.f32();

    for (size_t i = 0; i < ty.start_px.size(); i++)
        for (size_t j = 0; j < tx.start_px.size(); j++) {
            ArenaScope s(a);
            const int64_t y0 = ty.start_px[i] / f, x0 = tx.start_px[j] / f;
            Tensor zt = a.alloc({B, Cz, th, tw});  // (B, z, th, tw): the tile's latent
            crop(zt.f32(), z.f32(), B * Cz, h, w, y0, x0, th, tw);
            Tensor img = vae_decode(vae, zt, a);  // (B, C, th·f, tw·f)
            add_weighted(o, img.f32(), B * C, H, W, ty, i, tx, j);
        }
    normalise(o, B * C, H, W, ty, tx);
    return out;
}

Tensor vae_encode_tiled(const Vae& vae, const Tensor& img, Arena& a, int tile_latent, int overlap_latent) {
    vae_check_tiling(tile_latent, overlap_latent);
    check_input(img, vae.cfg.image_channels, "vae_encode_tiled");
    const int64_t f = vae.cfg.downscale(), B = img.shape[0], C = img.shape[1], H = img.shape[2], W = img.shape[3];
    if (H % f || W % f)
        throw std::runtime_error("vae_encode_tiled: the image's sides must be multiples of " + std::to_string(f) +
                                 ", got " + std::to_string(W) + "x" + std::to_string(H));
    const int64_t h = H / f, w = W / f, Z = vae.cfg.z_channels;
    if (h <= tile_latent && w <= tile_latent) return vae_encode(vae, img, a);  // one tile: exactly the plain encode

    const AxisTiling ty = tile_axis(h, tile_latent, overlap_latent, 1);  // in latent pixels
    const AxisTiling tx = tile_axis(w, tile_latent, overlap_latent, 1);
    const int64_t th = ty.tile_px, tw = tx.tile_px;
    // Grow the arena once: output latent + one tile's pixels + that tile's encode.
    const size_t floats_out = (size_t)(B * Z * h * w), floats_tile = (size_t)(B * C * th * f * tw * f);
    reserve(a, (floats_out + floats_tile) * sizeof(float) + 128 + vae_encode_arena_bytes(vae, B, th * f, tw * f));

    Tensor out = a.alloc({B, Z, h, w});  // (B, z, h, w): Σ weight · tile latent, then normalised
    std::memset(out.data, 0, out.nbytes());
    float* o = out.f32();
    for (size_t i = 0; i < ty.start_px.size(); i++)
        for (size_t j = 0; j < tx.start_px.size(); j++) {
            ArenaScope s(a);
            const int64_t y0 = ty.start_px[i], x0 = tx.start_px[j];  // latent pixels
            Tensor xt = a.alloc({B, C, th * f, tw * f});             // the tile's pixels
            crop(xt.f32(), img.f32(), B * C, H, W, y0 * f, x0 * f, th * f, tw * f);
            Tensor zt = vae_encode(vae, xt, a);  // (B, z, th, tw)
            add_weighted(o, zt.f32(), B * Z, h, w, ty, i, tx, j);
        }
    normalise(o, B * Z, h, w, ty, tx);
    return out;
}

}  // namespace sd
