#!/usr/bin/python3
"""reference_sd2.py — a tiny random-weight SD 2.x checkpoint in the real single-file layout, and the goldens for
the OpenCLIP text tower, the SD 2.x UNet (linear proj_in/proj_out, heads of num_head_channels), the webui's
v-prediction probe, and whole sampling runs (epsilon and v, with CFG and without).

    /usr/bin/python3 tools/reference_sd2.py              # writes tests/data/{tiny_sd2,golden_sd2}.safetensors
    /usr/bin/python3 tools/reference_sd2.py --check-only # self-checks only

tiny_sd2.safetensors: the real SD 2.1 names (make_random_ckpt.py --family sd21 --list) for the UNet and the
text tower, F16, minus text layers 3..23 (the tiny tower has 3), without the VAE (tests pass the SD 1.x tiny
file's VAE with --vae: the SD 2.x VAE is the SD 1.x one) and without DDPM buffers.
  text  cond_stage_model.model.*    vocab 49408, 77 positions, width 8 (1024), 2 heads (16), mlp 32 (4096), 3 layers (24)
  UNet  model.diffusion_model.*     model_channels 32 (320), channel_mult (1,2,1,1) ((1,2,4,4)), 2 res blocks,
                                    attention on levels 0-2, num_head_channels 16 (64) -> 2/4/2 heads, linear
                                    proj_in/proj_out, context 8 (1024)
  metadata clip_config {"heads": 2}, unet_config {"num_head_channels": 16, ...}: neither is in the weights.

golden_sd2.safetensors (F32; computed in float64 from the f16 weights):
  clip/ids_a (77,)   "a photo of an astronaut riding a horse", webui OpenCLIP padding: end token, then 0s
  clip/ids_b (77,)   start, 75 random ids, end (no padding)
  clip/penultimate_{a,b}, clip/last_{a,b} (77, 8): ln_final after 2 (layer_idx 1) / 3 (layer_idx 0) resblocks
  clip/uncond (77, 8): the empty prompt [start, end, 0 x 75], penultimate
  unet/x (2,4,8,8), unet/t (2,) = [981, 1], unet/context (2, 77, 8) -> unet/out (2,4,8,8)
  unet/probe (1,): mean(unet(0.5 (1,4,8,8), t=999, context 0.5 (1,2,8)) - 0.5), the webui's v test
  sample/noise (1,4,8,8); sample/sigmas (4,): k-diffusion get_sigmas(3) on the SD table (float32), then 0
  sample/<pred>_<cfg>_<sampler> (1,4,8,8): the final latent from noise * sigmas[0], context = clip/uncond and
      clip/penultimate_a; pred eps|v, cfg "cfg5" (CFG 5: the webui combines the two denoised estimates) or
      "cfg1" (the cond pass alone), sampler euler | dpmpp_2m.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_nn import init_params, read_safetensors, round_to_f16, write_safetensors  # noqa: E402
from ref_open_clip import OpenCLIPText  # noqa: E402
from ref_unet import UNetModel  # noqa: E402
from sampler_reference import run_dpmpp_2m, sd_table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_LIST_TOOL = os.path.join(ROOT, "..", "shared", "tools", "make_random_ckpt.py")
TEXT_PREFIX = "cond_stage_model.model."
UNET_PREFIX = "model.diffusion_model."
TEXT_CFG = dict(vocab=49408, positions=77, width=8, heads=2, mlp=32, layers=3)
UNET_CFG = dict(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 1, 1), num_res_blocks=2,
                attention_levels=(0, 1, 2), context_dim=8, num_head_channels=16, linear_proj=True)
EMBED_STD = 0.1
PROMPT_IDS = [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407]
SEED = 2


def build(seed):
    g = torch.Generator().manual_seed(seed * 1000)
    text = OpenCLIPText(**TEXT_CFG)
    init_params(text, g, EMBED_STD)
    w = TEXT_CFG["width"]
    with torch.no_grad():  # the raw Parameters init_params does not know
        for blk in text.transformer.resblocks:
            blk.attn.in_proj_weight.copy_((torch.rand(3 * w, w, generator=g) * 2 - 1) / math.sqrt(w))
            blk.attn.in_proj_bias.copy_((torch.rand(3 * w, generator=g) * 2 - 1) / math.sqrt(w))
        text.positional_embedding.copy_(torch.randn(TEXT_CFG["positions"], w, generator=g) * EMBED_STD)
        text.text_projection.copy_((torch.rand(w, w, generator=g) * 2 - 1) / math.sqrt(w))
        text.logit_scale.fill_(math.log(1 / 0.07))
    unet = UNetModel(**UNET_CFG)
    init_params(unet, torch.Generator().manual_seed(seed * 1000 + 1), EMBED_STD)
    round_to_f16(text)
    round_to_f16(unet)
    return text.double().eval(), unet.double().eval()


def checkpoint_tensors(text, unet):
    out = {}
    for prefix, m in ((TEXT_PREFIX, text), (UNET_PREFIX, unet)):
        for n, t in m.state_dict().items():
            out[prefix + n] = t.detach().numpy().astype(np.float16)
    return out


def check_names(tensors):
    """Every tiny name is a real SD 2.1 name with the same dtype and rank; the real UNet/text names missing here
    are exactly text layers 3..23."""
    real = {}
    res = subprocess.run(["/usr/bin/python3", REAL_LIST_TOOL, "--family", "sd21", "--list"], capture_output=True,
                         text=True, check=True)
    for line in res.stdout.splitlines():
        n, dt, shape = line.split(" ")
        real[n] = (dt, len(json.loads(shape)))
    for n, a in tensors.items():
        assert n in real, f"{n}: not in the real SD 2.1 list"
        assert real[n] == ("F16", a.ndim), f"{n}: {real[n]} vs F16 rank {a.ndim}"
    missing = [n for n in real if (n.startswith(TEXT_PREFIX) or n.startswith(UNET_PREFIX)) and n not in tensors]
    for n in missing:
        layer = int(n.split("resblocks.")[1].split(".")[0]) if "resblocks." in n else -1
        assert layer >= TEXT_CFG["layers"], f"{n}: a real tensor the tiny model lacks"
    print(f"names: {len(tensors)} tiny tensors, all in the real list; {len(missing)} real ones left out "
          f"(text layers {TEXT_CFG['layers']}..23)")


def f32(t):
    return t.detach().to(torch.float32).numpy()


def sigma_to_t(table, sigma):
    return table.sigma_to_t(torch.tensor([sigma], dtype=torch.float32))[0].item()


def make_denoiser(unet, table, pred, cfg, cond, uncond):
    """k-diffusion CompVisDenoiser / CompVisVDenoiser (sigma_data 1) and the webui's CFG: each of the two
    passes gives its own denoised estimate, combined as uncond + cfg (cond - uncond); cfg 1: the cond pass only."""
    def D(x, sigma):
        s = float(sigma)
        c_in = 1 / math.sqrt(s * s + 1)
        t = torch.tensor([sigma_to_t(table, s)], dtype=torch.float64)
        outs = []
        for ctx in ([cond] if cfg == 1 else [uncond, cond]):
            o = unet(x * c_in, t, ctx)
            if pred == "eps":
                outs.append(x - s * o)
            else:
                outs.append(x / (s * s + 1) - s / math.sqrt(s * s + 1) * o)
        return outs[0] if cfg == 1 else outs[0] + cfg * (outs[1] - outs[0])
    return D


def run_euler(D, x, sigmas):
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        x = x + (x - den) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def goldens(text, unet):
    g = torch.Generator().manual_seed(SEED * 1000 + 100)
    out = {}
    ids_a = torch.tensor(PROMPT_IDS + [0] * (77 - len(PROMPT_IDS)), dtype=torch.int64)[None]
    ids_b = torch.cat([torch.tensor([49406]), torch.randint(0, 49406, (75,), generator=g), torch.tensor([49407])])[None]
    ids_u = torch.tensor([49406, 49407] + [0] * 75, dtype=torch.int64)[None]
    with torch.no_grad():
        for sfx, ids in (("a", ids_a), ("b", ids_b)):
            out[f"clip/ids_{sfx}"] = ids[0].float().numpy()
            out[f"clip/penultimate_{sfx}"] = f32(text.encode(ids, 1)[0])
            out[f"clip/last_{sfx}"] = f32(text.encode(ids, 0)[0])
        cond = text.encode(ids_a, 1)
        uncond = text.encode(ids_u, 1)
        out["clip/uncond"] = f32(uncond[0])

        x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
        t = torch.tensor([981.0, 1.0], dtype=torch.float64)
        ctx = torch.randn(2, 77, TEXT_CFG["width"], generator=g, dtype=torch.float64)
        out["unet/x"], out["unet/t"], out["unet/context"] = f32(x), f32(t), f32(ctx)
        out["unet/out"] = f32(unet(x, t, ctx))
        probe = (unet(torch.full((1, 4, 8, 8), 0.5, dtype=torch.float64), torch.tensor([999.0], dtype=torch.float64),
                      torch.full((1, 2, TEXT_CFG["width"]), 0.5, dtype=torch.float64)) - 0.5).mean()
        out["unet/probe"] = np.array([probe.item()], dtype=np.float32)

        table = sd_table()
        sigmas = table.get_sigmas(3)  # float32, as the webui
        noise = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
        out["sample/noise"], out["sample/sigmas"] = f32(noise), sigmas.numpy()
        sig = [float(s) for s in sigmas]
        for pred in ("eps", "v"):
            for cfg in (5, 1):
                D = make_denoiser(unet, table, pred, cfg, cond, uncond)
                out[f"sample/{pred}_cfg{cfg}_euler"] = f32(run_euler(D, noise * sig[0], sig))
                out[f"sample/{pred}_cfg{cfg}_dpmpp_2m"] = f32(run_dpmpp_2m(D, noise * sig[0], sig, None, {},
                                                                           lambda *a: None))
    for k, v in out.items():
        if k.startswith("sample/") or k.endswith("out") or "penultimate" in k:
            print(f"  {k:28s} std {np.std(v):.3f}  max|.| {np.abs(v).max():.3f}")
    print(f"  unet/probe {out['unet/probe'][0]:.5f}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    text, unet = build(SEED)
    tensors = checkpoint_tensors(text, unet)
    check_names(tensors)
    meta = {"format": "pt", "clip_config": json.dumps({"heads": TEXT_CFG["heads"], **TEXT_CFG}),
            "unet_config": json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in UNET_CFG.items()})}
    gold = goldens(text, unet)
    gold_meta = {"seed": str(SEED), "torch": torch.__version__, "text_config": json.dumps(TEXT_CFG),
                 "unet_config": meta["unet_config"]}
    if args.check_only:
        return
    data = os.path.join(ROOT, "tests", "data")
    write_safetensors(os.path.join(data, "tiny_sd2.safetensors"), tensors, meta)
    write_safetensors(os.path.join(data, "golden_sd2.safetensors"), gold, gold_meta)
    back, _ = read_safetensors(os.path.join(data, "tiny_sd2.safetensors"))
    assert set(back) == set(tensors) and all((back[n] == tensors[n]).all() for n in tensors)
    print("wrote tests/data/tiny_sd2.safetensors and tests/data/golden_sd2.safetensors")


if __name__ == "__main__":
    main()
