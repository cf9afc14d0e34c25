#!/usr/bin/python3
"""conditioning_reference.py — writes tests/data/golden_conditioning.safetensors: prompt conditionings of the tiny
checkpoint with the webui's emphasis, for pipeline/conditioning.cpp (learned_conditioning) to match.

    /usr/bin/python3 tools/conditioning_reference.py      # run from the repository root, after `make`

Independent of the C++ where it matters: the text encoder is tools/ref_clip.py in float64 with the weights of
tests/data/tiny_sd.safetensors; schedules, AND parts and chunk weights come from tools/prompt_reference.py (the
webui's grammar via lark, its chunking rules; token ids from ./sd tokenize, golden-tested on their own). The
emphasis is the webui's EmphasisOriginal (sd_emphasis.py), per chunk over the batch of a prompt's schedule:
    z = clip(tokens); mean0 = z.mean(); z = z * weights[..., None]; z = z * (mean0 / z.mean())
Cases (name/<k> is the k-th schedule entry's (1, 77·chunks, C) conditioning; name/steps its end steps):
  emphasis  "a (red:1.5) [cube], ((shiny)) BREAK on a table"               (2 chunks, one batch of 1)
  schedule  "a [red:blue:0.5] cube, ([shiny|dull]:1.2)" over 4 steps         (4 texts in one batch)
  and       "a red cube AND (a blue ball:1.3) :0.7" parts and_0, and_1     (each its own batch), weights in and/w
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prompt_reference as P  # noqa: E402
import reference as R  # noqa: E402
from ref_nn import read_safetensors, write_safetensors  # noqa: E402

OUT = os.path.join(R.ROOT, "tests", "data", "golden_conditioning.safetensors")


def load_clip():
    tensors, _ = read_safetensors(os.path.join(R.ROOT, "tests", "data", "tiny_sd.safetensors"))
    clip = R.build_models(seed=0)["clip"]
    sd = {n[len(R.CLIP_PREFIX):]: torch.from_numpy(a.astype(np.float64) if a.dtype != np.int64 else a.copy())
          for n, a in tensors.items() if n.startswith(R.CLIP_PREFIX)}
    clip.load_state_dict(sd, strict=True)
    return clip


def encode_batch(clip, texts):
    """The webui's forward() for one batch of texts: chunk i of every text (empty chunks for shorter ones)."""
    per_text = [P.chunks(t) for t in texts]
    n = max(len(c) for c in per_text)
    empty = " ".join(["49406:1"] + ["49407:1"] * 76)
    outs = [[] for _ in texts]
    for i in range(n):
        rows = [c[i] if i < len(c) else empty for c in per_text]
        ids = torch.tensor([[int(p.split(":")[0]) for p in r.split()] for r in rows], dtype=torch.int64)
        w = torch.tensor([[float(np.float32(p.split(":")[1])) for p in r.split()] for r in rows], dtype=torch.float64)
        z = clip(ids)["hidden_last"]                     # (B, 77, C)
        mean0 = z.mean()
        z = z * w[..., None]
        z = z * (mean0 / z.mean())
        for j in range(len(texts)):
            outs[j].append(z[j])
    return [torch.cat(o)[None].numpy().astype(np.float32) for o in outs]


def main():
    clip = load_clip()
    out = {}
    with torch.no_grad():
        out["emphasis/0"] = encode_batch(clip, ["a (red:1.5) [cube], ((shiny)) BREAK on a table"])[0]
        sched = P.schedule("a [red:blue:0.5] cube, ([shiny|dull]:1.2)", 4)
        for k, z in enumerate(encode_batch(clip, [t for _, t in sched])):
            out["schedule/%d" % k] = z
        out["schedule/steps"] = np.array([s for s, _ in sched], dtype=np.float32)
        parts = P.split_and("a red cube AND (a blue ball:1.3) :0.7")
        for k, (text, _) in enumerate(parts):
            out["and_%d/0" % k] = encode_batch(clip, [text])[0]
        out["and/w"] = np.array([w for _, w in parts], dtype=np.float32)
    write_safetensors(OUT, out)
    print("wrote", OUT, {k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    main()
