#!/usr/bin/python3
"""lora_reference.py — LoRA / LoCon / LoHa / LoKr / PEFT files for the tiny SD 1.x checkpoint and an SDXL-named one,
and what applying them must give: tests/data/golden_lora.safetensors (merged weights, a txt2img latent).

    /usr/bin/python3 tools/lora_reference.py      # writes tests/data/lora/*.safetensors, tests/data/lora_sdxl/*, the golden

SDXL: kohya SDXL and PEFT files merged into a few tensors under SDXL's real names (sdxl_names.safetensors), and a kohya
SDXL LoRA (te1, te2's fused q/k/v rows, sgm UNet names, LoCon, label_emb) on tests/data/tiny_sdxl.safetensors with
tools/reference_sdxl.py's Euler run (3 steps, CFG 5, seed 1, 128x64) as the image golden.

Independent of the C++: the layer → tensor pairs are written out by hand below (one line each, read off the
diffusers ↔ ldm block numbering), and each format's update is its formula in torch, float64:
  LoRA / LoCon   ΔW = up.flatten(1) @ down.flatten(1)                      (kohya networks/lora.py)
  PEFT           ΔW = lora_B @ lora_A                                      (no alpha: scale 1)
  LoHa           ΔW = (w1a @ w1b) * (w2a @ w2b); with t1/t2 the CP form
                 einsum('ijkl,ir,jn->rnkl', t, w_a, w_b)                   (LyCORIS loha.py, make_weight_cp)
  LoKr           ΔW = kron(w1, w2) (w1, w2 whole or a @ b), reshaped to the layer's shape  (LyCORIS lokr.py)
  merged W' = fp16(W + multiplier * scale * ΔW), scale = alpha / rank (rank: lora_down / w1b / w2b rows; no alpha: 1),
  rounded to the checkpoint's f16 as the webui merges into its half weights (networks.py network_apply_weights).
The latent: tools/txt2img_reference.py's Euler run (3 steps, CFG 7, seed 1, torch CPU noise) on the checkpoint
with all four LoRAs merged at once, as the prompt
  "a photo of an astronaut riding a horse <lora:kohya_locon:0.8> <lora:loha:0.5:1.2> <lora:lokr> <lora:peft:te=-0.5:unet=0.7>"
asks (the webui's <lora:NAME:TE:UNET>: one number is both; te=/unet= by name).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402
import txt2img_reference as T  # noqa: E402
from ref_nn import read_safetensors, write_safetensors  # noqa: E402

DATA = os.path.join(R.ROOT, "tests", "data")
U, C = "model.diffusion_model.", "cond_stage_model.transformer.text_model.encoder.layers."
gen = torch.Generator().manual_seed(1234)


def rnd(*shape, s=0.3):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * s)


def f16(t):
    return t.to(torch.float16).numpy()


def f32(t):
    return t.to(torch.float32).numpy()


# ---- the four SD 1.x files: (layer name in the file, target tensor, parts, alpha) --------------------------------

def kohya_locon():
    """kohya LoRA: linear, 1×1 conv (4-D parts), 3×3 LoCon (down k×k, up 1×1); f16 and f32 parts; with/without alpha."""
    L = []
    def add(key, target, out, inn, k=None, rank=4, alpha=None, dt=f16):
        down = rnd(rank, inn) if k is None else rnd(rank, inn, k, k)
        up = rnd(out, rank) if k is None else rnd(out, rank, 1, 1)
        parts = {"lora_down.weight": dt(down), "lora_up.weight": dt(up)}
        if alpha is not None:
            parts["alpha"] = np.array(alpha, dtype=np.float32)
        L.append((key, target, parts))
    add("lora_te_text_model_encoder_layers_0_self_attn_q_proj", C + "0.self_attn.q_proj.weight", 32, 32, alpha=2.0)
    add("lora_te_text_model_encoder_layers_2_mlp_fc1", C + "2.mlp.fc1.weight", 128, 32, dt=f32)
    add("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
        U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 32, 32, alpha=4.0)
    add("lora_unet_down_blocks_0_attentions_0_proj_in", U + "input_blocks.1.1.proj_in.weight", 32, 32, k=1, alpha=1.0)
    add("lora_unet_up_blocks_1_attentions_2_transformer_blocks_0_ff_net_0_proj",
        U + "output_blocks.5.1.transformer_blocks.0.ff.net.0.proj.weight", 256, 32, rank=8, alpha=4.0)
    add("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_out_0",
        U + "middle_block.1.transformer_blocks.0.attn1.to_out.0.weight", 32, 32)
    add("lora_unet_down_blocks_1_resnets_0_conv1", U + "input_blocks.4.0.in_layers.2.weight", 64, 32, k=3, alpha=8.0)
    add("lora_unet_up_blocks_0_upsamplers_0_conv", U + "output_blocks.2.1.conv.weight", 32, 32, k=3, rank=2, alpha=1.0)
    add("lora_unet_up_blocks_1_upsamplers_0_conv", U + "output_blocks.5.2.conv.weight", 32, 32, k=3, alpha=2.0)
    add("lora_unet_down_blocks_0_downsamplers_0_conv", U + "input_blocks.3.0.op.weight", 32, 32, k=3, alpha=4.0)
    add("lora_unet_mid_block_resnets_1_time_emb_proj", U + "middle_block.2.emb_layers.1.weight", 32, 128, alpha=2.0)
    add("lora_unet_down_blocks_1_resnets_0_conv_shortcut", U + "input_blocks.4.0.skip_connection.weight", 64, 32, k=1)
    add("lora_unet_up_blocks_3_resnets_2_conv2", U + "output_blocks.11.0.out_layers.3.weight", 32, 32, k=3, alpha=4.0)
    return L


def loha():
    L = []
    def add(key, target, out, inn, k=1, rank=4, alpha=None, cp=False):
        if cp:  # CP form: t (r, r, k, k), w_a (r, out), w_b (r, in)
            parts = {"hada_t1": f16(rnd(rank, rank, k, k)), "hada_w1_a": f16(rnd(rank, out)), "hada_w1_b": f16(rnd(rank, inn)),
                     "hada_t2": f16(rnd(rank, rank, k, k)), "hada_w2_a": f16(rnd(rank, out)), "hada_w2_b": f16(rnd(rank, inn))}
        else:
            parts = {"hada_w1_a": f16(rnd(out, rank)), "hada_w1_b": f16(rnd(rank, inn * k * k)),
                     "hada_w2_a": f16(rnd(out, rank)), "hada_w2_b": f16(rnd(rank, inn * k * k))}
        if alpha is not None:
            parts["alpha"] = np.array(alpha, dtype=np.float16)
        L.append((key, target, parts))
    add("lora_te_text_model_encoder_layers_1_self_attn_v_proj", C + "1.self_attn.v_proj.weight", 32, 32, alpha=4.0)
    add("lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_attn1_to_q",
        U + "input_blocks.5.1.transformer_blocks.0.attn1.to_q.weight", 64, 64, alpha=2.0)
    add("lora_unet_up_blocks_2_resnets_1_conv1", U + "output_blocks.7.0.in_layers.2.weight", 64, 128, k=3, alpha=1.0)
    add("lora_unet_down_blocks_2_resnets_1_conv2", U + "input_blocks.8.0.out_layers.3.weight", 32, 32, k=3, alpha=2.0,
        cp=True)
    return L


def lokr():
    L = [("lora_te_text_model_encoder_layers_2_self_attn_out_proj", C + "2.self_attn.out_proj.weight",
          {"lokr_w1": f16(rnd(4, 4)), "lokr_w2_a": f16(rnd(8, 2)), "lokr_w2_b": f16(rnd(2, 8)),
           "alpha": np.array(1.0, dtype=np.float32)}),
         ("lora_unet_up_blocks_1_attentions_1_transformer_blocks_0_attn2_to_q",
          U + "output_blocks.4.1.transformer_blocks.0.attn2.to_q.weight",
          {"lokr_w1_a": f16(rnd(2, 1)), "lokr_w1_b": f16(rnd(1, 4)), "lokr_w2": f16(rnd(16, 8))}),
         ("lora_unet_down_blocks_0_resnets_1_conv1", U + "input_blocks.2.0.in_layers.2.weight",
          {"lokr_w1": f16(rnd(4, 4)), "lokr_w2": f16(rnd(8, 8, 3, 3))}),
         ("lora_unet_down_blocks_2_attentions_0_transformer_blocks_0_ff_net_2",
          U + "input_blocks.7.1.transformer_blocks.0.ff.net.2.weight",
          {"lokr_w1": f16(rnd(2, 4)), "lokr_w2_a": f16(rnd(16, 3)), "lokr_w2_b": f16(rnd(3, 32)),
           "alpha": np.array(3.0, dtype=np.float32)})]
    return L


def peft():
    """diffusers / PEFT names: dotted module paths under unet. / text_encoder., lora_A / lora_B, no alpha."""
    L = []
    for key, target, out, inn in [
            ("unet.down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_v",
             U + "input_blocks.2.1.transformer_blocks.0.attn1.to_v.weight", 32, 32),
            ("unet.up_blocks.3.attentions.0.proj_out", U + "output_blocks.9.1.proj_out.weight", 32, 32),
            ("text_encoder.text_model.encoder.layers.1.mlp.fc2", C + "1.mlp.fc2.weight", 32, 128)]:
        L.append((key, target, {"lora_A.weight": f32(rnd(4, inn)), "lora_B.weight": f32(rnd(out, 4))}))
    return L


# ---- ΔW per format ---------------------------------------------------------------------------------------------

def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def cp(t, wa, wb):  # t (r, n, k, l), wa (r, out), wb (n, in) -> (out, in, k, l)
    return torch.einsum("rnkl,ro,ni->oikl", t, wa, wb)


def delta(parts, shape):
    p = {k: t64(v) for k, v in parts.items()}
    rank = None
    if "lora_down.weight" in p or "lora_A.weight" in p:
        down = p.get("lora_down.weight", p.get("lora_A.weight"))
        up = p.get("lora_up.weight", p.get("lora_B.weight"))
        d = up.flatten(1) @ down.flatten(1)
        rank = down.shape[0]
    elif "hada_w1_a" in p:
        if "hada_t1" in p:
            d = cp(p["hada_t1"], p["hada_w1_a"], p["hada_w1_b"]) * cp(p["hada_t2"], p["hada_w2_a"], p["hada_w2_b"])
        else:
            d = (p["hada_w1_a"] @ p["hada_w1_b"]) * (p["hada_w2_a"] @ p["hada_w2_b"])
        rank = p["hada_w1_b"].shape[0]
    else:
        w1 = p["lokr_w1"] if "lokr_w1" in p else p["lokr_w1_a"] @ p["lokr_w1_b"]
        if "lokr_w1_b" in p:
            rank = p["lokr_w1_b"].shape[0]
        if "lokr_w2" in p:
            w2 = p["lokr_w2"]
        else:
            w2 = p["lokr_w2_a"] @ p["lokr_w2_b"]
            rank = p["lokr_w2_b"].shape[0]
        if w2.dim() == 4:
            w1 = w1[:, :, None, None]
        d = torch.kron(w1, w2)
    if "lora_mid.weight" in p:  # kohya LoCon with CP: mid (n, m, k, l) between up (i, n) and down (m, j)
        d = torch.einsum("nmkl,in,mj->ijkl", p["lora_mid.weight"], p["lora_up.weight"].flatten(1),
                         p["lora_down.weight"].flatten(1))
    scale = float(p["alpha"]) / rank if "alpha" in p and rank else 1.0
    return d.reshape(shape) * scale


def merged(ckpt, files_mults):
    """{tensor: f16 merged} for the tensors the files touch; files_mults: [(layers, te, unet)]."""
    acc = {}
    for layers, te, unet in files_mults:
        for key, target, parts in layers:
            w = acc.get(target, t64(ckpt[target]))
            m = te if target.startswith("cond_stage_model.") or target.startswith("conditioner.") else unet
            acc[target] = w + m * delta(parts, tuple(ckpt[target].shape))
    return {n: f16(w) for n, w in acc.items()}


def file_tensors(layers, peft_names=False):
    out = {}
    for key, _, parts in layers:
        for part, a in parts.items():
            if peft_names:
                out[f"{key}.{part}"] = a
            else:
                out[f"{key}.{part}"] = a
    return out


# ---- SDXL names --------------------------------------------------------------------------------------------------

XU, XE0, XE1 = "model.diffusion_model.", "conditioner.embedders.0.transformer.text_model.encoder.layers.", \
    "conditioner.embedders.1.model.transformer.resblocks."


def sdxl_ckpt():
    """A few tensors under SDXL's real names (narrow shapes): CLIP-L (te1), OpenCLIP bigG (te2, fused in_proj),
    sgm UNet transformer and upsampler, label_emb."""
    return {XE0 + "0.self_attn.k_proj.weight": f16(rnd(16, 16)),
            XE1 + "0.attn.in_proj_weight": f16(rnd(48, 16)),
            XE1 + "0.attn.out_proj.weight": f16(rnd(16, 16)),
            XE1 + "1.mlp.c_fc.weight": f16(rnd(64, 16)),
            XU + "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight": f16(rnd(16, 32)),
            XU + "input_blocks.7.1.proj_in.weight": f16(rnd(16, 16)),
            XU + "output_blocks.2.2.conv.weight": f16(rnd(16, 16, 3, 3)),
            XU + "label_emb.0.0.weight": f16(rnd(16, 24))}


def lora_rows(key, target, out, inn, rows=None, k=None, rank=4, alpha=2.0, names=("lora_down.weight", "lora_up.weight")):
    down = rnd(rank, inn) if k is None else rnd(rank, inn, k, k)
    up = rnd(out, rank) if k is None else rnd(out, rank, 1, 1)
    parts = {names[0]: f16(down), names[1]: f16(up)}
    if alpha is not None:
        parts["alpha"] = np.array(alpha, dtype=np.float32)
    return key, target, parts, rows


def sdxl_kohya():
    return [lora_rows("lora_te1_text_model_encoder_layers_0_self_attn_k_proj", XE0 + "0.self_attn.k_proj.weight", 16, 16),
            lora_rows("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", XE1 + "0.attn.in_proj_weight", 16, 16, rows=0),
            lora_rows("lora_te2_text_model_encoder_layers_0_self_attn_v_proj", XE1 + "0.attn.in_proj_weight", 16, 16, rows=2),
            lora_rows("lora_te2_text_model_encoder_layers_0_self_attn_out_proj", XE1 + "0.attn.out_proj.weight", 16, 16),
            lora_rows("lora_te2_text_model_encoder_layers_1_mlp_fc1", XE1 + "1.mlp.c_fc.weight", 64, 16),
            lora_rows("lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k",
                      XU + "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight", 16, 32),
            lora_rows("lora_unet_output_blocks_2_2_conv", XU + "output_blocks.2.2.conv.weight", 16, 16, k=3),
            lora_rows("lora_unet_label_emb_0_0", XU + "label_emb.0.0.weight", 16, 24, alpha=None)]


def sdxl_peft():
    n = ("lora_A.weight", "lora_B.weight")
    return [lora_rows("unet.down_blocks.2.attentions.0.proj_in", XU + "input_blocks.7.1.proj_in.weight", 16, 16,
                      alpha=None, names=n),
            lora_rows("text_encoder_2.text_model.encoder.layers.0.self_attn.k_proj", XE1 + "0.attn.in_proj_weight",
                      16, 16, rows=1, alpha=None, names=n),
            lora_rows("unet.up_blocks.0.upsamplers.0.conv", XU + "output_blocks.2.2.conv.weight", 16, 16, k=3,
                      alpha=None, names=n)]


def merged_rows(ckpt, layers, te, unet):
    acc = {}
    for key, target, parts, rows in layers:
        w = acc.get(target, t64(ckpt[target])).clone()
        m = te if target.startswith("conditioner.") or target.startswith("cond_stage_model.") else unet
        if rows is None:
            w += m * delta(parts, tuple(ckpt[target].shape))
        else:
            h = ckpt[target].shape[0] // 3
            w[rows * h:(rows + 1) * h] += m * delta(parts, (h,) + tuple(ckpt[target].shape[1:]))
        acc[target] = w
    return {n: f16(w) for n, w in acc.items()}


# ---- the tiny SDXL checkpoint: a kohya SDXL LoRA (sgm UNet names, te1 / te2) and its latent --------------------

def sdxl_tiny_lora():
    return [lora_rows("lora_te1_text_model_encoder_layers_1_self_attn_q_proj", XE0 + "1.self_attn.q_proj.weight", 8, 8),
            lora_rows("lora_te2_text_model_encoder_layers_0_self_attn_k_proj", XE1 + "0.attn.in_proj_weight", 8, 8,
                      rows=1),
            lora_rows("lora_te2_text_model_encoder_layers_2_mlp_fc2", XE1 + "2.mlp.c_proj.weight", 8, 32, alpha=None),
            lora_rows("lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k",
                      XU + "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight", 32, 16, alpha=8.0),
            lora_rows("lora_unet_output_blocks_2_1_proj_in", XU + "output_blocks.2.1.proj_in.weight", 64, 64, alpha=4.0),
            lora_rows("lora_unet_output_blocks_2_2_conv", XU + "output_blocks.2.2.conv.weight", 64, 64, k=3, alpha=4.0),
            lora_rows("lora_unet_label_emb_0_0", XU + "label_emb.0.0.weight", 128, 1544, alpha=1.0)]


def sdxl_latent(tensors):
    """reference_sdxl.py's euler run (3 steps, CFG 5, seed 1, 128x64) on the given checkpoint tensors."""
    import reference_sdxl as X
    clip_l, bigg, unet = X.build(X.SEED)
    for prefix, m in ((X.CLIP_L_PREFIX, clip_l), (X.BIGG_PREFIX, bigg), (X.UNET_PREFIX, unet)):
        sd = {n[len(prefix):]: torch.from_numpy(a.astype(np.float64) if a.dtype != np.int64 else a.copy())
              for n, a in tensors.items() if n.startswith(prefix)}
        m.load_state_dict(sd, strict=True)
    with torch.no_grad():
        return f32(X.run(clip_l, bigg, unet, X.RUNS[0]))


# ---- kohya LoCon with a CP middle (lora_mid), on the tiny SD 1.x checkpoint --------------------------------------

def locon_cp(ckpt):
    L = []
    for key, target, rank, alpha in [("lora_unet_down_blocks_1_resnets_0_conv2", U + "input_blocks.4.0.out_layers.3.weight", 4, 2.0),
                                     ("lora_unet_up_blocks_2_resnets_0_conv1", U + "output_blocks.6.0.in_layers.2.weight", 2, 1.0)]:
        out, inn, k, _ = ckpt[target].shape
        L.append((key, target, {"lora_down.weight": f16(rnd(rank, inn, 1, 1)), "lora_mid.weight": f16(rnd(rank, rank, k, k)),
                                "lora_up.weight": f16(rnd(out, rank, 1, 1)), "alpha": np.array(alpha, dtype=np.float32)}))
    return L


# ---- SD 2.x: a kohya LoRA on the tiny SD 2.x checkpoint (OpenCLIP's fused q/k/v rows, linear proj_in/out) ---------

S2T, S2U = "cond_stage_model.model.transformer.resblocks.", "model.diffusion_model."


def sd2_kohya():
    te = "lora_te_text_model_encoder_layers_"
    return [lora_rows(te + "0_self_attn_q_proj", S2T + "0.attn.in_proj_weight", 8, 8, rows=0, alpha=2.0),
            lora_rows(te + "0_self_attn_v_proj", S2T + "0.attn.in_proj_weight", 8, 8, rows=2, alpha=1.0),
            lora_rows(te + "1_self_attn_k_proj", S2T + "1.attn.in_proj_weight", 8, 8, rows=1, alpha=None),
            lora_rows(te + "1_self_attn_out_proj", S2T + "1.attn.out_proj.weight", 8, 8, alpha=4.0),
            lora_rows(te + "2_mlp_fc1", S2T + "2.mlp.c_fc.weight", 32, 8, alpha=2.0),
            lora_rows("lora_unet_down_blocks_0_attentions_0_proj_in", S2U + "input_blocks.1.1.proj_in.weight", 32, 32,
                      alpha=2.0),
            lora_rows("lora_unet_up_blocks_2_attentions_1_proj_out", S2U + "output_blocks.7.1.proj_out.weight", 64, 64,
                      alpha=4.0),
            lora_rows("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k",
                      S2U + "middle_block.1.transformer_blocks.0.attn2.to_k.weight", 32, 8, alpha=1.0),
            lora_rows("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_ff_net_0_proj",
                      S2U + "output_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight", 256, 32, rank=8, alpha=4.0),
            lora_rows("lora_unet_down_blocks_1_resnets_0_conv_shortcut", S2U + "input_blocks.4.0.skip_connection.weight",
                      64, 32, k=1, alpha=2.0)]


def sd2_latent(tensors):
    """reference_sd2.py's v-prediction Euler run (3 steps, CFG 5, its sample/noise) on the given checkpoint tensors,
    "a photo of an astronaut riding a horse" against the empty prompt."""
    import reference_sd2 as S
    from sampler_reference import sd_table
    text, unet = S.build(S.SEED)
    for prefix, m in ((S.TEXT_PREFIX, text), (S.UNET_PREFIX, unet)):
        m.load_state_dict({n[len(prefix):]: t64(a) for n, a in tensors.items() if n.startswith(prefix)}, strict=True)
    g, _ = read_safetensors(os.path.join(DATA, "golden_sd2.safetensors"))
    ids_a = torch.tensor(S.PROMPT_IDS + [0] * (77 - len(S.PROMPT_IDS)), dtype=torch.int64)[None]
    ids_u = torch.tensor([49406, 49407] + [0] * 75, dtype=torch.int64)[None]
    with torch.no_grad():
        cond, uncond = text.encode(ids_a, 1), text.encode(ids_u, 1)
        table = sd_table()
        sig = [float(v) for v in table.get_sigmas(3)]
        D = S.make_denoiser(unet, table, "v", 5, cond, uncond)
        return f32(S.run_euler(D, t64(g["sample/noise"]) * sig[0], sig))


# ---- main -------------------------------------------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    ckpt, _ = read_safetensors(os.path.join(DATA, "tiny_sd.safetensors"))
    files = {"kohya_locon": kohya_locon(), "loha": loha(), "lokr": lokr(), "peft": peft()}
    os.makedirs(os.path.join(DATA, "lora"), exist_ok=True)
    meta = {"tool": "tools/lora_reference.py", "torch": torch.__version__}
    for name, layers in files.items():
        write_safetensors(os.path.join(DATA, "lora", name + ".safetensors"), file_tensors(layers), meta)
    golden = {}
    for name, layers in files.items():  # each alone at TE 1, UNet 1
        for t, w in merged(ckpt, [(layers, 1.0, 1.0)]).items():
            golden[f"merged/{name}/{t}"] = w
    mults = [(files["kohya_locon"], 0.8, 0.8), (files["loha"], 0.5, 1.2), (files["lokr"], 1.0, 1.0),
             (files["peft"], -0.5, 0.7)]
    stacked = merged(ckpt, mults)

    def latent(tensors):
        models = R.build_models(seed=0)
        for nm, prefix in (("clip", R.CLIP_PREFIX), ("unet", R.UNET_PREFIX)):
            sd = {n[len(prefix):]: torch.from_numpy(a.astype(np.float64) if a.dtype != np.int64 else a.copy())
                  for n, a in tensors.items() if n.startswith(prefix)}
            models[nm].load_state_dict(sd, strict=True)
        return T.run(models["clip"], models["unet"], T.RUNS[0])["euler/x"]

    x = latent({**ckpt, **stacked})
    x0 = latent(ckpt)
    golden["stacked/x"] = x
    print(f"  stacked LoRAs move the latent by {np.abs(x - x0).max():.4f} max (scale {np.abs(x0).max():.3f})")

    # SDXL names: a checkpoint with a few real SDXL tensor names, a kohya SDXL file and a PEFT one.
    os.makedirs(os.path.join(DATA, "lora_sdxl"), exist_ok=True)
    xl = sdxl_ckpt()
    write_safetensors(os.path.join(DATA, "lora_sdxl", "sdxl_names.safetensors"), xl, meta)
    for name, layers, md in (("sdxl_kohya", sdxl_kohya(), {**meta, "ss_base_model_version": "sdxl_base_v1-0"}),
                             ("sdxl_peft", sdxl_peft(), meta)):
        t = {}
        for key, _, parts, _ in layers:
            for part, a in parts.items():
                t[f"{key}.{part}"] = a
        write_safetensors(os.path.join(DATA, "lora_sdxl", name + ".safetensors"), t, md)
        for n, w in merged_rows(xl, layers, 0.75, 1.5).items():
            golden[f"merged/{name}/{n}"] = w
    # The tiny SDXL checkpoint: "a photo of an astronaut riding a horse <lora:sdxl_tiny:0.7:1.3>".
    xs, _ = read_safetensors(os.path.join(DATA, "tiny_sdxl.safetensors"))
    layers = sdxl_tiny_lora()
    t = {f"{key}.{part}": a for key, _, parts, _ in layers for part, a in parts.items()}
    write_safetensors(os.path.join(DATA, "lora_sdxl", "sdxl_tiny.safetensors"), t,
                      {**meta, "ss_base_model_version": "sdxl_base_v1-0"})
    m = merged_rows(xs, layers, 0.7, 1.3)
    for n, w in m.items():
        golden[f"merged/sdxl_tiny/{n}"] = w
    x = sdxl_latent({**xs, **m})
    x0 = sdxl_latent(xs)
    golden["sdxl/x"] = x
    print(f"  the SDXL LoRA moves the latent by {np.abs(x - x0).max():.4f} max (scale {np.abs(x0).max():.3f})")
    # Written last, so the random draws of everything above stay as they were.
    cp_layers = locon_cp(ckpt)
    write_safetensors(os.path.join(DATA, "lora", "locon_cp.safetensors"), file_tensors(cp_layers), meta)
    for t, w in merged(ckpt, [(cp_layers, 1.0, 1.0)]).items():
        golden[f"merged/locon_cp/{t}"] = w
    # SD 2.x: "<lora:sd2_kohya:0.8:1.1>" on tests/data/tiny_sd2.safetensors.
    s2, _ = read_safetensors(os.path.join(DATA, "tiny_sd2.safetensors"))
    layers = sd2_kohya()
    os.makedirs(os.path.join(DATA, "lora_sd2"), exist_ok=True)
    write_safetensors(os.path.join(DATA, "lora_sd2", "sd2_kohya.safetensors"),
                      {f"{key}.{part}": a for key, _, parts, _ in layers for part, a in parts.items()},
                      {**meta, "ss_v2": "True", "ss_base_model_version": "sd_v2"})
    m = merged_rows(s2, layers, 0.8, 1.1)
    for n, w in m.items():
        golden[f"merged/sd2_kohya/{n}"] = w
    x = sd2_latent({**s2, **m})
    x0 = sd2_latent(s2)
    golden["sd2/x"] = x
    print(f"  the SD 2.x LoRA moves the latent by {np.abs(x - x0).max():.4f} max (scale {np.abs(x0).max():.3f})")
    out = os.path.join(DATA, "golden_lora.safetensors")
    write_safetensors(out, golden, {**meta, "stacked": repr([(n, te, un) for n, (_, te, un) in zip(files, mults)]),
                                    "sdxl_multipliers": "te 0.75, unet 1.5",
                                    "sdxl_tiny": "<lora:sdxl_tiny:0.7:1.3> on tests/data/tiny_sdxl.safetensors, "
                                                 "reference_sdxl.py's euler run",
                                    "sd2": "<lora:sd2_kohya:0.8:1.1> on tests/data/tiny_sd2.safetensors, "
                                           "reference_sd2.py's v euler run, CFG 5, its sample/noise"})
    print(f"wrote {out} ({os.path.getsize(out)} bytes, {len(golden)} tensors)")


if __name__ == "__main__":
    main()
