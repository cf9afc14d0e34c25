// resample.h — image and latent resizing exactly as the webui's libraries do it, so a resized init image, mask or
// hires-fix upscale has the webui's very bytes.
//
// 8-bit images: PIL's Image.resize (Pillow 9/10, libImaging/Resample.c): a separable convolution, horizontal pass
// first into an 8-bit intermediate, with the filter stretched by the downscale factor (antialiasing), weights
// normalised then rounded to 22-bit fixed point, sums rounded and clipped to 0..255; NEAREST is PIL's affine
// scale (Geometry.c ImagingScaleAffine). An optional source box (floats, as PIL's box=) selects the region the
// output covers — the webui's "resize and fill" uses zero-height boxes to smear the edge rows.
// Latents: torch.nn.functional.interpolate (align_corners=False; antialias=True too), in float32 like torch's CPU
// kernels. Left out: PIL's reducing_gap, the BOX and HAMMING filters.
#pragma once
#include <vector>

#include "pipeline/image.h"

namespace sd {

enum class PilFilter { nearest, bilinear, bicubic, lanczos };

struct PilBox {
    double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // in source pixels; x1 <= x0 means "the whole image" (PIL's default)
};

// PIL's im.resize((width, height), resample=filter, box=box) of an image with any number of 8-bit channels.
Image pil_resize(const Image& im, int width, int height, PilFilter filter, PilBox box = {});

// PIL's Image.paste(src, box=(x, y)) without a mask: src's pixels at (x, y) in dst, clipped to dst.
void pil_paste(Image& dst, const Image& src, int x, int y);

// PIL's im.crop((x0, y0, x1, y1)): pixels outside the image are 0.
Image pil_crop(const Image& im, int x0, int y0, int x1, int y1);

// bilinear_aa / bicubic_aa: interpolate(..., antialias=True), torch's PIL-style separable filter (UpSampleKernel.cpp
// _compute_weights_aa): output i reads the inputs within `support` of its centre scale·(i + 0.5), support =
// taps/2 · max(scale, 1) (2 taps linear, 4 cubic with Keys' a = −0.5, not the −0.75 of plain bicubic), weights
// normalised to sum 1; the width pass first.
enum class LatentInterp { nearest, nearest_exact, bilinear, bicubic, bilinear_aa, bicubic_aa };

// torch.nn.functional.interpolate(x, size=(out_h, out_w), mode=..., align_corners=False) of x (C, h, w), float32.
std::vector<float> torch_interpolate(const std::vector<float>& x, int64_t channels, int64_t h, int64_t w,
                                     int64_t out_h, int64_t out_w, LatentInterp mode);

}  // namespace sd
