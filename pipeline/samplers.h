// samplers.h — the webui's samplers, with k-diffusion's semantics, over a denoiser callback.
//
// A sampler walks a latent down a decreasing sequence of noise levels (sigmas). It sees the model only
// through a Denoiser: D(x; sigma), the model's estimate of the clean latent given x = x0 + sigma * noise.
// The pipeline's closure does the rest (c_in = 1 / sqrt(sigma^2 + 1), t = sigma_to_t(sigma), the UNet's
// eps, D = x - sigma * eps, classifier-free guidance). Latents are float32; each step's update is computed
// in double and stored as float32.
// Noise: every sampler draws its noise from the Rng exactly when k-diffusion calls randn_like (which the
// webui routes to its per-image generators), so a seed gives the webui's image. Euler, Heun and DPM2 draw
// every step even though the noise is unused at the webui's default s_churn = 0.
// Left out: DPM++ SDE / 2M SDE / 3M SDE (Brownian-tree noise), DPM fast / adaptive, PLMS, UniPC, Restart,
// img2img's partial schedules.
#pragma once
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/rng.h"
#include "pipeline/schedule.h"

namespace sd {

enum class SamplerKind { euler, euler_a, heun, dpm2, dpm2_a, dpmpp_2m, dpmpp_2s_a, lms, ddim, lcm };

// Accepts short names ("dpmpp_2m"), the webui's display names ("DPM++ 2M") and its aliases ("k_dpmpp_2m"),
// case-insensitively, optionally with a schedule suffix: "DPM++ 2M Karras", "dpmpp_2m_karras", "k_dpm_2_ka",
// "Euler Exponential", "... Uniform"; the suffix's schedule goes to *schedule_from_suffix (nullopt if none).
// Throws std::runtime_error listing the valid names.
SamplerKind parse_sampler(const std::string& name, std::optional<ScheduleKind>* schedule_from_suffix = nullptr);
const char* sampler_name(SamplerKind kind);          // "euler_a"
const char* sampler_display_name(SamplerKind kind);  // the webui's 'Sampler' in PNG metadata: "Euler a"
// What the webui (>= 1.9) means by Schedule type "Automatic": Karras for DPM++ 2M, DPM++ 2S a, DPM2 and
// DPM2 a, the discrete ("Uniform") schedule otherwise.
ScheduleKind webui_automatic_schedule(SamplerKind kind);
// Adds fresh noise every step (eta and the eta noise seed delta matter).
bool sampler_is_ancestral(SamplerKind kind);

// x: the noisy latent(s), sigma: its noise level; writes D(x; sigma) to `denoised` (resized by the caller
// or the callee to x.size()).
using Denoiser = std::function<void(const std::vector<float>& x, float sigma, std::vector<float>& denoised)>;
// Called once per step after the step's first model evaluation, with x as it entered the step.
using SamplerCallback = std::function<void(int step, int steps, float sigma, const std::vector<float>& x,
                                           const std::vector<float>& denoised)>;

struct SamplerOptions {
    double eta = 1.0;       // ancestral samplers (webui setting "Eta for ancestral samplers")
    double eta_ddim = 0.0;  // DDIM (webui "Eta for DDIM")
    double s_noise = 1.0;   // scale of the added noise (webui "sigma noise")
    double s_churn = 0.0, s_tmin = 0.0, s_tmax = INFINITY;  // Karras churn for Euler, Heun, DPM2 (webui: off)
};

// The noise levels the webui samples `steps` steps with, in the order visited:
// - k-diffusion samplers: make_sigmas(schedule) + the final 0; DPM2 and DPM2 a ask for steps + 1 levels and
//   drop the next-to-last (the webui's discard_next_to_last_sigma); LCM uses its 50-entry table.
// - DDIM: the table's sigmas at timesteps 1 + k * (1000 / steps), k = steps-1 .. 0, without a final 0; the
//   webui's DDIM ignores the schedule choice.
std::vector<float> sampler_sigmas(SamplerKind kind, ScheduleKind schedule, int steps, const DiscreteSchedule& sd);
// The table whose sigma_to_t gives the UNet's timestep: LCM's (quantized) for lcm, `sd` otherwise.
DiscreteSchedule sampler_table(SamplerKind kind, const DiscreteSchedule& sd);
// The initial latent is noise * initial_noise_scale: sigmas[0] for k-diffusion samplers, 1 for DDIM
// (it works on variance-preserving latents, x = sqrt(abar) x0 + sqrt(1 - abar) noise).
float initial_noise_scale(SamplerKind kind, const std::vector<float>& sigmas);

// Runs `kind` from x (the initial latent) along sigmas; x becomes the final latent, ready for the VAE.
void sample(SamplerKind kind, const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas,
            Rng& rng, const SamplerCallback& callback = {}, const SamplerOptions& opt = {});

// The samplers one by one (same arguments). Each cites the function it ports.
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

// LMS's weight for the j-th newest derivative at step i: the integral over [sigmas[i], sigmas[i+1]] of the
// Lagrange basis polynomial through sigmas[i], ..., sigmas[i-order+1] (k-diffusion linear_multistep_coeff).
double linear_multistep_coeff(int order, const std::vector<float>& sigmas, int i, int j);

}  // namespace sd
