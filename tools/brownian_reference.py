#!/usr/bin/python3
"""brownian_reference.py — writes tests/data/golden_brownian.safetensors: the noise the webui's SDE samplers add,
for pipeline/brownian.cpp to match.

    /usr/bin/python3 tools/brownian_reference.py

torchsde is not installed (and not needed): this is an independent re-implementation, from their text, of
torchsde 0.2.6's BrownianTree (= BrownianInterval with halfway_tree=True, tol=1e-6, pool_size=24, no Levy area),
k-diffusion's BatchedBrownianTree / BrownianTreeNoiseSampler (commit ab527a9a, the one the webui pins) and the
webui's replacement of torchsde's _randn by randn_local(seed, shape) (a fresh generator per draw). Arithmetic is
float32 torch as in torchsde; seeds come from numpy's own SeedSequence. The generators: torch's CPU generator
(webui "CPU") and the webui's Philox port (webui "NV", = torch's CUDA generator), see rng_reference.py.

Tensor names (F32; uint32 words stored as hi16, lo16 pairs):
  seedseq/<i>/entropy (k,), seedseq/<i>/spawn (m,), seedseq/<i>/state (8, 2)   numpy SeedSequence checks
  tree/<rng>/<seed>/queries (Q, 2)   (sigma, sigma_next) as the samplers ask, float32
  tree/<rng>/<seed>/noise (Q, 256)   BrownianTreeNoiseSampler(sigma, sigma_next) for an image of 256 elements
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rng_reference import PhiloxNormal, write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden_brownian.safetensors")
SIZE = (4, 8, 8)


def randn_local(kind, seed, shape):
    if kind == "philox":
        return torch.from_numpy(PhiloxNormal(int(seed)).randn(shape))
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(shape, generator=g)


class Node:
    def __init__(self, tree, start, end, parent, is_left):
        self.tree, self.start, self.end = tree, tree.round(start), tree.round(end)
        self.parent, self.is_left = parent, is_left
        self.mid = None

    def split_exact(self, midway):
        self.mid = self.tree.round(midway)
        if self.parent is None:
            self.key, self.depth = 0, 0
        else:
            self.key = 2 * self.parent.key + (0 if self.is_left else 1)
            self.depth = self.parent.depth + 1
        ss = np.random.SeedSequence(entropy=self.tree.entropy, spawn_key=(self.key, self.depth), pool_size=24)
        self.w_seed = ss.generate_state(4)[0]
        self.left = Node(self.tree, self.start, midway, self, True)
        self.right = Node(self.tree, midway, self.end, self, False)

    def split(self, target):  # halfway tree
        self.split_exact(0.5 * (self.end + self.start))
        if target > self.mid:
            self.right.split(target)
        elif target < self.mid:
            self.left.split(target)

    def loc(self, ta, tb, out):
        if ta == self.start and tb == self.end:
            out.append(self)
            return
        if self.mid is None:
            self.split(tb if ta == self.start else ta)
        if tb <= self.mid:
            return self.left.loc(ta, tb, out)
        if ta >= self.mid:
            return self.right.loc(ta, tb, out)
        self.left.loc(ta, self.mid, out)
        self.right.loc(self.mid, tb, out)

    def w(self):
        if self.parent is None:
            return self.tree.top_w
        p = self.parent
        W = p.w()
        h_reciprocal = 1 / (p.end - p.start)
        left_diff, right_diff = p.mid - p.start, p.end - p.mid
        mean = left_diff * W * h_reciprocal
        var = left_diff * right_diff * h_reciprocal
        left_W = mean + math.sqrt(var) * self.tree.randn(p.w_seed)
        return left_W if self.is_left else W - left_W


class Tree:
    def __init__(self, t0, t1, entropy, kind):
        self.entropy, self.kind = entropy, kind
        ndigits = -int(math.log10(1e-6))
        self.round = lambda x: round(x, ndigits)
        w_seed, h_seed, _ = np.random.SeedSequence(entropy=entropy, pool_size=24).generate_state(3)
        self.top = Node(self, t0, t1, None, None)
        self.top_w = self.randn(w_seed) * math.sqrt(t1 - t0)

    def randn(self, seed):
        return randn_local(self.kind, seed, SIZE)

    def __call__(self, ta, tb):
        ta = min(max(float(ta), self.top.start), self.top.end)
        tb = min(max(float(tb), self.top.start), self.top.end)
        if ta == tb:
            return torch.zeros(SIZE)
        out = []
        self.top.loc(self.round(ta), self.round(tb), out)
        W = out[0].w()
        for node in out[1:]:
            W = W + node.w()
        return W


class NoiseSampler:  # BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed=[seed]) for one image
    def __init__(self, sigma_min, sigma_max, seed, kind):
        t0, t1 = torch.as_tensor(sigma_min), torch.as_tensor(sigma_max)
        self.sign = 1 if t0 < t1 else -1
        t0, t1 = (t0, t1) if t0 < t1 else (t1, t0)
        self.tree = Tree(float(t0), float(t1), seed, kind)

    def __call__(self, sigma, sigma_next):
        t0, t1 = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        a, b, sign = (t0, t1, 1) if t0 < t1 else (t1, t0, -1)
        w = torch.stack([self.tree(a, b)]) * (self.sign * sign)
        return w[0] / (t1 - t0).abs().sqrt()


def split16(words):
    w = np.asarray(words, dtype=np.uint64)
    return np.stack([(w >> np.uint64(16)).astype(np.float32), (w & np.uint64(0xFFFF)).astype(np.float32)], axis=-1)


def main():
    T = []
    cases = [(0, ()), (42, ()), (2 ** 32 + 7, (3, 1)), (123456789, (0, 0)), (5, (2 ** 33 + 1, 29)), (987, (1, 2, 3, 4, 5))]
    for i, (entropy, spawn) in enumerate(cases):
        state = np.random.SeedSequence(entropy=entropy, spawn_key=spawn, pool_size=24).generate_state(8)
        ent_words = [entropy & 0xFFFFFFFF] + ([entropy >> 32] if entropy >> 32 else [])
        spawn_words = []
        for s in spawn:
            spawn_words += [s & 0xFFFFFFFF] + ([s >> 32] if s >> 32 else [])
        T += [("seedseq/%d/entropy" % i, split16(ent_words)), ("seedseq/%d/spawn" % i, split16(spawn_words)),
              ("seedseq/%d/state" % i, split16(state))]

    # the SD table's ends, float32, and a Karras schedule's steps with DPM++ SDE's midpoints, as the samplers ask
    sigma_min, sigma_max = 0.029167533, 14.614642
    ramp = torch.linspace(0, 1, 10)
    sig = (sigma_max ** (1 / 7) + ramp * (sigma_min ** (1 / 7) - sigma_max ** (1 / 7))) ** 7
    queries = []
    for i in range(9):
        s, sn = sig[i], sig[i + 1]
        t, tn = -s.log(), -sn.log()
        mid = (-(t + (tn - t) * 0.5)).exp()  # DPM++ SDE: sigma_fn(t + h r)
        queries += [(s, mid), (s, sn)]
    queries += [(sig[8], sig[2]), (torch.tensor(sigma_max), torch.tensor(sigma_min)), (torch.tensor(0.5), torch.tensor(0.49999))]
    q = torch.tensor([[float(a), float(b)] for a, b in queries], dtype=torch.float32)
    for kind in ("cpu", "philox"):
        for seed in (42, 3141592653):
            ns = NoiseSampler(torch.tensor(sigma_min), torch.tensor(sigma_max), seed, kind)
            noise = torch.stack([ns(a, b).flatten() for a, b in q])
            assert torch.isfinite(noise).all()
            T += [("tree/%s/%d/queries" % (kind, seed), q), ("tree/%s/%d/noise" % (kind, seed), noise)]
    # A sanity check of the construction: the increments over a partition add up to the whole one.
    tr = Tree(sigma_min, sigma_max, 42, "cpu")
    parts = tr(0.1, 0.7) + tr(0.7, 3.0)
    whole = tr(0.1, 3.0)
    print("additivity error:", (parts - whole).abs().max().item())
    write_safetensors(OUT, [(k, v.numpy() if torch.is_tensor(v) else v) for k, v in T], {
        "tool": "tools/brownian_reference.py", "torch": torch.__version__, "numpy": np.__version__,
        "image_shape": "4,8,8", "sigma_min": sigma_min, "sigma_max": sigma_max,
    })
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
