// samplers.h — the samplers: numerical solvers that walk a noisy latent down to a clean one.
//
// The model is seen only through a Denoiser: D(x; sigma), its estimate of the clean latent x0 given
// x = x0 + sigma * noise (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
// Models", §2). With sigma as the time variable, the probability-flow ODE of that paper (eq. 1 with the score
// of eq. 3, ∇x log p(x; sigma) = (D(x; sigma) - x) / sigma^2, and sigma(t) = t) is
//
//     dx/dsigma = (x - D(x; sigma)) / sigma =: to_d(x, D, sigma),
//
// and a sampler integrates it from sigmas[0] down to sigmas.back() (usually 0), deterministically (ODE
// solvers: Euler, Heun, LMS, DPM++ 2M) or adding fresh noise each step (ancestral / SDE solvers).
// The pipeline's closure does the rest (c_in = 1 / sqrt(sigma^2 + 1), the UNet's eps, D = x - sigma * eps,
// classifier-free guidance). Latents are float32; each step's update is computed in double, stored as float32.
//
// Noise: every sampler draws from the Rng exactly when k-diffusion calls randn_like (which the webui routes to
// its per-image generators), so a seed gives the webui's image. Euler, Heun and DPM2 draw every step even
// though the noise is unused at the webui's default s_churn = 0.
// Names, labels, the webui's per-sampler sigma rules: sampler_names.h.
// img2img's partial schedules and how each sampler starts there: pipeline/img2img.h.
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipeline/rng.h"
#include "pipeline/sampler_names.h"
#include "pipeline/schedule.h"

namespace sd {

// What a sampler may ask of the denoiser beyond D(x; sigma): the webui's timestep samplers talk to the UNet in
// its own time and read the unconditional prediction (CFGDenoiserTimesteps, CFGDenoiser.last_noise_uncond).
struct DenoiseExtras {
    double timestep = -1;        // >= 0: the UNet's timestep as given (UniPC's continuous time), not sigma_to_t(sigma)
    double cfg_multiplier = 1;   // the CFG scale is multiplied by this (the webui's cond_scale_miltiplier; CFG++ 1/12.5)
    std::vector<float>* uncond = nullptr;  // set: receives D from the unconditional prediction alone (CFG++)
};

// x: the noisy latent(s), sigma: its noise level; writes D(x; sigma) to `denoised` (resized by the caller
// or the callee to x.size()). Built from a callable taking (x, sigma, denoised, extras), or from a plain one
// taking (x, sigma, denoised): a denoiser without guidance, whose unconditional estimate is D itself and which
// ignores the timestep (a function of sigma alone, as the analytic denoisers of the tests).
class Denoiser {
public:
    using Fn = std::function<void(const std::vector<float>& x, float sigma, std::vector<float>& denoised,
                                  const DenoiseExtras& extras)>;
    Denoiser() = default;
    template <class F, std::enable_if_t<std::is_invocable_v<F&, const std::vector<float>&, float, std::vector<float>&,
                                                            const DenoiseExtras&>, int> = 0>
    Denoiser(F f) : fn_(std::move(f)) {}
    template <class F, std::enable_if_t<std::is_invocable_v<F&, const std::vector<float>&, float, std::vector<float>&> &&
                                            !std::is_invocable_v<F&, const std::vector<float>&, float,
                                                                 std::vector<float>&, const DenoiseExtras&>, int> = 0>
    Denoiser(F f)
        : fn_([f = std::move(f)](const std::vector<float>& x, float sigma, std::vector<float>& out,
                                 const DenoiseExtras& e) mutable {
              f(x, sigma, out);
              if (e.uncond) *e.uncond = out;
          }) {}
    void operator()(const std::vector<float>& x, float sigma, std::vector<float>& denoised,
                    const DenoiseExtras& extras = {}) const {
        fn_(x, sigma, denoised, extras);
    }
    explicit operator bool() const { return (bool)fn_; }

private:
    Fn fn_;
};
// Called once per step after the step's first model evaluation, with x as it entered the step.
using SamplerCallback = std::function<void(int step, int steps, float sigma, const std::vector<float>& x,
                                           const std::vector<float>& denoised)>;

// The noise an SDE step adds between two noise levels (k-diffusion's noise_sampler(sigma, sigma_next)): a
// standard normal latent of x's size, correlated across calls as Brownian increments are. The webui's is a
// Brownian tree seeded per image (brownian.h, brownian_noise_sampler below).
using NoiseSampler = std::function<void(float sigma, float sigma_next, std::vector<float>& noise)>;

// The webui's UniPC settings (modules/shared_options.py uni_pc_*; defaults bh1, time_uniform, 3, true).
enum class UniPCVariant { bh1, bh2, vary_coeff };      // B(h) = h, B(h) = e^h - 1, or the varying-coefficient form
enum class UniPCSkip { time_uniform, time_quadratic, logSNR };  // how the time steps are spaced
UniPCVariant parse_unipc_variant(const std::string& s);  // "bh1", ...; throws std::runtime_error listing the valid ones
UniPCSkip parse_unipc_skip(const std::string& s);        // "time_uniform", ...
struct UniPCOptions {
    UniPCVariant variant = UniPCVariant::bh1;
    UniPCSkip skip_type = UniPCSkip::time_uniform;
    int order = 3;                   // 1 .. steps
    bool lower_order_final = true;   // lower the order over the last steps
};

struct SamplerOptions {
    double eta = 1.0;       // ancestral samplers (webui setting "Eta for ancestral samplers")
    double eta_ddim = 0.0;  // DDIM (webui "Eta for DDIM")
    double s_noise = 1.0;   // scale of the added noise (webui "sigma noise")
    double s_churn = 0.0, s_tmin = 0.0, s_tmax = INFINITY;  // Karras churn for Euler, Heun, DPM2 (webui: off)
    NoiseSampler noise_sampler;  // the SDE samplers' noise (required by them)
    UniPCOptions unipc;
};

// The webui's noise sampler for the SDE samplers (Sampler.create_noise_sampler): a Brownian tree per image over
// [smallest positive sigma, largest sigma], seeded with the image's seed, drawing from `rng`'s generator;
// `per_image` elements per image, images one after the other in the latent.
NoiseSampler brownian_noise_sampler(const std::vector<float>& sigmas, const std::vector<uint64_t>& seeds, RngKind rng,
                                    int64_t per_image);

// The ODE's slope dx/dsigma at one element (k-diffusion to_d). The difference is taken in float32, as
// k-diffusion takes it on float32 tensors.
inline double to_d(float x, float denoised, double sigma) { return (x - denoised) / sigma; }
// One Euler step of the ODE from sigma to sigma + dt (dt < 0 going down), at one element.
inline double euler(float x, float denoised, double sigma, double dt) { return x + to_d(x, denoised, sigma) * dt; }

// Runs `kind` from x (the initial latent) along sigmas; x becomes the final latent, ready for the VAE.
void sample(SamplerKind kind, const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas,
            Rng& rng, const SamplerCallback& callback = {}, const SamplerOptions& opt = {});

// The samplers one by one (same arguments). Each cites the function it ports and the paper it implements.
void sample_euler(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                  const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_euler_ancestral(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                            const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_heun(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                 const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_dpm_2(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                  const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_dpm_2_ancestral(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                            const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_lms(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_dpmpp_2m(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                     const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_dpmpp_2s_ancestral(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas,
                               Rng& rng, const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_ddim(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                 const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_lcm(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                const SamplerCallback& callback = {}, const SamplerOptions& opt = {});

// webui sd_samplers_timesteps_impl.ddim_cfgpp (Chung et al. 2024, "CFG++: Manifold-constrained Classifier Free
// Guidance for Diffusion Models"): DDIM whose step back to the next noise level follows the unconditional eps; the
// CFG scale is divided by 12.5. Needs the denoiser's unconditional estimate (DenoiseExtras::uncond).
void sample_ddim_cfgpp(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                       const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
// webui sd_samplers_timesteps_impl.unipc (samplers_unipc.cpp): UniPC multistep with data prediction over `steps`
// steps of its own time grid on SD's table `alphas_cumprod`; x is variance-preserving noise, as for DDIM. The webui
// passes the number of DDIM timesteps as `steps` (sampler_sigmas' length for unipc). One model call per step.
// t_start: the continuous time the grid starts from (1: the top; img2img starts lower, pipeline/img2img.h).
void sample_unipc(const Denoiser& model, std::vector<float>& x, int steps, const std::vector<float>& alphas_cumprod,
                  const SamplerCallback& callback = {}, const UniPCOptions& opt = {}, double t_start = 1.0);

// webui sd_samplers_extra.restart_sampler (Xu et al. 2023, "Restart Sampling for Improving Generative
// Processes"): Heun steps; from 20 steps on, the schedule is rebuilt as Karras and one (36+: two) stretch below
// sigma 0.1 is re-noised up to sigma 2 and sampled again. Re-noising draws from rng.
void sample_restart(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                    const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
// webui sd_samplers_timesteps_impl.plms (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on
// Manifolds", PLMS): DDIM steps driven by an Adams-Bashforth combination of the last four eps; on DDIM's
// timesteps and variance-preserving latents, like sample_ddim.
void sample_plms(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                 const SamplerCallback& callback = {}, const SamplerOptions& opt = {});

// k-diffusion sample_dpm_fast / sample_dpm_adaptive (samplers_dpm_solver.cpp): DPM-Solver between the table's
// sigma_max and sigma_min; fast spends exactly `nfe` model evaluations, adaptive as many as its error control
// needs (its callback's `steps` is 0: unknown). The webui passes the model's sigma range, not the schedule.
void sample_dpm_fast(const Denoiser& model, std::vector<float>& x, double sigma_min, double sigma_max, int nfe, Rng& rng,
                     const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
void sample_dpm_adaptive(const Denoiser& model, std::vector<float>& x, double sigma_min, double sigma_max, Rng& rng,
                         const SamplerCallback& callback = {}, const SamplerOptions& opt = {});

// The SDE samplers (samplers_sde.cpp); their noise comes from opt.noise_sampler, not from rng.
void sample_dpmpp_sde(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                      const SamplerCallback& callback = {}, const SamplerOptions& opt = {});
// solver_heun: the "DPM++ 2M SDE Heun" variant (k-diffusion solver_type 'heun'), else 'midpoint'.
void sample_dpmpp_2m_sde(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                         const SamplerCallback& callback = {}, const SamplerOptions& opt = {}, bool solver_heun = false);
void sample_dpmpp_3m_sde(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                         const SamplerCallback& callback = {}, const SamplerOptions& opt = {});

// LMS's weight for the j-th newest derivative at step i: the integral over [sigmas[i], sigmas[i+1]] of the
// Lagrange basis polynomial through sigmas[i], ..., sigmas[i-order+1] (k-diffusion linear_multistep_coeff).
double linear_multistep_coeff(int order, const std::vector<float>& sigmas, int i, int j);

}  // namespace sd
