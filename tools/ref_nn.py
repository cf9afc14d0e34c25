"""ref_nn.py — the small explicit ops the PyTorch reference is built from, and a safetensors reader/writer.

Norms, activations and attention are written out as formulas (not torch.nn modules) so that what the C++
has to match is visible here; reference.py checks each one against its torch.nn.functional twin.
Convolutions and matrix products are torch's own. Everything is dtype-agnostic: the goldens run in float64.
Leaves out: dropout (inference only), masks other than CLIP's causal one, any fast path.
"""
import json
import math
import struct

import numpy as np
import torch


# ----------------------------------------------------------------------------------------------
# Activations
# ----------------------------------------------------------------------------------------------
def silu(x):
    return x * torch.sigmoid(x)


def gelu(x):
    """Exact (erf) GELU, torch's default: the GEGLU gate of the SD1.x UNet."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def quick_gelu(x):
    """CLIP's activation (OpenAI): x * sigmoid(1.702 x)."""
    return x * torch.sigmoid(1.702 * x)


# ----------------------------------------------------------------------------------------------
# Norms
# ----------------------------------------------------------------------------------------------
def group_norm(x, weight, bias, groups, eps):
    """x (N, C, ...) normalised over (C/groups, ...) per group, biased variance, then per-channel affine."""
    n, c = x.shape[0], x.shape[1]
    g = x.reshape(n, groups, -1)
    mean = g.mean(dim=-1, keepdim=True)
    var = ((g - mean) ** 2).mean(dim=-1, keepdim=True)
    y = ((g - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.dim() - 2)
    return y * weight.reshape(shape) + bias.reshape(shape)


def layer_norm(x, weight, bias, eps):
    """x (..., C) normalised over the last dim, biased variance."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def softmax(x, dim=-1):
    m = x.max(dim=dim, keepdim=True).values
    e = torch.exp(x - m)
    return e / e.sum(dim=dim, keepdim=True)


# ----------------------------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------------------------
def attention(q, k, v, heads, causal=False):
    """Multi-head scaled dot-product attention.
    q (B, Nq, H*D), k and v (B, Nk, H*D) -> (B, Nq, H*D). Heads are contiguous slices of the channel dim
    (channel h*D + d is head h, dim d), scores scaled by D^-0.5, softmax over the keys.
    causal: query i sees keys j <= i only (CLIP's text encoder)."""
    b, nq, c = q.shape
    nk = k.shape[1]
    d = c // heads
    q = q.reshape(b, nq, heads, d).transpose(1, 2)  # (B, H, Nq, D)
    k = k.reshape(b, nk, heads, d).transpose(1, 2)  # (B, H, Nk, D)
    v = v.reshape(b, nk, heads, d).transpose(1, 2)  # (B, H, Nk, D)
    scores = (q @ k.transpose(-1, -2)) * (d ** -0.5)  # (B, H, Nq, Nk)
    if causal:
        future = torch.ones(nq, nk, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    p = softmax(scores, dim=-1)
    out = p @ v  # (B, H, Nq, D)
    return out.transpose(1, 2).reshape(b, nq, c)


# ----------------------------------------------------------------------------------------------
# Parameter initialisation (see reference.py for why not PyTorch's or the real model's)
# ----------------------------------------------------------------------------------------------
def init_params(module, gen, embed_std):
    """Deterministic, O(1)-signal initialisation, in module registration order:
    Linear/Conv weight and bias: uniform(+-1/sqrt(fan_in)) (PyTorch's Linear default, and non-zero biases
    so a dropped bias shows); GroupNorm/LayerNorm: weight 1 + 0.1 N(0,1), bias 0.1 N(0,1);
    Embedding: N(0, embed_std). Nothing is zero, including the convs the real model zero-initialises."""
    def uniform_(t, bound):
        with torch.no_grad():
            t.copy_((torch.rand(t.shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound)

    def normal_(t, mean, std):
        with torch.no_grad():
            t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32) * std + mean)

    for m in module.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            fan_in = int(np.prod(m.weight.shape[1:]))
            bound = 1.0 / math.sqrt(fan_in)
            uniform_(m.weight, bound)
            if m.bias is not None:
                uniform_(m.bias, bound)
        elif isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            normal_(m.weight, 1.0, 0.1)
            normal_(m.bias, 0.0, 0.1)
        elif isinstance(m, torch.nn.Embedding):
            normal_(m.weight, 0.0, embed_std)


def round_to_f16(module):
    """Replace every float parameter by its f16-rounded value (the C++ reads the same f16 numbers)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().to(p.dtype))


# ----------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------
ST_DTYPES = {np.dtype("float16"): "F16", np.dtype("float32"): "F32", np.dtype("float64"): "F64",
             np.dtype("int64"): "I64", np.dtype("int32"): "I32"}
NP_DTYPES = {v: k for k, v in ST_DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (any dtype in ST_DTYPES; 0-d arrays allowed).
    Layout like the safetensors library: header keys sorted by name, data sorted by element size
    (largest first) then name so every tensor is aligned, JSON header space-padded to a multiple of 8."""
    # np.array(copy) rather than ascontiguousarray, which would turn 0-d scalars into shape (1,)
    arrays = {n: np.array(a, dtype=a.dtype.newbyteorder("<"), order="C") for n, a in tensors.items()}
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for n in sorted(arrays):
        a = arrays[n]
        header[n] = {"dtype": ST_DTYPES[np.dtype(a.dtype.name)], "shape": list(a.shape)}
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    off = 0
    for n in order:
        header[n]["data_offsets"] = [off, off + arrays[n].nbytes]
        off += arrays[n].nbytes
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for n in order:
            f.write(arrays[n].tobytes())


def read_safetensors(path):
    """Returns (dict name -> numpy array, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = np.dtype(NP_DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"])
    return out, meta
