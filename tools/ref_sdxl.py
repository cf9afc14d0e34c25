"""ref_sdxl.py — the SDXL pieces beyond SD 2.x, PyTorch reference (written from Stability's generative-models "sgm"
code as the webui v1.10.1 runs it: sgm/modules/encoders/modules.py, sgm/modules/diffusionmodules/openaimodel.py).

SDXLUNet: attribute paths are the keys below "model.diffusion_model.". ldm's UNet plus
  - transformer_depth per level (SDXL base (0, 2, 10): level 0 has no spatial transformer at all) and
    transformer_depth_middle (defaults to the last level's depth),
  - label_emb = Sequential(Sequential(Linear(adm_in, temb), SiLU, Linear(temb, temb))): emb = time_embed(t) + label_emb(y),
  - linear proj_in/proj_out and heads of num_head_channels (64 in SDXL), as SD 2.x.
bigg_encode: FrozenOpenCLIPEmbedder2 (layer "penultimate", legacy False): the penultimate resblock output WITHOUT
  ln_final, and pooled = ln_final(last output)[argmax(ids)] @ text_projection (x @ P, P stored (width, proj)).
clip_l_hidden: FrozenCLIPEmbedder (layer "hidden", layer_idx 11 of 12): hidden_states[layer_idx], no final norm.
size_embedding: ConcatTimestepEmbedderND(outdim 256) for each of original_size_as_tuple (h, w),
  crop_coords_top_left (top, left), target_size_as_tuple (h, w): sinusoids of 256 per number, cos first, flattened.
"""
import torch
from torch import nn

from ref_nn import silu
from ref_unet import (GROUPS, RES_GN_EPS, BasicTransformerBlock, Downsample, ResBlock, SpatialTransformer, Step,
                      Upsample, concat_skip, gn, timestep_embedding)
from ref_open_clip import LN_EPS
from ref_nn import layer_norm


def spatial_transformer(ch, context_dim, heads, depth):
    st = SpatialTransformer(ch, context_dim, heads, linear=True)
    st.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, context_dim, heads) for _ in range(depth)])
    return st


class SDXLUNet(nn.Module):
    def __init__(self, in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=2,
                 transformer_depth=(0, 2, 1), transformer_depth_middle=None, context_dim=16, num_head_channels=16,
                 adm_in_channels=1544):
        super().__init__()
        mc = model_channels
        temb = 4 * mc
        if transformer_depth_middle is None:
            transformer_depth_middle = transformer_depth[-1]
        self.model_channels = mc

        def st(ch, depth):
            return spatial_transformer(ch, context_dim, ch // num_head_channels, depth)

        self.time_embed = nn.ModuleList([nn.Linear(mc, temb), nn.Identity(), nn.Linear(temb, temb)])
        self.label_emb = nn.ModuleList([nn.ModuleList([nn.Linear(adm_in_channels, temb), nn.Identity(),
                                                       nn.Linear(temb, temb)])])
        self.input_blocks = nn.ModuleList([Step([nn.Conv2d(in_channels, mc, 3, padding=1)])])
        skip_chans, ch = [mc], mc
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, mult * mc, temb)]
                ch = mult * mc
                if transformer_depth[level] > 0:
                    layers.append(st(ch, transformer_depth[level]))
                self.input_blocks.append(Step(layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Step([Downsample(ch)]))
                skip_chans.append(ch)
        self.middle_block = Step([ResBlock(ch, ch, temb), st(ch, transformer_depth_middle), ResBlock(ch, ch, temb)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_chans.pop(), mult * mc, temb)]
                ch = mult * mc
                if transformer_depth[level] > 0:
                    layers.append(st(ch, transformer_depth[level]))
                if level != 0 and i == num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(Step(layers))
        self.out = nn.ModuleList([nn.GroupNorm(GROUPS, ch, eps=RES_GN_EPS), nn.Identity(),
                                  nn.Conv2d(ch, out_channels, 3, padding=1)])

    def forward(self, x, timesteps, context, y):
        """x (N, 4, H, W), timesteps (N,), context (N, 77k, context_dim), y (N, adm_in) -> (N, 4, H, W)."""
        t_emb = timestep_embedding(timesteps, self.model_channels).to(x.dtype)
        emb = self.time_embed[2](silu(self.time_embed[0](t_emb)))
        le = self.label_emb[0]
        emb = emb + le[2](silu(le[0](y)))
        hs, h = [], x
        for blk in self.input_blocks:
            h = blk(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        for blk in self.output_blocks:
            h = blk(concat_skip(h, hs.pop()), emb, context)
        return self.out[2](silu(gn(h, self.out[0], RES_GN_EPS)))


def bigg_encode(text, ids):
    """text: ref_open_clip.OpenCLIPText; ids (N, 77) long, OpenCLIP padding (0 after the end token).
    -> penultimate (N, 77, C) raw, pooled (N, proj)."""
    x = text.token_embedding(ids) + text.positional_embedding
    blocks = text.transformer.resblocks
    penultimate = None
    for i, r in enumerate(blocks):
        if i == len(blocks) - 1:
            penultimate = x
        x = r(x)
    last = layer_norm(x, text.ln_final.weight, text.ln_final.bias, LN_EPS)
    pooled = last[torch.arange(ids.shape[0]), ids.argmax(dim=-1)] @ text.text_projection
    return penultimate, pooled


def clip_l_hidden(clip, ids):
    """clip: ref_clip.CLIPTextModel; ids (N, 77) -> hidden_states[-2] (the penultimate layer's output, no norm)."""
    out = clip(ids)
    return out[f"layer_{len(clip.encoder.layers) - 2}"]


def size_embedding(height, width, crop_top, crop_left, dim=256):
    """The 3 x 2 x 256 = 1536 numbers after the pooled output in SDXL's vector, float32 as sgm computes them."""
    vals = torch.tensor([height, width, crop_top, crop_left, height, width], dtype=torch.float32)
    return timestep_embedding(vals, dim).reshape(-1)  # (1536,): (h, w, top, left, h, w), 256 each
