#!/usr/bin/python3
"""txt2img_reference.py — writes tests/data/golden_txt2img.safetensors: whole txt2img sampling runs on the tiny
checkpoint, from the prompt's token ids to the final latent, for pipeline/txt2img.cpp (sample_latent) to match.

    /usr/bin/python3 tools/txt2img_reference.py            # writes the golden (~3 s)
    /usr/bin/python3 tools/txt2img_reference.py --check    # computes and compares with the stored golden

Independent of the C++: the networks are tools/ref_clip.py and tools/ref_unet.py in float64 with the f16 weights
of tests/data/tiny_sd.safetensors, the sigmas are tools/sampler_reference.py's (the webui's schedules), the noise
is torch's own CPU generator as the webui's ImageRNG draws it with "RNG: CPU" (one generator per seed: the initial
noise, then each sampler draw), and the denoiser, classifier-free guidance and the two samplers are written out
below from their sources:
  k-diffusion CompVisDenoiser     D(x, sigma) = x - sigma * eps(x * c_in, t), c_in = 1 / sqrt(sigma^2 + 1)
  webui CFGDenoiser               D = D_uncond + cfg * (D_cond - D_uncond)   (uncond first in the batch)
  webui LCMCompVisDenoiser        D_lcm = c_out * D + c_skip * x, c_skip = 0.25 / (T^2 + 0.25),
                                  c_out = T / sqrt(T^2 + 0.25), T = 10 * t (t from the LCM table)
  k-diffusion sample_euler        x = noise * sigmas[0]; x += (sigmas[i+1] - sigmas[i]) * (x - D(x)) / sigmas[i]
  webui sample_lcm                x = D_lcm(x, sigmas[i]); then + sigmas[i+1] * noise while sigmas[i+1] > 0
  webui CFGDenoiserTimesteps      eps = eps_u + cfg * (eps_c - eps_u) at the UNet timestep the sampler names
  webui unipc                     sampler_reference.run_unipc with that model: x0 = (x - sigma_t eps) / alpha_t at
                                  timestep 1000 (t - 1/1000), rounded to float32; x starts as the noise
  webui ddim_cfgpp                DDIM with eps at cfg / 12.5 for pred_x0 and eps_u for the direction (eta 0)
Runs (64x64 image, latent (1, 4, 8, 8)); per run the golden holds <run>/x (the final latent), <run>/traj (the x
entering each step, (steps, 256)) and <run>/denoised (each step's D, (steps, 256)):
  euler: prompt "a photo of an astronaut riding a horse", negative "", CFG 7, seed 1, 3 steps, discrete schedule
  lcm:   the same prompt, negative "", CFG 2, seed 2, 4 steps, the LCM table's discrete schedule
  unipc: CFG 7, seed 3, 4 steps (bh1, time_uniform, order 3);  ddim_cfgpp: CFG 7, seed 4, 3 steps
The token ids are stored too (ids/cond, ids/uncond); the tokenizer itself is tested against its own golden.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402
import sampler_reference as S  # noqa: E402
from ref_nn import read_safetensors, write_safetensors  # noqa: E402

OUT = os.path.join(R.ROOT, "tests", "data", "golden_txt2img.safetensors")
BOS, EOS = 49406, 49407
RUNS = [dict(name="euler", sampler="euler", cfg=7.0, seed=1, steps=3),
        dict(name="lcm", sampler="lcm", cfg=2.0, seed=2, steps=4),
        dict(name="unipc", sampler="unipc", cfg=7.0, seed=3, steps=4),
        dict(name="ddim_cfgpp", sampler="ddim_cfgpp", cfg=7.0, seed=4, steps=3)]
H = W = 8  # latent of a 64x64 image


def load_models():
    tensors, _ = read_safetensors(os.path.join(R.ROOT, "tests", "data", "tiny_sd.safetensors"))
    models = R.build_models(seed=0)
    for name, prefix in (("clip", R.CLIP_PREFIX), ("unet", R.UNET_PREFIX)):
        sd = {n[len(prefix):]: torch.from_numpy(a.astype(np.float64) if a.dtype != np.int64 else a.copy())
              for n, a in tensors.items() if n.startswith(prefix)}
        models[name].load_state_dict(sd, strict=True)
    return models["clip"], models["unet"]


def ids(tokens):
    return torch.tensor([BOS] + tokens + [EOS] * (76 - len(tokens)), dtype=torch.int64)[None]  # (1, 77)


class WebuiCpuRng:
    """modules/rng.py ImageRNG with randn_source CPU, one seed: first() draws from create_generator(seed) (after
    manual_seed), next() keeps drawing from that same generator."""
    def __init__(self, seed):
        self.g = torch.Generator("cpu").manual_seed(seed)

    def next(self):
        return torch.randn((1, 4, H, W), generator=self.g).double()


def lcm_scalings(t):
    T = 10.0 * t
    return 0.25 / (T * T + 0.25), T / (T * T + 0.25) ** 0.5


def make_denoiser(unet, context, cfg, table, lcm):
    def D(x, sigma):  # x (1, 4, H, W) float64, sigma a float32 0-d tensor
        s = sigma.double()
        c_in = 1.0 / (s * s + 1.0) ** 0.5
        t = table.sigma_to_t(sigma.view(1)).repeat(2)  # (2,) the UNet's timestep, as the table gives it
        with torch.no_grad():
            eps = unet(torch.cat([x, x]) * c_in, t.double(), context)  # (2, 4, H, W): uncond, cond
        d = x - s * eps  # CompVisDenoiser, per batch item
        if lcm:
            c_skip, c_out = lcm_scalings(t[0].double())
            d = c_out * d + c_skip * x
        return d[0:1] + cfg * (d[1:2] - d[0:1])
    return D


def run_timestep_sampler(unet, context, r):
    """UniPC and DDIM CFG++ (the webui's timestep samplers): the UNet sees the VP latent and the timestep as named."""
    sd = S.sd_table()
    rng = WebuiCpuRng(r["seed"])
    x = rng.next()
    traj, dens = [], []

    def eps_pair(xv, t):  # (uncond, cond) eps at VP latent xv, float32 timestep t
        tt = torch.tensor([t, t], dtype=torch.float32).double()
        with torch.no_grad():
            e = unet(torch.cat([xv, xv]), tt, context)
        return e[0:1], e[1:2]

    cb = lambda xv, d: (traj.append(xv.flatten()), dens.append(d.flatten()))  # noqa: E731
    if r["sampler"] == "unipc":
        def x0_model(xv, t, alpha, sigma):
            e_u, e_c = eps_pair(xv, (t - 1.0 / 1000) * 1000.0)
            return (xv - sigma * (e_u + r["cfg"] * (e_c - e_u))) / alpha
        x = S.run_unipc(None, x, len(S.ddim_timesteps(r["steps"])), sd.acp, cb, x0_model=x0_model)
        sigmas = sd.sigmas[S.ddim_timesteps(r["steps"]).flip(0)]
    else:
        ts = S.ddim_timesteps(r["steps"])
        sigmas = sd.sigmas[ts.flip(0)]
        acp = sd.acp.double()
        for i in range(len(ts) - 1):
            index = len(ts) - 1 - i
            a_t, a_prev = acp[ts[index]].item(), acp[ts[index - 1]].item()
            e_u, e_c = eps_pair(x, float(ts[index]))
            e_t = e_u + r["cfg"] / 12.5 * (e_c - e_u)
            pred_x0 = (x - (1 - a_t) ** 0.5 * e_t) / a_t ** 0.5
            cb(x, pred_x0)
            rng.next()  # drawn every step, unused at eta 0
            x = a_prev ** 0.5 * pred_x0 + (1 - a_prev) ** 0.5 * e_u
    f = lambda a: a.to(torch.float32).numpy()  # noqa: E731
    return {f"{r['name']}/x": f(x), f"{r['name']}/traj": f(torch.stack(traj)),
            f"{r['name']}/denoised": f(torch.stack(dens)), f"{r['name']}/sigmas": sigmas.numpy()}


def run(clip, unet, r):
    if r["sampler"] in ("unipc", "ddim_cfgpp"):
        with torch.no_grad():
            cond = clip(ids(R.PROMPT_IDS[1:-1]))["hidden_last"]
            uncond = clip(ids([]))["hidden_last"]
        return run_timestep_sampler(unet, torch.cat([uncond, cond]), r)
    sd = S.sd_table()
    lcm = r["sampler"] == "lcm"
    table = S.lcm_table(sd) if lcm else sd
    sigmas = S.sampler_sigmas(r["sampler"], "discrete", r["steps"], sd, table)  # float32 (steps + 1,)
    with torch.no_grad():
        cond = clip(ids(R.PROMPT_IDS[1:-1]))["hidden_last"]
        uncond = clip(ids([]))["hidden_last"]
    D = make_denoiser(unet, torch.cat([uncond, cond]), r["cfg"], table, lcm)
    rng = WebuiCpuRng(r["seed"])
    x = rng.next() * sigmas[0].double()
    traj, dens = [], []
    for i in range(r["steps"]):
        traj.append(x.flatten())
        d = D(x, sigmas[i])
        dens.append(d.flatten())
        if lcm:
            x = d
            if sigmas[i + 1] > 0:
                x = x + sigmas[i + 1].double() * rng.next()
        else:
            x = x + (sigmas[i + 1] - sigmas[i]).double() * (x - d) / sigmas[i].double()
    f = lambda a: a.to(torch.float32).numpy()
    return {f"{r['name']}/x": f(x), f"{r['name']}/traj": f(torch.stack(traj)),
            f"{r['name']}/denoised": f(torch.stack(dens)), f"{r['name']}/sigmas": sigmas.numpy()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the stored golden, write nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    clip, unet = load_models()
    out = {"ids/cond": ids(R.PROMPT_IDS[1:-1]).float().numpy(), "ids/uncond": ids([]).float().numpy()}
    for r in RUNS:
        out.update(run(clip, unet, r))
        x = out[f"{r['name']}/x"]
        print(f"  {r['name']:6s} final latent mean {x.mean():+.4f} std {x.std():.4f} max|.| {np.abs(x).max():.4f}")
    if args.check:
        stored, _ = read_safetensors(OUT)
        bad = [k for k in out if not np.array_equal(out[k], stored[k])]
        print("  [ok] the stored golden is reproduced bit-exactly" if not bad else f"  differs: {bad}")
        return 1 if bad else 0
    meta = {"tool": "tools/txt2img_reference.py", "torch": torch.__version__, "runs": repr(RUNS)}
    write_safetensors(OUT, out, meta)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
