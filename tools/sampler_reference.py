#!/usr/bin/python3
"""sampler_reference.py — writes tests/data/golden_samplers.safetensors: schedules and sampler runs as the
webui computes them, for pipeline/schedule.cpp and pipeline/samplers.cpp to match.

    /usr/bin/python3 tools/sampler_reference.py            # writes the golden
    /usr/bin/python3 tools/sampler_reference.py --check    # self-checks only, writes nothing

Schedules are computed the webui's way, in float32 torch (ldm's alphas_cumprod buffer, k-diffusion's
CompVisDenoiser tables, get_sigmas / get_sigmas_karras / get_sigmas_exponential, the webui's LCM table, DDIM
timesteps and the DPM2 "discard next-to-last sigma" rule), re-implemented here from those sources.

Samplers are re-implemented in float64 torch from k-diffusion's sampling.py formulas (and the webui's
ddim / sample_lcm) with an analytic denoiser: if every latent element is independently x0 ~ N(mu, s^2), the
exact denoiser is D(x, sigma) = (s^2 x + sigma^2 mu) / (s^2 + sigma^2), a nontrivial function of sigma.
Noise is an input: the k-th randn_like call of a run returns noise/pool[k], and the golden records how many
calls the run made. DDIM is written in the webui's variance-preserving form (eps model derived from D).

Tensor names (all F32):
  den/mu, den/s (24,)          the denoiser's per-element mean and std; the latent has shape (2, 3, 4)
  noise/init (24,)             the initial noise (x = noise * sigmas[0], DDIM: x = noise)
  noise/pool (64, 24)          the noise returned by successive randn calls
  table/alphas_cumprod, table/sigmas, table/log_sigmas (1000,)   the SD table
  sched/<table>/<schedule>/n<N>  make_sigmas output (N + 1,), table sd or lcm
  sched/sd/<schedule>/min<A>_max<B>_rho<R>/n10   with the webui's sigma min/max and rho settings (0: unset)
  sched/sd/align_your_steps/sdxl/n<N>            the SDXL list
  map/sigma_in, map/t_out      sigma_to_t on the SD table;  map/t_in, map/sigma_out: t_to_sigma
  run/<sampler>/<schedule>/n<steps>[/<variant>]/sigmas   the sampler's sigmas (webui rules applied)
                                                 .../x       final latent
                                                 .../draws   (1,) number of randn calls
  run/.../traj_x, .../traj_denoised (steps, 24)  x entering each step and its denoised estimate (some runs)
  run/.../queries (Q, 2)     SDE samplers: the (sigma, sigma_next) of each noise_sampler call, float32 as
                             k-diffusion computes them (the k-th call returns noise/pool[k] too)
Variants: churn (s_churn 1 or 2), eta05 (eta 0.5), eta0, snoise08 (s_noise 0.8), eta1 (DDIM eta 1).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rng_reference import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "golden_samplers.safetensors")
SHAPE = (2, 3, 4)
POOL = 64

# ---------------------------------------------------------------------------------------------------------
# Schedules, float32 as in the webui


def sd_alphas_cumprod():
    # ldm make_beta_schedule("linear"): linspace of sqrt(beta) in float64, squared; cumprod in float64
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    acp = np.cumprod(1.0 - betas.numpy(), axis=0)
    return torch.tensor(acp, dtype=torch.float32)  # ldm's register_buffer(to_torch(...)): float32


class Table:
    """k-diffusion DiscreteSchedule over float32 sigmas; entry i is UNet timestep i * stride + offset."""

    def __init__(self, acp, stride=1, offset=0, quantize=False):
        self.acp = acp
        self.sigmas = ((1 - acp) / acp) ** 0.5
        self.log_sigmas = self.sigmas.log()
        self.stride, self.offset, self.quantize = stride, offset, quantize

    def sigma_to_t(self, sigma):
        log_sigma = sigma.log()
        dists = log_sigma - self.log_sigmas[:, None]
        if self.quantize:
            return dists.abs().argmin(dim=0).view(sigma.shape) * self.stride + self.offset
        low_idx = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=self.log_sigmas.shape[0] - 2)
        high_idx = low_idx + 1
        low, high = self.log_sigmas[low_idx], self.log_sigmas[high_idx]
        w = ((low - log_sigma) / (low - high)).clamp(0, 1)
        return ((1 - w) * low_idx + w * high_idx).view(sigma.shape) * self.stride + self.offset

    def t_to_sigma(self, t):
        t = ((t - self.offset) / self.stride).float().clamp(0, len(self.sigmas) - 1)
        low_idx, high_idx, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low_idx] + w * self.log_sigmas[high_idx]).exp()

    def get_sigmas(self, n):
        start = self.sigma_to_t(self.sigmas[-1:])[0].item()
        end = self.sigma_to_t(self.sigmas[:1])[0].item()
        t = torch.linspace(start, end, n)
        return torch.cat([self.t_to_sigma(t), torch.zeros(1)])


def sd_table():
    return Table(sd_alphas_cumprod())


def lcm_table(sd):
    # webui LCMCompVisDenoiser: alphas_cumprod_valid[49 - x] = alphas_cumprod[999 - 20 x]
    acp = torch.zeros(50)
    for x in range(50):
        acp[49 - x] = sd.acp[999 - x * 20]
    return Table(acp, stride=20, offset=19, quantize=True)


def karras(n, sigma_min, sigma_max, rho=7.0):
    ramp = torch.linspace(0, 1, n)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return torch.cat([(max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho, torch.zeros(1)])


def exponential(n, sigma_min, sigma_max):
    return torch.cat([torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp(), torch.zeros(1)])


def polyexponential(n, sigma_min, sigma_max, rho=1.0):
    ramp = torch.linspace(1, 0, n) ** rho
    return torch.cat([torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min)),
                      torch.zeros(1)])


# The webui's modules/sd_schedulers.py, re-implemented from its text (float32 torch / float64 numpy as there).
def sgm_uniform(n, table, smin, smax):
    start, end = table.sigma_to_t(torch.tensor([smax]))[0], table.sigma_to_t(torch.tensor([smin]))[0]
    sigs = [table.t_to_sigma(ts.view(1))[0] for ts in torch.linspace(start.item(), end.item(), n + 1)[:-1]]
    return torch.tensor([float(v) for v in sigs] + [0.0], dtype=torch.float32)


def kl_optimal(n, smin, smax):
    alpha_min, alpha_max = torch.arctan(torch.tensor(smin)), torch.arctan(torch.tensor(smax))
    step = torch.arange(n + 1)
    return torch.tan(step / n * alpha_min + (1.0 - step / n) * alpha_max)


AYS_SD15 = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
AYS_SDXL = [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029]


def align_your_steps(n, sdxl=False):
    sig = list(AYS_SDXL if sdxl else AYS_SD15)
    if n != len(sig):
        xs, ys = np.linspace(0, 1, len(sig)), np.log(sig[::-1])
        out = np.exp(np.interp(np.linspace(0, 1, n), xs, ys))[::-1].copy()
        return torch.tensor(np.append(out, [0.0]), dtype=torch.float32)
    return torch.tensor(sig + [0.0], dtype=torch.float32)


def simple(n, table):
    ss = len(table.sigmas) / n
    return torch.tensor([float(table.sigmas[-(1 + int(x * ss))]) for x in range(n)] + [0.0], dtype=torch.float32)


def normal(n, table, smin, smax):
    start, end = table.sigma_to_t(torch.tensor([smax]))[0], table.sigma_to_t(torch.tensor([smin]))[0]
    sigs = [table.t_to_sigma(ts.view(1))[0] for ts in torch.linspace(start.item(), end.item(), n)]
    return torch.tensor([float(v) for v in sigs] + [0.0], dtype=torch.float32)


def ddim_sched(n, table):
    sigs, ss, x = [], max(len(table.sigmas) // n, 1), 1
    while x < len(table.sigmas):
        sigs.append(float(table.sigmas[x]))
        x += ss
    return torch.tensor(sigs[::-1] + [0.0], dtype=torch.float32)


def beta_ppf(q, a, b):
    """scipy.stats.beta.ppf without scipy: bisection on mpmath's regularized incomplete beta at 30 digits."""
    import mpmath
    mpmath.mp.dps = 30
    if q <= 0 or q >= 1:
        return float(q >= 1)
    lo, hi = mpmath.mpf(0), mpmath.mpf(1)
    for _ in range(110):
        mid = (lo + hi) / 2
        if mpmath.betainc(a, b, 0, mid, regularized=True) < q:
            lo = mid
        else:
            hi = mid
    return float((lo + hi) / 2)


def beta_sched(n, smin, smax, alpha=0.6, beta=0.6):
    ts = [beta_ppf(float(x), alpha, beta) for x in 1 - np.linspace(0, 1, n)]
    return torch.tensor([smin + x * (smax - smin) for x in ts] + [0.0], dtype=torch.float32)


def make_sigmas(schedule, n, table, beta_ab=(0.6, 0.6), smin=0.0, smax=0.0, rho=0.0, sdxl=False):
    """KDiffusionSampler.get_sigmas: the webui's sigma_min / sigma_max / rho settings replace the table's ends and
    the schedule's default rho when non-zero (default_rho: Karras 7, Polyexponential 1, else none)."""
    smin = smin if smin != 0 else table.sigmas[0].item()
    smax = smax if smax != 0 else table.sigmas[-1].item()
    if schedule == "discrete":
        return table.get_sigmas(n)
    if schedule == "karras":
        return karras(n, smin, smax, rho if rho != 0 else 7.0)
    if schedule == "exponential":
        return exponential(n, smin, smax)
    if schedule == "polyexponential":
        return polyexponential(n, smin, smax, rho if rho != 0 else 1.0)
    if schedule == "sgm_uniform":
        return sgm_uniform(n, table, smin, smax)
    if schedule == "kl_optimal":
        return kl_optimal(n, smin, smax)
    if schedule == "align_your_steps":
        return align_your_steps(n, sdxl)
    if schedule == "simple":
        return simple(n, table)
    if schedule == "normal":
        return normal(n, table, smin, smax)
    if schedule == "ddim":
        return ddim_sched(n, table)
    if schedule == "beta":
        return beta_sched(n, smin, smax, *beta_ab)
    raise ValueError(schedule)


def ddim_timesteps(steps):
    return torch.clip(torch.asarray(list(range(0, 1000, 1000 // steps))) + 1, 0, 999)


def sampler_sigmas(sampler, schedule, steps, sd, lcm):
    if sampler in TIMESTEP_SAMPLERS:
        return sd.sigmas[ddim_timesteps(steps).flip(0)]
    if sampler == "lcm":
        return make_sigmas(schedule, steps, lcm)
    if sampler in ("dpm2", "dpm2_a", "dpmpp_3m_sde"):
        s = make_sigmas(schedule, steps + 1, sd)
        return torch.cat([s[:-2], s[-1:]])
    return make_sigmas(schedule, steps, sd)


# ---------------------------------------------------------------------------------------------------------
# Samplers, float64


class Noise:
    def __init__(self, pool):
        self.pool, self.calls = pool, 0

    def __call__(self):
        v = self.pool[self.calls % len(self.pool)].view(SHAPE)  # stored runs use at most POOL draws
        self.calls += 1
        return v


def ancestral(sigma_from, sigma_to, eta):
    if not eta:
        return sigma_to, 0.0
    up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    return (sigma_to ** 2 - up ** 2) ** 0.5, up


def churned(x, sigmas, i, noise, o):
    n = len(sigmas) - 1
    gamma = min(o["s_churn"] / n, 2 ** 0.5 - 1)  # s_tmin = 0 <= sigma <= s_tmax = inf, the webui's defaults
    eps = noise() * o["s_noise"]
    sigma_hat = sigmas[i] * (gamma + 1)
    if gamma > 0:
        x = x + eps * (sigma_hat ** 2 - sigmas[i] ** 2) ** 0.5
    return x, sigma_hat


def run_euler(D, x, sigmas, noise, o, cb):
    for i in range(len(sigmas) - 1):
        x, sh = churned(x, sigmas, i, noise, o)
        den = D(x, sh)
        cb(x, den)
        x = x + (x - den) / sh * (sigmas[i + 1] - sh)
    return x


def run_euler_a(D, x, sigmas, noise, o, cb):
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        down, up = ancestral(sigmas[i], sigmas[i + 1], o["eta"])
        cb(x, den)
        x = x + (x - den) / sigmas[i] * (down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise() * o["s_noise"] * up
    return x


def run_heun(D, x, sigmas, noise, o, cb):
    for i in range(len(sigmas) - 1):
        x, sh = churned(x, sigmas, i, noise, o)
        den = D(x, sh)
        cb(x, den)
        d = (x - den) / sh
        dt = sigmas[i + 1] - sh
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = (x2 - D(x2, sigmas[i + 1])) / sigmas[i + 1]
            x = x + (d + d2) / 2 * dt
    return x


def run_dpm2(D, x, sigmas, noise, o, cb):
    for i in range(len(sigmas) - 1):
        x, sh = churned(x, sigmas, i, noise, o)
        den = D(x, sh)
        cb(x, den)
        d = (x - den) / sh
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sh)
        else:
            mid = math.exp((math.log(sh) + math.log(sigmas[i + 1])) / 2)
            x2 = x + d * (mid - sh)
            x = x + (x2 - D(x2, mid)) / mid * (sigmas[i + 1] - sh)
    return x


def run_dpm2_a(D, x, sigmas, noise, o, cb):
    for i in range(len(sigmas) - 1):
        s = sigmas[i]
        den = D(x, s)
        down, up = ancestral(s, sigmas[i + 1], o["eta"])
        cb(x, den)
        d = (x - den) / s
        if down == 0:
            x = x + d * (down - s)
        else:
            mid = math.exp((math.log(s) + math.log(down)) / 2)
            x2 = x + d * (mid - s)
            x = x + (x2 - D(x2, mid)) / mid * (down - s)
            x = x + noise() * o["s_noise"] * up
    return x


def lms_coeff(order, t, i, j):
    """Integral over [t_i, t_i+1] of the Lagrange basis polynomial for node i - j (exact polynomial algebra)."""
    p = np.polynomial.Polynomial([1.0])
    for k in range(order):
        if k != j:
            p = p * np.polynomial.Polynomial([-t[i - k], 1.0]) / (t[i - j] - t[i - k])
    q = p.integ()
    return q(t[i + 1]) - q(t[i])


def run_lms(D, x, sigmas, noise, o, cb, order=4):
    ds = []
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        ds.append((x - den) / sigmas[i])
        ds = ds[-order:]
        cb(x, den)
        cur = min(i + 1, order)
        x = x + sum(lms_coeff(cur, sigmas, i, j) * ds[-1 - j] for j in range(cur))
    return x


def run_dpmpp_2m(D, x, sigmas, noise, o, cb):
    old = None
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        cb(x, den)
        if sigmas[i + 1] == 0:
            x = den  # sigma_fn(inf) / sigma_fn(t) = 0, -expm1(-inf) = 1
        else:
            t, tn = -math.log(sigmas[i]), -math.log(sigmas[i + 1])
            h = tn - t
            if old is None:
                dd = den
            else:
                r = (t + math.log(sigmas[i - 1])) / h
                dd = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old
            x = (sigmas[i + 1] / sigmas[i]) * x - math.expm1(-h) * dd
        old = den
    return x


def run_dpmpp_2s_a(D, x, sigmas, noise, o, cb):
    for i in range(len(sigmas) - 1):
        s = sigmas[i]
        den = D(x, s)
        down, up = ancestral(s, sigmas[i + 1], o["eta"])
        cb(x, den)
        if down == 0:
            x = x + (x - den) / s * (down - s)
        else:
            t, tn = -math.log(s), -math.log(down)
            h = tn - t
            sm = t + h / 2
            x2 = math.exp(t - sm) * x - math.expm1(-h / 2) * den
            x = math.exp(t - tn) * x - math.expm1(-h) * D(x2, math.exp(-sm))
        if sigmas[i + 1] > 0:
            x = x + noise() * o["s_noise"] * up
    return x


def run_lcm(D, x, sigmas, noise, o, cb):
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        cb(x, den)
        x = den
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * noise()
    return x


def run_ddim(D, x, timesteps, acp, noise, o, cb):
    """The webui's ddim (modules/sd_samplers_timesteps_impl.py) on VP latents; the UNet's eps comes from D."""
    alphas = acp[timesteps].double()
    alphas_prev = acp[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].double()
    sigmas_eta = o["eta_ddim"] * ((1 - alphas_prev) / (1 - alphas) * (1 - alphas / alphas_prev)).sqrt()

    def eps_model(x_vp, a):
        sigma = ((1 - a) / a) ** 0.5
        x_ve = x_vp / a ** 0.5
        return (x_ve - D(x_ve, sigma)) / sigma, D(x_ve, sigma)

    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        a_t, a_prev, s_eta = alphas[index].item(), alphas_prev[index].item(), sigmas_eta[index].item()
        e_t, den = eps_model(x, a_t)
        cb(x, den)
        pred_x0 = (x - (1 - a_t) ** 0.5 * e_t) / a_t ** 0.5
        dir_xt = (1.0 - a_prev - s_eta ** 2) ** 0.5 * e_t
        x = a_prev ** 0.5 * pred_x0 + dir_xt + s_eta * noise()
    return x


class Queries:
    """The SDE samplers' noise_sampler(sigma, sigma_next): pool noise in order, the (float32) queries recorded."""

    def __init__(self, noise):
        self.noise, self.asked = noise, []

    def __call__(self, a, b):
        self.asked.append((float(a), float(b)))
        return self.noise()


def f32(v):
    return torch.tensor(v, dtype=torch.float32)


def run_dpmpp_sde(D, x, sigmas, noise, o, cb, r=0.5):
    ns = Queries(noise)
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        cb(x, den)
        if sigmas[i + 1] == 0:
            x = x + (x - den) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
            continue
        t, tn = -math.log(sigmas[i]), -math.log(sigmas[i + 1])
        h = tn - t
        s = t + h * r
        fac = 1 / (2 * r)
        # where k-diffusion asks the noise sampler: float32 tensor arithmetic on the float32 sigmas
        t32, tn32 = -f32(sigmas[i]).log(), -f32(sigmas[i + 1]).log()
        s32 = t32 + (tn32 - t32) * r
        sd, su = ancestral(math.exp(-t), math.exp(-s), o["eta"])
        s_ = -math.log(sd)
        x2 = (math.exp(-s_) / math.exp(-t)) * x - math.expm1(t - s_) * den
        x2 = x2 + ns((-t32).exp(), (-s32).exp()) * o["s_noise"] * su
        den2 = D(x2, math.exp(-s))
        sd, su = ancestral(math.exp(-t), math.exp(-tn), o["eta"])
        tn_ = -math.log(sd)
        dd = (1 - fac) * den + fac * den2
        x = (math.exp(-tn_) / math.exp(-t)) * x - math.expm1(t - tn_) * dd
        x = x + ns((-t32).exp(), (-tn32).exp()) * o["s_noise"] * su
    return x, ns.asked


def run_dpmpp_2m_sde(D, x, sigmas, noise, o, cb, solver="midpoint"):
    ns = Queries(noise)
    old, h_last, eta = None, None, o["eta"]
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        cb(x, den)
        if sigmas[i + 1] == 0:
            x = den
        else:
            t, s = -math.log(sigmas[i]), -math.log(sigmas[i + 1])
            h = s - t
            eta_h = eta * h
            x = sigmas[i + 1] / sigmas[i] * math.exp(-eta_h) * x + -math.expm1(-h - eta_h) * den
            if old is not None:
                r = h_last / h
                if solver == "heun":
                    x = x + (-math.expm1(-h - eta_h) / (-h - eta_h) + 1) * (1 / r) * (den - old)
                else:
                    x = x + 0.5 * -math.expm1(-h - eta_h) * (1 / r) * (den - old)
            if eta:
                x = x + ns(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-math.expm1(-2 * eta_h)) ** 0.5 * o["s_noise"]
            h_last = h
        old = den
    return x, ns.asked


def run_dpmpp_3m_sde(D, x, sigmas, noise, o, cb):
    ns = Queries(noise)
    d_1 = d_2 = h_1 = h_2 = h = None  # k-diffusion leaves h unbound for a 1-step run (and fails); here: None
    eta = o["eta"]
    for i in range(len(sigmas) - 1):
        den = D(x, sigmas[i])
        cb(x, den)
        if sigmas[i + 1] == 0:
            x = den
        else:
            t, s = -math.log(sigmas[i]), -math.log(sigmas[i + 1])
            h = s - t
            h_eta = h * (eta + 1)
            x = math.exp(-h_eta) * x + -math.expm1(-h_eta) * den
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0, d1_1 = (den - d_1) / r0, (d_1 - d_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_2 = math.expm1(-h_eta) / h_eta + 1
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif h_1 is not None:
                r = h_1 / h
                phi_2 = math.expm1(-h_eta) / h_eta + 1
                x = x + phi_2 * (den - d_1) / r
            if eta:
                x = x + ns(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-math.expm1(-2 * h * eta)) ** 0.5 * o["s_noise"]
        d_1, d_2 = den, d_1
        h_1, h_2 = h, h_1
    return x, ns.asked


def run_restart(D, x, sigmas, noise, o, cb):
    """webui sd_samplers_extra.restart_sampler, float64 steps over float32 schedules (torch.argmin, karras)."""
    sig = torch.tensor(sigmas, dtype=torch.float32)
    steps = len(sigmas) - 1
    restart_list = {}
    if steps >= 20:
        restart_steps, restart_times = 9, 1
        if steps >= 36:
            restart_steps, restart_times = steps // 4, 2
        sig = karras(steps - restart_steps * restart_times, sig[-2].item(), sig[0].item())
        restart_list = {0.1: [restart_steps + 1, restart_times, 2]}
    restart_list = {int(torch.argmin(abs(sig - key), dim=0)): value for key, value in restart_list.items()}
    step_list = []
    for i in range(len(sig) - 1):
        step_list.append((sig[i], sig[i + 1]))
        if i + 1 in restart_list:
            restart_steps, restart_times, restart_max = restart_list[i + 1]
            min_idx, max_idx = i + 1, int(torch.argmin(abs(sig - restart_max), dim=0))
            if max_idx < min_idx:
                up = karras(restart_steps, sig[min_idx].item(), sig[max_idx].item())[:-1]
                while restart_times > 0:
                    restart_times -= 1
                    step_list.extend(zip(up[:-1], up[1:]))
    last = None
    for old_s, new_s in step_list:
        old_s, new_s = float(old_s), float(new_s)
        if last is None:
            last = old_s
        elif last < old_s:
            x = x + noise() * o["s_noise"] * (old_s ** 2 - last ** 2) ** 0.5
        den = D(x, old_s)
        cb(x, den)
        d = (x - den) / old_s
        dt = new_s - old_s
        if new_s == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = (x2 - D(x2, new_s)) / new_s
            x = x + (d + d2) / 2 * dt
        last = new_s
    return x


def run_plms(D, x, timesteps, acp, noise, o, cb):
    """The webui's plms (modules/sd_samplers_timesteps_impl.py) on VP latents; eps from D as in run_ddim."""
    alphas = acp[timesteps].double()
    alphas_prev = acp[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].double()

    def eps_model(x_vp, a):
        sigma = ((1 - a) / a) ** 0.5
        x_ve = x_vp / a ** 0.5
        return (x_ve - D(x_ve, sigma)) / sigma

    old_eps = []
    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        a_t, a_prev = alphas[index].item(), alphas_prev[index].item()

        def step(e):
            p0 = (x - (1 - a_t) ** 0.5 * e) / a_t ** 0.5
            return a_prev ** 0.5 * p0 + (1 - a_prev) ** 0.5 * e, p0

        e_t = eps_model(x, a_t)
        if len(old_eps) == 0:
            x_prev, _ = step(e_t)
            e_prime = (e_t + eps_model(x_prev, alphas[max(index - 1, 0)].item())) / 2
        elif len(old_eps) == 1:
            e_prime = (3 * e_t - old_eps[-1]) / 2
        elif len(old_eps) == 2:
            e_prime = (23 * e_t - 16 * old_eps[-1] + 5 * old_eps[-2]) / 12
        else:
            e_prime = (55 * e_t - 59 * old_eps[-1] + 37 * old_eps[-2] - 9 * old_eps[-3]) / 24
        x_prev, p0 = step(e_prime)
        old_eps.append(e_t)
        if len(old_eps) >= 4:
            old_eps.pop(0)
        cb(x, p0)
        x = x_prev
    return x


def run_ddim_cfgpp(Dc, Du, cfg, x, timesteps, acp, noise, o, cb):
    """The webui's ddim_cfgpp (modules/sd_samplers_timesteps_impl.py, Chung et al. 2024, CFG++): guidance at
    cfg / 12.5 for pred_x0, the unconditional eps for the direction back to the next noise level."""
    alphas = acp[timesteps].double()
    alphas_prev = acp[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].double()
    sigmas_eta = o["eta_ddim"] * ((1 - alphas_prev) / (1 - alphas) * (1 - alphas / alphas_prev)).sqrt()
    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        a_t, a_prev, s_eta = alphas[index].item(), alphas_prev[index].item(), sigmas_eta[index].item()
        sigma = ((1 - a_t) / a_t) ** 0.5
        x_ve = x / a_t ** 0.5
        e_c, e_u = (x_ve - Dc(x_ve, sigma)) / sigma, (x_ve - Du(x_ve, sigma)) / sigma
        e_t = e_u + cfg / 12.5 * (e_c - e_u)
        pred_x0 = (x - (1 - a_t) ** 0.5 * e_t) / a_t ** 0.5
        cb(x, pred_x0)
        x = a_prev ** 0.5 * pred_x0 + (1.0 - a_prev - s_eta ** 2) ** 0.5 * e_u + s_eta * noise()
    return x


class VP:
    """UniPC's NoiseScheduleVP('discrete') in float64: log alpha linear in t between t_i = (i+1)/N and
    0.5 log abar_i, extended linearly beyond the ends."""

    def __init__(self, acp):
        self.N = len(acp)
        self.t = np.arange(1, self.N + 1, dtype=np.float64) / self.N
        self.la = 0.5 * np.log(acp.double().numpy())

    @staticmethod
    def interp(x, xs, ys):
        k = int(np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2))
        return ys[k] + (x - xs[k]) * (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k])

    def log_alpha(self, t):
        return self.interp(t, self.t, self.la)

    def alpha(self, t):
        return math.exp(self.log_alpha(t))

    def sigma(self, t):
        return math.sqrt(1 - math.exp(2 * self.log_alpha(t)))

    def lam(self, t):
        return math.log(self.alpha(t) / self.sigma(t))

    def inverse_lambda(self, lam):
        la = -0.5 * np.logaddexp(0.0, -2 * lam)
        return self.interp(la, self.la[::-1].copy(), self.t[::-1].copy())


def unipc_times(ns, skip, steps, t_T=1.0):
    t_0 = 1.0 / ns.N
    if skip == "time_uniform":
        return list(np.linspace(t_T, t_0, steps + 1))
    if skip == "time_quadratic":
        return list(np.linspace(t_T ** 0.5, t_0 ** 0.5, steps + 1) ** 2)
    return [ns.inverse_lambda(v) for v in np.linspace(ns.lam(t_T), ns.lam(t_0), steps + 1)]


def run_unipc(D, x, steps, acp, cb, variant="bh1", skip="time_uniform", order=3, lower_order_final=True, x0_model=None,
              t_T=1.0):
    """The webui's unipc (sd_samplers_timesteps_impl.py + models/diffusion/uni_pc/uni_pc.py: multistep,
    predict_x0, no thresholding), from the UniPC paper's formulas (Zhao et al. 2023, Alg. 1-2 with B(h) = h or
    e^h - 1, and the varying-coefficient form), float64. The model at (x, t) is x0 = D(x / alpha_t, sigma_t / alpha_t)."""
    ns = VP(acp)
    ts = unipc_times(ns, skip, steps, t_T)  # t_T: UniPC.sample's t_start (img2img starts below 1)
    assert steps >= order

    def model_x0(xv, t):
        if x0_model is not None:  # a real model: x0_model(x, t, alpha_t, sigma_t)
            return x0_model(xv, t, ns.alpha(t), ns.sigma(t))
        return D(xv / ns.alpha(t), ns.sigma(t) / ns.alpha(t))

    def update(x, ms, tps, t, k_order, use_corrector):
        lam0, lam_t = ns.lam(tps[-1]), ns.lam(t)
        m0 = ms[-1]
        h = lam_t - lam0
        rks = [(ns.lam(tps[-(i + 1)]) - lam0) / h for i in range(1, k_order)]
        D1s = [(ms[-(i + 1)] - m0) / rk for i, rk in zip(range(1, k_order), rks)]
        rks = np.array(rks + [1.0])
        K = len(rks)
        hh = -h
        hphi1 = math.expm1(hh)
        base = ns.sigma(t) / ns.sigma(tps[-1]) * x - ns.alpha(t) * hphi1 * m0
        a_t = ns.alpha(t)
        model_t = None
        if variant == "vary_coeff":
            C = np.array([[r ** j / math.factorial(j + 1) for j in range(K)] for r in rks])
            hphis, hp, fact = [], hphi1, 1
            for k in range(1, K + 2):
                hphis.append(hp)
                hp = hp / hh - 1 / fact
                fact *= k + 1
            xt = base.clone()
            if D1s:
                Ap = np.linalg.inv(C[:-1, :-1])
                for k in range(K - 1):
                    xt = xt - a_t * hphis[k + 1] * sum(float(Ap[k][j]) * D1s[j] for j in range(K - 1))
            if use_corrector:
                Ac = np.linalg.inv(C)
                model_t = model_x0(xt, t)
                xt = base.clone()
                for k in range(K - 1):
                    xt = xt - a_t * hphis[k + 1] * sum(float(Ac[k][j]) * D1s[j] for j in range(K - 1))
                k_last = max(K - 2, 0)  # the webui's loop variable after its loop
                xt = xt - a_t * hphis[K] * (model_t - m0) * float(Ac[k_last][-1])
            return xt, model_t
        B = hh if variant == "bh1" else math.expm1(hh)
        R = np.array([[r ** (i - 1) for r in rks] for i in range(1, k_order + 1)])
        b, hp, fact = [], hphi1 / hh - 1, 1
        for i in range(1, k_order + 1):
            b.append(hp * fact / B)
            fact *= i + 1
            hp = hp / hh - 1 / fact
        b = np.array(b)
        xt = base.clone()
        if D1s:
            rp = [0.5] if k_order == 2 else np.linalg.solve(R[:-1, :-1], b[:-1])
            xt = base - a_t * B * sum(float(r) * d for r, d in zip(rp, D1s))
        if use_corrector:
            rc = [0.5] if k_order == 1 else np.linalg.solve(R, b)
            model_t = model_x0(xt, t)
            corr = sum(float(r) * d for r, d in zip(rc[:-1], D1s)) if D1s else 0
            xt = base - a_t * B * (corr + float(rc[-1]) * (model_t - m0))
        return xt, model_t

    ms, tps = [model_x0(x, ts[0])], [ts[0]]
    for step in range(1, steps + 1):
        cb(x, ms[-1])
        if step < order:
            x, mx = update(x, ms, tps, ts[step], step, True)
            ms.append(mx)
            tps.append(ts[step])
            continue
        k_order = min(order, steps + 1 - step) if lower_order_final else order
        x, mx = update(x, ms, tps, ts[step], k_order, step != steps)
        ms, tps = ms[1:] + [mx], tps[1:] + [ts[step]]
    return x


class DPMSolver:
    """k-diffusion's DPMSolver (sampling.py), float64, with the eps cache made explicit."""

    def __init__(self, D):
        self.D = D

    @staticmethod
    def sigma(t):
        return math.exp(-t)

    def eps(self, x, t):
        return (x - self.D(x, self.sigma(t))) / self.sigma(t)

    def step1(self, x, t, tn, e):
        return x - self.sigma(tn) * math.expm1(tn - t) * e

    def step2(self, x, t, tn, e, r1=0.5, cache=None):
        h = tn - t
        s1 = t + r1 * h
        if cache is None or "r1" not in cache:
            u1 = x - self.sigma(s1) * math.expm1(r1 * h) * e
            e_r1 = self.eps(u1, s1)
            if cache is not None:
                cache["r1"] = e_r1
        else:
            e_r1 = cache["r1"]
        return x - self.sigma(tn) * math.expm1(h) * e - self.sigma(tn) / (2 * r1) * math.expm1(h) * (e_r1 - e)

    def step3(self, x, t, tn, e, cache=None):
        r1, r2 = 1 / 3, 2 / 3
        h = tn - t
        s1, s2 = t + r1 * h, t + r2 * h
        if cache is None or "r1" not in cache:
            e_r1 = self.eps(x - self.sigma(s1) * math.expm1(r1 * h) * e, s1)
        else:
            e_r1 = cache["r1"]
        u2 = x - self.sigma(s2) * math.expm1(r2 * h) * e - self.sigma(s2) * (r2 / r1) * (math.expm1(r2 * h) / (r2 * h) - 1) * (e_r1 - e)
        e_r2 = self.eps(u2, s2)
        return x - self.sigma(tn) * math.expm1(h) * e - self.sigma(tn) / r2 * (math.expm1(h) / h - 1) * (e_r2 - e)


def dpm_anc(t, tn, t_end, eta):
    if not eta:
        return tn, 0.0
    sd_, su = ancestral(math.exp(-t), math.exp(-tn), eta)
    tn_ = min(t_end, -math.log(sd_))
    return tn_, (math.exp(-tn) ** 2 - math.exp(-tn_) ** 2) ** 0.5


def run_dpm_fast(D, x, sigmas, noise, o, cb, smin=None, smax=None):
    dpm, nfe = DPMSolver(D), len(sigmas) - 1
    t_start, t_end = -math.log(smax), -math.log(smin)
    m = nfe // 3 + 1
    ts = torch.linspace(t_start, t_end, m + 1, dtype=torch.float64).tolist()
    orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
    for i in range(len(orders)):
        t, tn = ts[i], ts[i + 1]
        tn_, su = dpm_anc(t, tn, t_end, o["eta"])
        e = dpm.eps(x, t)
        cb(x, x - dpm.sigma(t) * e)
        x = [dpm.step1, dpm.step2, dpm.step3][orders[i] - 1](x, t, tn_, e)
        x = x + su * o["s_noise"] * noise()
    return x


def run_dpm_adaptive(D, x, sigmas, noise, o, cb, smin=None, smax=None):
    dpm = DPMSolver(D)
    t_start, t_end = -math.log(smax), -math.log(smin)
    rtol, atol, h, safety = 0.05, 0.0078, 0.05, 0.81
    b1 = 1 / (1.5 if o["eta"] else 3)
    errs, s, x_prev = [], t_start, x
    while s < t_end - 1e-5:
        t = min(t_end, s + h)
        t_, su = dpm_anc(s, t, t_end, o["eta"])
        e = dpm.eps(x, s)
        cache = {}
        x_low = dpm.step2(x, s, t_, e, r1=1 / 3, cache=cache)
        x_high = dpm.step3(x, s, t_, e, cache=cache)
        delta = torch.maximum(torch.tensor(atol, dtype=torch.float64), rtol * torch.maximum(x_low.abs(), x_prev.abs()))
        error = (torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5).item()
        inv = 1 / (error + 1e-8)
        if not errs:
            errs = [inv, inv, inv]
        errs[0] = inv
        factor = 1 + math.atan(errs[0] ** b1 - 1)  # pcoeff = dcoeff = 0: b2 = b3 = 0
        accept = factor >= safety
        if accept:
            errs[2], errs[1] = errs[1], errs[0]
        h *= factor
        if accept:
            x_prev = x_low
            x = x_high + su * o["s_noise"] * noise()
            s = t
    return x


SDE_RUNNERS = {"dpmpp_sde": run_dpmpp_sde, "dpmpp_2m_sde": run_dpmpp_2m_sde,
               "dpmpp_2m_sde_heun": lambda *a: run_dpmpp_2m_sde(*a, solver="heun"), "dpmpp_3m_sde": run_dpmpp_3m_sde}


RUNNERS = {"euler": run_euler, "euler_a": run_euler_a, "heun": run_heun, "dpm2": run_dpm2, "dpm2_a": run_dpm2_a,
           "dpmpp_2m": run_dpmpp_2m, "dpmpp_2s_a": run_dpmpp_2s_a, "lms": run_lms, "lcm": run_lcm,
           "restart": run_restart}
SAMPLERS = ["euler", "euler_a", "heun", "dpm2", "dpm2_a", "dpmpp_2m", "dpmpp_2s_a", "lms", "ddim", "lcm",
            "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde", "restart", "plms", "dpm_fast",
            "dpm_adaptive", "ddim_cfgpp", "unipc"]
TIMESTEP_SAMPLERS = ("ddim", "plms", "ddim_cfgpp", "unipc")
SCHEDULES = ["discrete", "karras", "exponential"]
NEW_SCHEDULES = ["polyexponential", "sgm_uniform", "kl_optimal", "align_your_steps", "simple", "normal", "ddim", "beta"]
STEPS = [1, 4, 10]
OVERRIDES = [(0.1, 10.0, 0.0), (0.0, 8.0, 5.0), (0.05, 0.0, 3.0)]  # (sigma_min, sigma_max, rho), 0 = default
TRAJ = {("euler_a", "karras", 10), ("lms", "discrete", 10), ("dpmpp_2m", "karras", 10), ("heun", "exponential", 4),
        ("ddim", "discrete", 10), ("dpmpp_sde", "karras", 10), ("dpmpp_3m_sde", "exponential", 10),
        ("plms", "discrete", 10), ("restart", "karras", 20), ("unipc", "discrete", 10), ("ddim_cfgpp", "discrete", 10)}
VARIANTS = [  # (sampler, schedule, steps, name, options)
    ("euler", "discrete", 10, "churn", {"s_churn": 1.0}),
    ("heun", "karras", 4, "churn", {"s_churn": 2.0}),
    ("dpm2", "exponential", 4, "churn", {"s_churn": 1.0}),
    ("euler_a", "discrete", 10, "eta05", {"eta": 0.5}),
    ("dpmpp_2s_a", "karras", 4, "eta0", {"eta": 0.0}),
    ("dpm2_a", "discrete", 4, "snoise08", {"s_noise": 0.8}),
    ("ddim", "discrete", 10, "eta1", {"eta_ddim": 1.0}),
    ("dpmpp_sde", "karras", 10, "eta05", {"eta": 0.5}),
    ("dpmpp_sde", "karras", 4, "eta0", {"eta": 0.0}),
    ("dpmpp_2m_sde", "exponential", 10, "eta05", {"eta": 0.5}),
    ("dpmpp_2m_sde_heun", "exponential", 10, "snoise08", {"s_noise": 0.8}),
    ("dpmpp_3m_sde", "exponential", 10, "eta0", {"eta": 0.0}),
    ("dpmpp_3m_sde", "karras", 10, "eta05", {"eta": 0.5}),
    ("dpm_fast", "discrete", 10, "eta0", {"eta": 0.0}),
    ("dpm_adaptive", "discrete", 10, "eta0", {"eta": 0.0}),
    ("ddim_cfgpp", "discrete", 10, "eta1", {"eta_ddim": 1.0}),
    ("unipc", "discrete", 10, "bh2", {"unipc": {"variant": "bh2"}}),
    ("unipc", "discrete", 10, "vary_coeff", {"unipc": {"variant": "vary_coeff"}}),
    ("unipc", "discrete", 4, "vary_coeff", {"unipc": {"variant": "vary_coeff"}}),
    ("unipc", "discrete", 10, "logSNR", {"unipc": {"skip": "logSNR"}}),
    ("unipc", "discrete", 7, "time_quadratic", {"unipc": {"skip": "time_quadratic"}}),
    ("unipc", "discrete", 4, "order1", {"unipc": {"order": 1}}),
    ("unipc", "discrete", 10, "order2", {"unipc": {"order": 2}}),
    ("unipc", "discrete", 10, "order5", {"unipc": {"order": 5, "variant": "bh2"}}),
    ("unipc", "discrete", 10, "order4_vary", {"unipc": {"order": 4, "variant": "vary_coeff"}}),
    ("unipc", "discrete", 10, "full_order_final", {"unipc": {"lower_order_final": False}}),
]
CFG_SCALE = 7.5  # DDIM CFG++'s guidance scale in the goldens
DEFAULTS = {"eta": 1.0, "eta_ddim": 0.0, "s_noise": 1.0, "s_churn": 0.0}


def run_case(sampler, schedule, steps, opts, sd, lcm, den, init, pool):
    o = dict(DEFAULTS, **opts)
    sigmas32 = sampler_sigmas(sampler, schedule, steps, sd, lcm)
    sigmas = [float(v) for v in sigmas32]
    mu, s2 = den[0], den[1]
    D = lambda x, sigma: (s2 * x + sigma ** 2 * mu) / (s2 + sigma ** 2)  # noqa: E731
    noise = Noise(pool)
    traj_x, traj_d = [], []
    cb = lambda x, d: (traj_x.append(x.flatten().clone()), traj_d.append(d.flatten().clone()))  # noqa: E731
    if sampler == "unipc":  # steps: as many as the webui's DDIM timesteps
        x = run_unipc(D, init.view(SHAPE).double(), len(ddim_timesteps(steps)), sd.acp, cb, **o.get("unipc", {}))
    elif sampler == "ddim_cfgpp":  # a second Gaussian for the unconditional prediction, guided at CFG_SCALE
        mu_u = den[2]
        Du = lambda x, sigma: (s2 * x + sigma ** 2 * mu_u) / (s2 + sigma ** 2)  # noqa: E731
        x = run_ddim_cfgpp(D, Du, CFG_SCALE, init.view(SHAPE).double(), ddim_timesteps(steps), sd.acp, noise, o, cb)
    elif sampler in ("ddim", "plms"):
        x = init.view(SHAPE).double()
        x = (run_ddim if sampler == "ddim" else run_plms)(D, x, ddim_timesteps(steps), sd.acp, noise, o, cb)
    else:
        x = (init * sigmas32[0]).view(SHAPE).double()  # float32 product, as the webui's x * sigmas[0]
        if sampler in SDE_RUNNERS:
            x, asked = SDE_RUNNERS[sampler](D, x, sigmas, noise, o, cb)
            return sigmas32, x.flatten(), noise.calls, traj_x, traj_d, asked
        if sampler in ("dpm_fast", "dpm_adaptive"):  # the table's sigma range; fast: n = steps
            fn = run_dpm_fast if sampler == "dpm_fast" else run_dpm_adaptive
            x = fn(D, x, sigmas, noise, o, cb, smin=sd.sigmas[0].item(), smax=sd.sigmas[-1].item())
        else:
            x = RUNNERS[sampler](D, x, sigmas, noise, o, cb)
    return sigmas32, x.flatten(), noise.calls, traj_x, traj_d, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    sd = sd_table()
    lcm = lcm_table(sd)
    g = torch.Generator().manual_seed(20240607)
    n = int(np.prod(SHAPE))
    mu = torch.randn(n, generator=g) * 0.5
    s = 0.3 + 1.2 * torch.rand(n, generator=g)
    init = torch.randn(n, generator=g)
    pool = torch.randn(POOL, n, generator=g)
    mu_uncond = torch.randn(n, generator=g) * 0.5
    den = (mu.double().view(SHAPE), (s.double() ** 2).view(SHAPE), mu_uncond.double().view(SHAPE))

    T = [("den/mu", mu), ("den/s", s), ("den/mu_uncond", mu_uncond), ("noise/init", init), ("noise/pool", pool),
         ("table/alphas_cumprod", sd.acp), ("table/sigmas", sd.sigmas), ("table/log_sigmas", sd.log_sigmas)]
    for tname, table in (("sd", sd), ("lcm", lcm)):
        for schedule in SCHEDULES + NEW_SCHEDULES:
            for steps in (1, 2, 4, 10, 20, 25) + ((3, 7, 11, 50) if schedule in NEW_SCHEDULES else ()):
                T.append(("sched/%s/%s/n%d" % (tname, schedule, steps), make_sigmas(schedule, steps, table)))
    for a, b in ((0.5, 0.7), (0.9, 0.3)):  # the Beta schedule's --beta-alpha / --beta-beta
        T.append(("sched/sd/beta_a%g_b%g/n10" % (a, b), make_sigmas("beta", 10, sd, (a, b))))
    # The webui's "sigma min" / "sigma max" / "rho" settings on every schedule (those that ignore them too), and
    # the SDXL Align Your Steps list
    for schedule in SCHEDULES + NEW_SCHEDULES:
        for smin, smax, rho in OVERRIDES:
            T.append(("sched/sd/%s/min%g_max%g_rho%g/n10" % (schedule, smin, smax, rho),
                      make_sigmas(schedule, 10, sd, smin=smin, smax=smax, rho=rho)))
    for steps in (4, 10, 11, 25):
        T.append(("sched/sd/align_your_steps/sdxl/n%d" % steps, make_sigmas("align_your_steps", steps, sd, sdxl=True)))

    # sigma_to_t / t_to_sigma on the SD table: random, table values, out of range
    sig_in = torch.cat([torch.exp(torch.empty(40).uniform_(math.log(0.02), math.log(20.0), generator=g)),
                        sd.sigmas[[0, 1, 51, 500, 998, 999]], torch.tensor([0.01, 30.0])])
    T += [("map/sigma_in", sig_in), ("map/t_out", sd.sigma_to_t(sig_in))]
    t_in = torch.cat([torch.empty(40).uniform_(0, 999, generator=g), torch.tensor([0.0, 1.0, 51.0, 500.5, 999.0])])
    T += [("map/t_in", t_in), ("map/sigma_out", sd.t_to_sigma(t_in))]

    cases = []
    for sampler in SAMPLERS:
        for schedule in (["discrete"] if sampler in TIMESTEP_SAMPLERS else SCHEDULES):
            if sampler == "dpm_adaptive" and schedule != "discrete":
                continue  # it ignores the schedule but for the initial noise scale
            for steps in ([4, 7, 10] if sampler == "unipc" else  # order 3 needs 3 steps; 7 gives 8 timesteps
                          STEPS + ([20, 36] if sampler == "restart" else [2, 3, 6] if sampler == "dpm_fast" else [])):
                cases.append((sampler, schedule, steps, None, {}))
    for sampler in ("euler", "dpmpp_2m", "dpm2"):  # the new schedules drive the samplers like the old ones
        for schedule in NEW_SCHEDULES:
            for steps in (4, 10):
                cases.append((sampler, schedule, steps, None, {}))
    cases += [(a, b, c, d, e) for a, b, c, d, e in VARIANTS]
    for sampler, schedule, steps, variant, opts in cases:
        sig, x, draws, tx, td, asked = run_case(sampler, schedule, steps, opts, sd, lcm, den, init, pool)
        assert draws <= POOL
        name = "run/%s/%s/n%d%s" % (sampler, schedule, steps, "/" + variant if variant else "")
        T += [(name + "/sigmas", sig), (name + "/x", x), (name + "/draws", torch.tensor([float(draws)]))]
        if asked:
            T.append((name + "/queries", torch.tensor(asked, dtype=torch.float32)))
        if (sampler, schedule, steps) in TRAJ and not variant:
            T += [(name + "/traj_x", torch.stack(tx)), (name + "/traj_denoised", torch.stack(td))]
        assert torch.isfinite(x).all(), name

    # Self-check of the reference itself: for Gaussian data the probability-flow ODE dx/dsigma = (x - D) / sigma
    # has the exact solution x(sigma) = mu + (x_T - mu) sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_T^2); the
    # deterministic samplers must converge to x(0) as the steps grow, the high-order ones fastest.
    def ode_error(sampler, steps):
        stochastic = "sde" in sampler or sampler.startswith("dpm_")
        opts = dict(eta=0.0) if stochastic else {}
        if sampler == "unipc":  # its high order shows with logSNR steps and the full order to the end (the
            # default time_uniform spends its last, order-1 step on most of the log-SNR range: ratio ~2.3)
            opts = {"unipc": {"skip": "logSNR", "lower_order_final": False}}
        sig, x, _, _, _, _ = run_case(sampler, "karras", steps, opts, sd, lcm, den, init, pool)
        mu64, s64 = mu.double(), s.double()
        if sampler == "unipc":  # VP latents from t = 1 (table entry 999) to t = 1/N (entry 0)
            sig_T, a_end = sd.sigmas[-1].item(), sd.acp[0].item()
            x_T = init.double() * (1 + sig_T ** 2) ** 0.5
            sig_end = ((1 - a_end) / a_end) ** 0.5
            exact = (mu64 + (x_T - mu64) * ((s64 ** 2 + sig_end ** 2) / (s64 ** 2 + sig_T ** 2)).sqrt()) * a_end ** 0.5
        elif sampler in ("ddim", "plms"):  # VP latents: x_T = noise / sqrt(abar_T); the result is at t = 1, times sqrt(abar_1)
            sig_T, a_end = sig[0].item(), sd.acp[1].item()
            x_T = init.double() * (1 + sig_T ** 2) ** 0.5
            sig_end = ((1 - a_end) / a_end) ** 0.5
            exact = (mu64 + (x_T - mu64) * ((s64 ** 2 + sig_end ** 2) / (s64 ** 2 + sig_T ** 2)).sqrt()) * a_end ** 0.5
        else:
            sig_T = sig[0].item()
            sig_end = sd.sigmas[0].item() if sampler.startswith("dpm_") else 0.0  # DPM fast stops at sigma_min
            exact = mu64 + ((init * sig[0]).double() - mu64) * ((s64 ** 2 + sig_end ** 2) / (s64 ** 2 + sig_T ** 2)).sqrt()
        return (x - exact).abs().max().item()

    for sampler, steps, min_ratio in (("dpm_fast", 10, 3.0), ("euler", 100, 1.8), ("ddim", 100, 1.8), ("heun", 20, 3.0), ("dpm2", 20, 3.0),
                                      ("dpmpp_2m", 20, 3.0), ("lms", 20, 3.0), ("dpmpp_sde", 20, 3.0),
                                      ("dpmpp_2m_sde", 20, 3.0), ("dpmpp_2m_sde_heun", 20, 3.0),
                                      ("dpmpp_3m_sde", 10, 3.0), ("plms", 20, 2.2), ("unipc", 10, 3.0)):
        e1, e2 = ode_error(sampler, steps), ode_error(sampler, 2 * steps)
        print("%-9s error vs the exact ODE solution: %.2e at %d steps, %.2e at %d (ratio %.1f)" %
              (sampler, e1, steps, e2, 2 * steps, e1 / e2))
        assert e1 / e2 > min_ratio and e2 < 0.05, sampler
    # Below 20 steps Restart is Heun's method on the schedule as given.
    xr, xh = (run_case(k, "karras", 10, {}, sd, lcm, den, init, pool)[1] for k in ("restart", "heun"))
    assert torch.equal(xr, xh)
    print("tensors:", len(T))
    if args.check:
        return
    write_safetensors(OUT, [(k, v.detach().cpu().numpy().astype(np.float32)) for k, v in T], {
        "tool": "tools/sampler_reference.py", "torch": torch.__version__, "numpy": np.__version__,
        "latent_shape": "2,3,4", "denoiser": "D(x,sigma) = (s^2 x + sigma^2 mu) / (s^2 + sigma^2)",
        "precision": "schedules float32 as the webui; samplers float64",
    })
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
