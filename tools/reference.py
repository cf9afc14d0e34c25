#!/usr/bin/python3
"""reference.py — builds a tiny random-weight SD1.x checkpoint in the real single-file (CompVis/ldm) key
layout and writes the golden files the C++ tests compare against.

    /usr/bin/python3 tools/reference.py                 # writes tests/data/{tiny_sd,golden_*}.safetensors
    /usr/bin/python3 tools/reference.py --check-only    # self-checks only, writes nothing

Outputs (see tools/README.md for the exact conventions):
    tests/data/tiny_sd.safetensors      every tensor name of v1-5-pruned-emaonly (same dtypes), smaller widths
    tests/data/golden_clip.safetensors  input_ids(_b) -> hidden_last(_b), hidden_skip2(_b)
    tests/data/golden_unet.safetensors  x, timesteps, context -> out;  x_b, timesteps_b, context_b -> out_b
    tests/data/golden_vae.safetensors   z -> decoded, image -> encoded_mean, z_b -> decoded_b
Each golden also carries dbg_* intermediates (block outputs) to localise a mismatch.

Weights are drawn in f32, rounded to f16 (stored as F16, like real f16 checkpoints) and the goldens are
computed in float64 from exactly those f16 values, then stored as F32. So a correct f32 C++ implementation
differs from a golden only by its own f32 rounding. One exception, on purpose: the UNet's sinusoidal
timestep embedding is computed in float32, as ldm does (see ref_unet.timestep_embedding).
Leaves out: samplers, the tokenizer, CFG (other references own those).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_clip import CLIPTextModel  # noqa: E402
from ref_nn import (attention, gelu, group_norm, init_params, layer_norm, quick_gelu, read_safetensors,  # noqa: E402
                    round_to_f16, softmax, write_safetensors)
from ref_unet import GEGLU, UNetModel, timestep_embedding  # noqa: E402
from ref_vae import AutoencoderKL  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared data folder: $SD_SHARED, else ../shared beside the project root.
SHARED = os.environ.get("SD_SHARED", os.path.join(ROOT, "..", "shared"))
REAL_LIST_TOOL = os.path.join(SHARED, "tools", "make_random_sd15.py")

CLIP_PREFIX = "cond_stage_model.transformer.text_model."
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."

CLIP_CFG = dict(vocab=49408, positions=77, width=32, heads=2, mlp=128, layers=3, eps=1e-5)
UNET_CFG = dict(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 1, 1), num_res_blocks=2,
                attention_levels=(0, 1, 2), num_heads=8, context_dim=32)
VAE_CFG = dict(ch=32, ch_mult=(1, 2, 1, 1), num_res_blocks=2, z_channels=4, embed_dim=4)
SCALE_FACTOR = 0.18215  # v1-inference.yaml scale_factor: unet latent = 0.18215 * vae latent
CLIP_EMBED_STD = 0.1    # token and position embeddings (real CLIP: ~0.01-0.02; larger keeps them visible)

# "a photo of an astronaut riding a horse" (CLIP BPE), BOS 49406 ... EOS 49407, padded with EOS to 77
PROMPT_IDS = [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407]


# ----------------------------------------------------------------------------------------------
# DDPM buffers and checkpoint extras (as in the real LatentDiffusion file)
# ----------------------------------------------------------------------------------------------
def ddpm_schedule():
    """ldm DDPM.register_schedule: 'linear' (sqrt-space) betas 0.00085..0.012, 1000 steps, float64."""
    T = 1000
    betas = np.linspace(0.00085 ** 0.5, 0.0120 ** 0.5, T, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    return {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------
def build_models(seed):
    """The three components with deterministic f16-rounded weights, in float64."""
    models = {}
    for k, (name, ctor, cfg) in enumerate([("clip", CLIPTextModel, CLIP_CFG), ("unet", UNetModel, UNET_CFG),
                                           ("vae", AutoencoderKL, VAE_CFG)]):
        m = ctor(**cfg)
        init_params(m, torch.Generator().manual_seed(seed * 1000 + k), CLIP_EMBED_STD)
        round_to_f16(m)
        models[name] = m.double().eval()
    return models


def checkpoint_tensors(models):
    """dict name -> numpy array, exactly the real file's names and dtypes."""
    out = {}
    for prefix, m in ((CLIP_PREFIX, models["clip"]), (UNET_PREFIX, models["unet"]), (VAE_PREFIX, models["vae"])):
        for n, t in m.state_dict().items():
            a = t.detach().numpy()
            out[prefix + n] = a if a.dtype == np.int64 else a.astype(np.float16)
    for n, a in ddpm_schedule().items():
        out[n] = a.astype(np.float32)
    out["model_ema.decay"] = np.array(0.9999, dtype=np.float32)  # 0-d, like the real file
    out["model_ema.num_updates"] = np.array(0, dtype=np.int32)
    return out


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------------------------
# Goldens
# ----------------------------------------------------------------------------------------------
def f32(t):
    return t.detach().to(torch.float32).numpy()


def golden_clip(clip, seed):
    g = torch.Generator().manual_seed(seed * 1000 + 100)
    ids_a = torch.tensor(PROMPT_IDS + [49407] * (77 - len(PROMPT_IDS)), dtype=torch.int64)[None]
    # a full-length prompt: BOS, 75 random ordinary tokens, EOS (no padding, every position used)
    ids_b = torch.cat([torch.tensor([49406]), torch.randint(0, 49406, (75,), generator=g),
                       torch.tensor([49407])])[None]
    out = {"input_ids": ids_a.float().numpy(), "input_ids_b": ids_b.float().numpy()}
    with torch.no_grad():
        for sfx, ids in (("", ids_a), ("_b", ids_b)):
            r = clip(ids)
            out["hidden_last" + sfx] = f32(r["hidden_last"])
            out["hidden_skip2" + sfx] = f32(r["hidden_skip2"])
            if sfx == "":
                out["dbg_embeddings"] = f32(r["embeddings"])
                for l in range(CLIP_CFG["layers"]):
                    out[f"dbg_layer_{l}"] = f32(r[f"layer_{l}"])
    return out


def golden_unet(unet, seed):
    g = torch.Generator().manual_seed(seed * 1000 + 200)
    x = torch.randn(2, 4, 16, 16, generator=g)
    ts = torch.tensor([981.0, 1.0])
    ctx = torch.randn(2, 77, 32, generator=g)
    x_b = torch.randn(1, 4, 8, 24, generator=g)
    ts_b = torch.tensor([500.0])
    ctx_b = torch.randn(1, 154, 32, generator=g)
    out = {"x": x.numpy(), "timesteps": ts.numpy(), "context": ctx.numpy(),
           "x_b": x_b.numpy(), "timesteps_b": ts_b.numpy(), "context_b": ctx_b.numpy()}
    trace = {}
    with torch.no_grad():
        dt = next(unet.parameters()).dtype  # float64 for the goldens
        out["out"] = f32(unet(x.to(dt), ts, ctx.to(dt), trace))
        out["out_b"] = f32(unet(x_b.to(dt), ts_b, ctx_b.to(dt)))
    for k, v in trace.items():
        out["dbg_" + k] = f32(v)
    return out, trace


def golden_vae(vae, seed):
    g = torch.Generator().manual_seed(seed * 1000 + 300)
    z = torch.randn(1, 4, 8, 8, generator=g)
    image = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    z_b = torch.randn(1, 4, 4, 6, generator=g)
    out = {"z": z.numpy(), "image": image.numpy(), "z_b": z_b.numpy()}
    tdec, tenc = {}, {}
    with torch.no_grad():
        dt = next(vae.parameters()).dtype  # float64 for the goldens
        out["decoded"] = f32(vae.decode(z.to(dt) / SCALE_FACTOR, tdec))
        out["encoded_mean"] = f32(SCALE_FACTOR * vae.encode_mean(image.to(dt), tenc))
        out["decoded_b"] = f32(vae.decode(z_b.to(dt) / SCALE_FACTOR))
    for k, v in list(tdec.items()) + list(tenc.items()):
        if v.numel() <= 64 * 1024:  # the two full-resolution decoder stages would add 1.5 MB
            out["dbg_" + k] = f32(v)
    return out


# ----------------------------------------------------------------------------------------------
# Self-checks
# ----------------------------------------------------------------------------------------------
def check_close(what, got, want, tol):
    err = (got - want).abs().max().item()
    scale = max(want.abs().max().item(), 1e-30)
    ok = err <= tol * scale
    print(f"  [{'ok' if ok else 'FAIL'}] {what}: max|diff| {err:.3g} (scale {scale:.3g})")
    if not ok:
        raise SystemExit(f"self-check failed: {what}")


def check_ops():
    print("op checks (explicit formula vs torch.nn.functional, float64):")
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    for c, groups in ((32, 32), (64, 32), (96, 32), (128, 32)):
        x, w, b = r(2, c, 5, 7) * 3 + 1, r(c), r(c)
        check_close(f"group_norm C={c} G={groups}", group_norm(x, w, b, groups, 1e-6),
                    F.group_norm(x, groups, w, b, 1e-6), 1e-12)
    x, w, b = r(2, 9, 32) * 2 - 1, r(32), r(32)
    check_close("layer_norm", layer_norm(x, w, b, 1e-5), F.layer_norm(x, (32,), w, b, 1e-5), 1e-12)
    x = r(1000) * 4
    check_close("gelu (erf)", gelu(x), F.gelu(x), 1e-12)
    check_close("quick_gelu", quick_gelu(x), x * torch.sigmoid(1.702 * x), 0)
    check_close("softmax", softmax(x.reshape(10, 100)), torch.softmax(x.reshape(10, 100), -1), 1e-12)
    geglu = GEGLU(16, 64).double()
    x = r(3, 5, 16)
    a, gate = F.linear(x, geglu.proj.weight, geglu.proj.bias).split(64, dim=-1)
    check_close("GEGLU (first half value, second half gate)", geglu(x), a * F.gelu(gate), 1e-12)
    # attention against torch's MultiheadAttention (identity projections, no bias)
    for heads, causal, nq, nk in ((8, False, 12, 12), (8, False, 12, 7), (2, True, 9, 9), (1, False, 6, 6)):
        e = 32
        mha = torch.nn.MultiheadAttention(e, heads, bias=False, batch_first=True).double()
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.cat([torch.eye(e)] * 3))
            mha.out_proj.weight.copy_(torch.eye(e))
        q, k, v = r(2, nq, e), r(2, nk, e), r(2, nk, e)
        mask = torch.ones(nq, nk, dtype=torch.bool).triu(1) if causal else None
        want = mha(q, k, v, attn_mask=mask, need_weights=False)[0]
        check_close(f"attention heads={heads} causal={causal} Nq={nq} Nk={nk}",
                    attention(q, k, v, heads, causal), want, 1e-12)
    # timestep embedding: cos first, freq_0 = 1
    te = timestep_embedding(torch.tensor([981.0, 1.0]), 32)
    check_close("timestep_embedding cos(t) first", te[:, 0].double(), torch.cos(torch.tensor([981.0, 1.0])).double(),
                1e-6)
    check_close("timestep_embedding sin(t) at half", te[:, 16].double(), torch.sin(torch.tensor([981.0, 1.0])).double(),
                1e-6)


def real_key_list():
    """(name -> (dtype, shape)) of the real v1-5-pruned-emaonly file, from the shared generator."""
    if not os.path.isfile(REAL_LIST_TOOL):
        sys.exit(f"reference.py: {REAL_LIST_TOOL} not found (the real SD 1.5 key list); "
                 "set SD_SHARED to the folder holding tools/make_random_sd15.py")
    txt = subprocess.run([sys.executable, REAL_LIST_TOOL, "--list"], check=True, capture_output=True,
                         text=True).stdout
    out = {}
    for line in txt.splitlines():
        name, dt, shape = line.split(" ")
        out[name] = (dt, json.loads(shape))
    return out


def check_keys(ckpt):
    print("key-set check against the real SD1.5 file (make_random_sd15.py --list):")
    real = real_key_list()
    ours = {n: (write_dtype(a), list(a.shape)) for n, a in ckpt.items()}
    # the only names we drop on purpose: CLIP layers beyond our depth (3 of the real 12)
    deep = [n for n in real if n.startswith(CLIP_PREFIX + "encoder.layers.")
            and int(n[len(CLIP_PREFIX + "encoder.layers."):].split(".")[0]) >= CLIP_CFG["layers"]]
    print(f"  real CLIP layers {CLIP_CFG['layers']}..11 not in the tiny model: {len(deep)} tensors, excluded")
    for n in deep:
        del real[n]
    missing = sorted(set(real) - set(ours))
    extra = sorted(set(ours) - set(real))
    bad_dtype = sorted(n for n in set(real) & set(ours) if real[n][0] != ours[n][0])
    bad_rank = sorted(n for n in set(real) & set(ours) if len(real[n][1]) != len(ours[n][1]))
    same_shape = sum(1 for n in set(real) & set(ours) if real[n][1] == ours[n][1])
    print(f"  real {len(real)} tensors, ours {len(ours)}; missing {len(missing)}, extra {len(extra)}, "
          f"dtype differs {len(bad_dtype)}, rank differs {len(bad_rank)}; identical shape {same_shape}")
    for lst, what in ((missing, "missing"), (extra, "extra"), (bad_dtype, "dtype"), (bad_rank, "rank")):
        for n in lst[:20]:
            print(f"    {what}: {n} real {real.get(n)} ours {ours.get(n)}")
    if missing or extra or bad_dtype or bad_rank:
        raise SystemExit("self-check failed: tiny checkpoint keys differ from the real file")
    print("  [ok] same names, same dtypes, same ranks")


def write_dtype(a):
    return {"float16": "F16", "float32": "F32", "int64": "I64", "int32": "I32"}[a.dtype.name]


def check_reload(path, goldens):
    """Load the written checkpoint into fresh (differently seeded) models and recompute: the goldens must come
    out bit-identical, i.e. they depend on nothing but the file."""
    print("reload check (fresh models <- written checkpoint, recompute goldens):")
    tensors, _ = read_safetensors(path)
    fresh = build_models(seed=12345)
    for name, prefix in (("clip", CLIP_PREFIX), ("unet", UNET_PREFIX), ("vae", VAE_PREFIX)):
        sd = {n[len(prefix):]: torch.from_numpy(a.astype(np.float64) if a.dtype != np.int64 else a.copy())
              for n, a in tensors.items() if n.startswith(prefix)}
        fresh[name].load_state_dict(sd, strict=True)
    seed = goldens["seed"]
    for name, fn in (("clip", golden_clip), ("vae", golden_vae)):
        g = fn(fresh[name], seed)
        for k, v in goldens[name].items():
            assert np.array_equal(g[k], v), (name, k)
    g, _ = golden_unet(fresh["unet"], seed)
    for k, v in goldens["unet"].items():
        assert np.array_equal(g[k], v), ("unet", k)
    print("  [ok] goldens reproduced bit-exactly from the file's weights")


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------
def describe(name, arrays):
    for k, v in arrays.items():
        if k.startswith("dbg_"):
            continue
        print(f"    {name}.{k:14s} {str(tuple(v.shape)):18s} mean {v.mean():+.4f} std {v.std():.4f} "
              f"max|.| {np.abs(v).max():.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "data"))
    ap.add_argument("--check-only", action="store_true", help="run the self-checks, write nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)  # reproducible reductions

    check_ops()
    models = build_models(args.seed)
    ckpt = checkpoint_tensors(models)
    check_keys(ckpt)

    print("components:")
    for name, prefix in (("clip", CLIP_PREFIX), ("unet", UNET_PREFIX), ("vae", VAE_PREFIX)):
        nt = sum(1 for n in ckpt if n.startswith(prefix))
        print(f"  {name:4s} {prefix:42s} {nt:4d} tensors {n_params(models[name]):>9,d} parameters")
    print(f"  CLIP {CLIP_CFG}\n  UNet {UNET_CFG}\n  VAE  {VAE_CFG}")

    goldens = {"seed": args.seed, "clip": golden_clip(models["clip"], args.seed)}
    goldens["unet"], trace = golden_unet(models["unet"], args.seed)
    goldens["vae"] = golden_vae(models["vae"], args.seed)
    print("UNet shapes along the way (case x):")
    for k, v in trace.items():
        print(f"    {k:18s} {tuple(v.shape)}  std {v.std().item():.3f}")
    print("golden summaries:")
    for k in ("clip", "unet", "vae"):
        describe(k, goldens[k])
    if args.check_only:
        return

    meta = {
        "generator": "tools/reference.py",
        "seed": str(args.seed),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "clip_config": json.dumps(CLIP_CFG),
        "unet_config": json.dumps(UNET_CFG),
        "vae_config": json.dumps(VAE_CFG),
        "scale_factor": str(SCALE_FACTOR),
        "weights": "F16 (rounded from f32 draws); goldens computed in float64 from those values, stored F32",
    }
    os.makedirs(args.out_dir, exist_ok=True)
    ckpt_path = os.path.join(args.out_dir, "tiny_sd.safetensors")
    write_safetensors(ckpt_path, ckpt, {"format": "pt", **meta})
    notes = {
        "clip": "input_ids: token ids as float (1,77); hidden_last = final_layer_norm(last layer output); "
                "hidden_skip2 = final_layer_norm(output of the second-to-last layer); dbg_*: case a",
        "unet": "out = eps prediction of UNetModel(x, timesteps, context); timestep embedding in float32 like "
                "ldm; dbg_*: case x (both batch items)",
        "vae": f"decoded = decoder(post_quant_conv(z / {SCALE_FACTOR})), unclamped; encoded_mean = {SCALE_FACTOR} * "
               "quant_conv(encoder(image))[:, :4]; dbg_dec_*: case z, dbg_enc_*: case image",
    }
    for k in ("clip", "unet", "vae"):
        write_safetensors(os.path.join(args.out_dir, f"golden_{k}.safetensors"), goldens[k],
                          {**meta, "contents": notes[k]})
    check_keys(read_safetensors(ckpt_path)[0])  # again, as written
    check_reload(ckpt_path, goldens)
    print("files:")
    total = 0
    for f in ("tiny_sd", "golden_clip", "golden_unet", "golden_vae"):
        p = os.path.join(args.out_dir, f + ".safetensors")
        total += os.path.getsize(p)
        print(f"  {os.path.relpath(p, ROOT):40s} {os.path.getsize(p):>10,d} bytes")
    print(f"  total {total:,d} bytes")


if __name__ == "__main__":
    main()
