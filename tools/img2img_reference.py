#!/usr/bin/python3
"""img2img_reference.py — writes tests/data/golden_img2img.safetensors: img2img, hires-pass and inpainting-blend
sampling runs on the tiny checkpoint, from an 8-bit init image to the final latent, for pipeline/img2img.cpp to
match.

    /usr/bin/python3 tools/img2img_reference.py            # writes the golden (~5 s)
    /usr/bin/python3 tools/img2img_reference.py --check    # computes and compares with the stored golden

Independent of the C++: the VAE is tools/ref_vae.py, the CLIP and UNet tools/ref_clip.py / ref_unet.py (float64,
the f16 weights of tests/data/tiny_sd.safetensors, via txt2img_reference.py), the sigmas tools/sampler_reference.py's;
the img2img rules are written out below from the webui (v1.10.1):
  processing.py  image = np.array(img).astype(np.float32) / 255.0          (H, W, 3) -> (3, H, W)
  sd_samplers_common.images_tensor_to_samples   image * 2 - 1, then get_first_stage_encoding(encode_first_stage)
                 = 0.18215 * posterior; here the posterior MEAN (the webui samples it with torch's unseeded global
                 generator, which no seed reproduces)
  sd_samplers_common.setup_img2img_steps   steps, t_enc = p.steps, int(min(s, 0.999) * steps); with an explicit
                 step count n (the hires pass): int(n / min(s, 0.999)), n - 1
  sd_samplers_kdiffusion.sample_img2img    sigma_sched = sigmas[steps - t_enc - 1:]; xi = x + noise * sigma_sched[0];
                 noise = the ImageRNG's first draw (RNG: CPU here: torch.Generator seeded with the seed)
  sd_samplers_cfg_denoiser.CFGDenoiser     with a mask: denoised = init_latent * mask + nmask * denoised each step;
  processing.StableDiffusionProcessingImg2Img.sample   the result blended the same way
Runs (64x64 init image = tests/data/astronaut_256.png cropped to (96, 64, 160, 128); latent (1, 4, 8, 8); Euler;
prompt as the txt2img golden, negative "", CFG 7):
  i2i:  seed 5, steps 5, strength 0.6 (t_enc 3: sigmas[1:], 4 steps)
  hr:   seed 6, hires steps 3, strength 0.5 (schedule of 6, sigmas[3:], 3 steps)
  mask: seed 7, steps 4, strength 1.0 (t_enc 3: all 4 steps); nmask (repaint) = 1 on latent columns >= 3 and rows
        >= 2, else 0 (stored as mask/keep = 1 - nmask)
  hires: the txt2img golden's Euler run (seed 1, 3 steps, 64x64) as first pass, upscaled "Latent" (bilinear) to
        128x128, second pass seed 1, hires steps 3, strength 0.5 (schedule of 6, sigmas[3:]); hires/first, hires/x
Stored: init (uint8 (64, 64, 3)), init_latent (1, 4, 8, 8), <run>/x the final latent, <run>/sigmas the sigmas run.
"""
import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_nn  # noqa: E402
import reference as R  # noqa: E402
import sampler_reference as S  # noqa: E402
import txt2img_reference as T  # noqa: E402
from ref_nn import read_safetensors, write_safetensors  # noqa: E402

ref_nn.ST_DTYPES.setdefault(np.dtype("uint8"), "U8")
ref_nn.NP_DTYPES.setdefault("U8", np.dtype("uint8"))
OUT = os.path.join(R.ROOT, "tests", "data", "golden_img2img.safetensors")
RUNS = [dict(name="i2i", seed=5, steps=5, strength=0.6, hires=0, mask=False),
        dict(name="hr", seed=6, steps=20, strength=0.5, hires=3, mask=False),
        dict(name="mask", seed=7, steps=4, strength=1.0, hires=0, mask=True)]


def load_vae():
    tensors, _ = read_safetensors(os.path.join(R.ROOT, "tests", "data", "tiny_sd.safetensors"))
    vae = R.build_models(seed=0)["vae"]
    sd = {n[len(R.VAE_PREFIX):]: torch.from_numpy(a.astype(np.float64)) for n, a in tensors.items()
          if n.startswith(R.VAE_PREFIX)}
    vae.load_state_dict(sd, strict=True)
    return vae


def setup_img2img_steps(steps, strength, explicit=0):
    if explicit:
        return (int(explicit / min(strength, 0.999)) if strength > 0 else 0), explicit - 1
    return steps, int(min(strength, 0.999) * steps)


def run(clip, unet, init_latent, r):
    sd = S.sd_table()
    steps, t_enc = setup_img2img_steps(r["steps"], r["strength"], r["hires"])
    sigmas = S.sampler_sigmas("euler", "discrete", steps, sd, sd)  # float32 (steps + 1,)
    sched = sigmas[steps - t_enc - 1:]
    with torch.no_grad():
        cond = clip(T.ids(R.PROMPT_IDS[1:-1]))["hidden_last"]
        uncond = clip(T.ids([]))["hidden_last"]
    D = T.make_denoiser(unet, torch.cat([uncond, cond]), 7.0, sd, False)
    noise = T.WebuiCpuRng(r["seed"]).next()
    out = {}
    nmask = None
    if r["mask"]:
        nmask = torch.zeros((1, 4, T.H, T.W), dtype=torch.float64)
        nmask[:, :, 2:, 3:] = 1.0
        out["mask/keep"] = (1.0 - nmask).float().numpy()
    x = init_latent + noise * sched[0].double()
    for i in range(len(sched) - 1):
        d = D(x, sched[i])
        if nmask is not None:
            d = init_latent * (1 - nmask) + nmask * d
        x = x + (sched[i + 1] - sched[i]).double() * (x - d) / sched[i].double()
    if nmask is not None:
        x = x * nmask + init_latent * (1 - nmask)
    out[f"{r['name']}/x"] = x.float().numpy()
    out[f"{r['name']}/sigmas"] = sched.numpy()
    return out


def hires(clip, unet):
    """txt2img first pass (the txt2img golden's euler run: seed 1, 3 steps), the "Latent" upscale
    (F.interpolate bilinear to 2x), then sample_hr_pass: a fresh ImageRNG with the same seed at the new shape, the
    second pass's steps by the fix-steps rule (hires steps 3, strength 0.5: schedule of 6, sigmas[3:])."""
    first = torch.from_numpy(T.run(clip, unet, T.RUNS[0])["euler/x"]).double()
    up = torch.nn.functional.interpolate(first.float(), size=(2 * T.H, 2 * T.W), mode="bilinear",
                                         antialias=False).double()
    sd = S.sd_table()
    steps, t_enc = setup_img2img_steps(3, 0.5, 3)
    sched = S.sampler_sigmas("euler", "discrete", steps, sd, sd)[steps - t_enc - 1:]
    with torch.no_grad():
        cond = clip(T.ids(R.PROMPT_IDS[1:-1]))["hidden_last"]
        uncond = clip(T.ids([]))["hidden_last"]
    D = T.make_denoiser(unet, torch.cat([uncond, cond]), 7.0, sd, False)
    noise = torch.randn((1, 4, 2 * T.H, 2 * T.W), generator=torch.Generator("cpu").manual_seed(1)).double()
    x = up + noise * sched[0].double()
    for i in range(len(sched) - 1):
        d = D(x, sched[i])
        x = x + (sched[i + 1] - sched[i]).double() * (x - d) / sched[i].double()
    return {"hires/first": first.float().numpy(), "hires/x": x.float().numpy(), "hires/sigmas": sched.numpy()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the stored golden, write nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    clip, unet = T.load_models()
    vae = load_vae()
    img = Image.open(os.path.join(R.ROOT, "tests", "data", "astronaut_256.png")).convert("RGB").crop((96, 64, 160, 128))
    u8 = np.asarray(img, dtype=np.uint8)
    image = np.moveaxis(u8.astype(np.float32) / 255.0, 2, 0)[None]  # (1, 3, 64, 64) float32, as the webui
    x = torch.from_numpy(image * 2 - 1).double()
    with torch.no_grad():
        init_latent = 0.18215 * vae.encode_mean(x)
    out = {"init": u8, "init_latent": init_latent.float().numpy()}
    # the runs start from the float32 latent, as ours (the webui's is float32 too)
    start = torch.from_numpy(out["init_latent"]).double()
    for r in RUNS:
        out.update(run(clip, unet, start, r))
        xr = out[f"{r['name']}/x"]
        print(f"  {r['name']:5s} final latent mean {xr.mean():+.4f} std {xr.std():.4f}")
    out.update(hires(clip, unet))
    if args.check:
        stored, _ = read_safetensors(OUT)
        bad = [k for k in out if not np.array_equal(out[k], stored[k])]
        print("  [ok] the stored golden is reproduced bit-exactly" if not bad else f"  differs: {bad}")
        return 1 if bad else 0
    write_safetensors(OUT, out, {"tool": "tools/img2img_reference.py", "torch": torch.__version__, "runs": repr(RUNS)})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
