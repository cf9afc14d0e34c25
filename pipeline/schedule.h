// schedule.h — noise levels: SD's discrete DDPM schedule, the sigma <-> UNet timestep maps, and the
// sigma sequences the webui samples along (discrete "Uniform", Karras, exponential).
//
// SD 1.x/2.x train with 1000 DDPM steps, betas "scaled linear" from 0.00085 to 0.012; a latent at step t
// is x0 + sigma_t * noise in k-diffusion's form, sigma_t = sqrt((1 - abar_t) / abar_t). Tables are float32
// as the webui holds them (ldm registers alphas_cumprod as float32; k-diffusion's CompVisDenoiser derives
// sigmas and log-sigmas in float32); maps in between are computed in double.
// Left out: polyexponential, SGM uniform, Align Your Steps and the webui's other schedulers; v-prediction
// and zero-terminal-SNR rescaling.
#pragma once
#include <string>
#include <vector>

namespace sd {

enum class ScheduleKind { discrete, karras, exponential };

// "discrete" or the webui's "uniform", "karras", "exponential"; case-insensitive.
// Throws std::runtime_error listing the valid names.
ScheduleKind parse_schedule(const std::string& name);
const char* schedule_name(ScheduleKind kind);   // "discrete", "karras", "exponential"
const char* schedule_label(ScheduleKind kind);  // as the webui writes 'Schedule type': "Uniform", "Karras", "Exponential"

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

// n levels of `kind` over `table` (karras and exponential span the table's sigma_min..sigma_max), then 0.
std::vector<float> make_sigmas(ScheduleKind kind, int n, const DiscreteSchedule& table);

// LCM's boundary condition (webui LCMCompVisDenoiser.get_scaled_out, sigma_data 0.5, timestep scale 10):
// its denoiser returns c_out * (x - sigma * eps) + c_skip * x, with t the quantized timestep.
void lcm_boundary_scalings(double t, double* c_skip, double* c_out);

}  // namespace sd
