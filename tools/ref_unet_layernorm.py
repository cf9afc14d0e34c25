"""ref_unet_layernorm.py — a golden in which the UNet transformer's LayerNorm eps matters.

The whole-UNet golden cannot see the LayerNorm eps: the token variances there are ~0.1-1, so 1e-5 against
1e-6 moves the output by ~1e-6 of its scale, below any f32 tolerance. Here the tiny checkpoint's first
spatial transformer (input_blocks.1.1) runs with proj_in scaled by 1e-3, so the tokens entering norm1 have a
variance of ~1e-7, below eps: LayerNorm then divides by ~sqrt(eps), and a wrong eps changes the output by
O(1) of the transformer's contribution (the script prints by how much for eps 1e-6 and 1e-4).

    /usr/bin/python3 tools/ref_unet_layernorm.py   # writes tests/data/golden_unet_layernorm.safetensors

Reads tests/data/tiny_sd.safetensors (written by reference.py); deterministic, float64.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_unet  # noqa: E402
from ref_nn import read_safetensors, write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "model.diffusion_model.input_blocks.1.1."
SCALE = 1e-3  # proj_in weight and bias scale
C, CONTEXT_DIM, HEADS = 32, 32, 8


def transformer(weights):
    st = ref_unet.SpatialTransformer(C, CONTEXT_DIM, HEADS).double().eval()
    state = {n: torch.from_numpy(weights[PREFIX + n].astype(np.float64)) for n in st.state_dict()}
    state["proj_in.weight"] = state["proj_in.weight"] * SCALE
    state["proj_in.bias"] = state["proj_in.bias"] * SCALE
    st.load_state_dict(state)
    return st


def run(st, x, ctx, eps):
    saved = ref_unet.LN_EPS
    ref_unet.LN_EPS = eps
    try:
        with torch.no_grad():
            return st(x, ctx)
    finally:
        ref_unet.LN_EPS = saved


def main():
    weights, _ = read_safetensors(os.path.join(ROOT, "tests/data/tiny_sd.safetensors"))
    st = transformer(weights)
    g = torch.Generator().manual_seed(9100)
    x = torch.randn(1, C, 8, 8, generator=g, dtype=torch.float64)
    ctx = torch.randn(1, 7, CONTEXT_DIM, generator=g, dtype=torch.float64)
    out = run(st, x, ctx, 1e-5)

    with torch.no_grad():
        t = st.proj_in(ref_unet.gn(x, st.norm, ref_unet.ST_GN_EPS))
    print(f"variance of the tokens entering norm1: {t.var(dim=1, unbiased=False).mean().item():.2e}")
    scale = (out - x).abs().max().item()
    print(f"transformer contribution max |out - x| = {scale:.3e}, output max |out| = {out.abs().max().item():.3e}")
    for eps in (1e-6, 1e-4):
        d = (run(st, x, ctx, eps) - out).abs().max().item()
        print(f"LayerNorm eps {eps:g} instead of 1e-5: max-abs change {d:.3e} = {d / out.abs().max().item():.2e} of the output scale")

    f32 = lambda a: a.detach().to(torch.float32).numpy()  # noqa: E731
    tensors = {"x": f32(x), "context": f32(ctx), "out": f32(out),
               "proj_in_weight": f32(st.proj_in.weight.reshape(C, C)), "proj_in_bias": f32(st.proj_in.bias)}
    path = os.path.join(ROOT, "tests/data/golden_unet_layernorm.safetensors")
    write_safetensors(path, tensors, {"source": "tools/ref_unet_layernorm.py", "torch": torch.__version__,
                                      "block": PREFIX, "proj_in_scale": str(SCALE)})
    print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
