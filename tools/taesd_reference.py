"""taesd_reference.py — an independent PyTorch TAESD / TAESDXL (madebyollin/taesd, taesd.py) and the TAESDXL golden.

The networks as taesd.py builds them, by their nn.Sequential indices (the keys of the weight files):
  Encoder: 0 conv(3, 64), 1 Block, then three times [stride-2 conv without bias, 3 Blocks], 14 conv(64, 4)
  Decoder: 0 Clamp tanh(x/3)*3, 1 conv(4, 64), 2 ReLU, then three times [3 Blocks, 2x nearest Upsample, conv without
           bias], 18 Block, 19 conv(64, 3)
  Block:   relu(conv.4(relu(conv.2(relu(conv.0(x))))) + x), 3x3 convs with padding 1
Images are in [0, 1], latents in UNet space (TAESDXL: the SDXL VAE's latents times 0.13025).

Writes tests/data/astronaut_256_taesdxl.safetensors from the real TAESDXL weights in ../shared/weights/taesd:
  latent  (1, 4, 32, 32)   = encoder(tests/data/astronaut_256.png / 255)
  decoded (1, 3, 128, 128) = decoder(latent[:, :, :16, :16]), not clamped (a corner keeps the file small)
in float64 with the BF16 weights widened exactly. First the same code must reproduce the shared SD1 golden
(../shared/weights/taesd/golden, from an independent NumPy implementation) within 1e-4.
    /usr/bin/python3 tools/taesd_reference.py
Deterministic: the same bytes every run.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_nn import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WEIGHTS = os.path.join(ROOT, "..", "shared", "weights", "taesd")


def read_bf16_safetensors(path):
    """The TAESD files hold BF16 tensors only: each value is the high half of an f32."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "BF16", (name, info["dtype"])
        b, e = info["data_offsets"]
        bits = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
        out[name] = torch.from_numpy(bits.view(np.float32).reshape(info["shape"]).astype(np.float64))
    return out


def conv(p, name, x, stride=1):
    return F.conv2d(x, p[name + ".weight"], p.get(name + ".bias"), stride=stride, padding=1)


def block(p, i, x):
    h = torch.relu(conv(p, f"{i}.conv.0", x))
    h = torch.relu(conv(p, f"{i}.conv.2", h))
    return torch.relu(conv(p, f"{i}.conv.4", h) + x)  # 64 -> 64 everywhere: the skip is the identity


def encode(p, img):
    x = block(p, 1, conv(p, "0", img))
    for down, blocks in ((2, (3, 4, 5)), (6, (7, 8, 9)), (10, (11, 12, 13))):
        x = conv(p, str(down), x, stride=2)
        for i in blocks:
            x = block(p, i, x)
    return conv(p, "14", x)


def decode(p, z):
    x = torch.relu(conv(p, "1", torch.tanh(z / 3) * 3))
    for blocks, up in (((3, 4, 5), 7), ((8, 9, 10), 12), ((13, 14, 15), 17)):
        for i in blocks:
            x = block(p, i, x)
        x = conv(p, str(up), F.interpolate(x, scale_factor=2, mode="nearest"))
    return conv(p, "19", block(p, 18, x))


def check_against_sd1_golden():
    """The same code must reproduce the shared SD1 TAESD golden (an independent NumPy implementation's output)."""
    from ref_nn import read_safetensors
    g, _ = read_safetensors(os.path.join(WEIGHTS, "golden", "astronaut_256_taesd.safetensors"))
    enc = read_bf16_safetensors(os.path.join(WEIGHTS, "taesd_encoder.safetensors"))
    dec = read_bf16_safetensors(os.path.join(WEIGHTS, "taesd_decoder.safetensors"))
    with torch.no_grad():
        z = encode(enc, torch.from_numpy(g["input"].astype(np.float64)))
        x = decode(dec, torch.from_numpy(g["latent"].astype(np.float64)))
    dz, dx = np.abs(z.numpy() - g["latent"]).max(), np.abs(x.numpy() - g["decoded"]).max()
    print(f"SD1 TAESD vs the shared golden: encoder max-abs {dz:.2e}, decoder {dx:.2e}")
    assert dz < 1e-4 and dx < 1e-4


def main():
    check_against_sd1_golden()
    enc = read_bf16_safetensors(os.path.join(WEIGHTS, "taesdxl_encoder.safetensors"))
    dec = read_bf16_safetensors(os.path.join(WEIGHTS, "taesdxl_decoder.safetensors"))
    px = np.asarray(Image.open(os.path.join(ROOT, "tests", "data", "astronaut_256.png")).convert("RGB"))
    img = torch.from_numpy(px.astype(np.float64) / 255.0).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        latent = encode(enc, img)
        decoded = decode(dec, latent[:, :, :16, :16])
    out = {"latent": latent.float().numpy(), "decoded": decoded.float().numpy()}
    meta = {"source": "tools/taesd_reference.py", "torch": torch.__version__,
            "input": "tests/data/astronaut_256.png as RGB / 255",
            "latent": "TAESDXL encoder, float64", "decoded": "TAESDXL decoder of latent[:, :, :16, :16], float64"}
    path = os.path.join(ROOT, "tests", "data", "astronaut_256_taesdxl.safetensors")
    write_safetensors(path, out, meta)
    print(f"wrote {path}: latent mean {latent.mean():.5f} std {latent.std():.5f}, decoded mean {decoded.mean():.5f}")


if __name__ == "__main__":
    main()
