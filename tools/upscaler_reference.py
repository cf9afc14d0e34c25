"""upscaler_reference.py — an independent PyTorch RRDBNet and SRVGGNetCompact, and the goldens the C++ tests compare.

The networks are written from the papers (ESRGAN, Wang et al. 2018, Fig. 4: dense blocks of five 3x3 convs with
LeakyReLU 0.2 and residual scaling 0.2, three per RRDB, a long skip over the trunk, nearest 2x upsample + conv per
stage; Real-ESRGAN, Wang et al. 2021: pixel-unshuffle for x2/x1, the compact SRVGG with PReLU and a pixel-shuffle
output plus the nearest-upsampled input) and spandrel's semantics, with torch's conv2d and explicit everything else.
They take parameters by checkpoint key, so each tiny model is written in a real key layout: old ESRGAN
(model.1.sub.N.RDB1.conv1.0), BasicSR (body.N.rdb1.conv1), BSRGAN (RRDB_trunk.N.RDB1.conv1) and SRVGG (body.N).

The tiled golden runs the webui's tiled upscale as upscaler_utils.upscale_with_model + images.split_grid /
combine_grid do it (8-bit RGB via PIL, BGR / 255 into the net, clamp, * 255, numpy round, PIL paste with an "L"
ramp mask), re-written here from their description.

Writes tests/data/golden_upscaler.safetensors (every model's weights under "<model>/<key>", inputs, float64
forward outputs, the tiled 8-bit image) and tests/data/upscaler_*.safetensors (each model alone, its real keys).
    /usr/bin/python3 tools/upscaler_reference.py
    /usr/bin/python3 tools/upscaler_reference.py --full-size PATH   # a random 23-block x4plus-size file, for timing
Deterministic: the same bytes every run.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_nn import write_safetensors  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x)


def conv(p, name, x):
    return F.conv2d(x, p[name + ".weight"], p[name + ".bias"], padding=1)


# ---- RRDBNet --------------------------------------------------------------------------------------------------
class EsrganKeys:
    """Module paths of each layer in one convention (the names the C++ binds: models/upscaler.cpp)."""

    def __init__(self, layout, blocks, n_up):
        self.layout, self.blocks, self.n_up = layout, blocks, n_up

    def first(self):
        return "model.0" if self.layout == "old" else "conv_first"

    def dense(self, b, r, c):
        if self.layout == "old":
            return f"model.1.sub.{b}.RDB{r}.conv{c}.0"
        if self.layout == "bsrgan":
            return f"RRDB_trunk.{b}.RDB{r}.conv{c}"
        return f"body.{b}.rdb{r}.conv{c}"

    def body(self):
        return {"old": f"model.1.sub.{self.blocks}", "bsrgan": "trunk_conv", "basicsr": "conv_body"}[self.layout]

    def up(self, i):
        if self.layout == "old":
            return f"model.{3 * (i + 1)}"
        return ("upconv" if self.layout == "bsrgan" else "conv_up") + str(i + 1)

    def hr(self):
        return {"old": f"model.{3 * self.n_up + 2}", "bsrgan": "HRconv", "basicsr": "conv_hr"}[self.layout]

    def last(self):
        return f"model.{3 * self.n_up + 4}" if self.layout == "old" else "conv_last"


def rrdbnet(p, k, x, shuffle):
    """x (1, 3, H, W) BGR in [0, 1] -> (1, 3, sH, sW)."""
    h, w = x.shape[2:]
    if shuffle > 1:  # Real-ESRGAN x2plus/x1: reflect-pad to a multiple, then pixel-unshuffle
        ph, pw = (-h) % shuffle, (-w) % shuffle
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        x = F.pixel_unshuffle(x, shuffle)
    fea = conv(p, k.first(), x)
    trunk = fea
    for b in range(k.blocks):
        h0 = trunk
        for r in (1, 2, 3):
            feats = [h0]
            for c in (1, 2, 3, 4):
                feats.append(lrelu(conv(p, k.dense(b, r, c), torch.cat(feats, 1))))
            h0 = conv(p, k.dense(b, r, 5), torch.cat(feats, 1)) * 0.2 + h0
        trunk = h0 * 0.2 + trunk
    fea = fea + conv(p, k.body(), trunk)
    for i in range(k.n_up):
        fea = lrelu(conv(p, k.up(i), F.interpolate(fea, scale_factor=2, mode="nearest")))
    out = conv(p, k.last(), lrelu(conv(p, k.hr(), fea)))
    s = (2 ** k.n_up) // shuffle
    return out[:, :, : h * s, : w * s]


def rrdb_params(gen, k, nf, gc, in_nc, out_nc):
    p = {}

    def add(name, cout, cin, bias_mean=0.0, gain=1.0):
        std = gain / math.sqrt(cin * 9)
        p[name + ".weight"] = torch.randn(cout, cin, 3, 3, generator=gen, dtype=torch.float64) * std
        p[name + ".bias"] = torch.randn(cout, generator=gen, dtype=torch.float64) * 0.05 + bias_mean

    add(k.first(), nf, in_nc)
    for b in range(k.blocks):
        for r in (1, 2, 3):
            for c in (1, 2, 3, 4):
                add(k.dense(b, r, c), gc, nf + (c - 1) * gc, gain=1.4)
            add(k.dense(b, r, 5), nf, nf + 4 * gc)
    add(k.body(), nf, nf)
    for i in range(k.n_up):
        add(k.up(i), nf, nf, gain=1.4)
    add(k.hr(), nf, nf, gain=1.4)
    add(k.last(), out_nc, nf, bias_mean=0.5, gain=0.3)  # outputs mostly inside [0, 1]: the 8-bit path is exercised
    return p


# ---- SRVGGNetCompact ---------------------------------------------------------------------------------------------
def compact(p, num_conv, scale, x):
    h = x
    for i in range(num_conv + 1):
        h = conv(p, f"body.{2 * i}", h)
        a = p[f"body.{2 * i + 1}.weight"].view(1, -1, 1, 1)
        h = torch.where(h >= 0, h, a * h)  # PReLU, one slope per channel
    out = F.pixel_shuffle(conv(p, f"body.{2 * num_conv + 2}", h), scale)
    return out + F.interpolate(x, scale_factor=scale, mode="nearest")


def compact_params(gen, nf, num_conv, scale):
    p = {}
    for i in range(num_conv + 1):
        cin = 3 if i == 0 else nf
        p[f"body.{2 * i}.weight"] = torch.randn(nf, cin, 3, 3, generator=gen, dtype=torch.float64) * 1.4 / math.sqrt(cin * 9)
        p[f"body.{2 * i}.bias"] = torch.randn(nf, generator=gen, dtype=torch.float64) * 0.05
        p[f"body.{2 * i + 1}.weight"] = 0.25 + 0.1 * torch.randn(nf, generator=gen, dtype=torch.float64)
    last = f"body.{2 * num_conv + 2}"
    p[last + ".weight"] = torch.randn(3 * scale * scale, nf, 3, 3, generator=gen, dtype=torch.float64) * 0.1 / math.sqrt(nf * 9)
    p[last + ".bias"] = torch.randn(3 * scale * scale, generator=gen, dtype=torch.float64) * 0.02
    return p


# ---- the webui's tiled upscale, in PIL --------------------------------------------------------------------------
def run_patch(net, img):
    """upscale_pil_patch: RGB PIL -> BGR [0,1] float32 -> net (float64 here) -> clamp, *255, round -> RGB PIL."""
    a = np.array(img.convert("RGB"))[:, :, ::-1].transpose(2, 0, 1) / 255
    x = torch.from_numpy(np.ascontiguousarray(a)).float().double().unsqueeze(0)
    y = net(x)[0].float().clamp_(0, 1).numpy()
    y = (255.0 * np.moveaxis(y, 0, 2)).round().astype(np.uint8)[:, :, ::-1]
    return Image.fromarray(np.ascontiguousarray(y), "RGB")


def tiled_upscale(net, img, tile, overlap):
    w, h = img.size

    def origins(size):
        n = math.ceil((size - overlap) / (tile - overlap))
        d = (size - tile) / (n - 1) if n > 1 else 0
        return [size - tile if int(i * d) + tile >= size else int(i * d) for i in range(n)]

    rows = []
    for y in origins(h):
        row = []
        for x in origins(w):
            out = run_patch(net, img.crop((x, y, x + tile, y + tile)))
            row.append((x, out))
        rows.append((y, row))
    s = rows[0][1][0][1].width // tile
    ov, ts, W = overlap * s, tile * s, w * s
    ramp = (np.arange(ov, dtype=np.float32) * 255 / ov).astype(np.uint8)
    mask_w = Image.fromarray(np.ascontiguousarray(np.repeat(ramp[None, :], ts, axis=0)), "L")
    mask_h = Image.fromarray(np.ascontiguousarray(np.repeat(ramp[:, None], W, axis=1)), "L")
    result = Image.new("RGB", (W, h * s))
    for y, row in rows:
        line = Image.new("RGB", (W, ts))
        for x, t in row:
            if x == 0:
                line.paste(t, (0, 0))
            else:
                line.paste(t.crop((0, 0, ov, ts)), (x * s, 0), mask=mask_w)
                line.paste(t.crop((ov, 0, ts, ts)), (x * s + ov, 0))
        if y == 0:
            result.paste(line, (0, 0))
        else:
            result.paste(line.crop((0, 0, W, ov)), (0, y * s), mask=mask_h)
            result.paste(line.crop((0, ov, W, ts)), (0, y * s + ov))
    return result


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(13)
    out = {}
    models = {}  # name -> (params, forward, file dtype)

    for name, layout, blocks, n_up, shuffle, dtype in [
        ("esrgan_old_x4", "old", 2, 2, 1, np.float32),
        ("realesrgan_x4plus", "basicsr", 1, 2, 1, np.float16),
        ("realesrgan_x2plus", "basicsr", 1, 2, 2, np.float32),
        ("bsrgan_x2", "bsrgan", 1, 1, 1, np.float32),
    ]:
        k = EsrganKeys(layout, blocks, n_up)
        p = rrdb_params(gen, k, nf=8, gc=4, in_nc=3 * shuffle * shuffle, out_nc=3)
        models[name] = (p, (lambda p, k, s: lambda x: rrdbnet(p, k, x, s))(p, k, shuffle), dtype)
    p = compact_params(gen, nf=8, num_conv=3, scale=4)
    models["compact_x4"] = (p, (lambda p: lambda x: compact(p, 3, 4, x))(p), np.float32)

    x = torch.rand(1, 3, 7, 10, generator=gen, dtype=torch.float64).float().double()  # odd H: the unshuffle pads
    out["input"] = x.float().numpy()
    for name, (p, net, dtype) in models.items():
        for key in p:  # the stored dtype is what both sides compute with
            p[key] = torch.from_numpy(p[key].numpy().astype(dtype)).double()
        write_safetensors(os.path.join(DATA, f"upscaler_{name}.safetensors"),
                          {key: v.numpy().astype(dtype) for key, v in p.items()},
                          {"tool": "tools/upscaler_reference.py", "torch": torch.__version__})
        out[f"{name}/output"] = net(x).float().numpy()

    # The tiled golden: a smooth 8-bit image through the webui's grid (tile 16, overlap 4) for a 2x and a 4x model.
    yy, xx = np.mgrid[0:27, 0:38]
    rgb = np.stack([128 + 100 * np.sin(xx / 5.0), 128 + 90 * np.cos(yy / 4.0), 128 + 60 * np.sin((xx + yy) / 7.0)], -1)
    rgb = np.clip(rgb + np.random.default_rng(1).normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    out["tile_image"] = rgb
    img = Image.fromarray(rgb, "RGB")
    for name in ("realesrgan_x2plus", "compact_x4"):
        out[f"{name}/tiled_16_4"] = np.array(tiled_upscale(models[name][1], img, 16, 4))
        out[f"{name}/untiled"] = np.array(run_patch(models[name][1], img))
    out["small_image"] = rgb[:11, :13].copy()  # smaller than a tile: the webui pads the crop with black
    out["compact_x4/tiled_16_4_small"] = np.array(tiled_upscale(models["compact_x4"][1], Image.fromarray(out["small_image"]), 16, 4))
    out = {k: v.astype(np.float32) for k, v in out.items()}  # 8-bit images as exact float32 (HWC)
    write_safetensors(os.path.join(DATA, "golden_upscaler.safetensors"), out,
                      {"tool": "tools/upscaler_reference.py", "torch": torch.__version__, "seed": "13"})
    for k, v in out.items():
        print(f"{k:36s} {str(v.dtype):8s} {list(v.shape)}  range [{v.min():.3g}, {v.max():.3g}]")


def write_full_size(path):
    """A real-size random RRDBNet in Real-ESRGAN x4plus's layout (BasicSR keys, 23 blocks, 64 features, growth 32,
    F32 as the released file) for timing `sd upscale`; the weights are random, so the picture is meaningless."""
    gen = torch.Generator().manual_seed(23)
    k = EsrganKeys("basicsr", 23, 2)
    p = rrdb_params(gen, k, nf=64, gc=32, in_nc=3, out_nc=3)
    write_safetensors(path, {key: v.numpy().astype(np.float32) for key, v in p.items()},
                      {"tool": "tools/upscaler_reference.py --full-size", "note": "random weights"})
    print(f"{path}: {sum(v.numel() for v in p.values()):,} parameters")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--full-size":
        write_full_size(sys.argv[2])
    else:
        main()
