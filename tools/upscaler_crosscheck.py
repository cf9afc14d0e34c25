"""upscaler_crosscheck.py — checks tools/upscaler_reference.py's RRDBNet and SRVGGNetCompact against spandrel's
(the library the webui v1.10.1 loads upscalers with), on random weights in every key layout the reference writes.

spandrel fixes the dense blocks' growth at 32 channels, so the models here use gc 32 (the committed goldens use
gc 4 to stay small; the C++ loader reads gc from the shapes). Nothing is written.
    /usr/bin/python3 tools/upscaler_crosscheck.py   # with spandrel importable (pip install spandrel, or PYTHONPATH)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upscaler_reference import EsrganKeys, compact, compact_params, rrdb_params, rrdbnet  # noqa: E402

import spandrel  # noqa: E402


def main():
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 7, 10, generator=gen, dtype=torch.float64)
    worst = 0.0
    cases = [(layout, blocks, n_up, shuffle) for layout in ("old", "basicsr", "bsrgan")
             for blocks, n_up, shuffle in ((2, 2, 1), (1, 1, 1), (1, 2, 2), (1, 2, 4))]
    for layout, blocks, n_up, shuffle in cases:
        k = EsrganKeys(layout, blocks, n_up)
        p = rrdb_params(gen, k, nf=16, gc=32, in_nc=3 * shuffle * shuffle, out_nc=3)
        p = {n: v.float().double() for n, v in p.items()}  # spandrel builds float32 modules: same weights both sides
        d = spandrel.ModelLoader().load_from_state_dict(dict(p))
        with torch.no_grad():
            got = d.model.double().eval()(x)
        want = rrdbnet(p, k, x, shuffle)
        err = (got - want).abs().max().item()
        worst = max(worst, err)
        print(f"RRDBNet {layout:8s} blocks {blocks} x{2 ** n_up // shuffle} unshuffle {shuffle}: spandrel "
              f"{d.architecture.id} scale {d.scale}, max |diff| {err:.1e}")
        assert d.scale == 2 ** n_up // shuffle and err < 1e-12
    for num_conv, scale in ((3, 4), (2, 2), (1, 1)):
        p = compact_params(gen, nf=8, num_conv=num_conv, scale=scale)
        p = {n: v.float().double() for n, v in p.items()}
        d = spandrel.ModelLoader().load_from_state_dict(dict(p))
        with torch.no_grad():
            got = d.model.double().eval()(x)
        err = (got - compact(p, num_conv, scale, x)).abs().max().item()
        worst = max(worst, err)
        print(f"SRVGGNetCompact num_conv {num_conv} x{scale}: spandrel {d.architecture.id} scale {d.scale}, "
              f"max |diff| {err:.1e}")
        assert d.scale == scale and err < 1e-12
    print(f"all agree (worst {worst:.1e})")


if __name__ == "__main__":
    main()
