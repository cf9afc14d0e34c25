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
  inpaint9: a 9-channel inpainting UNet (see inpaint9()), img2img with a mask
  ddim, plms, unipc, dpm_fast, dpm_adaptive, ddim_mask, ddim_hr: I2I_SAMPLERS, see run_sampler()
  latent_mode: resize mode 3 on a 67x61 init image (see latent_mode()): the latent at its own size and resized
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
import ref_unet  # noqa: E402
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


def inpaint9(clip, vae, u8, init_latent):
    """An inpainting UNet (9 input channels) in the real layout: the tiny UNet's input_blocks.0.0.weight (32, 4, 3, 3)
    extended by 5 input channels of uniform(+-1/sqrt(9*9)) weights (seed 11, f16-rounded), stored as
    inpaint9/conv_in_extra; the C++ test builds the same checkpoint. The webui's img2img with a mask (mask blur 0,
    masked content "original", whole picture) on it:
      inpainting_image_conditioning: m = round(L / 255) (full size); cond = VAE(src * (1 - m)) (lerp with weight 1),
        src = image * 2 - 1; m resized to the latent by F.interpolate (nearest); image_cond = cat(m, cond)
      CFGDenoiser: the UNet sees cat(x * c_in, image_cond) for cond and uncond; the per-step and final latent blend
        with nmask = round(bicubic 8x8 resize of the mask / 255), as the ordinary checkpoints.
    Run: Euler, seed 8, steps 4, strength 1.0; mask = 255 on x 16..47, y 24..55 of the 64x64 init image."""
    tensors, _ = read_safetensors(os.path.join(R.ROOT, "tests", "data", "tiny_sd.safetensors"))
    cfg = dict(R.UNET_CFG, in_channels=9)
    unet = ref_unet.UNetModel(**cfg).double().eval()
    sd = {n[len(R.UNET_PREFIX):]: torch.from_numpy(a.astype(np.float64)) for n, a in tensors.items()
          if n.startswith(R.UNET_PREFIX)}
    w = sd["input_blocks.0.0.weight"]  # (32, 4, 3, 3)
    bound = 1.0 / (9 * 9) ** 0.5
    extra = ((torch.rand((w.shape[0], 5, 3, 3), generator=torch.Generator().manual_seed(11)) * 2 - 1) * bound).half()
    sd["input_blocks.0.0.weight"] = torch.cat([w, extra.double()], dim=1)
    unet.load_state_dict(sd, strict=True)
    mask = np.zeros((64, 64), np.uint8)
    mask[24:56, 16:48] = 255
    mask_im = Image.fromarray(mask, "L")
    image = np.moveaxis(u8.astype(np.float32) / 255.0, 2, 0)[None]
    src = torch.from_numpy(image * 2 - 1)
    cm = torch.round(torch.from_numpy(np.array(mask_im.convert("L")).astype(np.float32) / 255.0)[None, None])
    cond_img = torch.lerp(src, src * (1.0 - cm), 1.0)
    with torch.no_grad():
        cond_lat = 0.18215 * vae.encode_mean(cond_img.double())
    cm_small = torch.nn.functional.interpolate(cm, size=(T.H, T.W))
    image_cond = torch.cat([cm_small.double(), cond_lat.float().double()], dim=1)  # (1, 5, 8, 8)
    latmask = mask_im.convert('RGB').resize((T.W, T.H))
    latmask = np.around(np.moveaxis(np.array(latmask, dtype=np.float32), 2, 0) / 255)[0]
    nmask = torch.from_numpy(np.tile(latmask[None], (4, 1, 1))[None]).double()
    sd_t = S.sd_table()
    steps, t_enc = setup_img2img_steps(4, 1.0)
    sched = S.sampler_sigmas("euler", "discrete", steps, sd_t, sd_t)[steps - t_enc - 1:]
    with torch.no_grad():
        cond = clip(T.ids(R.PROMPT_IDS[1:-1]))["hidden_last"]
        uncond = clip(T.ids([]))["hidden_last"]
    context = torch.cat([uncond, cond])

    def D(x, sigma):
        s = sigma.double()
        c_in = 1.0 / (s * s + 1.0) ** 0.5
        t = sd_t.sigma_to_t(sigma.view(1)).repeat(2)
        xin = torch.cat([torch.cat([x, x]) * c_in, image_cond.repeat(2, 1, 1, 1)], dim=1)
        with torch.no_grad():
            eps = unet(xin, t.double(), context)
        d = x - s * eps
        return d[0:1] + 7.0 * (d[1:2] - d[0:1])

    noise = T.WebuiCpuRng(8).next()
    x = init_latent + noise * sched[0].double()
    for i in range(len(sched) - 1):
        d = D(x, sched[i])
        d = init_latent * (1 - nmask) + nmask * d
        x = x + (sched[i + 1] - sched[i]).double() * (x - d) / sched[i].double()
    x = x * nmask + init_latent * (1 - nmask)
    return {"inpaint9/conv_in_extra": extra.numpy(), "inpaint9/mask": mask[:, :, None],
            "inpaint9/image_cond": image_cond.float().numpy(), "inpaint9/x": x.float().numpy()}


# Every sampler in img2img (sd_samplers_timesteps.py and sd_samplers_kdiffusion.py sample_img2img), 64x64, CFG 7:
I2I_SAMPLERS = [dict(name="ddim", sampler="ddim", seed=9, steps=6, strength=0.6, mask=False),
                dict(name="plms", sampler="plms", seed=10, steps=8, strength=0.75, mask=False),
                dict(name="unipc", sampler="unipc", seed=11, steps=8, strength=0.6, mask=False),
                dict(name="dpm_fast", sampler="dpm_fast", seed=12, steps=6, strength=0.6, mask=False),
                dict(name="dpm_adaptive", sampler="dpm_adaptive", seed=13, steps=5, strength=0.5, mask=False),
                dict(name="ddim_mask", sampler="ddim", seed=14, steps=8, strength=0.9, mask=True),
                dict(name="ddim_hr", sampler="ddim", seed=15, steps=20, strength=0.5, mask=False, hires=3)]


def run_sampler(clip, unet, init_latent, r):
    """sample_img2img of the webui for the timestep samplers (CompVisSampler) and DPM fast / adaptive
    (KDiffusionSampler), written out from its source:
      timestep samplers: timesteps = clip(range(0, 1000, 1000 // steps) + 1, 0, 999) (ascending), sched =
        timesteps[:t_enc]; abar = alphas_cumprod[timesteps[t_enc]] (float32); xi = x * sqrt(abar) +
        noise * sqrt(1 - abar) in float32; ddim / plms (sd_samplers_timesteps_impl) over sched, the UNet seeing the
        VP latent and the integer timestep; unipc: steps = len(sched), t_start = sched[-1] / 1000 + 1 / 1000.
        With a mask (CFGDenoiserTimesteps.mask_before_denoising): the UNet's input is x * nmask + init * mask.
      DPM fast / adaptive: sigma_sched = sigmas[steps - t_enc - 1:]; xi = x + noise * sigma_sched[0];
        sigma_min = sigma_sched[-2], sigma_max = sigma_sched[0], n = len(sigma_sched) - 1; eta 1 (the webui's
        "Eta for ancestral samplers"), its noise the image RNG's next draws.
    The final latent is blended with the mask as StableDiffusionProcessingImg2Img.sample does."""
    sd = S.sd_table()
    steps, t_enc = setup_img2img_steps(r["steps"], r["strength"], r.get("hires", 0))
    with torch.no_grad():
        cond = clip(T.ids(R.PROMPT_IDS[1:-1]))["hidden_last"]
        uncond = clip(T.ids([]))["hidden_last"]
    context = torch.cat([uncond, cond])
    rng = T.WebuiCpuRng(r["seed"])
    noise = rng.next()
    out = {}
    nmask = None
    if r["mask"]:
        nmask = torch.zeros((1, 4, T.H, T.W), dtype=torch.float64)
        nmask[:, :, 1:6, 2:7] = 1.0
        out[f"{r['name']}/keep"] = (1.0 - nmask).float().numpy()
    x0 = init_latent.float()
    if r["sampler"] in ("ddim", "plms", "unipc"):
        ts = S.ddim_timesteps(steps)
        sched = ts[:t_enc]
        acp = sd.acp  # float32
        a = acp[ts[t_enc]]
        x = (x0 * torch.sqrt(a) + noise.float() * torch.sqrt(1 - a)).double()

        def E(xv, t):  # the CFG-combined eps at VP latent xv, UNet timestep t (float)
            if nmask is not None:
                xv = xv * nmask + init_latent * (1 - nmask)
            with torch.no_grad():
                e = unet(torch.cat([xv, xv]), torch.tensor([t, t], dtype=torch.float64), context)
            return e[0:1] + 7.0 * (e[1:2] - e[0:1])

        if r["sampler"] == "unipc":
            def x0_model(xv, t, alpha, sigma):
                return (xv - sigma * E(xv, (t - 1.0 / 1000) * 1000.0)) / alpha
            t_start = float(sched[-1]) / 1000 + 1 / 1000
            x = S.run_unipc(None, x, len(sched), acp, lambda *a: None, x0_model=x0_model, t_T=t_start)
        else:
            alphas = acp[sched].double()
            alphas_prev = acp[torch.nn.functional.pad(sched[:-1], pad=(1, 0))].double()
            old_eps = []
            for i in range(len(sched) - 1):
                index = len(sched) - 1 - i
                a_t, a_prev = alphas[index].item(), alphas_prev[index].item()

                def step(e):
                    p0 = (x - (1 - a_t) ** 0.5 * e) / a_t ** 0.5
                    return a_prev ** 0.5 * p0 + (1 - a_prev) ** 0.5 * e

                e_t = E(x, float(sched[index]))
                if r["sampler"] == "ddim":  # eta 0: sigma_t = 0 (its noise is drawn and multiplied by 0)
                    x = step(e_t)
                    continue
                if len(old_eps) == 0:  # plms
                    e_prime = (e_t + E(step(e_t), float(sched[max(index - 1, 0)]))) / 2
                elif len(old_eps) == 1:
                    e_prime = (3 * e_t - old_eps[-1]) / 2
                elif len(old_eps) == 2:
                    e_prime = (23 * e_t - 16 * old_eps[-1] + 5 * old_eps[-2]) / 12
                else:
                    e_prime = (55 * e_t - 59 * old_eps[-1] + 37 * old_eps[-2] - 9 * old_eps[-3]) / 24
                old_eps.append(e_t)
                if len(old_eps) >= 4:
                    old_eps.pop(0)
                x = step(e_prime)
        out[f"{r['name']}/sigmas"] = sd.sigmas[sched.flip(0)].numpy()
    else:
        sigmas = S.sampler_sigmas(r["sampler"], "discrete", steps, sd, sd)
        sched = sigmas[steps - t_enc - 1:]
        x = init_latent + noise * sched[0].double()
        D32 = T.make_denoiser(unet, context, 7.0, sd, False)
        D = lambda xv, s: D32(xv, torch.tensor(s, dtype=torch.float32))  # noqa: E731  the model sees float32 sigmas
        runner = S.run_dpm_fast if r["sampler"] == "dpm_fast" else S.run_dpm_adaptive
        x = runner(D, x, sched, rng.next, {"eta": 1.0, "s_noise": 1.0}, lambda *a: None,
                   smin=sched[-2].item(), smax=sched[0].item())
        out[f"{r['name']}/sigmas"] = sched.numpy()
    if nmask is not None:
        x = x * nmask + init_latent * (1 - nmask)
    out[f"{r['name']}/x"] = x.float().numpy()
    return out


def latent_mode(vae):
    """Resize mode 3 ("Just resize (latent upscale)", processing.py): the init image is not resized; it is encoded
    at its own size (67x61 here: ldm's Downsample pads right/bottom by one before its stride-2 conv, so each level
    floors an odd side: latent 8x7), then init_latent = F.interpolate(init_latent, (64 // 8, 64 // 8), "bilinear")."""
    img = Image.open(os.path.join(R.ROOT, "tests", "data", "astronaut_256.png")).convert("RGB").crop((90, 60, 157, 121))
    u8 = np.asarray(img, dtype=np.uint8)
    x = torch.from_numpy(np.moveaxis(u8.astype(np.float32) / 255.0, 2, 0)[None] * 2 - 1).double()
    with torch.no_grad():
        z = (0.18215 * vae.encode_mean(x)).float()
    assert z.shape[2:] == (7, 8), z.shape
    up = torch.nn.functional.interpolate(z, size=(T.H, T.W), mode="bilinear")
    return {"latent_mode/init": u8, "latent_mode/z": z.numpy(), "latent_mode/x0": up.numpy()}


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
    out.update(inpaint9(clip, vae, u8, start))
    out.update(latent_mode(vae))
    for r in I2I_SAMPLERS:
        out.update(run_sampler(clip, unet, start, r))
        xr = out[f"{r['name']}/x"]
        print(f"  {r['name']:12s} final latent mean {xr.mean():+.4f} std {xr.std():.4f}")
    if args.check:
        stored, _ = read_safetensors(OUT)
        bad = [k for k in out if k not in stored or not np.array_equal(out[k], stored[k])]
        print("  [ok] the stored golden is reproduced bit-exactly" if not bad else f"  differs: {bad}")
        return 1 if bad else 0
    write_safetensors(OUT, out, {"tool": "tools/img2img_reference.py", "torch": torch.__version__, "runs": repr(RUNS)})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
