#!/usr/bin/python3
"""ti_sdxl_reference.py — writes tests/data/golden_ti_sdxl.safetensors: an SDXL textual-inversion embedding (a
`clip_l` and a `clip_g` tensor) used in a prompt on the tiny SDXL checkpoint, for pipeline/conditioning.cpp,
models/clip.cpp and models/open_clip.cpp to match.

    /usr/bin/python3 tools/ti_sdxl_reference.py       # run from the repository root, after `make`

What the webui does (modules/textual_inversion/textual_inversion.py create_embedding_from_data, sd_hijack.py,
sd_hijack_clip.py, sd_models_xl.py):
  - a file with both `clip_g` and `clip_l` is an SDXL embedding: vec = {"clip_g": (N, 1280), "clip_l": (N, 768)},
    shape = 1280 + 768, registered only where that equals the expected shape, which for SDXL is the width of
    GeneralConditioner.encode_embedding_init_text, i.e. CLIP-L's and bigG's concatenated (768 + 1280);
  - both encoders tokenize the prompt alike (tokenize_line: N placeholder ids 0 at the name, its emphasis);
  - CLIP-L's token_embedding is wrapped by EmbeddingsWithFixes(textual_inversion_key='clip_l'), bigG's by
    EmbeddingsWithFixes(textual_inversion_key='clip_g'): each replaces positions offset+1 .. offset+N of its own
    token embeddings by its own part of the embedding;
  - CLIP-L: hidden_states[-2], end-token padding; bigG: penultimate layer, 0 after the first end token, and the
    pooled output (ln_final at the end token through text_projection, from the same spliced input);
  - emphasis "Original" per encoder (each is its own FrozenCLIPEmbedderWithCustomWordsBase): z = z * w;
    z = z * (mean0 / z.mean()); the pooled output is taken before it. The two outputs are concatenated [CLIP-L | bigG].
The towers are tools/ref_clip.py and tools/ref_open_clip.py in float64 with the tiny file's weights (widths 8 and 8);
token ids come from ./sd tokenize.
Tensors: emb/clip_l (2, 8), emb/clip_g (2, 8) the embedding (F32), cond (1, 77, 16), pooled (1, 8).
"""
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_nn import read_safetensors, write_safetensors  # noqa: E402
from ref_clip import CLIPTextModel  # noqa: E402
from ref_open_clip import LN_EPS, OpenCLIPText, layer_norm  # noqa: E402
from reference_sdxl import BIGG_CFG, BIGG_PREFIX, CLIP_L_CFG, CLIP_L_PREFIX  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden_ti_sdxl.safetensors")
NAME = "shiny-thing"
PROMPT = "a (shiny-thing:1.2) cube"  # the embedding's two vectors at weight 1.2
BOS, EOS = 49406, 49407


def tokens(text):
    out = subprocess.run([os.path.join(ROOT, "sd"), "tokenize", text], capture_output=True, text=True, check=True)
    return [int(v) for v in out.stdout.split()][1:-1]


def load(model, tensors, prefix):
    sd = {n[len(prefix):]: torch.from_numpy(a.astype(np.int64 if a.dtype == np.int64 else np.float64))
          for n, a in tensors.items() if n.startswith(prefix)}
    model.load_state_dict(sd, strict=True)
    return model.double().eval()


def emphasis(z, w):
    mean0 = z.mean()
    z = z * torch.tensor(w, dtype=torch.float64)[None, :, None]
    return z * (mean0 / z.mean())


def main():
    tensors, _ = read_safetensors(os.path.join(ROOT, "tests", "data", "tiny_sdxl.safetensors"))
    clip_l = load(CLIPTextModel(**CLIP_L_CFG), tensors, CLIP_L_PREFIX)
    bigg = load(OpenCLIPText(**BIGG_CFG), tensors, BIGG_PREFIX)
    vec_l = (torch.arange(2 * CLIP_L_CFG["width"], dtype=torch.float32).view(2, -1) * 0.013 - 0.1).double()
    vec_g = (torch.arange(2 * BIGG_CFG["width"], dtype=torch.float32).view(2, -1) * -0.011 + 0.07).double()

    # tokenize_line: "a", the two placeholders at weight 1.2, "cube"; then the end token
    a, cube = tokens("a"), tokens("cube")
    ids = [BOS] + a + [0, 0] + cube + [EOS]
    w = [1.0] * (1 + len(a)) + [1.2, 1.2] + [1.0] * (len(cube) + 1)
    offset = len(a)  # the fix's offset in the chunk (before the start token)
    w += [1.0] * (77 - len(w))
    ids_l = torch.tensor([ids + [EOS] * (77 - len(ids))])
    ids_g = torch.tensor([ids + [0] * (77 - len(ids))])
    with torch.no_grad():
        # CLIP-L: hidden_states[-2] from the spliced token embeddings
        x = clip_l.embeddings.token_embedding(ids_l)
        x[0, offset + 1:offset + 3] = vec_l
        x = x + clip_l.embeddings.position_embedding(clip_l.embeddings.position_ids[:, :77])
        for layer in clip_l.encoder.layers[:-1]:
            x = layer(x)
        zl = emphasis(x, w)
        # bigG: penultimate layer, and the pooled output at the end token (argmax of the ids)
        x = bigg.token_embedding(ids_g)
        x[0, offset + 1:offset + 3] = vec_g
        x = x + bigg.positional_embedding
        blocks = bigg.transformer.resblocks
        for r in blocks[:-1]:
            x = r(x)
        penultimate = x
        last = layer_norm(blocks[-1](x), bigg.ln_final.weight, bigg.ln_final.bias, LN_EPS)
        pooled = last[0, ids_g[0].argmax()][None] @ bigg.text_projection
        zg = emphasis(penultimate, w)
        cond = torch.cat([zl, zg], dim=-1)
    write_safetensors(OUT, {"emb/clip_l": vec_l.float().numpy(), "emb/clip_g": vec_g.float().numpy(),
                            "cond": cond.float().numpy(), "pooled": pooled.float().numpy()},
                      {"tool": "tools/ti_sdxl_reference.py", "prompt": PROMPT, "name": NAME})
    print("wrote", OUT, "cond std %.4f, pooled std %.4f" % (cond.std().item(), pooled.std().item()))


if __name__ == "__main__":
    main()
