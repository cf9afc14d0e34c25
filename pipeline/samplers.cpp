// samplers.cpp — the samplers, ported from k-diffusion (crowsonkb/k-diffusion k_diffusion/sampling.py at the
// commit the webui pins, ab527a9a) and from the webui's own DDIM and LCM; each names its source function and the
// paper (equation or algorithm) it implements.
#include "pipeline/samplers.h"

#include <algorithm>
#include <stdexcept>

namespace sd {

namespace {

// Evaluates the model, sizing its output.
void denoise(const Denoiser& model, const std::vector<float>& x, double sigma, std::vector<float>& out) {
    out.resize(x.size());
    model(x, (float)sigma, out);
}

void draw(Rng& rng, std::vector<float>& noise, size_t n) {
    noise.resize(n);
    rng.randn(noise.data(), (int64_t)n);
}

int step_count(const std::vector<float>& sigmas) {
    if (sigmas.size() < 2) throw std::logic_error("a sampler needs at least two noise levels");
    return (int)sigmas.size() - 1;
}

// out = x + to_d(x, denoised, sigma) * dt: one Euler step of the whole latent (`out` may be `x`).
void euler_step(std::vector<float>& out, const std::vector<float>& x, const std::vector<float>& denoised, double sigma,
                double dt) {
    out.resize(x.size());
    for (size_t j = 0; j < x.size(); j++) out[j] = (float)euler(x[j], denoised[j], sigma, dt);
}

// k-diffusion get_ancestral_step: step down to sigma_down deterministically, then add noise of sigma_up
// so the marginal is at sigma_to again (sigma_down^2 + sigma_up^2 = sigma_to^2); eta scales the noise.
struct AncestralStep { double down, up; };
AncestralStep get_ancestral_step(double sigma_from, double sigma_to, double eta) {
    if (eta == 0) return {sigma_to, 0.0};
    double up = std::min(sigma_to, eta * std::sqrt(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                                                   (sigma_from * sigma_from)));
    return {std::sqrt(sigma_to * sigma_to - up * up), up};
}

// Karras et al. 2022 Algorithm 2, lines 4-6 ("churn"): raise sigma to sigma_hat = sigma * (1 + gamma) by adding
// noise. k-diffusion draws the noise every step, also when gamma is 0 and it goes unused.
double churn(std::vector<float>& x, double sigma, int steps, Rng& rng, std::vector<float>& eps, const SamplerOptions& opt) {
    double gamma = (opt.s_tmin <= sigma && sigma <= opt.s_tmax) ? std::min(opt.s_churn / steps, std::sqrt(2.0) - 1) : 0.0;
    draw(rng, eps, x.size());
    double sigma_hat = sigma * (gamma + 1);
    if (gamma > 0) {
        double k = std::sqrt(sigma_hat * sigma_hat - sigma * sigma) * opt.s_noise;
        for (size_t j = 0; j < x.size(); j++) x[j] = (float)(x[j] + eps[j] * k);
    }
    return sigma_hat;
}

// torch.lerp(a, b, 0.5) in log space, then exp: the geometric midpoint DPM2 evaluates at.
double log_midpoint(double a, double b) {
    double la = std::log(a), lb = std::log(b);
    return std::exp(lb - (lb - la) * 0.5);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// k_diffusion.sampling.sample_euler: Karras et al. 2022 Algorithm 2 with Euler steps (no Heun correction).
void sample_euler(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                  const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, eps;
    for (int i = 0; i < steps; i++) {
        double sigma_hat = churn(x, sigmas[i], steps, rng, eps, opt);
        denoise(model, x, sigma_hat, denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        euler_step(x, x, denoised, sigma_hat, sigmas[i + 1] - sigma_hat);
    }
}

// k_diffusion.sampling.sample_euler_ancestral: an Euler step down to sigma_down, then noise of sigma_up.
void sample_euler_ancestral(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                            const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, noise;
    for (int i = 0; i < steps; i++) {
        double sigma = sigmas[i];
        denoise(model, x, sigma, denoised);
        AncestralStep a = get_ancestral_step(sigma, sigmas[i + 1], opt.eta);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        double dt = a.down - sigma;
        bool add_noise = sigmas[i + 1] > 0;
        if (add_noise) draw(rng, noise, x.size());
        for (size_t j = 0; j < x.size(); j++) {
            double v = euler(x[j], denoised[j], sigma, dt);
            if (add_noise) v += noise[j] * opt.s_noise * a.up;
            x[j] = (float)v;
        }
    }
}

// k_diffusion.sampling.sample_heun: Karras et al. 2022 Algorithm 2 (Heun's 2nd-order method: an Euler step,
// then the average of the slopes at both ends); the last step (to sigma 0) is an Euler step.
void sample_heun(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                 const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, denoised_2, x_2, eps;
    for (int i = 0; i < steps; i++) {
        double sigma_hat = churn(x, sigmas[i], steps, rng, eps, opt);
        denoise(model, x, sigma_hat, denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        double sigma_next = sigmas[i + 1], dt = sigma_next - sigma_hat;
        if (sigma_next == 0) {
            euler_step(x, x, denoised, sigma_hat, dt);
            continue;
        }
        euler_step(x_2, x, denoised, sigma_hat, dt);
        denoise(model, x_2, sigma_next, denoised_2);
        for (size_t j = 0; j < x.size(); j++) {
            double d = to_d(x[j], denoised[j], sigma_hat), d_2 = to_d(x_2[j], denoised_2[j], sigma_next);
            x[j] = (float)(x[j] + (d + d_2) / 2 * dt);
        }
    }
}

// k_diffusion.sampling.sample_dpm_2, "inspired by DPM-Solver-2 and Algorithm 2 from Karras et al. (2022)": the
// explicit midpoint method on the ODE in sigma, the midpoint taken at the geometric mean of the two sigmas
// (halfway in log sigma, where DPM-Solver-2, Lu et al. 2022, Algorithm 1 with r1 = 1/2, evaluates).
void sample_dpm_2(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                  const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, denoised_2, x_2, eps;
    for (int i = 0; i < steps; i++) {
        double sigma_hat = churn(x, sigmas[i], steps, rng, eps, opt);
        denoise(model, x, sigma_hat, denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        double sigma_next = sigmas[i + 1];
        if (sigma_next == 0) {
            euler_step(x, x, denoised, sigma_hat, sigma_next - sigma_hat);
            continue;
        }
        double sigma_mid = log_midpoint(sigma_hat, sigma_next);
        double dt_1 = sigma_mid - sigma_hat, dt_2 = sigma_next - sigma_hat;
        euler_step(x_2, x, denoised, sigma_hat, dt_1);
        denoise(model, x_2, sigma_mid, denoised_2);
        for (size_t j = 0; j < x.size(); j++) x[j] = (float)(x[j] + to_d(x_2[j], denoised_2[j], sigma_mid) * dt_2);
    }
}

// k_diffusion.sampling.sample_dpm_2_ancestral: the DPM2 step down to sigma_down, then noise of sigma_up.
void sample_dpm_2_ancestral(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                            const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, denoised_2, x_2, noise;
    for (int i = 0; i < steps; i++) {
        double sigma = sigmas[i];
        denoise(model, x, sigma, denoised);
        AncestralStep a = get_ancestral_step(sigma, sigmas[i + 1], opt.eta);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        if (a.down == 0) {
            euler_step(x, x, denoised, sigma, a.down - sigma);
            continue;
        }
        double sigma_mid = log_midpoint(sigma, a.down);
        double dt_1 = sigma_mid - sigma, dt_2 = a.down - sigma;
        euler_step(x_2, x, denoised, sigma, dt_1);
        denoise(model, x_2, sigma_mid, denoised_2);
        draw(rng, noise, x.size());
        for (size_t j = 0; j < x.size(); j++) {
            double v = x[j] + to_d(x_2[j], denoised_2[j], sigma_mid) * dt_2;
            x[j] = (float)(v + noise[j] * opt.s_noise * a.up);
        }
    }
}

// k_diffusion.sampling.linear_multistep_coeff. k-diffusion integrates with scipy's quad; the integrand is
// a polynomial of degree order - 1 <= 3, which 4-point Gauss-Legendre integrates exactly.
double linear_multistep_coeff(int order, const std::vector<float>& t, int i, int j) {
    if (order - 1 > i) throw std::logic_error("LMS order " + std::to_string(order) + " too high for step " + std::to_string(i));
    auto basis = [&](double tau) {
        double prod = 1.0;
        for (int k = 0; k < order; k++) {
            if (k == j) continue;
            prod *= (tau - t[i - k]) / ((double)t[i - j] - t[i - k]);
        }
        return prod;
    };
    const double node[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526};
    const double weight[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538};
    double a = t[i], b = t[i + 1], mid = (a + b) / 2, half = (b - a) / 2, sum = 0;
    for (int k = 0; k < 4; k++) sum += weight[k] * basis(mid + half * node[k]);
    return sum * half;
}

// k_diffusion.sampling.sample_lms (order 4): the linear multistep (Adams-Bashforth) method in sigma over the
// last four slopes, on the uneven sigma grid.
void sample_lms(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng&,
                const SamplerCallback& callback, const SamplerOptions&) {
    const int steps = step_count(sigmas), order = 4;
    std::vector<float> denoised;
    std::vector<std::vector<double>> ds;  // derivatives, newest last, at most `order`
    for (int i = 0; i < steps; i++) {
        double sigma = sigmas[i];
        denoise(model, x, sigma, denoised);
        std::vector<double> d(x.size());
        for (size_t j = 0; j < x.size(); j++) d[j] = to_d(x[j], denoised[j], sigma);
        ds.push_back(std::move(d));
        if ((int)ds.size() > order) ds.erase(ds.begin());
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        int cur_order = std::min(i + 1, order);
        double coeff[4];
        for (int k = 0; k < cur_order; k++) coeff[k] = linear_multistep_coeff(cur_order, sigmas, i, k);
        for (size_t j = 0; j < x.size(); j++) {
            double v = x[j];
            for (int k = 0; k < cur_order; k++) v += coeff[k] * ds[ds.size() - 1 - (size_t)k][j];
            x[j] = (float)v;
        }
    }
}

// k_diffusion.sampling.sample_dpmpp_2m: DPM-Solver++(2M) (Lu et al. 2022b, "DPM-Solver++", Algorithm 2) in
// t = -log(sigma) (the paper's lambda for VE latents); first-order on the first step and on the last (to
// sigma 0, where it returns the denoised estimate).
void sample_dpmpp_2m(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng&,
                     const SamplerCallback& callback, const SamplerOptions&) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, old_denoised;
    for (int i = 0; i < steps; i++) {
        denoise(model, x, sigmas[i], denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        if (sigmas[i + 1] == 0) {  // t_next = inf: sigma ratio 0, -expm1(-h) = 1
            x = denoised;
        } else {
            double t = -std::log((double)sigmas[i]), t_next = -std::log((double)sigmas[i + 1]), h = t_next - t;
            double ratio = std::exp(-t_next) / std::exp(-t), em1 = std::expm1(-h);
            double w_new = 1, w_old = 0;  // denoised_d = w_new * denoised + w_old * old_denoised
            if (!old_denoised.empty()) {
                double h_last = t + std::log((double)sigmas[i - 1]), r = h_last / h;
                w_new = 1 + 1 / (2 * r);
                w_old = -1 / (2 * r);
            }
            for (size_t j = 0; j < x.size(); j++) {
                double dd = w_new * denoised[j] + (w_old != 0 ? w_old * old_denoised[j] : 0.0);
                x[j] = (float)(ratio * x[j] - em1 * dd);
            }
        }
        old_denoised = denoised;
    }
}

// k_diffusion.sampling.sample_dpmpp_2s_ancestral: a DPM-Solver++(2S) step (Lu et al. 2022b, Algorithm 1, with
// the intermediate point halfway in t = -log sigma) down to sigma_down, then noise of sigma_up.
void sample_dpmpp_2s_ancestral(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas,
                               Rng& rng, const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, denoised_2, x_2, noise;
    for (int i = 0; i < steps; i++) {
        double sigma = sigmas[i];
        denoise(model, x, sigma, denoised);
        AncestralStep a = get_ancestral_step(sigma, sigmas[i + 1], opt.eta);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        if (a.down == 0) {
            euler_step(x, x, denoised, sigma, a.down - sigma);
        } else {
            const double r = 0.5;
            double t = -std::log(sigma), t_next = -std::log(a.down), h = t_next - t, s = t + r * h;
            double ratio_s = std::exp(-s) / std::exp(-t), em1_s = std::expm1(-h * r);
            x_2.resize(x.size());
            for (size_t j = 0; j < x.size(); j++) x_2[j] = (float)(ratio_s * x[j] - em1_s * denoised[j]);
            denoise(model, x_2, std::exp(-s), denoised_2);
            double ratio = std::exp(-t_next) / std::exp(-t), em1 = std::expm1(-h);
            for (size_t j = 0; j < x.size(); j++) x[j] = (float)(ratio * x[j] - em1 * denoised_2[j]);
        }
        if (sigmas[i + 1] > 0) {
            draw(rng, noise, x.size());
            for (size_t j = 0; j < x.size(); j++) x[j] = (float)(x[j] + noise[j] * opt.s_noise * a.up);
        }
    }
}

// stable-diffusion-webui modules/sd_samplers_timesteps_impl.py ddim (Song et al. 2021, eq. 12), on
// variance-preserving latents: x = sqrt(abar) x0 + sqrt(1 - abar) eps with abar = 1 / (1 + sigma^2).
// The model is asked at the equivalent k-diffusion latent x / sqrt(abar), so it sees the webui's UNet input.
// Like the webui, N timesteps make N - 1 steps and the result is the latent at the last timestep (t = 1),
// not at sigma 0.
namespace {

// The webui's ddim and ddim_cfgpp: the step back to the next noise level follows the conditional (guided) eps,
// or with CFG++ the unconditional one, at the CFG scale / 12.5.
void ddim_steps(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                const SamplerCallback& callback, const SamplerOptions& opt, bool cfgpp) {
    const int steps = (int)sigmas.size() - 1;  // may be 0: then x stays the noise, as in the webui
    std::vector<float> x_ve, denoised, uncond, noise;
    DenoiseExtras extras;
    if (cfgpp) extras.cfg_multiplier = 1 / 12.5, extras.uncond = &uncond;
    for (int i = 0; i < steps; i++) {
        double sigma = sigmas[i], sigma_prev = sigmas[i + 1];
        double a_t = 1 / (1 + sigma * sigma), a_prev = 1 / (1 + sigma_prev * sigma_prev);
        x_ve.resize(x.size());
        for (size_t j = 0; j < x.size(); j++) x_ve[j] = (float)(x[j] / std::sqrt(a_t));
        denoised.resize(x.size());
        model(x_ve, (float)sigma, denoised, extras);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        double sigma_eta = opt.eta_ddim * std::sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev));
        double dir = std::sqrt(1 - a_prev - sigma_eta * sigma_eta);
        draw(rng, noise, x.size());  // the webui draws it even at eta 0
        for (size_t j = 0; j < x.size(); j++) {
            // the UNet's eps (guided, or CFG++'s unconditional); denoised is the guided pred_x0
            double e_t = to_d(x_ve[j], cfgpp ? uncond[j] : denoised[j], sigma);
            x[j] = (float)(std::sqrt(a_prev) * denoised[j] + dir * e_t + sigma_eta * noise[j]);
        }
    }
}

}  // namespace

void sample_ddim(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                 const SamplerCallback& callback, const SamplerOptions& opt) {
    ddim_steps(model, x, sigmas, rng, callback, opt, false);
}

void sample_ddim_cfgpp(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                       const SamplerCallback& callback, const SamplerOptions& opt) {
    ddim_steps(model, x, sigmas, rng, callback, opt, true);
}

// stable-diffusion-webui modules/sd_samplers_lcm.py sample_lcm (Luo et al. 2023): jump to the denoised
// estimate, then renoise to the next sigma.
void sample_lcm(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng& rng,
                const SamplerCallback& callback, const SamplerOptions&) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, noise;
    for (int i = 0; i < steps; i++) {
        denoise(model, x, sigmas[i], denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        if (sigmas[i + 1] > 0) {
            draw(rng, noise, x.size());
            for (size_t j = 0; j < x.size(); j++) x[j] = (float)(denoised[j] + (double)sigmas[i + 1] * noise[j]);
        } else {
            x = denoised;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
void sample(SamplerKind kind, const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas,
            Rng& rng, const SamplerCallback& callback, const SamplerOptions& opt) {
    switch (kind) {
        case SamplerKind::euler: return sample_euler(model, x, sigmas, rng, callback, opt);
        case SamplerKind::euler_a: return sample_euler_ancestral(model, x, sigmas, rng, callback, opt);
        case SamplerKind::heun: return sample_heun(model, x, sigmas, rng, callback, opt);
        case SamplerKind::dpm2: return sample_dpm_2(model, x, sigmas, rng, callback, opt);
        case SamplerKind::dpm2_a: return sample_dpm_2_ancestral(model, x, sigmas, rng, callback, opt);
        case SamplerKind::dpmpp_2m: return sample_dpmpp_2m(model, x, sigmas, rng, callback, opt);
        case SamplerKind::dpmpp_2s_a: return sample_dpmpp_2s_ancestral(model, x, sigmas, rng, callback, opt);
        case SamplerKind::lms: return sample_lms(model, x, sigmas, rng, callback, opt);
        case SamplerKind::ddim: return sample_ddim(model, x, sigmas, rng, callback, opt);
        case SamplerKind::lcm: return sample_lcm(model, x, sigmas, rng, callback, opt);
        case SamplerKind::dpmpp_sde: return sample_dpmpp_sde(model, x, sigmas, rng, callback, opt);
        case SamplerKind::dpmpp_2m_sde: return sample_dpmpp_2m_sde(model, x, sigmas, rng, callback, opt, false);
        case SamplerKind::dpmpp_2m_sde_heun: return sample_dpmpp_2m_sde(model, x, sigmas, rng, callback, opt, true);
        case SamplerKind::dpmpp_3m_sde: return sample_dpmpp_3m_sde(model, x, sigmas, rng, callback, opt);
        case SamplerKind::restart: return sample_restart(model, x, sigmas, rng, callback, opt);
        case SamplerKind::plms: return sample_plms(model, x, sigmas, rng, callback, opt);
        case SamplerKind::ddim_cfgpp: return sample_ddim_cfgpp(model, x, sigmas, rng, callback, opt);
        case SamplerKind::unipc:
            return sample_unipc(model, x, (int)sigmas.size(), sd_schedule().alphas_cumprod, callback, opt.unipc);
        case SamplerKind::dpm_fast:  // KDiffusionSampler.sample: the model's sigma range and n = steps
            return sample_dpm_fast(model, x, sd_schedule().sigma_min(), sd_schedule().sigma_max(), step_count(sigmas),
                                   rng, callback, opt);
        case SamplerKind::dpm_adaptive:
            return sample_dpm_adaptive(model, x, sd_schedule().sigma_min(), sd_schedule().sigma_max(), rng, callback, opt);
    }
}

}  // namespace sd
