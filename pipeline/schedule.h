// schedule.h — noise levels: SD's discrete DDPM schedule, the sigma <-> UNet timestep maps, and the
// sigma sequences the webui samples along (its modules/sd_schedulers.py: Uniform, Karras, Exponential,
// Polyexponential, SGM Uniform, KL Optimal, Align Your Steps, Simple, Normal, DDIM, Beta).
//
// SD 1.x/2.x train with 1000 DDPM steps, betas "scaled linear" from 0.00085 to 0.012; a latent at step t
// is x0 + sigma_t * noise in k-diffusion's form, sigma_t = sqrt((1 - abar_t) / abar_t). Tables are float32
// as the webui holds them (ldm registers alphas_cumprod as float32; k-diffusion's CompVisDenoiser derives
// sigmas and log-sigmas in float32); maps in between are computed in double.
// Left out: zero-terminal-SNR rescaling.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace sd {

// discrete is the webui's "Uniform" (k-diffusion's own get_sigmas).
enum class ScheduleKind {
    discrete, karras, exponential, polyexponential, sgm_uniform, kl_optimal, align_your_steps, simple, normal, ddim,
    beta
};
const std::vector<ScheduleKind>& all_schedules();

// A short name ("sgm_uniform"), the webui's name or label ("SGM Uniform", "uniform") or alias ("SGMUniform"),
// case-insensitively. "Automatic" is not a schedule but a per-sampler choice: see sampler_names.h.
// Throws std::runtime_error listing the valid names.
ScheduleKind parse_schedule(const std::string& name);
bool is_automatic_schedule(const std::string& name);  // "automatic", any case
const char* schedule_name(ScheduleKind kind);   // "discrete", "karras", ..., "align_your_steps"
const char* schedule_label(ScheduleKind kind);  // as the webui writes 'Schedule type': "Uniform", "Karras", ...

// The webui's settings the schedules read (modules/shared_options.py), and the one fact about the model they need.
struct ScheduleOptions {
    // The Beta schedule's distribution (beta_dist_alpha, beta_dist_beta; infotext "Beta schedule alpha/beta").
    double beta_alpha = 0.6, beta_beta = 0.6;
    // "sigma min", "sigma max", "rho" (infotext "Schedule min sigma", "Schedule max sigma", "Schedule rho"): 0 is the
    // default (the model's table ends; rho 7 for Karras, 1 for Polyexponential). The bounds reach every schedule
    // that takes them (Karras, Exponential, Polyexponential, SGM Uniform, KL Optimal, Normal, Beta); rho only
    // Karras and Polyexponential; Uniform, Simple, DDIM and Align Your Steps ignore them, as in the webui.
    double sigma_min = 0, sigma_max = 0, rho = 0;
    // Align Your Steps takes NVIDIA's SDXL list for SDXL models (the webui's shared.sd_model.is_sdxl).
    bool sdxl = false;
};

// k-diffusion's DiscreteSchedule (k_diffusion/external.py) over a table of noise levels; entry i belongs to
// UNet timestep i * t_stride + t_offset (the SD table: t = i; LCM's 50-entry table: t = 20 i + 19).
struct DiscreteSchedule {
    std::vector<float> alphas_cumprod;  // (T,) abar per entry, float32 as ldm's buffer
    std::vector<float> sigmas;          // (T,) ascending: sqrt((1 - abar) / abar), float32 arithmetic
    std::vector<float> log_sigmas;      // (T,) log of the above, rounded to float32
    int t_stride = 1, t_offset = 0;
    bool quantize = false;              // sigma_to_t snaps to the nearest entry (the webui's LCM denoiser)

    float sigma_min() const { return sigmas.front(); }
    float sigma_max() const { return sigmas.back(); }
    // The UNet timestep for a noise level: log-sigma interpolation between the two neighbouring entries
    // (fractional t), or the nearest entry when quantized. Exact integers at the table's own sigmas.
    double sigma_to_t(float sigma) const;
    // The noise level at a (fractional) timestep: log-sigma interpolation, clamped to the table.
    double t_to_sigma(double t) const;
    // k-diffusion's get_sigmas(n): n levels at timesteps evenly spaced from the table's top down to its
    // bottom, then 0 (n + 1 values). The webui's "Uniform" / default schedule.
    std::vector<float> get_sigmas(int n) const;
};

// The SD 1.x / 2.x (eps-prediction) schedule: 1000 entries, betas linspace(sqrt(0.00085), sqrt(0.012))^2.
DiscreteSchedule sd_schedule();
// The webui's LCM denoiser table (modules/sd_samplers_lcm.py): entries of `sd` at t = 19, 39, ..., 999.
DiscreteSchedule lcm_schedule(const DiscreteSchedule& sd, int original_steps = 50);

// k-diffusion get_sigmas_karras (Karras et al. 2022, eq. 5; rho 7) and get_sigmas_exponential: n levels
// from sigma_max down to sigma_min, then 0.
std::vector<float> karras_sigmas(int n, double sigma_min, double sigma_max, double rho = 7.0);
std::vector<float> exponential_sigmas(int n, double sigma_min, double sigma_max);

// k-diffusion get_sigmas_polyexponential: log sigma falls as ramp^rho, ramp from 1 to 0; rho 1 is exponential.
std::vector<float> polyexponential_sigmas(int n, double sigma_min, double sigma_max, double rho = 1.0);
// webui kl_optimal (Sabour et al. 2024, "Align Your Steps", eq. for the KL-optimal schedule): n + 1 levels
// evenly spaced in arctan(sigma), from sigma_max down to sigma_min; it ends at sigma_min, not 0.
std::vector<float> kl_optimal_sigmas(int n, double sigma_min, double sigma_max);
// webui get_align_your_steps_sigmas: NVIDIA's 11 optimised levels (Sabour et al. 2024) for SD 1.5, or for SDXL
// when `sdxl`, log-linearly interpolated to n levels when n != 11, then 0.
std::vector<float> align_your_steps_sigmas(int n, bool sdxl = false);
// webui beta_scheduler (Lee et al. 2024, "Beta Sampling is All You Need"): sigma_min + (sigma_max - sigma_min)
// * BetaPPF(1 - i / (n - 1); alpha, beta), then 0.
std::vector<float> beta_sigmas(int n, double sigma_min, double sigma_max, double alpha, double beta);
// The inverse of the regularized incomplete beta function I_x(a, b) (scipy.stats.beta.ppf), in double.
double beta_ppf(double q, double a, double b);

// n levels of `kind` over `table`, then 0 (KL Optimal: then sigma_min). Karras, exponential, polyexponential,
// KL Optimal and Beta span sigma_min..sigma_max (the table's, or opt's overrides); Uniform, SGM Uniform, Normal,
// Simple and DDIM pick timesteps of the table (SGM Uniform and Normal between the overrides' timesteps); Align Your
// Steps ignores it. DDIM may return more than n + 1 levels (the webui's
// ddim_scheduler strides the table by 1000 // n from t = 1).
std::vector<float> make_sigmas(ScheduleKind kind, int n, const DiscreteSchedule& table, const ScheduleOptions& opt = {});

// LCM's boundary condition (webui LCMCompVisDenoiser.get_scaled_out, sigma_data 0.5, timestep scale 10):
// its denoiser returns c_out * (x - sigma * eps) + c_skip * x, with t the quantized timestep.
// The "Schedule min sigma" / "Schedule max sigma" / "Schedule rho" / "Beta schedule alpha" / "Beta schedule beta"
// entries the webui's KDiffusionSampler.get_sigmas adds to the infotext, in its order (all Python floats): a bound
// only when set and different from the table's own, rho only when set, different from the
// schedule's default and the schedule takes one. `named` is false when the sampler runs its own sigmas (Automatic
// without a default schedule: the webui writes none of them then).
std::vector<std::pair<std::string, double>> schedule_infotext(ScheduleKind kind, bool named, const DiscreteSchedule& table,
                                                              const ScheduleOptions& opt);

void lcm_boundary_scalings(double t, double* c_skip, double* c_out);

}  // namespace sd
