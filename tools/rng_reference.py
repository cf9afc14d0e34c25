#!/usr/bin/python3
"""rng_reference.py — writes tests/data/golden_rng.safetensors: the noise a webui user's seed produces.

    /usr/bin/python3 tools/rng_reference.py            # writes the golden
    /usr/bin/python3 tools/rng_reference.py --check    # prints a few values, writes nothing

Three generators, each with seeds 0, 42, 12345 and 2**32+5:
  cpu          torch.Generator().manual_seed(seed); torch.randn(shape, generator=g) with the installed torch
               (x86-64: its AVX2 kernel, the one every webui user on an x86 CPU runs)
  cpu-generic  the same under ATEN_CPU_CAPABILITY=default (torch's portable kernel, as on ARM / Apple Silicon)
  philox       an independent numpy implementation of Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel
               random numbers: as easy as 1, 2, 3", SC'11; multipliers 0xD2511F53 / 0xCD9E8D57, Weyl key
               increments 0x9E3779B9 / 0xBB67AE85, 10 rounds), arranged as the webui's CUDA-imitating port
               (modules/rng_philox.py) arranges it: element i of the k-th call of a generator uses counter
               (k, 0, i, 0) and key (seed & 0xffffffff, seed >> 32); its normal value is the sine half of
               Box-Muller on the first two output words, computed in float64 with the port's float32
               constants and rounded to float32.

Tensor names: <gen>/s<seed>/<call> where <call> is
  randn_7, randn_16, randn_17, randn_33, randn_4x8x12, randn_1x4x8x8   each the first call after seeding (full)
  randn_4x64x64                                                         first call, elements at big_index only
  seq_small            calls 7, 3, 16, 5, 17 (then 1) from one generator, concatenated: torch's cached normal
  seq_big_1, seq_big_2 the 2nd and 3rd randn(4, 64, 64) after a first one (ancestral steps), at big_index
big_index (F32, exact integers) lists the sampled positions of a (4, 64, 64) tensor; big_sumsq/<gen>/s<seed>
holds the float64 sum of squares of the whole first (4, 64, 64) tensor (rounded to F32).
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden_rng.safetensors")
SEEDS = [0, 42, 12345, 2**32 + 5]
SHAPES = [(7,), (16,), (17,), (33,), (4, 8, 12), (1, 4, 8, 8)]
BIG = (4, 64, 64)
SMALL_SEQ = [7, 3, 16, 5, 17, 1]


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer: F32 tensors in the given order, 8-byte aligned header."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors:
        a = np.ascontiguousarray(arr, dtype=np.float32)
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------------------
# Philox4x32-10 on numpy uint64 lanes (each lane holds one 32-bit word), vectorised over the elements.
MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(ctr, key):
    """ctr: 4 arrays of words, key: 2 arrays of words. Returns the 4 output words."""
    c0, c1, c2, c3 = [np.asarray(w, dtype=np.uint64) for w in ctr]
    k0, k1 = [np.asarray(w, dtype=np.uint64) for w in key]
    for r in range(10):
        if r > 0:
            k0 = (k0 + np.uint64(0x9E3779B9)) & MASK32
            k1 = (k1 + np.uint64(0xBB67AE85)) & MASK32
        prod0 = c0 * np.uint64(0xD2511F53)  # < 2^64: exact in uint64
        prod1 = c2 * np.uint64(0xCD9E8D57)
        hi0, lo0 = prod0 >> np.uint64(32), prod0 & MASK32
        hi1, lo1 = prod1 >> np.uint64(32), prod1 & MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


class PhiloxNormal:
    """The webui 'NV' generator: one Philox counter block per element, the call number as offset."""

    def __init__(self, seed):
        self.seed, self.calls = seed, 0

    def randn(self, shape):
        n = int(np.prod(shape))
        idx = np.arange(n, dtype=np.uint64)
        zeros = np.zeros(n, dtype=np.uint64)
        key = (np.full(n, self.seed & 0xFFFFFFFF, dtype=np.uint64), np.full(n, self.seed >> 32, dtype=np.uint64))
        w0, w1, _, _ = philox4x32_10((zeros + np.uint64(self.calls), zeros, idx, zeros), key)
        self.calls += 1
        inv32 = float(np.float32(2.3283064e-10))                  # the port's float32 constants
        inv32_2pi = float(np.float32(2.3283064e-10 * 6.2831855))
        u = w0.astype(np.float64) * inv32 + inv32 / 2             # (0, 1): never 0, so the log is finite
        v = w1.astype(np.float64) * inv32_2pi + inv32_2pi / 2     # (0, 2 pi)
        return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32).reshape(shape)


# ---------------------------------------------------------------------------------------------------------
def big_index():
    n = int(np.prod(BIG))
    return np.unique(np.concatenate([np.arange(64), np.arange(n - 64, n), np.arange(0, n, 257)]))


def torch_tables(seeds):
    """Runs in this process: torch CPU randn for every seed (the kernel ATEN_CPU_CAPABILITY selects)."""
    import torch
    idx = big_index()
    out = {}
    for seed in seeds:
        def gen():
            return torch.Generator().manual_seed(seed)
        t = {}
        for shape in SHAPES:
            t["randn_" + "x".join(map(str, shape))] = torch.randn(shape, generator=gen()).numpy().ravel()
        g = gen()
        big = torch.randn(BIG, generator=g).numpy().ravel()
        t["randn_4x64x64"] = big[idx]
        t["sumsq"] = np.array([np.sum(big.astype(np.float64) ** 2)])
        t["seq_big_1"] = torch.randn(BIG, generator=g).numpy().ravel()[idx]
        t["seq_big_2"] = torch.randn(BIG, generator=g).numpy().ravel()[idx]
        g = gen()
        t["seq_small"] = np.concatenate([torch.randn(n, generator=g).numpy() for n in SMALL_SEQ])
        out[str(seed)] = {k: v.tolist() for k, v in t.items()}
    return out


def philox_tables(seeds):
    idx = big_index()
    out = {}
    for seed in seeds:
        t = {}
        for shape in SHAPES:
            t["randn_" + "x".join(map(str, shape))] = PhiloxNormal(seed).randn(shape).ravel()
        g = PhiloxNormal(seed)
        big = g.randn(BIG).ravel()
        t["randn_4x64x64"] = big[idx]
        t["sumsq"] = np.array([np.sum(big.astype(np.float64) ** 2)])
        t["seq_big_1"] = g.randn(BIG).ravel()[idx]
        t["seq_big_2"] = g.randn(BIG).ravel()[idx]
        g = PhiloxNormal(seed)
        t["seq_small"] = np.concatenate([g.randn((n,)) for n in SMALL_SEQ])
        out[str(seed)] = {k: np.asarray(v).tolist() for k, v in t.items()}
    return out


def torch_tables_subprocess(capability, seeds):
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    code = ("import json, sys; sys.path.insert(0, %r); import rng_reference as r; "
            "print(json.dumps(r.torch_tables(%r)))" % (os.path.dirname(os.path.abspath(__file__)), seeds))
    res = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(res.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    import torch

    # Published values to pin the Philox arrangement: the port's docstring prints seed 0, shape (3, 4) as
    # -0.92466259 -0.42534415 -2.6438457 0.14518388 (torch.randn on CUDA, to ~3e-7).
    print("philox seed 0:", PhiloxNormal(0).randn((4,)))
    tables = {
        "cpu": torch_tables_subprocess("avx2", SEEDS),
        "cpu-generic": torch_tables_subprocess("default", SEEDS[:2]),
        "philox": philox_tables(SEEDS),
    }
    print("cpu seed 0:", tables["cpu"]["0"]["randn_7"][:4], tables["cpu"]["0"]["randn_4x64x64"][:4])
    if args.check:
        return
    tensors = [("big_index", big_index().astype(np.float32))]
    for gen, per_seed in tables.items():
        for seed, t in per_seed.items():
            for name, values in t.items():
                if name == "sumsq":
                    tensors.append(("big_sumsq/%s/s%s" % (gen, seed), np.array(values, dtype=np.float32)))
                else:
                    tensors.append(("%s/s%s/%s" % (gen, seed, name), np.array(values, dtype=np.float32)))
    meta = {
        "tool": "tools/rng_reference.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "seeds": ",".join(map(str, SEEDS)),
        "small_seq": ",".join(map(str, SMALL_SEQ)),
        "note": "cpu = torch CPU randn via the AVX2 kernel; cpu-generic via ATEN_CPU_CAPABILITY=default; "
                "philox = independent numpy Philox4x32-10 in the webui rng_philox.py arrangement",
    }
    write_safetensors(OUT, tensors, meta)
    print("wrote", OUT, os.path.getsize(OUT), "bytes,", len(tensors), "tensors")


if __name__ == "__main__":
    main()
