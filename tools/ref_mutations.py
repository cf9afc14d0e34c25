#!/usr/bin/python3
"""ref_mutations.py — proves the goldens can catch the mistakes a C++ port is likely to make.

Each mutation re-runs the reference with one plausible bug (sin/cos swapped, skip concatenated in the wrong
order, symmetric downsample padding, no causal mask, ...) and prints how far the output moves from the
golden, relative to the golden's largest magnitude. A C++ port in f32 lands within ~1e-5 of the goldens, so a
mutation that moves the output by >= 1e-3 is caught by any sensible tolerance; the few that move it less are
conventions the goldens cannot enforce (listed as 'weak' and documented in tools/README.md).

    /usr/bin/python3 tools/ref_mutations.py
"""
import copy
import os
import sys
from unittest import mock

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_clip  # noqa: E402
import ref_nn  # noqa: E402
import ref_unet  # noqa: E402
import ref_vae  # noqa: E402
import reference as R  # noqa: E402

CAUGHT = 1e-3
ORIG_TIMESTEP_EMBEDDING = ref_unet.timestep_embedding


def rel(a, b):
    return float(abs(a - b).max() / max(abs(b).max(), 1e-30))


def ts_sin_first(timesteps, dim, max_period=10000):
    e = ORIG_TIMESTEP_EMBEDDING(timesteps, dim, max_period)
    return torch.cat([e[:, dim // 2:], e[:, :dim // 2]], dim=-1)


def ts_float64(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(float(max_period), dtype=torch.float64))
                      * torch.arange(half, dtype=torch.float64) / half)
    args = timesteps.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def geglu_swapped(self, x):
    gate, a = self.proj(x).chunk(2, dim=-1)
    return a * ref_nn.gelu(gate)


def geglu_tanh(self, x):
    a, gate = self.proj(x).chunk(2, dim=-1)
    return a * F.gelu(gate, approximate="tanh")


def upsample_bilinear(self, x):
    return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


def vae_down_symmetric(self, x):
    return F.conv2d(x, self.conv.weight, self.conv.bias, stride=2, padding=1)


def vae_attn_noscale(q, k, v, heads, causal=False):
    return ref_nn.attention(q * q.shape[-1] ** 0.5, k, v, heads, causal)


def clip_no_causal(q, k, v, heads, causal=False):
    return ref_nn.attention(q, k, v, heads, False)


def clip_no_positions(self, ids):
    return self.token_embedding(ids)


def unet_mutations():
    heads1 = lambda m: [setattr(a, "heads", 1) for a in m.modules() if isinstance(a, ref_unet.CrossAttention)]
    return [
        ("timestep embedding sin first (flip_sin_to_cos wrong)", lambda m: mock.patch.object(ref_unet, "timestep_embedding", ts_sin_first)),
        ("timestep embedding in float64 instead of ldm's float32", lambda m: mock.patch.object(ref_unet, "timestep_embedding", ts_float64)),
        ("skip concatenated first: cat([skip, h])", lambda m: mock.patch.object(ref_unet, "concat_skip", lambda h, s: torch.cat([s, h], 1))),
        ("GEGLU halves swapped (gate first)", lambda m: mock.patch.object(ref_unet.GEGLU, "forward", geglu_swapped)),
        ("GEGLU with tanh-approximate GELU", lambda m: mock.patch.object(ref_unet.GEGLU, "forward", geglu_tanh)),
        ("1 attention head instead of 8", heads1),
        ("bilinear instead of nearest upsample", lambda m: mock.patch.object(ref_unet.Upsample, "forward", upsample_bilinear)),
        ("SpatialTransformer GroupNorm eps 1e-5 (ldm: 1e-6)", lambda m: mock.patch.object(ref_unet, "ST_GN_EPS", 1e-5)),
        ("ResBlock GroupNorm eps 1e-6 (ldm: 1e-5)", lambda m: mock.patch.object(ref_unet, "RES_GN_EPS", 1e-6)),
        ("LayerNorm eps 1e-6 (ldm: 1e-5)", lambda m: mock.patch.object(ref_unet, "LN_EPS", 1e-6)),
    ]


def vae_mutations():
    return [
        ("symmetric downsample padding (pad 1, stride 2)", lambda m: mock.patch.object(ref_vae.Downsample, "forward", vae_down_symmetric)),
        ("mid attention without the C^-0.5 scale", lambda m: mock.patch.object(ref_vae, "attention", vae_attn_noscale)),
        ("GroupNorm eps 1e-5 (ldm: 1e-6)", lambda m: mock.patch.object(ref_vae, "GN_EPS", 1e-5)),
        ("latent scale 0.18215 not applied", lambda m: mock.patch.object(R, "SCALE_FACTOR", 1.0)),
    ]


def clip_mutations():
    return [
        ("no causal mask", lambda m: mock.patch.object(ref_clip, "attention", clip_no_causal)),
        ("exact GELU instead of quick_gelu", lambda m: mock.patch.object(ref_clip, "quick_gelu", ref_nn.gelu)),
        ("no position embedding", lambda m: mock.patch.object(ref_clip.CLIPEmbeddings, "forward", clip_no_positions)),
    ]


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def run(name, model, golden_fn, mutations, keys, seed):
    base = golden_fn(model, seed)
    if isinstance(base, tuple):
        base = base[0]
    weak = []
    print(f"{name}:")
    # the error floor: the same computation in float32 (what a C++ port does), against the float64 golden
    got = golden_fn(copy.deepcopy(model).float(), seed)
    if isinstance(got, tuple):
        got = got[0]
    for k in keys:
        print(f"  f32    {rel(torch.from_numpy(got[k]), torch.from_numpy(base[k])):9.2e}  torch float32 vs golden: {k}")
    for what, make in mutations:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        heads = [(a, a.heads) for a in model.modules() if hasattr(a, "heads")]
        ctx = make(model)
        with (ctx if hasattr(ctx, "__enter__") else _Null()):
            got = golden_fn(model, seed)
        if isinstance(got, tuple):
            got = got[0]
        for a, h in heads:
            a.heads = h
        model.load_state_dict(state)
        r = max(rel(torch.from_numpy(got[k]), torch.from_numpy(base[k])) for k in keys)
        flag = "caught" if r >= CAUGHT else "WEAK"
        if r < CAUGHT:
            weak.append(what)
        print(f"  {flag:6s} {r:9.2e}  {what}")
    return weak


def main():
    torch.set_num_threads(1)
    seed = 0
    models = R.build_models(seed)
    weak = []
    weak += run("CLIP (hidden_last, hidden_skip2, both prompts)", models["clip"], R.golden_clip, clip_mutations(),
                ["hidden_last", "hidden_skip2", "hidden_last_b", "hidden_skip2_b"], seed)
    weak += run("UNet (out, out_b)", models["unet"], R.golden_unet, unet_mutations(), ["out", "out_b"], seed)
    weak += run("VAE (decoded, encoded_mean, decoded_b)", models["vae"], R.golden_vae, vae_mutations(),
                ["decoded", "encoded_mean", "decoded_b"], seed)
    print(f"relative change >= {CAUGHT:g} counts as caught; weak: {len(weak)}")


if __name__ == "__main__":
    main()
