// schedule.cpp — SD's DDPM noise table and k-diffusion's schedules over it.
//
// Sources: ldm/modules/diffusionmodules/util.py make_beta_schedule("linear") and ldm DDPM.register_schedule
// (alphas_cumprod in float64, stored float32); k_diffusion/external.py DiscreteSchedule (sigma_to_t,
// t_to_sigma, get_sigmas) and DiscreteEpsDDPMDenoiser (sigmas from alphas_cumprod); k_diffusion/sampling.py
// get_sigmas_karras, get_sigmas_exponential; stable-diffusion-webui modules/sd_samplers_lcm.py
// (LCMCompVisDenoiser) and modules/sd_schedulers.py (labels).
#include "pipeline/schedule.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

namespace sd {

namespace {

std::string lower(std::string s) {
    for (char& ch : s) ch = (char)std::tolower((unsigned char)ch);
    return s;
}

// torch.linspace's formula: from the start for the first half, from the end for the second.
double linspace_at(double start, double end, int n, int i) {
    if (n == 1) return start;
    double step = (end - start) / (n - 1);
    return i < n / 2 ? start + step * i : end - step * (n - 1 - i);
}

void check_steps(int n) {
    if (n < 1) throw std::runtime_error("the number of sampling steps must be at least 1, got " + std::to_string(n));
}

}  // namespace

ScheduleKind parse_schedule(const std::string& name) {
    std::string s = lower(name);
    if (s == "discrete" || s == "uniform") return ScheduleKind::discrete;
    if (s == "karras") return ScheduleKind::karras;
    if (s == "exponential") return ScheduleKind::exponential;
    throw std::runtime_error("unknown noise schedule '" + name +
                             "' (valid: discrete or its webui name uniform, karras, exponential)");
}

const char* schedule_name(ScheduleKind kind) {
    switch (kind) {
        case ScheduleKind::discrete: return "discrete";
        case ScheduleKind::karras: return "karras";
        case ScheduleKind::exponential: return "exponential";
    }
    return "?";
}

const char* schedule_label(ScheduleKind kind) {
    switch (kind) {
        case ScheduleKind::discrete: return "Uniform";  // not "Automatic": that means Karras for DPM++ 2M in webui >= 1.9
        case ScheduleKind::karras: return "Karras";
        case ScheduleKind::exponential: return "Exponential";
    }
    return "?";
}

double DiscreteSchedule::sigma_to_t(float sigma) const {
    const int T = (int)log_sigmas.size();
    const float log_sigma = (float)std::log((double)sigma);  // float32, as k-diffusion: table sigmas map to exact t
    int idx;
    if (quantize) {
        idx = 0;
        for (int i = 1; i < T; i++) {
            if (std::fabs(log_sigma - log_sigmas[i]) < std::fabs(log_sigma - log_sigmas[idx])) idx = i;
        }
        return (double)idx * t_stride + t_offset;
    }
    // low: the last entry at or below log_sigma (0 if none), kept below the top so low + 1 exists
    int at_or_below = (int)(std::upper_bound(log_sigmas.begin(), log_sigmas.end(), log_sigma) - log_sigmas.begin());
    int low = std::min(std::max(at_or_below - 1, 0), T - 2);
    double lo = log_sigmas[low], hi = log_sigmas[low + 1];
    double w = std::min(std::max((lo - log_sigma) / (lo - hi), 0.0), 1.0);
    double t_index = (1 - w) * low + w * (low + 1);
    return t_index * t_stride + t_offset;
}

double DiscreteSchedule::t_to_sigma(double t) const {
    const int T = (int)log_sigmas.size();
    double index = std::min(std::max((t - t_offset) / t_stride, 0.0), (double)(T - 1));
    int low = (int)std::floor(index), high = (int)std::ceil(index);
    double w = index - low;
    return std::exp((1 - w) * log_sigmas[low] + w * log_sigmas[high]);
}

std::vector<float> DiscreteSchedule::get_sigmas(int n) const {
    check_steps(n);
    double t_top = sigma_to_t(sigma_max()), t_bottom = sigma_to_t(sigma_min());
    std::vector<float> out;
    for (int i = 0; i < n; i++) out.push_back((float)t_to_sigma(linspace_at(t_top, t_bottom, n, i)));
    out.push_back(0.0f);
    return out;
}

DiscreteSchedule sd_schedule() {
    const int T = 1000;
    const double beta_start = 0.00085, beta_end = 0.012;
    DiscreteSchedule s;
    double abar = 1.0;
    for (int i = 0; i < T; i++) {
        double sqrt_beta = linspace_at(std::sqrt(beta_start), std::sqrt(beta_end), T, i);
        abar *= 1.0 - sqrt_beta * sqrt_beta;
        float a = (float)abar;
        float sigma = std::sqrt((1.0f - a) / a);  // float32 ops, as torch evaluates ((1 - a) / a) ** 0.5
        s.alphas_cumprod.push_back(a);
        s.sigmas.push_back(sigma);
        s.log_sigmas.push_back((float)std::log((double)sigma));
    }
    return s;
}

DiscreteSchedule lcm_schedule(const DiscreteSchedule& sd, int original_steps) {
    const int T = (int)sd.sigmas.size();
    if (original_steps < 2 || T % original_steps != 0)
        throw std::runtime_error("LCM needs a step count that divides the model's " + std::to_string(T) + " timesteps");
    DiscreteSchedule s;
    s.t_stride = T / original_steps;                         // 20
    s.t_offset = T - 1 - (original_steps - 1) * s.t_stride;  // 19: the table ends at t = T - 1
    s.quantize = true;
    for (int j = 0; j < original_steps; j++) {
        int t = j * s.t_stride + s.t_offset;
        s.alphas_cumprod.push_back(sd.alphas_cumprod[t]);
        s.sigmas.push_back(sd.sigmas[t]);
        s.log_sigmas.push_back(sd.log_sigmas[t]);
    }
    return s;
}

std::vector<float> karras_sigmas(int n, double sigma_min, double sigma_max, double rho) {
    check_steps(n);
    double min_inv_rho = std::pow(sigma_min, 1.0 / rho), max_inv_rho = std::pow(sigma_max, 1.0 / rho);
    std::vector<float> out;
    for (int i = 0; i < n; i++) {
        double ramp = linspace_at(0.0, 1.0, n, i);
        out.push_back((float)std::pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho));
    }
    out.push_back(0.0f);
    return out;
}

std::vector<float> exponential_sigmas(int n, double sigma_min, double sigma_max) {
    check_steps(n);
    std::vector<float> out;
    for (int i = 0; i < n; i++) out.push_back((float)std::exp(linspace_at(std::log(sigma_max), std::log(sigma_min), n, i)));
    out.push_back(0.0f);
    return out;
}

std::vector<float> make_sigmas(ScheduleKind kind, int n, const DiscreteSchedule& table) {
    switch (kind) {
        case ScheduleKind::discrete: return table.get_sigmas(n);
        case ScheduleKind::karras: return karras_sigmas(n, table.sigma_min(), table.sigma_max());
        case ScheduleKind::exponential: return exponential_sigmas(n, table.sigma_min(), table.sigma_max());
    }
    throw std::logic_error("make_sigmas: bad kind");
}

void lcm_boundary_scalings(double t, double* c_skip, double* c_out) {
    const double sigma_data = 0.5, scaled_t = t * 10.0;
    *c_skip = sigma_data * sigma_data / (scaled_t * scaled_t + sigma_data * sigma_data);
    *c_out = scaled_t / std::sqrt(scaled_t * scaled_t + sigma_data * sigma_data);
}

}  // namespace sd
