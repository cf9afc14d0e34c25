"""ref_unet.py — SD1.x UNet (ldm openaimodel.UNetModel with SpatialTransformer), PyTorch reference.

Attribute paths are the checkpoint keys below "model.diffusion_model." (ldm layout; position numbers inside
the Sequential-like lists match ldm's, e.g. in_layers.2 is the conv after GroupNorm(0) and SiLU(1)).
Structure for any (model_channels, channel_mult): input_blocks = conv_in, then per level num_res_blocks x
[ResBlock (+ SpatialTransformer on attention levels)] and a stride-2 Downsample except on the last level;
middle = ResBlock, SpatialTransformer, ResBlock; output_blocks = per level (reversed) num_res_blocks+1 x
[concat skip, ResBlock (+ SpatialTransformer)] with a nearest-2x Upsample after the last one, except on
level 0; out = GroupNorm, SiLU, conv.
SD2.x (num_head_channels, use_linear_in_transformer): heads = channels / head_channels at each level, and
proj_in/proj_out are Linear layers applied to the tokens (weights (C, C) instead of (C, C, 1, 1)).
Leaves out: scale-shift norm, class conditioning, transformer_depth > 1.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ref_nn import attention, gelu, group_norm, layer_norm, silu

RES_GN_EPS = 1e-5    # ResBlocks and the output norm: openaimodel normalization() = GroupNorm32(32, C), eps default
ST_GN_EPS = 1e-6     # SpatialTransformer.norm: ldm attention.Normalize = GroupNorm(32, C, eps=1e-6)
LN_EPS = 1e-5        # BasicTransformerBlock norm1..3: nn.LayerNorm default
GROUPS = 32


def gn(x, m, eps):
    return group_norm(x, m.weight, m.bias, GROUPS, eps)


def timestep_embedding(timesteps, dim, max_period=10000):
    """ldm util.timestep_embedding, computed in float32 exactly as ldm does (freqs, products, cos/sin):
    half = dim/2, freq_i = exp(-ln(max_period) * i / half), emb = [cos(t*freq), sin(t*freq)] (cos first,
    i.e. diffusers' flip_sin_to_cos=True, freq_shift=0). timesteps (N,) -> (N, dim) float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.in_layers = nn.ModuleList([nn.GroupNorm(GROUPS, cin, eps=RES_GN_EPS), nn.Identity(),
                                        nn.Conv2d(cin, cout, 3, padding=1)])
        self.emb_layers = nn.ModuleList([nn.Identity(), nn.Linear(temb, cout)])
        self.out_layers = nn.ModuleList([nn.GroupNorm(GROUPS, cout, eps=RES_GN_EPS), nn.Identity(), nn.Identity(),
                                         nn.Conv2d(cout, cout, 3, padding=1)])
        self.skip_connection = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):  # x (N, Cin, H, W), emb (N, temb)
        h = self.in_layers[2](silu(gn(x, self.in_layers[0], RES_GN_EPS)))  # (N, Cout, H, W)
        h = h + self.emb_layers[1](silu(emb))[:, :, None, None]
        h = self.out_layers[3](silu(gn(h, self.out_layers[0], RES_GN_EPS)))
        skip = x if self.skip_connection is None else self.skip_connection(x)
        return skip + h


class CrossAttention(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context):  # x (N, L, C), context (N, M, Cctx)
        return self.to_out[0](attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads))


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)  # first half is the value, second half the gate
        return a * gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.attn1 = CrossAttention(dim, dim, heads)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.norm3 = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x, context):
        n1, n2, n3 = self.norm1, self.norm2, self.norm3
        h = layer_norm(x, n1.weight, n1.bias, LN_EPS)
        x = x + self.attn1(h, h)
        x = x + self.attn2(layer_norm(x, n2.weight, n2.bias, LN_EPS), context)
        x = x + self.ff(layer_norm(x, n3.weight, n3.bias, LN_EPS))
        return x


class SpatialTransformer(nn.Module):
    def __init__(self, ch, context_dim, heads, linear=False):
        super().__init__()
        self.linear = linear
        self.norm = nn.GroupNorm(GROUPS, ch, eps=ST_GN_EPS)
        self.proj_in = nn.Linear(ch, ch) if linear else nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, context_dim, heads)])
        self.proj_out = nn.Linear(ch, ch) if linear else nn.Conv2d(ch, ch, 1)

    def forward(self, x, context):  # x (N, C, H, W)
        n, c, h, w = x.shape
        t = gn(x, self.norm, ST_GN_EPS)
        if not self.linear:  # SD1: 1x1 conv on the map, then tokens
            t = self.proj_in(t)
        t = t.reshape(n, c, h * w).transpose(1, 2)  # (N, H*W, C): token index = y*W + x
        if self.linear:  # SD2 (use_linear_in_transformer): tokens first, then a Linear
            t = self.proj_in(t)
        for blk in self.transformer_blocks:
            t = blk(t, context)
        if self.linear:
            t = self.proj_out(t)
        t = t.transpose(1, 2).reshape(n, c, h, w)
        return x + (t if self.linear else self.proj_out(t))


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def concat_skip(h, skip):
    """Output blocks see [current features, skip] along channels: the current features come first."""
    return torch.cat([h, skip], dim=1)


class Step(nn.ModuleList):
    """ldm's TimestepEmbedSequential: each layer gets what it needs (emb for ResBlocks, context for
    transformers)."""
    def forward(self, x, emb, context):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            else:
                x = layer(x)
        return x


class UNetModel(nn.Module):
    """Module paths = keys below "model.diffusion_model."."""
    def __init__(self, in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 1, 1),
                 num_res_blocks=2, attention_levels=(0, 1, 2), num_heads=8, context_dim=32,
                 num_head_channels=None, linear_proj=False):
        super().__init__()
        mc = model_channels

        def st(ch):  # SD1: num_heads at every level; SD2: ch / num_head_channels heads
            heads = ch // num_head_channels if num_head_channels else num_heads
            return SpatialTransformer(ch, context_dim, heads, linear_proj)

        temb = 4 * mc
        self.model_channels = mc
        self.time_embed = nn.ModuleList([nn.Linear(mc, temb), nn.Identity(), nn.Linear(temb, temb)])

        self.input_blocks = nn.ModuleList([Step([nn.Conv2d(in_channels, mc, 3, padding=1)])])
        skip_chans = [mc]
        ch = mc
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, mult * mc, temb)]
                ch = mult * mc
                if level in attention_levels:
                    layers.append(st(ch))
                self.input_blocks.append(Step(layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Step([Downsample(ch)]))
                skip_chans.append(ch)

        self.middle_block = Step([ResBlock(ch, ch, temb), st(ch),
                                  ResBlock(ch, ch, temb)])

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_chans.pop(), mult * mc, temb)]
                ch = mult * mc
                if level in attention_levels:
                    layers.append(st(ch))
                if level != 0 and i == num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(Step(layers))

        self.out = nn.ModuleList([nn.GroupNorm(GROUPS, ch, eps=RES_GN_EPS), nn.Identity(),
                                  nn.Conv2d(ch, out_channels, 3, padding=1)])

    def forward(self, x, timesteps, context, trace=None):
        """x (N, 4, H, W), timesteps (N,) (float, any value in [0, 1000)), context (N, M, Cctx) with M any
        multiple of 77 -> eps prediction (N, 4, H, W). trace: optional dict that receives the intermediates."""
        t_emb = timestep_embedding(timesteps, self.model_channels).to(x.dtype)  # (N, mc)
        emb = self.time_embed[2](silu(self.time_embed[0](t_emb)))  # (N, 4*mc)
        if trace is not None:
            trace["t_emb"], trace["emb"] = t_emb, emb
        hs = []
        h = x
        for i, blk in enumerate(self.input_blocks):
            h = blk(h, emb, context)
            hs.append(h)
            if trace is not None:
                trace[f"input_block_{i}"] = h
        h = self.middle_block(h, emb, context)
        if trace is not None:
            trace["middle_block"] = h
        for i, blk in enumerate(self.output_blocks):
            h = blk(concat_skip(h, hs.pop()), emb, context)
            if trace is not None:
                trace[f"output_block_{i}"] = h
        return self.out[2](silu(gn(h, self.out[0], RES_GN_EPS)))
