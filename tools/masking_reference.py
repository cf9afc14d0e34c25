#!/usr/bin/python3
"""masking_reference.py — writes tests/data/golden_masking.safetensors: the webui's inpainting mask steps on an
8-bit image, for pipeline/masking.cpp and img2img.cpp to match (byte for byte, the blur within one level).

    /usr/bin/python3 tools/masking_reference.py            # writes the golden (< 1 s)
    /usr/bin/python3 tools/masking_reference.py --check    # recomputes and compares with the stored golden

Independent of the C++: PIL and OpenCV (cv2) themselves, driven as the webui v1.10.1 drives them
(processing.py create_binary_mask, StableDiffusionProcessingImg2Img.init's mask blur and mask_for_overlay,
apply_overlay/uncrop; masking.py get_crop_region_v2, expand_crop_region, fill). Inputs: image = a 48x40 crop of
tests/data/astronaut_256.png (x 90..138, y 50..90); mask_rgb = an RGB drawing (an ellipse, a bar; grey edges);
mask_rgba = the same shape in the alpha of an RGBA image. Stored (uint8 (H, W, C)):
  binary_rgb, binary_rgba     create_binary_mask(mask)
  blur4, blur2                cv2.GaussianBlur x then y of binary_rgb, mask blur 4 and 2
  inverted                    ImageOps.invert(binary_rgb)
  fill                        masking.fill(image, blur4)
  overlay                     the webui's overlay image (image with alpha = 255 - clip(2 * blur4))
  composited                  apply_overlay(generated, None, overlay): generated = the image's colours reversed
  crop/<pad>                  get_crop_region_v2(blur4, pad) then expand_crop_region(.., 64, 32, 48, 40) (int32 (4,))
  uncropped                   apply_overlay(generated 64x32, crop/8 region, overlay of the whole image)
  latmask                     the latent mask of blur4 for a 6x5 latent: .convert('RGB').resize((6, 5)), /255, round
  gauss/<r>                   PIL GaussianBlur(r) of the RGBA image (premultiplied as fill does), r in 0, 2, 4, 16, 64
"""
import argparse
import os
import sys

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_nn  # noqa: E402
from ref_nn import read_safetensors, write_safetensors  # noqa: E402

ref_nn.ST_DTYPES.setdefault(np.dtype("uint8"), "U8")
ref_nn.NP_DTYPES.setdefault("U8", np.dtype("uint8"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden_masking.safetensors")


def create_binary_mask(image, round=True):
    if image.mode == 'RGBA' and image.getextrema()[-1] != (255, 255):
        if round:
            image = image.split()[-1].convert("L").point(lambda x: 255 if x > 128 else 0)
        else:
            image = image.split()[-1].convert("L")
    else:
        image = image.convert('L')
    return image


def blur(image_mask, b):
    np_mask = np.array(image_mask)
    k = 2 * int(2.5 * b + 0.5) + 1
    np_mask = cv2.GaussianBlur(np_mask, (k, 1), b)
    image_mask = Image.fromarray(np_mask)
    np_mask = np.array(image_mask)
    np_mask = cv2.GaussianBlur(np_mask, (1, k), b)
    return Image.fromarray(np_mask)


def get_crop_region_v2(mask, pad=0):
    if box := mask.getbbox():
        x1, y1, x2, y2 = box
        return (max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, mask.size[0]), min(y2 + pad, mask.size[1])) if pad else box


def expand_crop_region(crop_region, processing_width, processing_height, image_width, image_height):
    x1, y1, x2, y2 = crop_region
    ratio_crop_region = (x2 - x1) / (y2 - y1)
    ratio_processing = processing_width / processing_height
    if ratio_crop_region > ratio_processing:
        desired_height = (x2 - x1) / ratio_processing
        desired_height_diff = int(desired_height - (y2 - y1))
        y1 -= desired_height_diff // 2
        y2 += desired_height_diff - desired_height_diff // 2
        if y2 >= image_height:
            diff = y2 - image_height
            y2 -= diff
            y1 -= diff
        if y1 < 0:
            y2 -= y1
            y1 -= y1
        if y2 >= image_height:
            y2 = image_height
    else:
        desired_width = (y2 - y1) * ratio_processing
        desired_width_diff = int(desired_width - (x2 - x1))
        x1 -= desired_width_diff // 2
        x2 += desired_width_diff - desired_width_diff // 2
        if x2 >= image_width:
            diff = x2 - image_width
            x2 -= diff
            x1 -= diff
        if x1 < 0:
            x2 -= x1
            x1 -= x1
        if x2 >= image_width:
            x2 = image_width
    return x1, y1, x2, y2


def fill(image, mask):
    image_mod = Image.new('RGBA', (image.width, image.height))
    image_masked = Image.new('RGBa', (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert('L')))
    image_masked = image_masked.convert('RGBa')
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = image_masked.filter(ImageFilter.GaussianBlur(radius)).convert('RGBA')
        for _ in range(repeats):
            image_mod.alpha_composite(blurred)
    return image_mod.convert("RGB")


def overlay_of(image, mask_for_overlay):
    image_masked = Image.new('RGBa', (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask_for_overlay.convert('L')))
    return image_masked.convert('RGBA')


def resize_image_crop(im, width, height):
    """images.resize_image(1, ...) with upscaler None."""
    ratio = width / height
    src_ratio = im.width / im.height
    src_w = width if ratio > src_ratio else im.width * height // im.height
    src_h = height if ratio <= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=Image.LANCZOS)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    return res


def apply_overlay(image, paste_loc, overlay):
    if paste_loc is not None:
        x, y, w, h = paste_loc
        base_image = Image.new('RGBA', (overlay.width, overlay.height))
        image = resize_image_crop(image, w, h)
        base_image.paste(image, (x, y))
        image = base_image
    image = image.convert('RGBA')
    image.alpha_composite(overlay)
    return image.convert('RGB')


def arr(im):
    a = np.asarray(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def compute():
    image = Image.open(os.path.join(ROOT, "tests", "data", "astronaut_256.png")).convert("RGB").crop((90, 50, 138, 90))
    m = Image.new("RGB", (48, 40), (0, 0, 0))
    d = ImageDraw.Draw(m)
    d.ellipse((10, 8, 30, 26), fill=(255, 255, 255))
    d.rectangle((34, 20, 40, 36), fill=(200, 90, 250))
    d.line((2, 36, 20, 38), fill=(120, 120, 120), width=2)
    a = np.zeros((40, 48, 4), np.uint8)
    a[:, :, :3] = 90
    a[:, :, 3] = np.asarray(m.convert("L"))
    mask_rgba = Image.fromarray(a, "RGBA")
    out = {"image": arr(image), "mask_rgb": arr(m), "mask_rgba": arr(mask_rgba)}
    b = create_binary_mask(m)
    out["binary_rgb"] = arr(b)
    out["binary_rgba"] = arr(create_binary_mask(mask_rgba))
    out["inverted"] = arr(ImageOps.invert(b))
    b4 = blur(b, 4)
    out["blur4"] = arr(b4)
    out["blur2"] = arr(blur(b, 2))
    out["fill"] = arr(fill(image, b4))
    mfo = Image.fromarray(np.clip(np.array(b4).astype(np.float32) * 2, 0, 255).astype(np.uint8))
    overlay = overlay_of(image, mfo)
    out["overlay"] = arr(overlay)
    generated = Image.fromarray(255 - np.asarray(image))
    out["composited"] = arr(apply_overlay(generated, None, overlay))
    for pad in (0, 8, 32):
        out[f"crop/{pad}"] = np.array(expand_crop_region(get_crop_region_v2(b4, pad), 64, 32, 48, 40), np.int32)
    x1, y1, x2, y2 = (int(v) for v in out["crop/8"])
    gen_small = Image.fromarray(np.asarray(Image.open(os.path.join(ROOT, "tests", "data", "astronaut_256.png"))
                                           .convert("RGB").resize((64, 32), resample=Image.LANCZOS)))
    out["generated_small"] = arr(gen_small)
    out["uncropped"] = arr(apply_overlay(gen_small, (x1, y1, x2 - x1, y2 - y1), overlay_of(image, b4)))
    latmask = b4.convert('RGB').resize((6, 5))
    latmask = np.moveaxis(np.array(latmask, dtype=np.float32), 2, 0) / 255
    out["latmask"] = np.around(latmask[0]).astype(np.uint8)[:, :, None]
    rgba = image.convert("RGBA")
    ra = np.asarray(rgba).copy()
    ra[:, :, 3] = 255 - np.asarray(b4)
    prem = Image.fromarray(ra, "RGBA").convert("RGBa")
    for r in (0, 2, 4, 16, 64):
        g = np.asarray(prem.filter(ImageFilter.GaussianBlur(r)))  # raw premultiplied bytes
        out[f"gauss/{r}"] = g.copy()
    out["gauss_in"] = np.asarray(prem).copy()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    out = compute()
    if a.check:
        old, _ = read_safetensors(OUT)
        bad = [n for n in out if n not in old or not np.array_equal(old[n], out[n])]
        print("golden_masking: " + ("ok" if not bad else "differs: " + ", ".join(bad)))
        sys.exit(1 if bad else 0)
    import PIL
    write_safetensors(OUT, out, {"pil": PIL.__version__, "cv2": cv2.__version__, "source": "tools/masking_reference.py"})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
