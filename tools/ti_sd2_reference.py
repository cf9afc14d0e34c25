#!/usr/bin/python3
"""ti_sd2_reference.py — writes tests/data/golden_ti_sd2.safetensors: a textual-inversion embedding used in a prompt
on the tiny SD 2.x checkpoint (OpenCLIP text tower), for pipeline/conditioning.cpp + models/open_clip.cpp to match.

    /usr/bin/python3 tools/ti_sd2_reference.py       # run from the repository root, after `make`

What the webui does (modules/textual_inversion/textual_inversion.py, sd_hijack_clip.py, sd_hijack.py):
  - the embedding file is read by its keys: `emb_params` here (also string_to_param.*, clip_l/clip_g, or a single
    diffusers-concept tensor), vec (N, C); it is registered only when C equals the text encoder's width
    (EmbeddingDatabase.expected_shape: 1024 for SD 2.x, 768 for SD 1.x), else skipped;
  - tokenize_line puts N placeholder ids 0 where the name's tokens were, with the name's emphasis weight;
  - OpenCLIP (FrozenOpenCLIPEmbedderWithCustomWords): ids after the first end token become the pad id 0;
  - EmbeddingsWithFixes replaces the token embeddings at positions offset+1 .. offset+N by the vectors, then the
    positional embeddings are added; ldm reads the penultimate layer, then ln_final;
  - emphasis "Original": z = z * w; z = z * (mean0 / z.mean()).
The text tower is tools/ref_open_clip.py in float64 with the tiny file's weights; token ids come from ./sd tokenize.
Tensors: emb/vec (2, 8) the embedding (F32), cond (1, 77, 8) the conditioning of PROMPT.
"""
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_nn import read_safetensors, write_safetensors  # noqa: E402
from ref_open_clip import OpenCLIPText  # noqa: E402
from reference_sd2 import TEXT_CFG, TEXT_PREFIX  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden_ti_sd2.safetensors")
NAME = "shiny-thing"
PROMPT = "a (shiny-thing:1.2) cube"  # the embedding's two vectors at weight 1.2
BOS, EOS, PAD = 49406, 49407, 0


def tokens(text):
    out = subprocess.run([os.path.join(ROOT, "sd"), "tokenize", text], capture_output=True, text=True, check=True)
    return [int(v) for v in out.stdout.split()][1:-1]


def main():
    tensors, _ = read_safetensors(os.path.join(ROOT, "tests", "data", "tiny_sd2.safetensors"))
    text = OpenCLIPText(**TEXT_CFG).double()
    sd = {n[len(TEXT_PREFIX):]: torch.from_numpy(a.astype(np.float64)) for n, a in tensors.items()
          if n.startswith(TEXT_PREFIX)}
    text.load_state_dict(sd, strict=True)
    vec = (torch.arange(2 * TEXT_CFG["width"], dtype=torch.float32).view(2, -1) * 0.013 - 0.1).double()

    # tokenize_line: "a", the two placeholders at weight 1.2, "cube"; then end token and OpenCLIP padding
    a, cube = tokens("a"), tokens("cube")
    ids = [BOS] + a + [0, 0] + cube + [EOS]
    w = [1.0] * (1 + len(a)) + [1.2, 1.2] + [1.0] * (len(cube) + 1)
    offset = len(a)  # the fix's offset in the chunk (before the start token)
    ids += [PAD] * (77 - len(ids))
    w += [1.0] * (77 - len(w))
    with torch.no_grad():
        x = text.token_embedding(torch.tensor([ids]))  # (1, 77, C)
        x[0, offset + 1:offset + 3] = vec
        z = text_forward(text, x, layer_idx=1)
        mean0 = z.mean()
        z = z * torch.tensor(w, dtype=torch.float64)[None, :, None]
        z = z * (mean0 / z.mean())
    write_safetensors(OUT, {"emb/vec": vec.float().numpy(), "cond": z.float().numpy()},
                      {"tool": "tools/ti_sd2_reference.py", "prompt": PROMPT, "name": NAME})
    print("wrote", OUT, "cond std %.4f" % z.std().item())


def text_forward(text, x, layer_idx):
    """OpenCLIPText.encode from token embeddings instead of ids (the webui's EmbeddingsWithFixes output)."""
    from ref_open_clip import LN_EPS, layer_norm
    x = x + text.positional_embedding
    blocks = text.transformer.resblocks
    for i, r in enumerate(blocks):
        if i == len(blocks) - layer_idx:
            break
        x = r(x)
    return layer_norm(x, text.ln_final.weight, text.ln_final.bias, LN_EPS)


if __name__ == "__main__":
    main()
