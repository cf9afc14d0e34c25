// samplers_sde.cpp — the stochastic DPM-Solver++ samplers (the webui's DPM++ SDE, 2M SDE, 2M SDE Heun, 3M SDE),
// ported from k-diffusion's sampling.py (ab527a9a). They solve the reverse SDE rather than the ODE: each step is
// the exact solution of the linear part (an exponential integrator in t = -log sigma, Lu et al. 2022b,
// "DPM-Solver++", eqs. for the data-prediction form) with the model's x0 estimate held polynomial, plus
// Brownian noise. With eta = 0 they reduce to the ODE solvers.
//
// Their noise comes from opt.noise_sampler, asked for (sigma, sigma_next) exactly where k-diffusion asks; the
// query points are computed in float32 as torch computes them (they decide which Brownian-tree nodes exist).
#include <cmath>
#include <memory>
#include <stdexcept>

#include "pipeline/brownian.h"
#include "pipeline/samplers.h"

namespace sd {

namespace {

void denoise(const Denoiser& model, const std::vector<float>& x, double sigma, std::vector<float>& out) {
    out.resize(x.size());
    model(x, (float)sigma, out);
}

int step_count(const std::vector<float>& sigmas) {
    if (sigmas.size() < 2) throw std::logic_error("a sampler needs at least two noise levels");
    return (int)sigmas.size() - 1;
}

void ask_noise(const SamplerOptions& opt, float sigma, float sigma_next, std::vector<float>& noise, size_t n) {
    if (!opt.noise_sampler) throw std::logic_error("an SDE sampler needs a noise sampler");
    noise.resize(n);
    opt.noise_sampler(sigma, sigma_next, noise);
}

// k-diffusion get_ancestral_step (see samplers.cpp), in double.
void ancestral(double sigma_from, double sigma_to, double eta, double* down, double* up) {
    if (eta == 0) {
        *down = sigma_to, *up = 0;
        return;
    }
    *up = std::min(sigma_to, eta * std::sqrt(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                                             (sigma_from * sigma_from)));
    *down = std::sqrt(sigma_to * sigma_to - *up * *up);
}

}  // namespace

NoiseSampler brownian_noise_sampler(const std::vector<float>& sigmas, const std::vector<uint64_t>& seeds, RngKind rng,
                                    int64_t per_image) {
    // Sampler.create_noise_sampler: sigma_min, sigma_max = sigmas[sigmas > 0].min(), sigmas.max()
    float lo = INFINITY, hi = -INFINITY;
    for (float s : sigmas) {
        if (s > 0) lo = std::min(lo, s);
        hi = std::max(hi, s);
    }
    auto ns = std::make_shared<BrownianTreeNoiseSampler>(lo, hi, seeds, rng, per_image);
    return [ns](float sigma, float sigma_next, std::vector<float>& noise) { ns->noise(sigma, sigma_next, noise.data()); };
}

// k_diffusion.sampling.sample_dpmpp_sde: DPM-Solver++(2S) (Lu et al. 2022b, Algorithm 1, r = 1/2) with each of
// its two sub-steps made ancestral: step down to sigma_down, add Brownian noise of sigma_up; the last step (to
// sigma 0) is an Euler step.
void sample_dpmpp_sde(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng&,
                      const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    const double r = 0.5, fac = 1 / (2 * r);
    std::vector<float> denoised, denoised_2, x_2, noise;
    for (int i = 0; i < steps; i++) {
        const double sigma = sigmas[i], sigma_next = sigmas[i + 1];
        denoise(model, x, sigma, denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        if (sigma_next == 0) {
            for (size_t j = 0; j < x.size(); j++) x[j] = (float)euler(x[j], denoised[j], sigma, sigma_next - sigma);
            continue;
        }
        const double t = -std::log(sigma), t_next = -std::log(sigma_next), h = t_next - t, s = t + h * r;
        // the noise sampler's arguments as k-diffusion computes them on float32 tensors
        const float t_f = -std::log(sigmas[i]), tn_f = -std::log(sigmas[i + 1]);
        const float h_f = tn_f - t_f, s_f = t_f + h_f * (float)r;
        const float q_t = std::exp(-t_f), q_s = std::exp(-s_f), q_next = std::exp(-tn_f);

        // Step 1: to s (sigma_fn(s) = exp(-s)), ancestrally
        double sd, su;
        ancestral(std::exp(-t), std::exp(-s), opt.eta, &sd, &su);
        const double s_ = -std::log(sd);
        const double ratio_1 = std::exp(-s_) / std::exp(-t), em1_1 = std::expm1(t - s_);
        ask_noise(opt, q_t, q_s, noise, x.size());
        x_2.resize(x.size());
        for (size_t j = 0; j < x.size(); j++)
            x_2[j] = (float)(ratio_1 * x[j] - em1_1 * denoised[j] + noise[j] * opt.s_noise * su);
        denoise(model, x_2, std::exp(-s), denoised_2);

        // Step 2: to t_next with the blended estimate, ancestrally
        ancestral(std::exp(-t), std::exp(-t_next), opt.eta, &sd, &su);
        const double t_next_ = -std::log(sd);
        const double ratio_2 = std::exp(-t_next_) / std::exp(-t), em1_2 = std::expm1(t - t_next_);
        ask_noise(opt, q_t, q_next, noise, x.size());
        for (size_t j = 0; j < x.size(); j++) {
            double denoised_d = (1 - fac) * denoised[j] + fac * denoised_2[j];
            x[j] = (float)(ratio_2 * x[j] - em1_2 * denoised_d + noise[j] * opt.s_noise * su);
        }
    }
}

// k_diffusion.sampling.sample_dpmpp_2m_sde: DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2) for the SDE: the
// first-order SDE step x <- (sigma_next / sigma) e^{-eta h} x + (1 - e^{-(1+eta) h}) D, a second-order correction
// from the previous D (midpoint or Heun form), and noise of sigma_next sqrt(1 - e^{-2 eta h}).
void sample_dpmpp_2m_sde(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng&,
                         const SamplerCallback& callback, const SamplerOptions& opt, bool solver_heun) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, old_denoised, noise;
    double h_last = 0;
    for (int i = 0; i < steps; i++) {
        const double sigma = sigmas[i], sigma_next = sigmas[i + 1];
        denoise(model, x, sigma, denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        if (sigma_next == 0) {  // the denoising step
            x = denoised;
        } else {
            const double t = -std::log(sigma), s = -std::log(sigma_next), h = s - t, eta_h = opt.eta * h;
            const double decay = sigma_next / sigma * std::exp(-eta_h), gain = -std::expm1(-h - eta_h);
            double corr = 0;  // weight of (denoised - old_denoised)
            if (!old_denoised.empty()) {
                const double r = h_last / h;
                corr = solver_heun ? (gain / (-h - eta_h) + 1) * (1 / r) : 0.5 * gain * (1 / r);
            }
            const double noise_scale = sigma_next * std::sqrt(-std::expm1(-2 * eta_h)) * opt.s_noise;
            if (opt.eta != 0) ask_noise(opt, sigmas[i], sigmas[i + 1], noise, x.size());
            for (size_t j = 0; j < x.size(); j++) {
                double v = decay * x[j] + gain * denoised[j];
                if (corr != 0) v += corr * ((double)denoised[j] - old_denoised[j]);
                if (opt.eta != 0) v += noise[j] * noise_scale;
                x[j] = (float)v;
            }
            h_last = h;
        }
        old_denoised = denoised;
    }
}

// k_diffusion.sampling.sample_dpmpp_3m_sde: the third-order multistep version (DPM-Solver++(3M), Lu et al.
// 2022b, the multistep scheme of §4 at order 3) of the SDE step above, with phi_2 and phi_3 weighting the
// first and second divided differences of the last three estimates.
void sample_dpmpp_3m_sde(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng&,
                         const SamplerCallback& callback, const SamplerOptions& opt) {
    const int steps = step_count(sigmas);
    std::vector<float> denoised, denoised_1, denoised_2, noise;
    double h_1 = 0, h_2 = 0;
    int history = 0;  // how many of denoised_1, denoised_2 (and h_1, h_2) exist
    for (int i = 0; i < steps; i++) {
        const double sigma = sigmas[i], sigma_next = sigmas[i + 1];
        denoise(model, x, sigma, denoised);
        if (callback) callback(i, steps, sigmas[i], x, denoised);
        double h = h_1;  // k-diffusion keeps the last h through the final step
        if (sigma_next == 0) {
            x = denoised;
        } else {
            const double t = -std::log(sigma), s = -std::log(sigma_next);
            h = s - t;
            const double h_eta = h * (opt.eta + 1);
            const double decay = std::exp(-h_eta), gain = -std::expm1(-h_eta);
            const double phi_2 = std::expm1(-h_eta) / h_eta + 1, phi_3 = phi_2 / h_eta - 0.5;
            const double noise_scale = sigma_next * std::sqrt(-std::expm1(-2 * h * opt.eta)) * opt.s_noise;
            if (opt.eta != 0) ask_noise(opt, sigmas[i], sigmas[i + 1], noise, x.size());
            const double r0 = h_1 / h, r1 = h_2 / h;
            for (size_t j = 0; j < x.size(); j++) {
                double v = decay * x[j] + gain * denoised[j];
                if (history >= 2) {
                    double d1_0 = ((double)denoised[j] - denoised_1[j]) / r0;
                    double d1_1 = ((double)denoised_1[j] - denoised_2[j]) / r1;
                    double d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1), d2 = (d1_0 - d1_1) / (r0 + r1);
                    v += phi_2 * d1 - phi_3 * d2;
                } else if (history == 1) {
                    v += phi_2 * (((double)denoised[j] - denoised_1[j]) / r0);
                }
                if (opt.eta != 0) v += noise[j] * noise_scale;
                x[j] = (float)v;
            }
        }
        denoised_2 = denoised_1;
        denoised_1 = denoised;
        h_2 = h_1;
        h_1 = h;
        history = std::min(history + 1, 2);
    }
}

}  // namespace sd
