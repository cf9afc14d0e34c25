#!/usr/bin/python3
"""make_random_lora.py — write a random kohya LoRA of a given rank for every layer kohya trains by default on an SD 1.x checkpoint
(UNet transformer linears + 1x1 proj convs, CLIP attention and MLP), full size, f16, for cost measurements."""
import argparse, json, os, struct, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lora_keys as K

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.ckpt, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    tensors = [(k, tuple(v["shape"]), None) for k, v in h.items() if k != "__metadata__"]
    rng = np.random.default_rng(a.seed)
    out = {}
    for line in K.records(tensors, "sd15"):
        if not line.startswith("K "):
            continue
        _, key, target, _, _ = line.split()
        shape = h[target]["shape"]
        if len(shape) == 4 and shape[2] != 1:
            continue  # kohya's default LoRA: no 3x3 convs
        o, i = shape[0], shape[1]
        r = a.rank
        down = (rng.standard_normal((r, i)) / np.sqrt(i)).astype(np.float16)
        up = (rng.standard_normal((o, r)) * 1e-3).astype(np.float16)
        if len(shape) == 4:
            down, up = down.reshape(r, i, 1, 1), up.reshape(o, r, 1, 1)
        out[key + ".lora_down.weight"] = down
        out[key + ".lora_up.weight"] = up
        out[key + ".alpha"] = np.array(r / 2, dtype=np.float16)
    from ref_nn import write_safetensors
    write_safetensors(a.out, out, {"ss_network_dim": str(a.rank)})
    print(f"wrote {a.out}: {len(out) // 3} layers, rank {a.rank}, {os.path.getsize(a.out) / 1e6:.1f} MB")

if __name__ == "__main__":
    main()
