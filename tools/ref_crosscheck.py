#!/usr/bin/python3
"""ref_crosscheck.py — checks our reference and goldens against independent implementations.

  UNet, VAE: the original CompVis/stable-diffusion code (ldm/modules/...), imported from a checkout or a
             git mirror of it (--ldm), instantiated with the tiny config and loaded from
             tests/data/tiny_sd.safetensors with strict=True (so every checkpoint name is also checked).
  CLIP:      torch.nn.TransformerEncoderLayer (pre-norm, quick_gelu, causal mask) with our weights mapped in.
They run in float32 (ldm casts to f32 internally), so agreement is expected at the f32 error floor
(~1e-6 of max|golden|, see ref_mutations.py), far below the smallest mutation the goldens catch.
Nothing of ldm is copied into the tree: the files are read from the mirror into a temporary directory,
with stand-ins for einops.rearrange, omegaconf's ListConfig (not installed here) and ldm.util.

    /usr/bin/python3 tools/ref_crosscheck.py --ldm PATH    # or SD_LDM=PATH: a CompVis/stable-diffusion checkout
                                                           # or its bare git directory
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402
from ref_nn import quick_gelu, read_safetensors  # noqa: E402

LDM_FILES = ["ldm/__init__.py", "ldm/modules/__init__.py", "ldm/modules/diffusionmodules/__init__.py",
             "ldm/modules/attention.py", "ldm/modules/diffusionmodules/util.py",
             "ldm/modules/diffusionmodules/openaimodel.py", "ldm/modules/diffusionmodules/model.py"]


# ----------------------------------------------------------------------------------------------
# einops.rearrange stand-in: plain axis names and parenthesised groups, no ellipsis
# ----------------------------------------------------------------------------------------------
def _groups(side):
    return [g.split() for g in re.findall(r"\(([^)]*)\)|(\S+)", side) for g in [g[0] or g[1]]]


def rearrange(t, pattern, **sizes):
    lhs, rhs = (_groups(s) for s in pattern.split("->"))
    sizes = dict(sizes)
    for grp, n in zip(lhs, t.shape):
        unknown = [a for a in grp if a not in sizes]
        known = int(np.prod([sizes[a] for a in grp if a in sizes]))
        if unknown:
            assert len(unknown) == 1, pattern
            sizes[unknown[0]] = n // known
    flat_in = [a for g in lhs for a in g]
    flat_out = [a for g in rhs for a in g]
    t = t.reshape([sizes[a] for a in flat_in]).permute([flat_in.index(a) for a in flat_out])
    return t.reshape([int(np.prod([sizes[a] for a in g])) for g in rhs])


def _repeat(*a, **k):
    raise NotImplementedError("einops.repeat is not needed for inference without masks")


def import_ldm(src):
    """src: a checkout of CompVis/stable-diffusion, or its bare git directory."""
    tmp = tempfile.mkdtemp(prefix="ldm_src_")
    for f in LDM_FILES:
        dst = os.path.join(tmp, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.exists(os.path.join(src, f)):
            with open(os.path.join(src, f), "rb") as fi:
                data = fi.read()
        else:
            r = subprocess.run(["git", "--git-dir", src, "show", "HEAD:" + f], capture_output=True)
            if r.returncode != 0 and not f.endswith("__init__.py"):  # package __init__ files may be absent
                sys.exit(f"ref_crosscheck.py: {f} is neither in {src} nor in its git history")
            data = r.stdout if r.returncode == 0 else b""
        with open(dst, "wb") as fo:
            fo.write(data)
    einops = types.ModuleType("einops")
    einops.rearrange, einops.repeat = rearrange, _repeat
    sys.modules["einops"] = einops
    ldm_util = types.ModuleType("ldm.util")
    ldm_util.instantiate_from_config = lambda cfg: None
    sys.modules["ldm.util"] = ldm_util
    omegaconf, listconfig = types.ModuleType("omegaconf"), types.ModuleType("omegaconf.listconfig")
    listconfig.ListConfig = type("ListConfig", (), {})  # only used in an isinstance check on context_dim
    omegaconf.listconfig = listconfig
    sys.modules["omegaconf"], sys.modules["omegaconf.listconfig"] = omegaconf, listconfig
    sys.path.insert(0, tmp)
    import ldm.modules.diffusionmodules.model as ldm_model
    import ldm.modules.diffusionmodules.openaimodel as ldm_unet
    return ldm_unet, ldm_model


def component(tensors, prefix):
    return {n[len(prefix):]: torch.from_numpy(a.astype(np.float32) if a.dtype == np.float16 else a.copy())
            for n, a in tensors.items() if n.startswith(prefix)}


def report(what, got, want):
    r = float(np.abs(got - want).max() / np.abs(want).max())
    print(f"  {'ok' if r < 1e-5 else 'FAIL'}  {r:9.2e}  {what}")
    return r < 1e-5


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ldm", default=os.environ.get("SD_LDM"),
                    help="a CompVis/stable-diffusion checkout or its bare git directory (default: $SD_LDM)")
    ap.add_argument("--data", default=os.path.join(R.ROOT, "tests", "data"))
    args = ap.parse_args()
    if not args.ldm or not os.path.isdir(args.ldm):
        sys.exit("ref_crosscheck.py: give --ldm PATH (or SD_LDM), a CompVis/stable-diffusion checkout or its bare "
                 f"git directory{'; ' + repr(args.ldm) + ' is not a folder' if args.ldm else ''}")
    torch.set_num_threads(1)
    tensors, _ = read_safetensors(os.path.join(args.data, "tiny_sd.safetensors"))
    gu, _ = read_safetensors(os.path.join(args.data, "golden_unet.safetensors"))
    gv, _ = read_safetensors(os.path.join(args.data, "golden_vae.safetensors"))
    gc, _ = read_safetensors(os.path.join(args.data, "golden_clip.safetensors"))
    ok = True
    ldm_unet, ldm_model = import_ldm(args.ldm)
    T = lambda a: torch.from_numpy(a.copy())

    print("UNet: ldm openaimodel.UNetModel (float32) vs golden_unet")
    c = R.UNET_CFG
    unet = ldm_unet.UNetModel(image_size=32, in_channels=c["in_channels"], out_channels=c["out_channels"],
                              model_channels=c["model_channels"], attention_resolutions=[1, 2, 4],
                              num_res_blocks=c["num_res_blocks"], channel_mult=list(c["channel_mult"]),
                              num_heads=c["num_heads"], use_spatial_transformer=True, transformer_depth=1,
                              context_dim=c["context_dim"], use_checkpoint=False, legacy=False)
    unet.load_state_dict(component(tensors, R.UNET_PREFIX), strict=True)
    unet.eval()
    with torch.no_grad():
        ok &= report("out", unet(T(gu["x"]), T(gu["timesteps"]), T(gu["context"])).numpy(), gu["out"])
        ok &= report("out_b", unet(T(gu["x_b"]), T(gu["timesteps_b"]), T(gu["context_b"])).numpy(), gu["out_b"])

    print("VAE: ldm model.Encoder/Decoder + 1x1 quant convs (float32) vs golden_vae")
    v = R.VAE_CFG
    dd = dict(double_z=True, z_channels=v["z_channels"], resolution=256, in_channels=3, out_ch=3, ch=v["ch"],
              ch_mult=list(v["ch_mult"]), num_res_blocks=v["num_res_blocks"], attn_resolutions=[], dropout=0.0)
    vae = torch.nn.Module()
    vae.encoder = ldm_model.Encoder(**dd)
    vae.decoder = ldm_model.Decoder(**dd)
    vae.quant_conv = torch.nn.Conv2d(2 * v["z_channels"], 2 * v["embed_dim"], 1)
    vae.post_quant_conv = torch.nn.Conv2d(v["embed_dim"], v["z_channels"], 1)
    vae.load_state_dict(component(tensors, R.VAE_PREFIX), strict=True)
    vae.eval()
    s = R.SCALE_FACTOR
    with torch.no_grad():
        dec = lambda z: vae.decoder(vae.post_quant_conv(z / s)).numpy()
        ok &= report("decoded", dec(T(gv["z"])), gv["decoded"])
        ok &= report("decoded_b", dec(T(gv["z_b"])), gv["decoded_b"])
        mean = s * vae.quant_conv(vae.encoder(T(gv["image"])))[:, :v["embed_dim"]]
        ok &= report("encoded_mean", mean.numpy(), gv["encoded_mean"])

    print("CLIP: torch.nn.TransformerEncoderLayer (pre-norm, quick_gelu, causal; float32) vs golden_clip")
    c = R.CLIP_CFG
    w = component(tensors, R.CLIP_PREFIX)
    layers = []
    for l in range(c["layers"]):
        p = f"encoder.layers.{l}."
        layer = torch.nn.TransformerEncoderLayer(c["width"], c["heads"], c["mlp"], dropout=0.0, activation=quick_gelu,
                                                 layer_norm_eps=c["eps"], batch_first=True, norm_first=True)
        sd = {
            "self_attn.in_proj_weight": torch.cat([w[p + f"self_attn.{x}_proj.weight"] for x in "qkv"]),
            "self_attn.in_proj_bias": torch.cat([w[p + f"self_attn.{x}_proj.bias"] for x in "qkv"]),
            "self_attn.out_proj.weight": w[p + "self_attn.out_proj.weight"],
            "self_attn.out_proj.bias": w[p + "self_attn.out_proj.bias"],
            "linear1.weight": w[p + "mlp.fc1.weight"], "linear1.bias": w[p + "mlp.fc1.bias"],
            "linear2.weight": w[p + "mlp.fc2.weight"], "linear2.bias": w[p + "mlp.fc2.bias"],
            "norm1.weight": w[p + "layer_norm1.weight"], "norm1.bias": w[p + "layer_norm1.bias"],
            "norm2.weight": w[p + "layer_norm2.weight"], "norm2.bias": w[p + "layer_norm2.bias"],
        }
        layer.load_state_dict(sd, strict=True)
        layers.append(layer.eval())
    fln = torch.nn.LayerNorm(c["width"], eps=c["eps"])
    fln.load_state_dict({"weight": w["final_layer_norm.weight"], "bias": w["final_layer_norm.bias"]})
    causal = torch.ones(77, 77, dtype=torch.bool).triu(1)
    with torch.no_grad():
        for sfx in ("", "_b"):
            ids = T(gc["input_ids" + sfx]).long()
            x = w["embeddings.token_embedding.weight"][ids] + w["embeddings.position_embedding.weight"][None]
            outs = []
            for layer in layers:
                x = layer(x, src_mask=causal)
                outs.append(x)
            ok &= report("hidden_last" + sfx, fln(outs[-1]).numpy(), gc["hidden_last" + sfx])
            ok &= report("hidden_skip2" + sfx, fln(outs[-2]).numpy(), gc["hidden_skip2" + sfx])
    print("all agree" if ok else "DISAGREEMENT")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
