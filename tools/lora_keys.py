#!/usr/bin/python3
"""Write the full list of kohya LoRA layer names a trainer produces for SD 1.x and SDXL, each with the checkpoint
tensor it must land on, for the C++ mapping-table test (tests/data/lora_keys_{sd15,sdxl}.txt).

Independent of the C++ table (models/lora.cpp goes diffusers -> ldm): this walks the checkpoint's own tensor list
(../shared/tools/make_random_ckpt.py, the real SD 1.5 / SDXL base names) and names each layer the way kohya-ss
sd-scripts (networks/lora.py) does, going ldm -> diffusers:
  - kohya adapts every Linear / Conv2d inside the UNet's Transformer2DModel, ResnetBlock2D, Downsample2D and
    Upsample2D modules and the text encoders' CLIPAttention / CLIPMLP, and names a layer
    prefix + module path with '.' -> '_' (prefix lora_unet_, lora_te_, SDXL lora_te1_ / lora_te2_);
  - SD 1.x trains the diffusers UNet, so its UNet names are diffusers paths (down_blocks_0_attentions_0_...);
    SDXL trains sd-scripts' sdxl_original_unet, whose paths are the sgm ones (input_blocks_4_1_...), and diffusers
    / PEFT trainers write diffusers paths for SDXL too: both are listed;
  - every text encoder is named as HF CLIP (text_model_encoder_layers_N_self_attn_q_proj); on an OpenCLIP tower
    q/k/v land on a third of the rows of attn.in_proj_weight.

File format, one record a line:
  T <tensor> <d0,d1,...>          every UNet and text-encoder weight (the names the table may land on)
  K <kohya layer> <tensor> <row0> <rows>   rows 0: the whole tensor

Usage: /usr/bin/python3 tools/lora_keys.py [--shared ../shared]   (writes tests/data/lora_keys_*.txt)
"""
import argparse
import os
import re
import sys


def ldm_unet_to_diffusers(path, levels, attn_levels):
    """ldm/sgm UNet module path (no 'model.diffusion_model.') -> diffusers UNet2DConditionModel path, or None."""
    res = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
           "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
    simple = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
              "label_emb.0.0": "add_embedding.linear_1", "label_emb.0.2": "add_embedding.linear_2",
              "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"}
    if path in simple:
        return simple[path]
    m = re.match(r"input_blocks\.(\d+)\.(\d+)\.(.+)$", path) or re.match(r"input_blocks\.(\d+)\.(\d+)\.(op)$", path)
    if m:
        k, sub, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        level, j = (k - 1) // 3, (k - 1) % 3
        if j == 2:
            return f"down_blocks.{level}.downsamplers.0.conv" if rest == "op" else None
        if sub == 0:
            return f"down_blocks.{level}.resnets.{j}.{res[rest]}" if rest in res else None
        return f"down_blocks.{level}.attentions.{j}.{rest}"
    m = re.match(r"middle_block\.(\d+)\.(.+)$", path)
    if m:
        k, rest = int(m.group(1)), m.group(2)
        if k == 1:
            return f"mid_block.attentions.0.{rest}"
        return f"mid_block.resnets.{k // 2}.{res[rest]}" if rest in res else None
    m = re.match(r"output_blocks\.(\d+)\.(\d+)\.(.+)$", path)
    if m:
        k, sub, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        level, j = k // 3, k % 3  # level counted from the deepest, as diffusers' up_blocks
        if sub == 0:
            return f"up_blocks.{level}.resnets.{j}.{res[rest]}" if rest in res else None
        has_attn = attn_levels[levels - 1 - level]
        if sub == 1 and has_attn:
            return f"up_blocks.{level}.attentions.{j}.{rest}"
        if rest == "conv":  # the upsampler: after the attention where the level has one
            return f"up_blocks.{level}.upsamplers.0.conv"
    return None


def kohya_unet_module(path):
    """Whether kohya adapts this ldm module (a Linear/Conv inside a transformer, res block or resampler)."""
    leaf = path.split(".")
    if "transformer_blocks" in leaf:
        return leaf[-1] in ("to_q", "to_k", "to_v", "proj") or path.endswith("to_out.0") or path.endswith("ff.net.2")
    if leaf[-1] in ("proj_in", "proj_out", "op", "conv"):
        return True
    return any(path.endswith(s) for s in ("in_layers.2", "out_layers.3", "emb_layers.1", "skip_connection"))


def hf_te_layers(n_layers):
    for l in range(n_layers):
        for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1",
                  "mlp.fc2"):
            yield l, m


def us(s):
    return s.replace(".", "_")


def records(tensors, family):
    shapes = {n: s for n, s, _ in tensors}
    out = ["T %s %s" % (n, ",".join(map(str, s))) for n, s, _ in sorted(tensors)
           if (n.endswith(".weight") or n.endswith("in_proj_weight")) and not n.startswith("first_stage_model.")]
    unet = "model.diffusion_model."
    if family == "sd15":
        levels, attn_levels = 4, (True, True, True, False)
    else:
        levels, attn_levels = 3, (False, True, True)
    for n in sorted(shapes):
        if not (n.startswith(unet) and n.endswith(".weight")):
            continue
        path = n[len(unet):-len(".weight")]
        if not kohya_unet_module(path):
            continue
        d = ldm_unet_to_diffusers(path, levels, attn_levels)
        assert d is not None, path
        out.append(f"K lora_unet_{us(d)} {n} 0 0")
        if family == "sdxl":
            out.append(f"K lora_unet_{us(path)} {n} 0 0")
    if family == "sd15":
        tes = [("lora_te_", "cond_stage_model.transformer.text_model.encoder.layers.", None, 12)]
    else:
        tes = [("lora_te1_", "conditioner.embedders.0.transformer.text_model.encoder.layers.", None, 12),
               ("lora_te2_", "conditioner.embedders.1.model.transformer.resblocks.", "openclip", 32)]
    for prefix, base, kind, n_layers in tes:
        for l, m in hf_te_layers(n_layers):
            key = f"{prefix}text_model_encoder_layers_{l}_{us(m)}"
            if kind is None:
                t, r0, rows = f"{base}{l}.{m}.weight", 0, 0
            elif m.startswith("self_attn.") and m != "self_attn.out_proj":
                t = f"{base}{l}.attn.in_proj_weight"
                rows = shapes[t][0] // 3
                r0 = "qkv".index(m[len("self_attn.")]) * rows
            else:
                oc = {"self_attn.out_proj": "attn.out_proj", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}[m]
                t, r0, rows = f"{base}{l}.{oc}.weight", 0, 0
            assert t in shapes, t
            out.append(f"K {key} {t} {r0} {rows}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--shared", default=os.environ.get("SD_SHARED", os.path.join(root, "..", "shared")))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data"))
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(a.shared, "tools"))
    import make_random_ckpt as mk
    for family in ("sd15", "sdxl"):
        lines = records(mk.family_tensors(family, "none"), family)
        path = os.path.join(a.out, f"lora_keys_{family}.txt")
        with open(path, "w") as f:
            f.write(f"# kohya LoRA layer names for {family}: tools/lora_keys.py (T: checkpoint weights, "
                    f"K: layer tensor row0 rows)\n")
            f.write("\n".join(lines) + "\n")
        print(f"wrote {path}: {sum(l[0] == 'K' for l in lines)} layer names", file=sys.stderr)


if __name__ == "__main__":
    main()
