"""ref_clip.py — CLIP text encoder (the transformer of SD1.x's FrozenCLIPEmbedder), PyTorch reference.

Attribute paths are the checkpoint keys below "cond_stage_model.transformer.text_model." (HF CLIPTextModel
naming, as stored in SD1.x single-file checkpoints). Pre-norm transformer with a causal mask, quick_gelu MLP,
final_layer_norm. Returns the final-normed output of the last layer and of the second-to-last one
("clip skip 2"). Leaves out: the pooled output and the text projection (SD1.x uses neither), attention masks.
"""
import torch
from torch import nn

from ref_nn import attention, layer_norm, quick_gelu


class CLIPAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.q_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x):  # (B, T, C)
        o = attention(self.q_proj(x), self.k_proj(x), self.v_proj(x), self.heads, causal=True)
        return self.out_proj(o)


class CLIPMLP(nn.Module):
    def __init__(self, width, mlp):
        super().__init__()
        self.fc1 = nn.Linear(width, mlp)
        self.fc2 = nn.Linear(mlp, width)

    def forward(self, x):
        return self.fc2(quick_gelu(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, width, heads, mlp, eps):
        super().__init__()
        self.eps = eps
        self.self_attn = CLIPAttention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.mlp = CLIPMLP(width, mlp)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x):
        ln1, ln2 = self.layer_norm1, self.layer_norm2
        x = x + self.self_attn(layer_norm(x, ln1.weight, ln1.bias, self.eps))
        x = x + self.mlp(layer_norm(x, ln2.weight, ln2.bias, self.eps))
        return x


class CLIPEmbeddings(nn.Module):
    def __init__(self, vocab, positions, width):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.position_embedding = nn.Embedding(positions, width)
        # stored in the real checkpoint as I64 (1, 77); the C++ may ignore it (it is arange(77))
        self.register_buffer("position_ids", torch.arange(positions, dtype=torch.int64).reshape(1, positions))

    def forward(self, ids):  # ids (B, T) int64
        t = ids.shape[1]
        return self.token_embedding(ids) + self.position_embedding(self.position_ids[:, :t])


class CLIPEncoder(nn.Module):
    def __init__(self, width, heads, mlp, layers, eps):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(width, heads, mlp, eps) for _ in range(layers)])


class CLIPTextModel(nn.Module):
    """Module paths = keys below "cond_stage_model.transformer.text_model."."""
    def __init__(self, vocab=49408, positions=77, width=32, heads=2, mlp=128, layers=3, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.embeddings = CLIPEmbeddings(vocab, positions, width)
        self.encoder = CLIPEncoder(width, heads, mlp, layers, eps)
        self.final_layer_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, ids):
        """ids (B, 77) int64 -> dict: hidden_last, hidden_skip2 (B, 77, C), both through final_layer_norm,
        and the raw per-layer outputs 'layer_<l>' plus 'embeddings' for debugging."""
        fln = self.final_layer_norm
        out = {}
        x = self.embeddings(ids)
        out["embeddings"] = x
        for l, layer in enumerate(self.encoder.layers):
            x = layer(x)
            out[f"layer_{l}"] = x
        n = len(self.encoder.layers)
        out["hidden_last"] = layer_norm(out[f"layer_{n - 1}"], fln.weight, fln.bias, self.eps)
        out["hidden_skip2"] = layer_norm(out[f"layer_{n - 2}"], fln.weight, fln.bias, self.eps)
        return out
