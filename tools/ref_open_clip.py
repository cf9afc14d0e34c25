"""ref_open_clip.py — the OpenCLIP text tower SD 2.x conditions on (ldm FrozenOpenCLIPEmbedder), PyTorch reference.

Attribute paths are the checkpoint keys below "cond_stage_model.model." (open_clip's CLIP: token_embedding,
positional_embedding, transformer.resblocks.N.{ln_1, attn.in_proj_weight/bias, attn.out_proj, ln_2, mlp.c_fc,
mlp.c_proj}, ln_final, text_projection, logit_scale). Written from open_clip's TextTransformer /
ResidualAttentionBlock: pre-norm, causal mask, q/k/v as the three row blocks of in_proj_weight, exact (erf) GELU.
encode(ids, layer_idx) runs resblocks until index len - layer_idx (ldm's text_transformer_forward: layer_idx 1 =
"penultimate", the SD 2.x setting; 0 = "last"), then ln_final. text_projection and logit_scale exist only so the
key set matches the real file; SD 2.x never reads them.
"""
import torch
from torch import nn

from ref_nn import attention, gelu, layer_norm

LN_EPS = 1e-5  # open_clip LayerNorm default


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention's parameters (in_proj_weight rows: q | k | v), computed with ref_nn.attention."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x):  # x (N, T, C)
        qkv = x @ self.in_proj_weight.t() + self.in_proj_bias
        q, k, v = qkv.chunk(3, dim=-1)
        return self.out_proj(attention(q, k, v, self.heads, causal=True))


class MLP(nn.Module):
    def __init__(self, width, mlp):
        super().__init__()
        self.c_fc = nn.Linear(width, mlp)
        self.c_proj = nn.Linear(mlp, width)

    def forward(self, x):
        return self.c_proj(gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=LN_EPS)
        self.attn = MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = MLP(width, mlp)

    def forward(self, x):
        x = x + self.attn(layer_norm(x, self.ln_1.weight, self.ln_1.bias, LN_EPS))
        return x + self.mlp(layer_norm(x, self.ln_2.weight, self.ln_2.bias, LN_EPS))


class Transformer(nn.Module):
    def __init__(self, width, heads, mlp, layers):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp) for _ in range(layers)])


class OpenCLIPText(nn.Module):
    def __init__(self, vocab=49408, positions=77, width=8, heads=2, mlp=32, layers=3):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.empty(positions, width))
        self.transformer = Transformer(width, heads, mlp, layers)
        self.ln_final = nn.LayerNorm(width, eps=LN_EPS)
        self.text_projection = nn.Parameter(torch.empty(width, width))
        self.logit_scale = nn.Parameter(torch.empty(()))

    def encode(self, ids, layer_idx=1, trace=None):
        """ids (N, 77) long -> ln_final(output of resblock len - 1 - layer_idx) (N, 77, width)."""
        x = self.token_embedding(ids) + self.positional_embedding
        blocks = self.transformer.resblocks
        for i, r in enumerate(blocks):
            if i == len(blocks) - layer_idx:
                break
            x = r(x)
            if trace is not None:
                trace[f"layer_{i}"] = x
        return layer_norm(x, self.ln_final.weight, self.ln_final.bias, LN_EPS)
