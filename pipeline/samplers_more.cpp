// samplers_more.cpp — the webui's own samplers beyond k-diffusion's: Restart (modules/sd_samplers_extra.py) and
// PLMS (modules/sd_samplers_timesteps_impl.py), ported from the webui 1.10.1 source.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "pipeline/samplers.h"

namespace sd {

namespace {

void denoise(const Denoiser& model, const std::vector<float>& x, double sigma, std::vector<float>& out) {
    out.resize(x.size());
    model(x, (float)sigma, out);
}

// torch.argmin(abs(sigmas - key)) on float32: the first index of the smallest distance.
int nearest(const std::vector<float>& sigmas, double key) {
    int best = 0;
    for (int i = 1; i < (int)sigmas.size(); i++)
        if (std::fabs(sigmas[i] - (float)key) < std::fabs(sigmas[best] - (float)key)) best = i;
    return best;
}

}  // namespace

void sample_restart(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas_in, Rng& rng,
                    const SamplerCallback& callback, const SamplerOptions& opt) {
    if (sigmas_in.size() < 2) throw std::logic_error("a sampler needs at least two noise levels");
    std::vector<float> sigmas = sigmas_in;
    const int steps = (int)sigmas.size() - 1;
    // restart_list {min_sigma: [restart_steps, restart_times, max_sigma]}, chosen as the webui does
    struct Restart { int steps, times; double max_sigma; };
    std::vector<std::pair<double, Restart>> restart_list;
    if (steps >= 20) {
        int restart_steps = 9, restart_times = 1;
        if (steps >= 36) restart_steps = steps / 4, restart_times = 2;
        sigmas = karras_sigmas(steps - restart_steps * restart_times, sigmas[sigmas.size() - 2], sigmas[0]);
        restart_list.push_back({0.1, {restart_steps + 1, restart_times, 2.0}});
    }
    std::vector<std::pair<int, Restart>> at;  // keyed by the index nearest to min_sigma
    for (auto& [key, r] : restart_list) at.push_back({nearest(sigmas, key), r});

    std::vector<std::pair<float, float>> step_list;
    for (int i = 0; i + 1 < (int)sigmas.size(); i++) {
        step_list.push_back({sigmas[i], sigmas[i + 1]});
        for (auto& [idx, r] : at) {
            if (idx != i + 1) continue;
            const int min_idx = i + 1, max_idx = nearest(sigmas, r.max_sigma);
            if (max_idx < min_idx) {
                std::vector<float> up = karras_sigmas(r.steps, sigmas[min_idx], sigmas[max_idx]);
                up.pop_back();  // [:-1]: no final 0
                for (int k = 0; k < r.times; k++)
                    for (size_t j = 0; j + 1 < up.size(); j++) step_list.push_back({up[j], up[j + 1]});
            }
        }
    }

    const int total = (int)step_list.size();
    std::vector<float> denoised, denoised_2, x_2, noise;
    double last_sigma = -1;
    for (int step = 0; step < total; step++) {
        const double old_sigma = step_list[step].first, new_sigma = step_list[step].second;
        if (last_sigma >= 0 && last_sigma < old_sigma) {  // restart: noise back up to old_sigma
            noise.resize(x.size());
            rng.randn(noise.data(), (int64_t)noise.size());
            const double k = opt.s_noise * std::sqrt(old_sigma * old_sigma - last_sigma * last_sigma);
            for (size_t j = 0; j < x.size(); j++) x[j] = (float)(x[j] + noise[j] * k);
        }
        // heun_step: Heun's method, Euler into sigma 0
        denoise(model, x, old_sigma, denoised);
        if (callback) callback(step, total, (float)old_sigma, x, denoised);
        const double dt = new_sigma - old_sigma;
        if (new_sigma == 0) {
            for (size_t j = 0; j < x.size(); j++) x[j] = (float)euler(x[j], denoised[j], old_sigma, dt);
        } else {
            x_2.resize(x.size());
            for (size_t j = 0; j < x.size(); j++) x_2[j] = (float)euler(x[j], denoised[j], old_sigma, dt);
            denoise(model, x_2, new_sigma, denoised_2);
            for (size_t j = 0; j < x.size(); j++) {
                double d = to_d(x[j], denoised[j], old_sigma), d_2 = to_d(x_2[j], denoised_2[j], new_sigma);
                x[j] = (float)(x[j] + (d + d_2) / 2 * dt);
            }
        }
        last_sigma = new_sigma;
    }
}

// PLMS on VP latents x = sqrt(abar) x0 + sqrt(1 - abar) eps, abar = 1 / (1 + sigma^2); the UNet's eps comes from
// the denoiser at the equivalent VE latent x / sqrt(abar), as in sample_ddim.
void sample_plms(const Denoiser& model, std::vector<float>& x, const std::vector<float>& sigmas, Rng&,
                 const SamplerCallback& callback, const SamplerOptions&) {
    const int steps = (int)sigmas.size() - 1;
    std::vector<float> x_ve, denoised;
    std::vector<std::vector<double>> old_eps;  // newest last, at most 3
    // eps at VP latent v and noise level sigma
    auto eps_at = [&](const std::vector<float>& v, double sigma, std::vector<double>& e) {
        const double a = 1 / (1 + sigma * sigma);
        x_ve.resize(v.size());
        for (size_t j = 0; j < v.size(); j++) x_ve[j] = (float)(v[j] / std::sqrt(a));
        denoise(model, x_ve, sigma, denoised);
        e.resize(v.size());
        for (size_t j = 0; j < v.size(); j++) e[j] = to_d(x_ve[j], denoised[j], sigma);
    };
    // DDIM's deterministic step with eps e from abar a_t to a_prev; also returns pred_x0
    auto ddim_step = [&](const std::vector<double>& e, double a_t, double a_prev, std::vector<float>& out,
                         std::vector<float>* pred_x0) {
        out.resize(x.size());
        if (pred_x0) pred_x0->resize(x.size());
        for (size_t j = 0; j < x.size(); j++) {
            double p0 = (x[j] - std::sqrt(1 - a_t) * e[j]) / std::sqrt(a_t);
            if (pred_x0) (*pred_x0)[j] = (float)p0;
            out[j] = (float)(std::sqrt(a_prev) * p0 + std::sqrt(1 - a_prev) * e[j]);
        }
    };
    std::vector<double> e_t, e_next, e_prime;
    std::vector<float> x_prev, pred_x0;
    for (int i = 0; i < steps; i++) {
        const double sigma = sigmas[i], sigma_prev = sigmas[i + 1];
        const double a_t = 1 / (1 + sigma * sigma), a_prev = 1 / (1 + sigma_prev * sigma_prev);
        eps_at(x, sigma, e_t);
        e_prime.resize(x.size());
        const size_t n = old_eps.size();
        if (n == 0) {  // pseudo improved Euler: average with the eps at the DDIM step's end
            ddim_step(e_t, a_t, a_prev, x_prev, nullptr);
            eps_at(x_prev, sigma_prev, e_next);
            for (size_t j = 0; j < x.size(); j++) e_prime[j] = (e_t[j] + e_next[j]) / 2;
        } else {  // Adams-Bashforth of order 2, 3, 4
            for (size_t j = 0; j < x.size(); j++) {
                const double e0 = e_t[j], e1 = old_eps[n - 1][j];
                if (n == 1) e_prime[j] = (3 * e0 - e1) / 2;
                else if (n == 2) e_prime[j] = (23 * e0 - 16 * e1 + 5 * old_eps[n - 2][j]) / 12;
                else e_prime[j] = (55 * e0 - 59 * e1 + 37 * old_eps[n - 2][j] - 9 * old_eps[n - 3][j]) / 24;
            }
        }
        ddim_step(e_prime, a_t, a_prev, x_prev, &pred_x0);
        old_eps.push_back(e_t);
        if (old_eps.size() >= 4) old_eps.erase(old_eps.begin());
        if (callback) callback(i, steps, sigmas[i], x, pred_x0);
        x = x_prev;
    }
}

}  // namespace sd
