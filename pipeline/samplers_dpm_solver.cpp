// samplers_dpm_solver.cpp — DPM fast and DPM adaptive: k-diffusion's DPMSolver (sampling.py, ab527a9a), i.e.
// DPM-Solver (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model Sampling in Around
// 10 Steps"): exponential-integrator steps of order 1, 2, 3 on the noise prediction eps in t = -log sigma
// (the paper's lambda), DPM-Solver-fast's order schedule (§3.4) and the adaptive DPM-Solver-12/23 (Appendix C)
// with k-diffusion's PID step-size controller. With eta > 0 each step ends ancestrally (the webui passes its
// "Eta for k-diffusion samplers", 1 by default), the noise drawn from rng.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "pipeline/samplers.h"

namespace sd {

namespace {

struct DpmSolver {
    const Denoiser& model;
    std::vector<float> den;
    int evals = 0;

    static double sigma(double t) { return std::exp(-t); }
    // eps(x, t) = (x - D(x; sigma(t))) / sigma(t); also leaves D in `den`
    void eps(const std::vector<float>& x, double t, std::vector<double>& e) {
        den.resize(x.size());
        model(x, (float)sigma(t), den);
        evals++;
        e.resize(x.size());
        for (size_t j = 0; j < x.size(); j++) e[j] = ((double)x[j] - den[j]) / sigma(t);
    }
    void step1(const std::vector<float>& x, double t, double tn, const std::vector<double>& e, std::vector<double>& out) {
        const double h = tn - t, k = sigma(tn) * std::expm1(h);
        out.resize(x.size());
        for (size_t j = 0; j < x.size(); j++) out[j] = x[j] - k * e[j];
    }
    // eps_r1: eps at the first intermediate point, computed here if empty (k-diffusion's eps_cache)
    void step2(const std::vector<float>& x, double t, double tn, const std::vector<double>& e, double r1,
               std::vector<double>& eps_r1, std::vector<double>& out) {
        const double h = tn - t, s1 = t + r1 * h;
        if (eps_r1.empty()) {
            std::vector<float> u1(x.size());
            const double k = sigma(s1) * std::expm1(r1 * h);
            for (size_t j = 0; j < x.size(); j++) u1[j] = (float)(x[j] - k * e[j]);
            eps(u1, s1, eps_r1);
        }
        const double a = sigma(tn) * std::expm1(h), b = sigma(tn) / (2 * r1) * std::expm1(h);
        out.resize(x.size());
        for (size_t j = 0; j < x.size(); j++) out[j] = x[j] - a * e[j] - b * (eps_r1[j] - e[j]);
    }
    void step3(const std::vector<float>& x, double t, double tn, const std::vector<double>& e,
               std::vector<double>& eps_r1, std::vector<double>& out) {
        const double r1 = 1.0 / 3, r2 = 2.0 / 3, h = tn - t, s1 = t + r1 * h, s2 = t + r2 * h;
        if (eps_r1.empty()) {
            std::vector<float> u1(x.size());
            const double k = sigma(s1) * std::expm1(r1 * h);
            for (size_t j = 0; j < x.size(); j++) u1[j] = (float)(x[j] - k * e[j]);
            eps(u1, s1, eps_r1);
        }
        std::vector<float> u2(x.size());
        const double k1 = sigma(s2) * std::expm1(r2 * h), k2 = sigma(s2) * (r2 / r1) * (std::expm1(r2 * h) / (r2 * h) - 1);
        for (size_t j = 0; j < x.size(); j++) u2[j] = (float)(x[j] - k1 * e[j] - k2 * (eps_r1[j] - e[j]));
        std::vector<double> eps_r2;
        eps(u2, s2, eps_r2);
        const double a = sigma(tn) * std::expm1(h), b = sigma(tn) / r2 * (std::expm1(h) / h - 1);
        out.resize(x.size());
        for (size_t j = 0; j < x.size(); j++) out[j] = x[j] - a * e[j] - b * (eps_r2[j] - e[j]);
    }
};

// k-diffusion get_ancestral_step, then the adjustment DPMSolver makes: t_next_ = min(t_end, t(sigma_down)) and
// su = sqrt(sigma(t_next)^2 - sigma(t_next_)^2).
void dpm_ancestral(double t, double t_next, double t_end, double eta, double* t_next_, double* su) {
    if (eta == 0) {
        *t_next_ = t_next, *su = 0;
        return;
    }
    const double s_from = std::exp(-t), s_to = std::exp(-t_next);
    const double up = std::min(s_to, eta * std::sqrt(s_to * s_to * (s_from * s_from - s_to * s_to) / (s_from * s_from)));
    const double down = std::sqrt(s_to * s_to - up * up);
    *t_next_ = std::min(t_end, -std::log(down));
    const double sn_ = std::exp(-*t_next_);
    *su = std::sqrt(s_to * s_to - sn_ * sn_);
}

// x = y + scale * noise, stored as float32; the noise is drawn even when scale is 0, as k-diffusion does.
void add_noise(std::vector<float>& x, const std::vector<double>& y, double scale, Rng& rng, std::vector<float>& noise) {
    noise.resize(x.size());
    rng.randn(noise.data(), (int64_t)noise.size());
    for (size_t j = 0; j < x.size(); j++) x[j] = (float)(y[j] + scale * noise[j]);
}

}  // namespace

void sample_dpm_fast(const Denoiser& model, std::vector<float>& x, double sigma_min, double sigma_max, int nfe, Rng& rng,
                     const SamplerCallback& callback, const SamplerOptions& opt) {
    if (!(sigma_min > 0) || !(sigma_max > 0)) throw std::logic_error("DPM fast: sigma_min and sigma_max must not be 0");
    if (nfe < 1) throw std::runtime_error("the number of sampling steps must be at least 1");
    DpmSolver dpm{model, {}, 0};
    const double t_start = -std::log(sigma_max), t_end = -std::log(sigma_min);
    const int m = nfe / 3 + 1;
    std::vector<int> orders;  // third order steps, ending with lower orders so the count is exactly nfe
    if (nfe % 3 == 0) {
        orders.assign((size_t)std::max(m - 2, 0), 3);
        orders.push_back(2);
        orders.push_back(1);
    } else {
        orders.assign((size_t)(m - 1), 3);
        orders.push_back(nfe % 3);
    }
    auto ts = [&](int i) {  // torch.linspace(t_start, t_end, m + 1)
        double step = (t_end - t_start) / m;
        return i < (m + 1) / 2 ? t_start + step * i : t_end - step * (m - i);
    };
    std::vector<double> e, eps_r1, out;
    std::vector<float> noise;
    const int steps = (int)orders.size();
    for (int i = 0; i < steps; i++) {
        const double t = ts(i), t_next = ts(i + 1);
        double t_next_, su;
        dpm_ancestral(t, t_next, t_end, opt.eta, &t_next_, &su);
        dpm.eps(x, t, e);
        if (callback) callback(i, steps, (float)DpmSolver::sigma(t), x, dpm.den);
        eps_r1.clear();
        if (orders[(size_t)i] == 1) dpm.step1(x, t, t_next_, e, out);
        else if (orders[(size_t)i] == 2) dpm.step2(x, t, t_next_, e, 0.5, eps_r1, out);
        else dpm.step3(x, t, t_next_, e, eps_r1, out);
        add_noise(x, out, su * opt.s_noise, rng, noise);
    }
}

void sample_dpm_adaptive(const Denoiser& model, std::vector<float>& x, double sigma_min, double sigma_max, Rng& rng,
                         const SamplerCallback& callback, const SamplerOptions& opt) {
    if (!(sigma_min > 0) || !(sigma_max > 0)) throw std::logic_error("DPM adaptive: sigma_min and sigma_max must not be 0");
    // k-diffusion's defaults, which the webui keeps: order 3, rtol 0.05, atol 0.0078, h_init 0.05, an I controller
    const int order = 3;
    const double rtol = 0.05, atol = 0.0078, accept_safety = 0.81, pid_eps = 1e-8;
    const double pcoeff = 0, icoeff = 1, dcoeff = 0, pid_order = opt.eta != 0 ? 1.5 : order;
    const double b1 = (pcoeff + icoeff + dcoeff) / pid_order, b2 = -(pcoeff + 2 * dcoeff) / pid_order, b3 = dcoeff / pid_order;
    double h = 0.05;
    std::vector<double> errs;
    DpmSolver dpm{model, {}, 0};
    const double t_start = -std::log(sigma_max), t_end = -std::log(sigma_min);
    double s = t_start;
    // x_low, x_high and x_prev stay in double: the error estimate compares them, and at the first steps it is
    // as small as float32 rounding
    std::vector<double> x_prev(x.begin(), x.end()), x_low, x_high, e, eps_r1;
    std::vector<float> noise;
    int step = 0;
    while (s < t_end - 1e-5) {
        const double t = std::min(t_end, s + h);
        double t_, su;
        dpm_ancestral(s, t, t_end, opt.eta, &t_, &su);
        dpm.eps(x, s, e);
        std::vector<float> denoised = dpm.den;
        eps_r1.clear();
        dpm.step2(x, s, t_, e, 1.0 / 3, eps_r1, x_low);  // DPM-Solver-2 with r1 = 1/3 shares eps_r1 with order 3
        dpm.step3(x, s, t_, e, eps_r1, x_high);
        double sum = 0;
        for (size_t j = 0; j < x.size(); j++) {
            double delta = std::max(atol, rtol * std::max(std::fabs(x_low[j]), std::fabs(x_prev[j])));
            double r = (x_low[j] - x_high[j]) / delta;
            sum += r * r;
        }
        const double error = std::sqrt(sum) / std::sqrt((double)x.size());
        // PIDStepSizeController.propose_step
        const double inv_error = 1 / (error + pid_eps);
        if (errs.empty()) errs.assign(3, inv_error);
        errs[0] = inv_error;
        double factor = std::pow(errs[0], b1) * std::pow(errs[1], b2) * std::pow(errs[2], b3);
        factor = 1 + std::atan(factor - 1);
        const bool accept = factor >= accept_safety;
        if (accept) {
            errs[2] = errs[1];
            errs[1] = errs[0];
        }
        h *= factor;
        if (accept) {
            x_prev = x_low;
            add_noise(x, x_high, su * opt.s_noise, rng, noise);
            s = t;
        }
        if (callback) callback(step, 0, (float)DpmSolver::sigma(s), x, denoised);  // steps: unknown in advance
        step++;
        if (step > 100000) throw std::runtime_error("DPM adaptive did not converge");
    }
}

}  // namespace sd
