// schedule.cpp — SD's DDPM noise table and k-diffusion's schedules over it.
//
// Sources: ldm/modules/diffusionmodules/util.py make_beta_schedule("linear") and ldm DDPM.register_schedule
// (alphas_cumprod in float64, stored float32); k_diffusion/external.py DiscreteSchedule (sigma_to_t,
// t_to_sigma, get_sigmas) and DiscreteEpsDDPMDenoiser (sigmas from alphas_cumprod); k_diffusion/sampling.py
// get_sigmas_karras, get_sigmas_exponential; stable-diffusion-webui modules/sd_samplers_lcm.py
// (LCMCompVisDenoiser) and modules/sd_schedulers.py (labels and the schedules it adds).
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

namespace {

struct ScheduleNames {
    ScheduleKind kind;
    const char* name;   // ours; "discrete" is the webui's "uniform"
    const char* label;  // modules/sd_schedulers.py Scheduler.label
    const char* alias;  // its name or alias where it differs from both
};

const ScheduleNames kSchedules[] = {
    {ScheduleKind::discrete, "discrete", "Uniform", "uniform"},
    {ScheduleKind::karras, "karras", "Karras", nullptr},
    {ScheduleKind::exponential, "exponential", "Exponential", nullptr},
    {ScheduleKind::polyexponential, "polyexponential", "Polyexponential", nullptr},
    {ScheduleKind::sgm_uniform, "sgm_uniform", "SGM Uniform", "SGMUniform"},
    {ScheduleKind::kl_optimal, "kl_optimal", "KL Optimal", nullptr},
    {ScheduleKind::align_your_steps, "align_your_steps", "Align Your Steps", nullptr},
    {ScheduleKind::simple, "simple", "Simple", nullptr},
    {ScheduleKind::normal, "normal", "Normal", nullptr},
    {ScheduleKind::ddim, "ddim", "DDIM", nullptr},
    {ScheduleKind::beta, "beta", "Beta", nullptr},
};

const ScheduleNames& names_of(ScheduleKind kind) {
    for (const ScheduleNames& n : kSchedules)
        if (n.kind == kind) return n;
    throw std::logic_error("schedule without names");
}

}  // namespace

const std::vector<ScheduleKind>& all_schedules() {
    static const std::vector<ScheduleKind> all = [] {
        std::vector<ScheduleKind> v;
        for (const ScheduleNames& n : kSchedules) v.push_back(n.kind);
        return v;
    }();
    return all;
}

ScheduleKind parse_schedule(const std::string& name) {
    std::string s = lower(name);
    for (const ScheduleNames& n : kSchedules) {
        if (s == n.name || s == lower(n.label) || (n.alias && s == lower(n.alias))) return n.kind;
    }
    std::string valid;
    for (const ScheduleNames& n : kSchedules) valid += std::string(valid.empty() ? "" : ", ") + n.name + " (" + n.label + ")";
    throw std::runtime_error("unknown noise schedule '" + name + "' (valid: automatic, " + valid + ")");
}

bool is_automatic_schedule(const std::string& name) { return lower(name) == "automatic"; }
const char* schedule_name(ScheduleKind kind) { return names_of(kind).name; }
const char* schedule_label(ScheduleKind kind) { return names_of(kind).label; }

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

std::vector<float> polyexponential_sigmas(int n, double sigma_min, double sigma_max, double rho) {
    check_steps(n);
    std::vector<float> out;
    for (int i = 0; i < n; i++) {
        double ramp = std::pow(linspace_at(1.0, 0.0, n, i), rho);
        out.push_back((float)std::exp(ramp * (std::log(sigma_max) - std::log(sigma_min)) + std::log(sigma_min)));
    }
    out.push_back(0.0f);
    return out;
}

std::vector<float> kl_optimal_sigmas(int n, double sigma_min, double sigma_max) {
    check_steps(n);
    // float32 throughout, as the webui's torch code: tan is steep near sigma_max (d log tan / d alpha ~ 15 there),
    // so rounding alpha differently would move sigma by several float ulps.
    const float alpha_min = std::atan((float)sigma_min), alpha_max = std::atan((float)sigma_max);
    std::vector<float> out;
    for (int i = 0; i <= n; i++) {
        float f = (float)i / (float)n;
        float alpha = f * alpha_min;
        alpha += (1.0f - f) * alpha_max;  // two statements: no fused multiply-add, as torch's separate kernels
        out.push_back(std::tan(alpha));
    }
    return out;
}

std::vector<float> align_your_steps_sigmas(int n, bool sdxl) {
    check_steps(n);
    // https://research.nvidia.com/labs/toronto-ai/AlignYourSteps/howto.html: the SD 1.5 and the SDXL lists
    static const double ays_sd15[11] = {14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029};
    static const double ays_sdxl[11] = {14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029};
    const double* ays = sdxl ? ays_sdxl : ays_sd15;
    std::vector<float> out;
    if (n == 11) {
        for (int j = 0; j < 11; j++) out.push_back((float)ays[j]);
    } else {
        // webui loglinear_interp: np.interp of log sigma (ascending) at np.linspace(0, 1, n), then reversed
        double xs[11], ys[11];
        for (int j = 0; j < 11; j++) xs[j] = j * 0.1, ys[j] = std::log(ays[10 - j]);
        xs[10] = 1.0;
        for (int k = n - 1; k >= 0; k--) {
            double x = n == 1 ? 0.0 : k == n - 1 ? 1.0 : k * (1.0 / (n - 1));
            double y = ys[10];
            if (x < xs[10]) {
                int j = (int)(std::upper_bound(xs, xs + 11, x) - xs) - 1;
                y = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]) * (x - xs[j]) + ys[j];
            }
            out.push_back((float)std::exp(y));
        }
    }
    out.push_back(0.0f);
    return out;
}

namespace {

// The regularized incomplete beta function I_x(a, b) by its continued fraction (modified Lentz), using the
// symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly.
double betainc(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    if (x > (a + 1) / (a + b + 2)) return 1 - betainc(b, a, 1 - x);
    double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x)) / a;
    const double tiny = 1e-300;
    double f = 1, c = 1, d = 0;
    for (int i = 0; i <= 400; i++) {
        int m = i / 2;
        double num;
        if (i == 0) num = 1;
        else if (i % 2 == 0) num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        else num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
        d = 1 + num * d;
        d = std::fabs(d) < tiny ? 1 / tiny : 1 / d;
        c = 1 + num / c;
        if (std::fabs(c) < tiny) c = tiny;
        double cd = c * d;
        f *= cd;
        if (std::fabs(1 - cd) < 1e-16) break;
    }
    return front * (f - 1);
}

}  // namespace

double beta_ppf(double q, double a, double b) {
    if (q <= 0) return 0;
    if (q >= 1) return 1;
    double lo = 0, hi = 1;  // I_x is increasing in x: bisect to the last bit
    for (int it = 0; it < 200 && hi - lo > 0; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        (betainc(a, b, mid) < q ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

std::vector<float> beta_sigmas(int n, double sigma_min, double sigma_max, double alpha, double beta) {
    check_steps(n);
    if (!(alpha > 0) || !(beta > 0))
        throw std::runtime_error("the Beta schedule's alpha and beta must be positive");
    std::vector<float> out;
    for (int i = 0; i < n; i++) {
        double q = 1 - (n == 1 ? 0.0 : (i == n - 1 ? 1.0 : i * (1.0 / (n - 1))));  // 1 - np.linspace(0, 1, n)
        out.push_back((float)(sigma_min + beta_ppf(q, alpha, beta) * (sigma_max - sigma_min)));
    }
    out.push_back(0.0f);
    return out;
}

namespace {

// webui sgm_uniform (sgm: n + 1 timesteps evenly from sigma_max's down to sigma_min's, the last dropped) and
// normal_scheduler (n timesteps, both ends kept). The bounds are float32 (torch.tensor(sigma_max)).
std::vector<float> timestep_spaced_sigmas(int n, const DiscreteSchedule& table, double lo, double hi, bool sgm) {
    check_steps(n);
    double t_top = table.sigma_to_t((float)hi), t_bottom = table.sigma_to_t((float)lo);
    std::vector<float> out;
    for (int i = 0; i < n; i++) out.push_back((float)table.t_to_sigma(linspace_at(t_top, t_bottom, sgm ? n + 1 : n, i)));
    out.push_back(0.0f);
    return out;
}

// webui simple_scheduler: every (T / n)-th table entry from the top.
std::vector<float> simple_sigmas(int n, const DiscreteSchedule& table) {
    check_steps(n);
    const int T = (int)table.sigmas.size();
    const double ss = (double)T / n;
    std::vector<float> out;
    for (int x = 0; x < n; x++) out.push_back(table.sigmas[(size_t)(T - 1 - (int)(x * ss))]);
    out.push_back(0.0f);
    return out;
}

// webui ddim_scheduler: table entries 1, 1 + s, 1 + 2s, ... below T (s = max(T // n, 1)), from the top.
std::vector<float> ddim_sigmas(int n, const DiscreteSchedule& table) {
    check_steps(n);
    const int T = (int)table.sigmas.size(), stride = std::max(T / n, 1);
    std::vector<float> out;
    for (int x = 1; x < T; x += stride) out.push_back(table.sigmas[(size_t)x]);
    std::reverse(out.begin(), out.end());
    out.push_back(0.0f);
    return out;
}

}  // namespace

namespace {

// The webui's "sigma min" / "sigma max" overrides: used when set (non-zero), else the table's ends.
double bound(double override_, float table_value) { return override_ != 0 ? override_ : table_value; }

}  // namespace

std::vector<float> make_sigmas(ScheduleKind kind, int n, const DiscreteSchedule& table, const ScheduleOptions& opt) {
    const double lo = bound(opt.sigma_min, table.sigma_min()), hi = bound(opt.sigma_max, table.sigma_max());
    switch (kind) {
        case ScheduleKind::discrete: return table.get_sigmas(n);  // the webui's uniform ignores the bounds
        case ScheduleKind::normal: return timestep_spaced_sigmas(n, table, lo, hi, false);
        case ScheduleKind::karras: return karras_sigmas(n, lo, hi, opt.rho != 0 ? opt.rho : 7.0);
        case ScheduleKind::exponential: return exponential_sigmas(n, lo, hi);
        case ScheduleKind::polyexponential: return polyexponential_sigmas(n, lo, hi, opt.rho != 0 ? opt.rho : 1.0);
        case ScheduleKind::sgm_uniform: return timestep_spaced_sigmas(n, table, lo, hi, true);
        case ScheduleKind::kl_optimal: return kl_optimal_sigmas(n, lo, hi);
        case ScheduleKind::align_your_steps: return align_your_steps_sigmas(n, opt.sdxl);
        case ScheduleKind::simple: return simple_sigmas(n, table);
        case ScheduleKind::ddim: return ddim_sigmas(n, table);
        case ScheduleKind::beta: return beta_sigmas(n, lo, hi, opt.beta_alpha, opt.beta_beta);
    }
    throw std::logic_error("make_sigmas: bad kind");
}

std::vector<std::pair<std::string, double>> schedule_infotext(ScheduleKind kind, bool named, const DiscreteSchedule& table,
                                                              const ScheduleOptions& opt) {
    std::vector<std::pair<std::string, double>> out;
    if (!named) return out;  // the webui's model_wrap.get_sigmas path: nothing written
    // KDiffusionSampler.get_sigmas compares with the table's ends as Python floats of the float32 values
    if (opt.sigma_min != 0 && opt.sigma_min != (double)table.sigma_min()) out.push_back({"Schedule min sigma", opt.sigma_min});
    if (opt.sigma_max != 0 && opt.sigma_max != (double)table.sigma_max()) out.push_back({"Schedule max sigma", opt.sigma_max});
    const double default_rho = kind == ScheduleKind::karras ? 7.0 : kind == ScheduleKind::polyexponential ? 1.0 : -1.0;
    if (default_rho != -1 && opt.rho != 0 && opt.rho != default_rho) out.push_back({"Schedule rho", opt.rho});
    if (kind == ScheduleKind::beta) {
        out.push_back({"Beta schedule alpha", opt.beta_alpha});
        out.push_back({"Beta schedule beta", opt.beta_beta});
    }
    return out;
}

void lcm_boundary_scalings(double t, double* c_skip, double* c_out) {
    const double sigma_data = 0.5, scaled_t = t * 10.0;
    *c_skip = sigma_data * sigma_data / (scaled_t * scaled_t + sigma_data * sigma_data);
    *c_out = scaled_t / std::sqrt(scaled_t * scaled_t + sigma_data * sigma_data);
}

}  // namespace sd
