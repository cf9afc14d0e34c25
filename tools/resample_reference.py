#!/usr/bin/python3
"""resample_reference.py — writes tests/data/golden_resample.safetensors: PIL's resize filters, the webui's
resize_image modes and flatten, and torch's interpolate, for pipeline/resample.cpp and pipeline/img2img.cpp to match
exactly (8-bit images) or to float32 rounding (latents).

    /usr/bin/python3 tools/resample_reference.py            # writes the golden (< 1 s)
    /usr/bin/python3 tools/resample_reference.py --check    # recomputes and compares with the stored golden

Independent of the C++: the images come from PIL itself (Image.resize with the filter and box, Image.paste,
Image.new) and the latents from torch.nn.functional.interpolate; resize_image below is the webui's
modules/images.py resize_image (v1.10.1) with upscaler None (its default: LANCZOS), flatten its images.flatten.
Source: a 40x30 crop of tests/data/astronaut_256.png (x 100..140, y 60..90), RGB, and its luminance ("L").
Every image is stored as uint8 (H, W, C) under its name; the name says the case:
  rs/<filter>/<W>x<H>         PIL resize of the RGB source (filters nearest, bilinear, bicubic, lanczos)
  rsL/<filter>/<W>x<H>        the same of the "L" source
  box/<filter>/<i>            resize with a source box: BOXES[i] = (box, size), as resize_image's fill uses
  mode/<m>/<W>x<H>            webui resize_image(m, source, W, H), m = 0 (just resize), 1 (crop), 2 (fill)
  up/<upscaler>/<W>x<H>       resize_image(0, source, W, H, upscaler_name="Lanczos" / "Nearest") as the hires fix
                              upscales a decoded first pass (Upscaler.upscale, then LANCZOS to the size)
  flatten                     images.flatten(RGBA source, "#ffffff"): alpha = a ramp over x and y
  lat/in (4, 5, 7) float32 random; lat/<mode>/<H>x<W> torch interpolate (align_corners=False where it applies);
                              lat/bilinear_aa, lat/bicubic_aa: the same with antialias=True
"""
import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_nn  # noqa: E402
from ref_nn import read_safetensors, write_safetensors  # noqa: E402

ref_nn.ST_DTYPES.setdefault(np.dtype("uint8"), "U8")  # 8-bit images stored as they are
ref_nn.NP_DTYPES.setdefault("U8", np.dtype("uint8"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden_resample.safetensors")
FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
SIZES = [(64, 48), (17, 11), (40, 30), (23, 37), (81, 30), (40, 7)]
BOXES = [((0, 0, 40, 0), (40, 5)), ((0, 30, 40, 30), (40, 5)), ((0, 0, 0, 30), (6, 30)), ((40, 0, 40, 30), (6, 30)),
         ((3.5, 2.25, 31, 20.75), (19, 25))]
MODES = [(64, 48), (32, 64), (40, 30), (48, 48), (64, 32), (24, 16)]
UPSCALES = [(80, 60), (96, 64), (100, 75), (32, 24)]
LAT_SIZES = [(10, 14), (3, 4), (8, 11), (5, 7)]
LAT_MODES = ["nearest", "nearest-exact", "bilinear", "bicubic"]
LAT_AA_SIZES = [(2, 3), (4, 9), (13, 20)]  # the antialiased modes also downscale by non-integer factors


def resize_image(resize_mode, im, width, height):
    """modules/images.py resize_image with upscaler_name None (im.resize with LANCZOS)."""
    def resize(im, w, h):
        return im.resize((w, h), resample=Image.LANCZOS)

    if resize_mode == 0:
        res = resize(im, width, height)
    elif resize_mode == 1:
        ratio = width / height
        src_ratio = im.width / im.height
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = resize(im, src_w, src_h)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    else:
        ratio = width / height
        src_ratio = im.width / im.height
        src_w = width if ratio < src_ratio else im.width * height // im.height
        src_h = height if ratio >= src_ratio else im.height * width // im.width
        resized = resize(im, src_w, src_h)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        if ratio < src_ratio:
            fill_height = height // 2 - src_h // 2
            if fill_height > 0:
                res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0)), box=(0, 0))
                res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)),
                          box=(0, fill_height + src_h))
        elif ratio > src_ratio:
            fill_width = width // 2 - src_w // 2
            if fill_width > 0:
                res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height)), box=(0, 0))
                res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height)),
                          box=(fill_width + src_w, 0))
    return res


def upscaler_upscale(img, scale, do_upscale):
    """modules/upscaler.py Upscaler.upscale."""
    dest_w = int((img.width * scale) // 8 * 8)
    dest_h = int((img.height * scale) // 8 * 8)
    for i in range(3):
        if img.width >= dest_w and img.height >= dest_h and (i > 0 or scale != 1):
            break
        shape = (img.width, img.height)
        img = do_upscale(img, scale)
        if shape == (img.width, img.height):
            break
    if img.width != dest_w or img.height != dest_h:
        img = img.resize((int(dest_w), int(dest_h)), resample=Image.LANCZOS)
    return img


def resize_with_upscaler(im, width, height, f):
    """resize_image(0, im, width, height, upscaler_name="Lanczos" / "Nearest"): UpscalerLanczos / UpscalerNearest."""
    scale = max(width / im.width, height / im.height)
    if scale > 1.0:
        im = upscaler_upscale(im, scale, lambda img, s: img.resize((int(img.width * s), int(img.height * s)), resample=f))
    if im.width != width or im.height != height:
        im = im.resize((width, height), resample=Image.LANCZOS)
    return im


def flatten(img, bgcolor):
    """modules/images.py flatten."""
    if img.mode == "RGBA":
        background = Image.new('RGBA', img.size, bgcolor)
        background.paste(img, mask=img)
        img = background
    return img.convert('RGB')


def arr(im):
    a = np.asarray(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def compute():
    src = Image.open(os.path.join(ROOT, "tests", "data", "astronaut_256.png")).convert("RGB").crop((100, 60, 140, 90))
    gray = src.convert("L")
    out = {"src": arr(src), "srcL": arr(gray)}
    for fname, f in FILTERS.items():
        for w, h in SIZES:
            out[f"rs/{fname}/{w}x{h}"] = arr(src.resize((w, h), resample=f))
            out[f"rsL/{fname}/{w}x{h}"] = arr(gray.resize((w, h), resample=f))
        for i, (box, size) in enumerate(BOXES):
            out[f"box/{fname}/{i}"] = arr(src.resize(size, resample=f, box=box))
    for m in (0, 1, 2):
        for w, h in MODES:
            out[f"mode/{m}/{w}x{h}"] = arr(resize_image(m, src, w, h))
    for name, f in (("lanczos", Image.LANCZOS), ("nearest", Image.NEAREST)):
        for w, h in UPSCALES:
            out[f"up/{name}/{w}x{h}"] = arr(resize_with_upscaler(src, w, h, f))
    rgba = np.concatenate([np.asarray(src), np.zeros((30, 40, 1), np.uint8)], axis=2)
    yy, xx = np.mgrid[0:30, 0:40]
    rgba[:, :, 3] = (xx * 255 // 39 * (yy + 1) // 30).astype(np.uint8)
    out["flatten_in"] = rgba
    out["flatten"] = arr(flatten(Image.fromarray(rgba, "RGBA"), "#ffffff"))
    g = torch.Generator().manual_seed(7)
    lat = torch.randn((1, 4, 5, 7), generator=g)
    out["lat/in"] = lat[0].numpy()
    for mode in LAT_MODES:
        for h, w in LAT_SIZES:
            kw = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
            y = torch.nn.functional.interpolate(lat, size=(h, w), mode=mode, **kw)
            out[f"lat/{mode}/{h}x{w}"] = y[0].numpy()
    for mode in ("bilinear", "bicubic"):  # shared.latent_upscale_modes "Latent (antialiased)", "(bicubic antialiased)"
        for h, w in LAT_SIZES + LAT_AA_SIZES:
            y = torch.nn.functional.interpolate(lat, size=(h, w), mode=mode, align_corners=False, antialias=True)
            out[f"lat/{mode}_aa/{h}x{w}"] = y[0].numpy()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    out = compute()
    if a.check:
        old, _ = read_safetensors(OUT)
        bad = [n for n in out if n not in old or not np.array_equal(old[n], out[n])]
        print("golden_resample: " + ("ok" if not bad else "differs: " + ", ".join(bad)))
        sys.exit(1 if bad else 0)
    import PIL
    write_safetensors(OUT, out, {"pil": PIL.__version__, "torch": torch.__version__, "source": __file__.split("/")[-1]})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
