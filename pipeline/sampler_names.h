// sampler_names.h — the webui's sampler list: names, labels, aliases and per-sampler defaults, and the rules
// the webui applies around a sampler (which noise levels it gets, how the first latent is scaled).
//
// The math lives in samplers.h; this file is the bookkeeping that makes `--sampler "DPM++ 2M Karras"` mean
// what it means in the webui (modules/sd_samplers_kdiffusion.py samplers_k_diffusion, sd_samplers_timesteps.py,
// sd_samplers_lcm.py, sd_samplers.py get_sampler_and_scheduler).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "pipeline/schedule.h"

namespace sd {

enum class SamplerKind {
    euler, euler_a, heun, dpm2, dpm2_a, dpmpp_2m, dpmpp_2s_a, lms, ddim, lcm,
    dpmpp_sde, dpmpp_2m_sde, dpmpp_2m_sde_heun, dpmpp_3m_sde, restart, plms, dpm_fast, dpm_adaptive, ddim_cfgpp, unipc
};
const std::vector<SamplerKind>& all_samplers();

// Accepts short names ("dpmpp_2m"), the webui's display names ("DPM++ 2M") and its aliases ("k_dpmpp_2m"),
// case-insensitively, optionally with a schedule suffix: "DPM++ 2M Karras", "dpmpp_2m_karras", "k_dpm_2_ka",
// "Euler Exponential", "... Uniform"; the suffix's schedule goes to *schedule_from_suffix (nullopt if none).
// Throws std::runtime_error listing the valid names.
SamplerKind parse_sampler(const std::string& name, std::optional<ScheduleKind>* schedule_from_suffix = nullptr);
const char* sampler_name(SamplerKind kind);          // "euler_a"
const char* sampler_display_name(SamplerKind kind);  // the webui's 'Sampler' in PNG metadata: "Euler a"
// The webui's default schedule for a sampler (the 'scheduler' of its options in samplers_k_diffusion): what
// Schedule type "Automatic" runs. Karras for DPM++ 2M, DPM++ SDE, DPM++ 2S a, DPM2 and DPM2 a; Exponential for
// DPM++ 2M SDE (and its Heun variant) and DPM++ 3M SDE; nullopt otherwise (then
// k-diffusion's own get_sigmas runs: the levels of Uniform).
std::optional<ScheduleKind> webui_default_schedule(SamplerKind kind);
// The schedule "Automatic" runs: the default above, else discrete (Uniform).
ScheduleKind webui_automatic_schedule(SamplerKind kind);
// The 'Schedule type' the webui writes into the infotext for the schedule the user picked (nullopt:
// "Automatic", the webui's default choice). KDiffusionSampler.get_sigmas overwrites the field with the label of
// the schedule it ran whenever that is a named schedule, so Automatic is written as "Automatic" only for samplers
// without a default ("Euler a") and for the timestep sampler DDIM, which ignores schedules and writes the choice.
const char* webui_schedule_type(SamplerKind kind, std::optional<ScheduleKind> chosen);
// Adds fresh noise every step (eta and the eta noise seed delta matter).
bool sampler_is_ancestral(SamplerKind kind);
// A timestep sampler (the webui's CompVisSampler: DDIM, DDIM CFG++, PLMS, UniPC): it walks DDPM timesteps (UniPC
// its own time grid of as many steps), ignores the schedule and starts from unscaled noise.
bool sampler_is_timestep(SamplerKind kind);
// Draws its noise from a Brownian tree (the webui's 'brownian_noise' option): the DPM++ SDE family.
bool sampler_uses_brownian_noise(SamplerKind kind);

// The noise levels the webui samples `steps` steps with, in the order visited:
// - k-diffusion samplers: make_sigmas(schedule) + the final 0; DPM2 and DPM2 a ask for steps + 1 levels and
//   drop the next-to-last (the webui's discard_next_to_last_sigma); LCM uses its 50-entry table.
// - DDIM, DDIM CFG++, PLMS, UniPC: the table's sigmas at timesteps 1 + k * (1000 / steps) below 1000, from the
//   top, without a final 0 (more than `steps` when 1000 / steps rounds down: UniPC then runs that many steps); the
//   webui's timestep samplers ignore the schedule choice.
std::vector<float> sampler_sigmas(SamplerKind kind, ScheduleKind schedule, int steps, const DiscreteSchedule& sd,
                                  const ScheduleOptions& opt = {});
// The table whose sigma_to_t gives the UNet's timestep: LCM's (quantized) for lcm, `sd` otherwise.
DiscreteSchedule sampler_table(SamplerKind kind, const DiscreteSchedule& sd);
// The initial latent is noise * initial_noise_scale: sigmas[0] for k-diffusion samplers, 1 for DDIM
// (it works on variance-preserving latents, x = sqrt(abar) x0 + sqrt(1 - abar) noise).
float initial_noise_scale(SamplerKind kind, const std::vector<float>& sigmas);

}  // namespace sd
