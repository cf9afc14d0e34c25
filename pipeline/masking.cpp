// masking.cpp — the webui's mask preparation and compositing, in PIL's and OpenCV's arithmetic.
#include "pipeline/masking.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "pipeline/resample.h"
#include "pipeline/img2img.h"

namespace sd {
namespace {

uint32_t div255(uint32_t v) {  // PIL's DIV255 (rounded v / 255)
    v += 128;
    return ((v >> 8) + v) >> 8;
}

Image new_image(int w, int h, int channels) {
    Image im;
    im.width = w; im.height = h; im.channels = channels;
    im.pixels.assign((size_t)w * h * channels, 0);
    return im;
}

// Pillow's ImagingHorizontalBoxBlur over every row, `passes` times (float radius: the fractional part weights the
// two far pixels), edges extended.
void box_blur_rows(Image& im, float radius_f, int passes) {
    const int W = im.width, C = im.channels, lastx = W - 1;
    const int radius = (int)radius_f;
    const uint32_t ww = (uint32_t)((float)(1 << 24) / (radius_f * 2 + 1));
    const uint32_t fw = ((1u << 24) - (uint32_t)(radius * 2 + 1) * ww) / 2;
    const int edgeA = std::min(radius + 1, W), edgeB = std::max(W - radius - 1, 0);
    std::vector<uint8_t> in((size_t)W * C);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < im.height; y++) {
            uint8_t* row = &im.pixels[(size_t)y * W * C];
            std::copy(row, row + (size_t)W * C, in.begin());
            for (int c = 0; c < C; c++) {
                auto at = [&](int x) -> uint32_t { return in[(size_t)x * C + c]; };
                uint32_t acc = at(0) * (uint32_t)(radius + 1);
                for (int x = 0; x < edgeA - 1; x++) acc += at(x);
                acc += at(lastx) * (uint32_t)(radius - edgeA + 1);
                auto step = [&](int x, int sub, int add, int left, int right) {
                    acc += at(add) - at(sub);
                    const uint32_t bulk = acc * ww + (at(left) + at(right)) * fw;
                    row[(size_t)x * C + c] = (uint8_t)((bulk + (1u << 23)) >> 24);
                };
                if (edgeA <= edgeB) {
                    for (int x = 0; x < edgeA; x++) step(x, 0, x + radius, 0, x + radius + 1);
                    for (int x = edgeA; x < edgeB; x++) step(x, x - radius - 1, x + radius, x - radius - 1, x + radius + 1);
                    for (int x = edgeB; x <= lastx; x++) step(x, x - radius - 1, lastx, x - radius - 1, lastx);
                } else {
                    for (int x = 0; x < edgeB; x++) step(x, 0, x + radius, 0, x + radius + 1);
                    for (int x = edgeB; x < edgeA; x++) step(x, 0, lastx, 0, lastx);
                    for (int x = edgeA; x <= lastx; x++) step(x, x - radius - 1, lastx, x - radius - 1, lastx);
                }
            }
        }
}

Image transpose(const Image& im) {
    Image t = new_image(im.height, im.width, im.channels);
    for (int y = 0; y < im.height; y++)
        for (int x = 0; x < im.width; x++)
            for (int c = 0; c < im.channels; c++)
                t.pixels[((size_t)x * im.height + y) * im.channels + c] = im.pixels[((size_t)y * im.width + x) * im.channels + c];
    return t;
}

// RGBa (premultiplied) → RGBA: Pillow's rgbA2rgba, truncating.
void unpremultiply(Image& im) {
    for (size_t i = 0; i < im.pixels.size(); i += 4) {
        const uint32_t a = im.pixels[i + 3];
        if (a == 0 || a == 255) continue;
        for (int c = 0; c < 3; c++) im.pixels[i + c] = (uint8_t)std::min<uint32_t>(255, 255 * im.pixels[i + c] / a);
    }
}

// Image.new('RGBa').paste(rgb as RGBa, mask=invert(mask)): premultiplied colours, alpha 255 − mask.
Image premultiplied_unmasked(const Image& rgb, const Image& mask) {
    if (rgb.width != mask.width || rgb.height != mask.height)
        throw std::runtime_error("the mask and the image differ in size");
    Image out = new_image(rgb.width, rgb.height, 4);
    for (size_t i = 0; i < (size_t)rgb.width * rgb.height; i++) {
        const uint32_t m = 255 - mask.pixels[i * mask.channels];
        for (int c = 0; c < 3; c++) out.pixels[i * 4 + c] = (uint8_t)div255(rgb.pixels[i * 3 + c] * m);
        out.pixels[i * 4 + 3] = (uint8_t)div255(255 * m);
    }
    return out;
}

}  // namespace

Image binary_mask(const Image& mask) {
    Image out = new_image(mask.width, mask.height, 1);
    const size_t n = (size_t)mask.width * mask.height;
    bool alpha = false;
    if (mask.channels == 4)
        for (size_t i = 0; i < n && !alpha; i++) alpha = mask.pixels[i * 4 + 3] != 255;
    for (size_t i = 0; i < n; i++) {
        const uint8_t* p = &mask.pixels[i * mask.channels];
        if (alpha) out.pixels[i] = p[3] > 128 ? 255 : 0;
        else if (mask.channels >= 3) out.pixels[i] = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
        else out.pixels[i] = p[0];
    }
    return out;
}

Image invert_mask(const Image& mask) {
    Image out = mask;
    for (uint8_t& v : out.pixels) v = (uint8_t)(255 - v);
    return out;
}

namespace {
// One cv2.GaussianBlur pass of the mask blur: kernel 2·int(2.5·blur + 0.5) + 1 along x or y, rounded to 8 bits.
Image blur_mask_pass(const Image& mask, int blur, bool along_x) {
    const int k = 2 * (int)(2.5 * blur + 0.5) + 1, r = k / 2;
    std::vector<double> g(k);
    double sum = 0;
    for (int i = 0; i < k; i++) sum += g[i] = std::exp(-(double)(i - r) * (i - r) / (2.0 * blur * blur));
    for (double& v : g) v /= sum;
    auto reflect101 = [](int i, int n) {
        if (n == 1) return 0;
        while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
        return i;
    };
    Image out = mask;
    const int W = mask.width, H = mask.height;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double s = 0;
            for (int t = 0; t < k; t++) {
                const int xx = along_x ? reflect101(x + t - r, W) : x, yy = along_x ? y : reflect101(y + t - r, H);
                s += g[t] * mask.pixels[(size_t)yy * W + xx];
            }
            out.pixels[(size_t)y * W + x] = (uint8_t)std::min(255.0, std::floor(s + 0.5));
        }
    return out;
}
}  // namespace

Image blur_mask(const Image& mask, int blur) { return blur_mask(mask, blur, blur); }

Image blur_mask(const Image& mask, int blur_x, int blur_y) {
    Image out = mask;
    for (const bool along_x : {true, false}) {
        const int blur = along_x ? blur_x : blur_y;
        if (blur > 0) out = blur_mask_pass(out, blur, along_x);
    }
    return out;
}

bool crop_region_v2(const Image& mask, int pad, CropRegion* out) {
    int x1 = mask.width, y1 = mask.height, x2 = 0, y2 = 0;
    for (int y = 0; y < mask.height; y++)
        for (int x = 0; x < mask.width; x++)
            if (mask.pixels[((size_t)y * mask.width + x) * mask.channels]) {
                x1 = std::min(x1, x); y1 = std::min(y1, y);
                x2 = std::max(x2, x + 1); y2 = std::max(y2, y + 1);
            }
    if (x2 == 0) return false;
    *out = {std::max(x1 - pad, 0), std::max(y1 - pad, 0), std::min(x2 + pad, mask.width), std::min(y2 + pad, mask.height)};
    return true;
}

CropRegion expand_crop_region(CropRegion r, int width, int height, int image_width, int image_height) {
    auto floordiv2 = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };  // Python's v // 2
    const double ratio_crop = (double)(r.x2 - r.x1) / (r.y2 - r.y1), ratio_proc = (double)width / height;
    if (ratio_crop > ratio_proc) {
        const double desired_height = (r.x2 - r.x1) / ratio_proc;
        const int diff = (int)(desired_height - (r.y2 - r.y1));
        r.y1 -= floordiv2(diff);
        r.y2 += diff - floordiv2(diff);
        if (r.y2 >= image_height) { const int d = r.y2 - image_height; r.y2 -= d; r.y1 -= d; }
        if (r.y1 < 0) { r.y2 -= r.y1; r.y1 = 0; }
        if (r.y2 >= image_height) r.y2 = image_height;
    } else {
        const double desired_width = (r.y2 - r.y1) * ratio_proc;
        const int diff = (int)(desired_width - (r.x2 - r.x1));
        r.x1 -= floordiv2(diff);
        r.x2 += diff - floordiv2(diff);
        if (r.x2 >= image_width) { const int d = r.x2 - image_width; r.x2 -= d; r.x1 -= d; }
        if (r.x1 < 0) { r.x2 -= r.x1; r.x1 = 0; }
        if (r.x2 >= image_width) r.x2 = image_width;
    }
    return r;
}

Image pil_gaussian_blur(const Image& im, float radius) {
    // Pillow's _gaussian_blur_radius for 3 passes (Gwosdek et al. 2011, extended box filter), float as in C
    const int passes = 3;
    const float sigma2 = radius * radius / passes;
    const float L = (float)std::sqrt(12.0 * sigma2 + 1.0);
    const float l = (float)std::floor((L - 1.0) / 2.0);
    float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
    a /= 6 * (sigma2 - (l + 1) * (l + 1));
    const float box = l + a;
    Image out = im;
    box_blur_rows(out, box, passes);
    Image t = transpose(out);
    box_blur_rows(t, box, passes);
    return transpose(t);
}

void alpha_composite(Image& dst, const Image& src) {
    const uint32_t kPrec = 7;
    for (size_t i = 0; i < dst.pixels.size(); i += 4) {
        uint8_t* d = &dst.pixels[i];
        const uint8_t* s = &src.pixels[i];
        if (s[3] == 0) continue;
        const uint32_t blend = d[3] * (255u - s[3]);
        const uint32_t outa255 = s[3] * 255u + blend;
        const uint32_t coef1 = s[3] * 255u * 255u * (1u << kPrec) / outa255;
        const uint32_t coef2 = 255u * (1u << kPrec) - coef1;
        for (int c = 0; c < 3; c++) {
            const uint32_t t = s[c] * coef1 + d[c] * coef2 + (0x80u << kPrec);
            d[c] = (uint8_t)(((t >> 8) + t) >> 8 >> kPrec);
        }
        const uint32_t ta = outa255 + 0x80;
        d[3] = (uint8_t)(((ta >> 8) + ta) >> 8);
    }
}

Image fill_masked(const Image& rgb, const Image& mask) {
    const Image masked = premultiplied_unmasked(rgb, mask);
    Image mod = new_image(rgb.width, rgb.height, 4);
    const std::pair<float, int> rounds[] = {{256.f, 1}, {64.f, 1}, {16.f, 2}, {4.f, 4}, {2.f, 2}, {0.f, 1}};
    for (auto [radius, repeats] : rounds) {
        Image blurred = pil_gaussian_blur(masked, radius);
        unpremultiply(blurred);
        for (int k = 0; k < repeats; k++) alpha_composite(mod, blurred);
    }
    Image out = new_image(rgb.width, rgb.height, 3);
    for (size_t i = 0; i < (size_t)rgb.width * rgb.height; i++)
        for (int c = 0; c < 3; c++) out.pixels[i * 3 + c] = mod.pixels[i * 4 + c];
    return out;
}

Image masked_overlay(const Image& rgb, const Image& mask) {
    Image o = premultiplied_unmasked(rgb, mask);
    unpremultiply(o);
    return o;
}

Image apply_overlay(const Image& generated, const CropRegion* paste, const Image& overlay) {
    Image base = new_image(overlay.width, overlay.height, 4);
    Image g = generated;
    int x = 0, y = 0;
    if (paste) {  // uncrop: resize_image(1, image, w, h) pasted at (x, y) into a transparent image
        g = resize_image(ResizeMode::crop_and_resize, generated, paste->x2 - paste->x1, paste->y2 - paste->y1);
        x = paste->x1;
        y = paste->y1;
    }
    Image g4 = new_image(g.width, g.height, 4);
    for (size_t i = 0; i < (size_t)g.width * g.height; i++) {
        for (int c = 0; c < 3; c++) g4.pixels[i * 4 + c] = g.pixels[i * 3 + c];
        g4.pixels[i * 4 + 3] = 255;
    }
    pil_paste(base, g4, x, y);
    alpha_composite(base, overlay);
    Image out = new_image(overlay.width, overlay.height, 3);
    for (size_t i = 0; i < (size_t)overlay.width * overlay.height; i++)
        for (int c = 0; c < 3; c++) out.pixels[i * 3 + c] = base.pixels[i * 4 + c];
    return out;
}

std::vector<float> latent_keep_mask(const Image& mask, int w, int h) {
    Image m1 = mask;
    if (m1.channels != 1) {  // channel 0 of the RGB conversion is what the webui reads (latmask[0])
        m1 = new_image(mask.width, mask.height, 1);
        for (size_t i = 0; i < (size_t)mask.width * mask.height; i++) m1.pixels[i] = mask.pixels[i * mask.channels];
    }
    Image small = pil_resize(m1, w, h, PilFilter::bicubic);  // .resize((w, h)): PIL's default filter
    std::vector<float> keep((size_t)4 * w * h);
    for (int c = 0; c < 4; c++)
        for (size_t i = 0; i < (size_t)w * h; i++) {
            const float nmask = std::nearbyint((float)small.pixels[i] / 255.0f);  // np.around
            keep[c * (size_t)w * h + i] = 1.0f - nmask;
        }
    return keep;
}

}  // namespace sd
