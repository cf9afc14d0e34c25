"""ref_vae.py — SD1.x KL autoencoder (ldm.models.autoencoder.AutoencoderKL), PyTorch reference.

Attribute paths are the checkpoint keys below "first_stage_model.". Every GroupNorm is ldm's
model.Normalize: 32 groups, eps 1e-6. Encoder: conv_in, per level num_res_blocks ResnetBlocks and (except the
last level) a Downsample that pads (left 0, right 1, top 0, bottom 1) with zeros then runs a 3x3 stride-2 conv
with no padding; mid = block_1, attn_1 (single-head attention over all pixels, q/k/v/proj_out are 1x1 convs),
block_2; norm_out, SiLU, conv_out to 2*z_channels (mean, logvar). Decoder mirrors it with num_res_blocks+1
blocks per level and nearest-2x Upsample + conv. quant_conv / post_quant_conv are 1x1 convs.
Leaves out: sampling from the posterior (we use its mean), attention at other resolutions (SD uses none).
"""
import torch.nn.functional as F
from torch import nn

from ref_nn import attention, group_norm, silu

GN_EPS = 1e-6
GROUPS = 32


def gn(x, m):
    return group_norm(x, m.weight, m.bias, GROUPS, GN_EPS)


def Normalize(c):
    return nn.GroupNorm(GROUPS, c, eps=GN_EPS)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = Normalize(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = Normalize(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(silu(gn(x, self.norm1)))
        h = self.conv2(silu(gn(h, self.norm2)))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = Normalize(c)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):  # (N, C, H, W)
        n, c, h, w = x.shape
        y = gn(x, self.norm)
        tok = lambda t: t.reshape(n, c, h * w).transpose(1, 2)  # (N, H*W, C)
        o = attention(tok(self.q(y)), tok(self.k(y)), tok(self.v(y)), heads=1)  # scale C^-0.5
        o = o.transpose(1, 2).reshape(n, c, h, w)
        return x + self.proj_out(o)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # (W left, W right, H top, H bottom)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Level(nn.Module):
    pass


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1 = ResnetBlock(c, c)
        self.attn_1 = AttnBlock(c)
        self.block_2 = ResnetBlock(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, in_channels, z_channels):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for i, m in enumerate(ch_mult):
            lvl = Level()
            lvl.block = nn.ModuleList()
            for _ in range(num_res_blocks):
                lvl.block.append(ResnetBlock(cin, ch * m))
                cin = ch * m
            if i != len(ch_mult) - 1:
                lvl.downsample = Downsample(cin)
            self.down.append(lvl)
        self.mid = Mid(cin)
        self.norm_out = Normalize(cin)
        self.conv_out = nn.Conv2d(cin, 2 * z_channels, 3, padding=1)

    def forward(self, x, trace=None):
        h = self.conv_in(x)
        for i, lvl in enumerate(self.down):
            for blk in lvl.block:
                h = blk(h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample(h)
            if trace is not None:
                trace[f"enc_down_{i}"] = h
        h = self.mid(h)
        if trace is not None:
            trace["enc_mid"] = h
        return self.conv_out(silu(gn(h, self.norm_out)))


class Decoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, out_channels, z_channels):
        super().__init__()
        cin = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, cin, 3, padding=1)
        self.mid = Mid(cin)
        levels = [None] * len(ch_mult)
        for i in reversed(range(len(ch_mult))):
            lvl = Level()
            lvl.block = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                lvl.block.append(ResnetBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
            if i != 0:
                lvl.upsample = Upsample(cin)
            levels[i] = lvl
        self.up = nn.ModuleList(levels)  # up[i] is level i; it runs from the last level down to 0
        self.norm_out = Normalize(cin)
        self.conv_out = nn.Conv2d(cin, out_channels, 3, padding=1)

    def forward(self, z, trace=None):
        h = self.mid(self.conv_in(z))
        if trace is not None:
            trace["dec_mid"] = h
        for i in reversed(range(len(self.up))):
            lvl = self.up[i]
            for blk in lvl.block:
                h = blk(h)
            if hasattr(lvl, "upsample"):
                h = lvl.upsample(h)
            if trace is not None:
                trace[f"dec_up_{i}"] = h
        return self.conv_out(silu(gn(h, self.norm_out)))


class AutoencoderKL(nn.Module):
    """Module paths = keys below "first_stage_model."."""
    def __init__(self, ch=32, ch_mult=(1, 2, 1, 1), num_res_blocks=2, z_channels=4, embed_dim=4):
        super().__init__()
        self.encoder = Encoder(ch, ch_mult, num_res_blocks, 3, z_channels)
        self.decoder = Decoder(ch, ch_mult, num_res_blocks, 3, z_channels)
        self.quant_conv = nn.Conv2d(2 * z_channels, 2 * embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        self.embed_dim = embed_dim

    def encode_mean(self, x, trace=None):
        """image (N, 3, H, W) in [-1, 1] -> posterior mean (N, embed_dim, H/8, W/8), unscaled."""
        moments = self.quant_conv(self.encoder(x, trace))  # (N, 2*embed_dim, h, w): mean, logvar
        return moments[:, :self.embed_dim]

    def decode(self, z, trace=None):
        """unscaled latent (N, embed_dim, h, w) -> image (N, 3, 8h, 8w), raw (not clamped)."""
        return self.decoder(self.post_quant_conv(z), trace)
