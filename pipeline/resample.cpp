// resample.cpp — PIL's resize filters in PIL's fixed-point arithmetic, and torch's interpolate for latents.
#include "pipeline/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sd {
namespace {

// The filters of Resample.c with their support (half width in source pixels at scale 1).
double filter_bilinear(double x) {
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}
double filter_bicubic(double x) {  // Keys' cubic with a = -0.5, as PIL
    const double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}
double sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return std::sin(x) / x;
}
double filter_lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

struct Filter {
    double (*f)(double);
    double support;
};
Filter filter_of(PilFilter f) {
    switch (f) {
        case PilFilter::bilinear: return {filter_bilinear, 1.0};
        case PilFilter::bicubic: return {filter_bicubic, 2.0};
        default: return {filter_lanczos, 3.0};
    }
}

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's PRECISION_BITS for 8-bit images

// One axis's taps (precompute_coeffs + normalize_coeffs_8bpc): output i reads source [first[i], first[i]+count[i])
// with fixed-point weights k[i * ksize + j].
struct Taps {
    int ksize = 0;
    std::vector<int> first, count;
    std::vector<int32_t> k;
};

Taps precompute(int in_size, double in0, double in1, int out_size, const Filter& filter) {
    const double scale = (in1 - in0) / out_size;
    const double filterscale = std::max(scale, 1.0);  // stretch the filter when downscaling (antialias)
    const double support = filter.support * filterscale;
    Taps t;
    t.ksize = (int)std::ceil(support) * 2 + 1;
    t.first.resize(out_size);
    t.count.resize(out_size);
    t.k.assign((size_t)out_size * t.ksize, 0);
    std::vector<double> w(t.ksize);
    for (int xx = 0; xx < out_size; xx++) {
        const double center = in0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);  // C's truncation, as PIL
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = filter.f((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            // round half away from zero to 22 fractional bits
            t.k[(size_t)xx * t.ksize + x] = v < 0 ? (int32_t)(-0.5 + v * (1 << kPrecisionBits))
                                                  : (int32_t)(0.5 + v * (1 << kPrecisionBits));
        }
        t.first[xx] = xmin;
        t.count[xx] = std::max(xmax, 0);
    }
    return t;
}

uint8_t clip8(int32_t v) {
    if (v >= (1 << kPrecisionBits << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> kPrecisionBits);
}

// Source rows [row0, row0 + rows) resampled horizontally to out_w columns.
Image resample_horizontal(const Image& in, int row0, int rows, int out_w, const Taps& t) {
    const int C = in.channels;
    Image out;
    out.width = out_w; out.height = rows; out.channels = C;
    out.pixels.resize((size_t)out_w * rows * C);
    for (int y = 0; y < rows; y++) {
        const uint8_t* src = in.pixels.data() + (size_t)(y + row0) * in.width * C;
        uint8_t* dst = out.pixels.data() + (size_t)y * out_w * C;
        for (int xx = 0; xx < out_w; xx++) {
            const int32_t* k = &t.k[(size_t)xx * t.ksize];
            for (int c = 0; c < C; c++) {
                int32_t ss = 1 << (kPrecisionBits - 1);
                for (int x = 0; x < t.count[xx]; x++) ss += src[(size_t)(x + t.first[xx]) * C + c] * k[x];
                dst[(size_t)xx * C + c] = clip8(ss);
            }
        }
    }
    return out;
}

// Rows resampled vertically to out_h rows; the taps' first rows are relative to `in`'s row `row0`.
Image resample_vertical(const Image& in, int row0, int out_h, const Taps& t) {
    const int C = in.channels, W = in.width;
    Image out;
    out.width = W; out.height = out_h; out.channels = C;
    out.pixels.resize((size_t)W * out_h * C);
    for (int yy = 0; yy < out_h; yy++) {
        const int32_t* k = &t.k[(size_t)yy * t.ksize];
        uint8_t* dst = out.pixels.data() + (size_t)yy * W * C;
        for (int i = 0; i < W * C; i++) {
            int32_t ss = 1 << (kPrecisionBits - 1);
            for (int y = 0; y < t.count[yy]; y++)
                ss += in.pixels[(size_t)(y + t.first[yy] - row0) * W * C + i] * k[y];
            dst[i] = clip8(ss);
        }
    }
    return out;
}

// NEAREST: PIL's affine scale (ImagingScaleAffine), source coordinate = box start + (i + 0.5) · step, the
// running sum accumulated in double as PIL does, truncated (negative: outside).
std::vector<int> nearest_index(double start, double step, int out_size, int in_size) {
    std::vector<int> idx(out_size, -1);
    double o = start + step * 0.5;
    for (int i = 0; i < out_size; i++) {
        int v = o < 0.0 ? -1 : (int)o;
        if (v >= 0 && v < in_size) idx[i] = v;
        o += step;
    }
    return idx;
}

}  // namespace

Image pil_resize(const Image& im, int width, int height, PilFilter filter, PilBox box) {
    if (width <= 0 || height <= 0) throw std::runtime_error("cannot resize an image to " + std::to_string(width) + "x" +
                                                            std::to_string(height));
    if (box.x1 <= box.x0 && box.y1 <= box.y0) box = {0, 0, (double)im.width, (double)im.height};
    const int C = im.channels;
    if (im.width == width && im.height == height && box.x0 == 0 && box.y0 == 0 && box.x1 == width &&
        box.y1 == height)
        return im;
    if (filter == PilFilter::nearest) {
        std::vector<int> xs = nearest_index(box.x0, (box.x1 - box.x0) / width, width, im.width);
        std::vector<int> ys = nearest_index(box.y0, (box.y1 - box.y0) / height, height, im.height);
        Image out;
        out.width = width; out.height = height; out.channels = C;
        out.pixels.assign((size_t)width * height * C, 0);
        for (int y = 0; y < height; y++) {
            if (ys[y] < 0) continue;
            for (int x = 0; x < width; x++)
                if (xs[x] >= 0)
                    std::memcpy(&out.pixels[((size_t)y * width + x) * C],
                                &im.pixels[((size_t)ys[y] * im.width + xs[x]) * C], C);
        }
        return out;
    }
    const Filter f = filter_of(filter);
    // ImagingResampleInner: horizontal pass over the rows the vertical pass will read, then the vertical pass.
    const bool need_h = width != im.width || box.x0 != 0 || box.x1 != width;
    const bool need_v = height != im.height || box.y0 != 0 || box.y1 != height;
    Taps th = precompute(im.width, box.x0, box.x1, width, f);
    Taps tv = precompute(im.height, box.y0, box.y1, height, f);
    const int row_first = tv.first[0];
    const int row_last = tv.first[height - 1] + tv.count[height - 1];
    Image cur = im;
    int row0 = 0;
    if (need_h) {
        cur = resample_horizontal(im, row_first, row_last - row_first, width, th);
        row0 = row_first;
    }
    if (need_v) cur = resample_vertical(cur, row0, height, tv);
    return cur;
}

void pil_paste(Image& dst, const Image& src, int x, int y) {
    if (dst.channels != src.channels) throw std::runtime_error("pil_paste: channel counts differ");
    const int C = dst.channels;
    for (int sy = std::max(0, -y); sy < src.height && sy + y < dst.height; sy++) {
        int sx0 = std::max(0, -x), sx1 = std::min(src.width, dst.width - x);
        if (sx1 <= sx0) continue;
        std::memcpy(&dst.pixels[((size_t)(sy + y) * dst.width + sx0 + x) * C],
                    &src.pixels[((size_t)sy * src.width + sx0) * C], (size_t)(sx1 - sx0) * C);
    }
}

Image pil_crop(const Image& im, int x0, int y0, int x1, int y1) {
    Image out;
    out.width = std::max(0, x1 - x0); out.height = std::max(0, y1 - y0); out.channels = im.channels;
    out.pixels.assign((size_t)out.width * out.height * out.channels, 0);
    pil_paste(out, im, -x0, -y0);
    return out;
}

namespace {

// torch's source coordinate for output index i (area_pixel_compute_source_index, align_corners=False).
float source_index(float scale, int64_t i, bool cubic) {
    float s = scale * ((float)i + 0.5f) - 0.5f;
    return !cubic && s < 0 ? 0.0f : s;
}

float cubic1(float x, float A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
float cubic2(float x, float A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

// torch's aa_filter of HelperInterpLinear / HelperInterpCubic (the literals are doubles there too)
float aa_filter(float x, bool cubic) {
    x = std::fabs(x);
    if (!cubic) return x < 1.0f ? (float)(1.0 - x) : 0.0f;
    const double a = -0.5;
    if (x < 1.0f) return (float)(((a + 2.0) * x - (a + 3.0)) * x * x + 1);
    if (x < 2.0f) return (float)((((x - 5) * x + 8) * x - 4) * a);
    return 0.0f;
}

// The antialiased modes: per output index, the inputs [xmin, xmin + xsize) and their normalised weights, padded
// with zero weights to `taps` (torch's max_interp_size), all in float32 as torch computes them for float tensors.
void axis_weights_aa(int64_t in, int64_t out, bool cubic, std::vector<int64_t>& idx, std::vector<float>& wt, int& taps) {
    const float scale = (float)in / (float)out;
    const float support = (cubic ? 2.0f : 1.0f) * (scale >= 1.0f ? scale : 1.0f);
    const float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
    taps = (int)std::ceil(support) * 2 + 1;
    idx.assign((size_t)out * taps, 0);
    wt.assign((size_t)out * taps, 0.0f);
    for (int64_t i = 0; i < out; i++) {
        // C++'s promotions as in torch: the 0.5 literals are doubles
        const float center = (float)(scale * (i + 0.5));
        const int64_t xmin = std::max((int64_t)((center - support) + 0.5), (int64_t)0);
        const int64_t xsize = std::min((int64_t)((center + support) + 0.5), in) - xmin;
        float* w = &wt[(size_t)i * taps];
        float total = 0.0f;
        for (int64_t j = 0; j < xsize; j++) {
            w[j] = aa_filter((float)((((float)(j + xmin) - center) + 0.5) * invscale), cubic);
            total += w[j];
        }
        for (int64_t j = 0; j < xsize; j++) {
            if (total != 0.0f) w[j] /= total;
            idx[(size_t)i * taps + j] = xmin + j;
        }
    }
}

// Per output index along one axis: the source indices and weights torch uses (2 taps linear, 4 cubic, 1 nearest).
void axis_weights(int64_t in, int64_t out, LatentInterp mode, std::vector<int64_t>& idx, std::vector<float>& wt,
                  int& taps) {
    if (mode == LatentInterp::bilinear_aa || mode == LatentInterp::bicubic_aa)
        return axis_weights_aa(in, out, mode == LatentInterp::bicubic_aa, idx, wt, taps);
    const float scale = (float)in / (float)out;
    taps = mode == LatentInterp::bilinear ? 2 : mode == LatentInterp::bicubic ? 4 : 1;
    idx.assign((size_t)out * taps, 0);
    wt.assign((size_t)out * taps, 0.0f);
    for (int64_t i = 0; i < out; i++) {
        int64_t* ix = &idx[(size_t)i * taps];
        float* w = &wt[(size_t)i * taps];
        if (mode == LatentInterp::nearest || mode == LatentInterp::nearest_exact) {
            int64_t s;
            if (out == in) s = i;
            else if (mode == LatentInterp::nearest && out == 2 * in) s = i >> 1;
            else
                s = (int64_t)std::floor(mode == LatentInterp::nearest ? (float)i * scale : ((float)i + 0.5f) * scale);
            ix[0] = std::min(s, in - 1);
            w[0] = 1.0f;
        } else if (mode == LatentInterp::bilinear) {
            const float s = source_index(scale, i, false);
            const int64_t i0 = (int64_t)s;
            const float l1 = std::min(std::max(s - (float)i0, 0.0f), 1.0f);
            ix[0] = i0;
            ix[1] = i0 + (i0 < in - 1 ? 1 : 0);
            w[0] = 1.0f - l1;
            w[1] = l1;
        } else {
            const float s = source_index(scale, i, true);
            const int64_t i0 = (int64_t)std::floor(s);
            const float t = s - (float)i0, A = -0.75f;
            w[0] = cubic2(t + 1.0f, A);
            w[1] = cubic1(t, A);
            w[2] = cubic1(1.0f - t, A);
            w[3] = cubic2(2.0f - t, A);
            for (int k = 0; k < 4; k++) ix[k] = std::min(std::max(i0 - 1 + k, (int64_t)0), in - 1);
        }
    }
}

}  // namespace

std::vector<float> torch_interpolate(const std::vector<float>& x, int64_t channels, int64_t h, int64_t w,
                                     int64_t out_h, int64_t out_w, LatentInterp mode) {
    std::vector<int64_t> iy, ix;
    std::vector<float> wy, wx;
    int ty = 0, tx = 0;
    axis_weights(h, out_h, mode, iy, wy, ty);
    axis_weights(w, out_w, mode, ix, wx, tx);
    std::vector<float> out((size_t)(channels * out_h * out_w));
    for (int64_t c = 0; c < channels; c++) {
        const float* src = x.data() + c * h * w;
        for (int64_t oy = 0; oy < out_h; oy++)
            for (int64_t ox = 0; ox < out_w; ox++) {
                float acc = 0.0f;  // sum over rows of w_y · (sum over columns of w_x · x), as torch nests it
                for (int a = 0; a < ty; a++) {
                    float row = 0.0f;
                    for (int b = 0; b < tx; b++)
                        row += wx[(size_t)ox * tx + b] * src[iy[(size_t)oy * ty + a] * w + ix[(size_t)ox * tx + b]];
                    acc += wy[(size_t)oy * ty + a] * row;
                }
                out[(size_t)((c * out_h + oy) * out_w + ox)] = acc;
            }
    }
    return out;
}

}  // namespace sd
