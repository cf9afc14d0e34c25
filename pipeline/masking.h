// masking.h — inpainting masks as the webui prepares them (processing.py StableDiffusionProcessingImg2Img.init,
// masking.py, apply_overlay), in PIL's integer arithmetic so the masked images match byte for byte:
// the mask made binary (create_binary_mask), optionally inverted, blurred (cv2.GaussianBlur along x, then along y,
// each rounded to 8 bits), cropped to the masked area for "only masked", the masked area pre-filled for "fill",
// and at the end the original pasted back over the unmasked part (the overlay's alpha composite).
// The per-step latent blend is in img2img.h (LatentStart::keep).
// Left out: the webui's rounding-off option (mask_round is always on).
#pragma once
#include <vector>

#include "pipeline/image.h"

namespace sd {

// create_binary_mask(image, round=True): an RGBA mask whose alpha is not all 255 gives its alpha thresholded at
// 128 (> 128 → 255), any other image its luminance (PIL's "L": (19595 R + 38470 G + 7471 B + 2^15) >> 16).
// Returns a 1-channel image.
Image binary_mask(const Image& mask);
// ImageOps.invert of a 1-channel image.
Image invert_mask(const Image& mask);
// The webui's mask blur: cv2.GaussianBlur with kernel 2·int(2.5·blur + 0.5) + 1 and sigma blur, first (k, 1) then
// (1, k), each pass rounded to 8 bits; borders reflected (BORDER_REFLECT_101). The kernel is the exact Gaussian
// (OpenCV's 8-bit path quantises it): within one level of OpenCV's bytes.
Image blur_mask(const Image& mask, int blur);
// The webui's separate radii (mask_blur_x, mask_blur_y): the (k, 1) pass with blur_x, the (1, k) pass with blur_y.
Image blur_mask(const Image& mask, int blur_x, int blur_y);

struct CropRegion {
    int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};
// masking.get_crop_region_v2: the bounding box of the non-zero pixels grown by pad (clipped); false if none.
bool crop_region_v2(const Image& mask, int pad, CropRegion* out);
// masking.expand_crop_region: grown to the aspect of width × height, kept inside the image where it can be.
CropRegion expand_crop_region(CropRegion r, int width, int height, int image_width, int image_height);

// masking.fill(image, mask): the unmasked colours (premultiplied) blurred at radii 256, 64, 16, 4, 2, 0 (PIL's
// GaussianBlur: three box blurs) and alpha-composited 1, 1, 2, 4, 2, 1 times over a transparent image, as RGB.
Image fill_masked(const Image& rgb, const Image& mask);

// The webui's overlay image: `rgb` with alpha 255 − mask (PIL's premultiplied paste, then back to RGBA).
Image masked_overlay(const Image& rgb, const Image& mask);
// apply_overlay: `generated` (pasted into a transparent image of the overlay's size at `paste` after
// resize_image(1, ...) to its size, when paste is not null) alpha-composited with the overlay, as RGB.
Image apply_overlay(const Image& generated, const CropRegion* paste, const Image& overlay);

// PIL's Image.alpha_composite(dst, src) of two RGBA images, in place on dst.
void alpha_composite(Image& dst, const Image& src);
// PIL's GaussianBlur(radius) of an 8-bit image of any channel count (three box blurs, Pillow's BoxBlur.c).
Image pil_gaussian_blur(const Image& im, float radius);

// The latent mask: the processed mask as RGB resized to (w, h) with PIL's default filter (BICUBIC), / 255, rounded;
// per latent element (4 channels × h × w), 1 where the original latent is kept ("mask"), 0 where repainted.
std::vector<float> latent_keep_mask(const Image& mask, int w, int h);

}  // namespace sd
