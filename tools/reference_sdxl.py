#!/usr/bin/python3
"""reference_sdxl.py — a tiny random-weight SDXL checkpoint in the real sgm single-file layout, and the goldens for
the bigG tower (penultimate hidden states and the pooled output), CLIP ViT-L's hidden_states[-2], the size
conditioning, the SDXL UNet (label_emb, per-level transformer depth, no attention at level 0) and whole sampling
runs from the prompt's token ids to the final latent.

    /usr/bin/python3 tools/reference_sdxl.py              # writes tests/data/{tiny_sdxl,golden_sdxl}.safetensors
    /usr/bin/python3 tools/reference_sdxl.py --check-only # self-checks only

tiny_sdxl.safetensors: real SDXL base names (make_random_ckpt.py --family sdxl --list), F16, minus CLIP-L layers
3..11, bigG layers 3..31, the transformer blocks past the tiny depths and input_blocks.4.0.skip_connection (the
tiny levels 0 and 1 are both 32 wide: 32 is GroupNorm's least width, and (1,2,3) made the file 10.8 MB); without the VAE (the SDXL VAE is the
SD 1.x architecture: tests pass tiny_sd's with --vae) and the DDPM buffers.
  CLIP-L conditioner.embedders.0.transformer.text_model.*  width 8 (768), 2 heads (12), mlp 32 (3072), 3 layers (12)
  bigG   conditioner.embedders.1.model.*                   width 8 (1280), 2 heads (20), mlp 32 (5120), 3 layers (32),
                                                           text_projection (8, 8) ((1280, 1280))
  UNet   model.diffusion_model.*  model_channels 32 (320), channel_mult (1,1,2) ((1,2,4)), 2 res blocks, transformer
         depth (0,2,1) ((0,2,10)), middle 1 (10), num_head_channels 16 (64), context 16 (2048),
         adm_in_channels 8 + 1536 = 1544 (1280 + 1536 = 2816)
  metadata clip_config / open_clip_config {"heads": 2}, unet_config {"num_head_channels": 16}: not in the weights.

golden_sdxl.safetensors (F32; models in float64 from the f16 weights):
  text/ids_a (77,)   start, "a photo of an astronaut riding a horse", end; text/ids_b start, 75 random ids, end
  clip_l/hidden_{a,b} (77, 8)  CLIP-L hidden_states[-2] of the ids with end-token padding (no final norm)
  bigg/hidden_{a,b} (77, 8), bigg/pooled_{a,b} (8,)  bigG with 0 padding after the end token
  vector/size (1536,)  size_embedding(height 1024, width 768, crop top 16, left 32)
  unet/x (2,4,8,8), unet/t (2,) = [981, 1], unet/context (2,77,16), unet/y (2,1544) -> unet/out (2,4,8,8)
  <run>/x (1,4,8,16): sample_latent's final latent for a 128x64 image (W x H), prompt ids_a, negative "" (the webui
      zeroes the text part of an empty negative prompt's conditioning, pooled included, for SDXL), noise from
      torch's CPU generator (seed), runs: euler (3 steps, CFG 5, seed 1, Uniform), turbo (1 step, CFG 1, seed 2,
      SGM Uniform: t = 999).
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
import sampler_reference as S  # noqa: E402
from ref_clip import CLIPTextModel  # noqa: E402
from ref_nn import init_params, read_safetensors, round_to_f16, write_safetensors  # noqa: E402
from ref_open_clip import OpenCLIPText  # noqa: E402
from ref_sdxl import SDXLUNet, bigg_encode, clip_l_hidden, size_embedding  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_LIST_TOOL = os.path.join(ROOT, "..", "shared", "tools", "make_random_ckpt.py")
CLIP_L_PREFIX = "conditioner.embedders.0.transformer.text_model."
BIGG_PREFIX = "conditioner.embedders.1.model."
UNET_PREFIX = "model.diffusion_model."
CLIP_L_CFG = dict(vocab=49408, positions=77, width=8, heads=2, mlp=32, layers=3)
BIGG_CFG = dict(vocab=49408, positions=77, width=8, heads=2, mlp=32, layers=3)
SIZE_DIMS = 6 * 256
UNET_CFG = dict(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 1, 2), num_res_blocks=2,
                transformer_depth=(0, 2, 1), transformer_depth_middle=1, context_dim=16, num_head_channels=16,
                adm_in_channels=8 + SIZE_DIMS)
EMBED_STD = 0.1
BOS, EOS = 49406, 49407
PROMPT_IDS = [320, 1125, 539, 550, 18376, 6765, 320, 4558]  # "a photo of an astronaut riding a horse"
IMG_W, IMG_H = 128, 64
RUNS = [dict(name="euler", sampler="euler", schedule="discrete", cfg=5.0, seed=1, steps=3),
        dict(name="turbo", sampler="euler", schedule="sgm_uniform", cfg=1.0, seed=2, steps=1)]
SEED = 3


def build(seed):
    g = torch.Generator().manual_seed(seed * 1000)
    clip_l = CLIPTextModel(**CLIP_L_CFG)
    init_params(clip_l, g, EMBED_STD)
    bigg = OpenCLIPText(**BIGG_CFG)
    init_params(bigg, g, EMBED_STD)
    w = BIGG_CFG["width"]
    with torch.no_grad():  # the raw Parameters init_params does not know
        for blk in bigg.transformer.resblocks:
            blk.attn.in_proj_weight.copy_((torch.rand(3 * w, w, generator=g) * 2 - 1) / math.sqrt(w))
            blk.attn.in_proj_bias.copy_((torch.rand(3 * w, generator=g) * 2 - 1) / math.sqrt(w))
        bigg.positional_embedding.copy_(torch.randn(BIGG_CFG["positions"], w, generator=g) * EMBED_STD)
        bigg.text_projection.copy_((torch.rand(w, w, generator=g) * 2 - 1) / math.sqrt(w))
        bigg.logit_scale.fill_(math.log(1 / 0.07))
    unet = SDXLUNet(**UNET_CFG)
    init_params(unet, torch.Generator().manual_seed(seed * 1000 + 1), EMBED_STD)
    for m in (clip_l, bigg, unet):
        round_to_f16(m)
    return clip_l.double().eval(), bigg.double().eval(), unet.double().eval()


def checkpoint_tensors(clip_l, bigg, unet):
    out = {}
    for prefix, m in ((CLIP_L_PREFIX, clip_l), (BIGG_PREFIX, bigg), (UNET_PREFIX, unet)):
        for n, t in m.state_dict().items():
            a = t.detach().numpy()
            out[prefix + n] = a.copy() if a.dtype == np.int64 else a.astype(np.float16)
    return out


def check_names(tensors):
    """Every tiny name is a real SDXL name with the same dtype and rank; the real text/UNet names missing here are
    exactly text layers past the tiny ones and transformer blocks past the tiny depths."""
    real = {}
    res = subprocess.run(["/usr/bin/python3", REAL_LIST_TOOL, "--family", "sdxl", "--list"], capture_output=True,
                         text=True, check=True)
    for line in res.stdout.splitlines():
        if line.startswith("#"):
            continue
        n, dt, shape = line.split(" ")
        real[n] = (dt, len(json.loads(shape)))
    for n, a in tensors.items():
        assert n in real, f"{n}: not in the real SDXL list"
        want = "I64" if a.dtype == np.int64 else "F16"
        assert real[n] == (want, a.ndim), f"{n}: {real[n]} vs {want} rank {a.ndim}"
    missing = [n for n in real if n.startswith(("conditioner.", UNET_PREFIX)) and n not in tensors]
    for n in missing:
        if ".layers." in n or "resblocks." in n:
            layer = int(n.split("layers." if ".layers." in n else "resblocks.")[1].split(".")[0])
            assert layer >= 3, f"{n}: a real tensor the tiny model lacks"
        elif n.startswith(UNET_PREFIX + "input_blocks.4.0.skip_connection."):
            pass  # the tiny levels 0 and 1 have the same width (32): that res block needs no 1x1 skip conv
        else:
            assert "transformer_blocks." in n, f"{n}: a real tensor the tiny model lacks"
    print(f"names: {len(tensors)} tiny tensors, all in the real list; {len(missing)} real ones left out "
          f"(text layers 3.., transformer blocks past the tiny depths)")


def f32(t):
    return t.detach().to(torch.float32).numpy()


def chunk_ids(tokens, pad):
    return torch.tensor([BOS] + tokens + [EOS] + [pad] * (75 - len(tokens)), dtype=torch.int64)[None]


def conditioning(clip_l, bigg, tokens):
    """One 75-token chunk -> crossattn (1, 77, 16) = [CLIP-L hidden | bigG penultimate], pooled (1, 8)."""
    hl = clip_l_hidden(clip_l, chunk_ids(tokens, EOS))
    hg, pooled = bigg_encode(bigg, chunk_ids(tokens, 0))
    return torch.cat([hl, hg], dim=-1), pooled


def vector(pooled, height, width):
    return torch.cat([pooled, size_embedding(height, width, 0, 0).double()[None]], dim=1)


def run(clip_l, bigg, unet, r):
    table = S.sd_table()
    sigmas = S.sampler_sigmas(r["sampler"], r["schedule"], r["steps"], table, table)  # float32
    cond, pooled = conditioning(clip_l, bigg, PROMPT_IDS)
    y_c = vector(pooled, IMG_H, IMG_W)
    # processing.py: the negative prompt is an SdConditioning with is_negative_prompt; all of its texts empty ->
    # sd_models_xl.get_learned_conditioning passes force_zero_embeddings=['txt']: text part and pooled zeroed.
    y_u = vector(torch.zeros_like(pooled), IMG_H, IMG_W)
    unc = torch.zeros_like(cond)
    g = torch.Generator("cpu").manual_seed(r["seed"])
    x = torch.randn((1, 4, IMG_H // 8, IMG_W // 8), generator=g).double() * sigmas[0].double()
    for i in range(r["steps"]):
        s = sigmas[i].double()
        c_in = 1.0 / (s * s + 1.0) ** 0.5
        t = table.sigma_to_t(sigmas[i].view(1)).double()
        if r["cfg"] == 1.0:
            d = x - s * unet(x * c_in, t, cond, y_c)
        else:
            eps = unet(torch.cat([x, x]) * c_in, t.repeat(2), torch.cat([unc, cond]), torch.cat([y_u, y_c]))
            den = x - s * eps
            d = den[0:1] + r["cfg"] * (den[1:2] - den[0:1])
        x = x + (sigmas[i + 1] - sigmas[i]).double() * (x - d) / s
    return x


def goldens(clip_l, bigg, unet):
    g = torch.Generator().manual_seed(SEED * 1000 + 100)
    out = {}
    rand_ids = torch.randint(0, 49406, (75,), generator=g).tolist()
    with torch.no_grad():
        for sfx, toks in (("a", PROMPT_IDS), ("b", rand_ids)):
            out[f"text/ids_{sfx}"] = chunk_ids(toks, EOS)[0].float().numpy()
            out[f"clip_l/hidden_{sfx}"] = f32(clip_l_hidden(clip_l, chunk_ids(toks, EOS))[0])
            hg, pooled = bigg_encode(bigg, chunk_ids(toks, 0))
            out[f"bigg/hidden_{sfx}"], out[f"bigg/pooled_{sfx}"] = f32(hg[0]), f32(pooled[0])
        out["vector/size"] = f32(size_embedding(1024, 768, 16, 32))

        x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
        t = torch.tensor([981.0, 1.0], dtype=torch.float64)
        ctx = torch.randn(2, 77, UNET_CFG["context_dim"], generator=g, dtype=torch.float64)
        y = torch.randn(2, UNET_CFG["adm_in_channels"], generator=g, dtype=torch.float64)
        out["unet/x"], out["unet/t"], out["unet/context"], out["unet/y"] = f32(x), f32(t), f32(ctx), f32(y)
        out["unet/out"] = f32(unet(x, t, ctx, y))
        for r in RUNS:
            out[f"{r['name']}/x"] = f32(run(clip_l, bigg, unet, r))
    for k, v in out.items():
        if not k.startswith(("text/", "unet/x", "unet/t", "unet/c", "unet/y")):
            print(f"  {k:22s} std {np.std(v):.3f}  max|.| {np.abs(v).max():.3f}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    clip_l, bigg, unet = build(SEED)
    tensors = checkpoint_tensors(clip_l, bigg, unet)
    check_names(tensors)
    cfg_json = {k: list(v) if isinstance(v, tuple) else v for k, v in UNET_CFG.items()}
    meta = {"format": "pt", "clip_config": json.dumps(CLIP_L_CFG), "open_clip_config": json.dumps(BIGG_CFG),
            "unet_config": json.dumps(cfg_json)}
    gold = goldens(clip_l, bigg, unet)
    gold_meta = {"seed": str(SEED), "torch": torch.__version__, "unet_config": meta["unet_config"],
                 "image": f"{IMG_W}x{IMG_H}", "runs": json.dumps(RUNS)}
    if args.check_only:
        return
    data = os.path.join(ROOT, "tests", "data")
    write_safetensors(os.path.join(data, "tiny_sdxl.safetensors"), tensors, meta)
    write_safetensors(os.path.join(data, "golden_sdxl.safetensors"), gold, gold_meta)
    back, _ = read_safetensors(os.path.join(data, "tiny_sdxl.safetensors"))
    assert set(back) == set(tensors) and all((back[n] == tensors[n]).all() for n in tensors)
    print("wrote tests/data/tiny_sdxl.safetensors and tests/data/golden_sdxl.safetensors")


if __name__ == "__main__":
    main()
