// samplers_unipc.cpp — UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast
// Sampling of Diffusion Models") as the webui runs it: modules/models/diffusion/uni_pc/uni_pc.py (multistep,
// data prediction, no thresholding) driven by sd_samplers_timesteps_impl.unipc, ported from the webui 1.10.1 source.
//
// UniPC works in the VP form x_t = alpha_t x0 + sigma_t eps of a continuous time t in [1/N, 1] (N = 1000 table
// entries), with lambda_t = log(alpha_t / sigma_t). Each step predicts x at the next time from the last `order`
// x0 estimates (UniP, a multistep exponential integrator in lambda), evaluates the model there, and corrects the
// same step with that new estimate included (UniC); the evaluation is reused by the next step, so a run of N steps
// costs N model calls. The model is asked at the UNet timestep 1000 (t - 1/N) with x / alpha_t as the latent of
// noise level sigma_t / alpha_t (the pipeline's c_in then gives the UNet x itself), and returns x0.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "pipeline/samplers.h"

namespace sd {

namespace {

// NoiseScheduleVP('discrete'): log(alpha_t) piecewise linear between t_i = (i + 1) / N and 0.5 log(abar_i),
// the end segments extended beyond the table (uni_pc.py interpolate_fn).
struct VpSchedule {
    std::vector<double> t, log_alpha;  // (N,) ascending t, descending log alpha

    explicit VpSchedule(const std::vector<float>& alphas_cumprod) {
        const int N = (int)alphas_cumprod.size();
        for (int i = 0; i < N; i++) {
            t.push_back((i + 1) / (double)N);
            log_alpha.push_back(0.5 * std::log((double)alphas_cumprod[i]));
        }
    }
    // y at x on the polyline through (xs, ys), xs ascending
    static double interpolate(double x, const std::vector<double>& xs, const std::vector<double>& ys) {
        const int K = (int)xs.size();
        int k = (int)(std::upper_bound(xs.begin(), xs.end(), x) - xs.begin()) - 1;  // segment k .. k + 1
        k = std::min(std::max(k, 0), K - 2);
        return ys[k] + (x - xs[k]) * (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]);
    }
    double log_alpha_at(double tt) const { return interpolate(tt, t, log_alpha); }
    double alpha(double tt) const { return std::exp(log_alpha_at(tt)); }
    double sigma(double tt) const { return std::sqrt(1 - std::exp(2 * log_alpha_at(tt))); }
    double lambda(double tt) const {
        const double la = log_alpha_at(tt);
        return la - 0.5 * std::log(1 - std::exp(2 * la));
    }
    // t of a half-logSNR: log alpha = -0.5 log(1 + e^(-2 lambda)), then the polyline read backwards
    double inverse_lambda(double lamb) const {
        const double la = -0.5 * (std::max(0.0, -2 * lamb) + std::log1p(std::exp(-std::fabs(2 * lamb))));
        std::vector<double> xs(log_alpha.rbegin(), log_alpha.rend()), ys(t.rbegin(), t.rend());
        return interpolate(la, xs, ys);
    }
};

// UniPC.get_time_steps from t_T (1, or img2img's t_start) to t_0 = 1/N in `steps` steps (steps + 1 times)
std::vector<double> time_steps(UniPCSkip skip, const VpSchedule& ns, int steps, double t_T) {
    const double t_0 = ns.t.front();
    auto linspace = [&](double a, double b, int i) { return a + (b - a) * i / steps; };
    std::vector<double> ts;
    for (int i = 0; i <= steps; i++) {
        switch (skip) {
            case UniPCSkip::time_uniform: ts.push_back(linspace(t_T, t_0, i)); break;
            case UniPCSkip::time_quadratic: ts.push_back(std::pow(linspace(std::sqrt(t_T), std::sqrt(t_0), i), 2)); break;
            case UniPCSkip::logSNR: ts.push_back(ns.inverse_lambda(linspace(ns.lambda(t_T), ns.lambda(t_0), i))); break;
        }
    }
    return ts;
}

// Solves A y = b (n <= order, small) by Gaussian elimination with partial pivoting (torch.linalg.solve).
std::vector<double> solve(std::vector<std::vector<double>> A, std::vector<double> b) {
    const int n = (int)b.size();
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (std::fabs(A[r][c]) > std::fabs(A[p][c])) p = r;
        if (A[p][c] == 0) throw std::runtime_error("UniPC: singular coefficient matrix (repeated time steps)");
        std::swap(A[p], A[c]);
        std::swap(b[p], b[c]);
        for (int r = c + 1; r < n; r++) {
            const double f = A[r][c] / A[c][c];
            for (int k = c; k < n; k++) A[r][k] -= f * A[c][k];
            b[r] -= f * b[c];
        }
    }
    std::vector<double> y(n);
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++) s -= A[r][k] * y[k];
        y[r] = s / A[r][r];
    }
    return y;
}

// The inverse of a small matrix, column by column (torch.linalg.inv).
std::vector<std::vector<double>> inverse(const std::vector<std::vector<double>>& A) {
    const int n = (int)A.size();
    std::vector<std::vector<double>> inv(n, std::vector<double>(n));
    for (int c = 0; c < n; c++) {
        std::vector<double> e(n, 0.0);
        e[c] = 1;
        std::vector<double> col = solve(A, e);
        for (int r = 0; r < n; r++) inv[r][c] = col[r];
    }
    return inv;
}

struct UniPC {
    const Denoiser& model;
    const VpSchedule& ns;
    UniPCVariant variant;
    std::vector<float> x_ve, out;

    // data_prediction_fn: x0 at VP latent x and time t
    void model_fn(const std::vector<float>& x, double t, std::vector<double>& x0) {
        const double alpha = ns.alpha(t), sigma = ns.sigma(t);
        x_ve.resize(x.size());
        for (size_t j = 0; j < x.size(); j++) x_ve[j] = (float)(x[j] / alpha);
        DenoiseExtras e;
        e.timestep = (t - 1.0 / ns.t.size()) * 1000.0;  // UniPCCFG.get_model_input_time
        out.resize(x.size());
        model(x_ve, (float)(sigma / alpha), out, e);
        x0.assign(out.begin(), out.end());
    }

    // multistep_uni_pc_update: x at t from the estimates `m` (oldest first) at times `tp`; with the corrector, also
    // the model's estimate at the predicted x (model_t; empty without).
    void update(std::vector<float>& x, const std::vector<std::vector<double>>& m, const std::vector<double>& tp,
                double t, int order, bool use_corrector, std::vector<double>& model_t) {
        const size_t n = x.size();
        const double lambda_prev_0 = ns.lambda(tp.back()), lambda_t = ns.lambda(t);
        const std::vector<double>& m0 = m.back();
        const double sigma_prev_0 = ns.sigma(tp.back()), sigma_t = ns.sigma(t), alpha_t = ns.alpha(t);
        const double h = lambda_t - lambda_prev_0;

        std::vector<double> rks;
        std::vector<std::vector<double>> D1s;  // (order - 1, n): (m_i - m0) / r_i, newest first
        for (int i = 1; i < order; i++) {
            const size_t idx = m.size() - 1 - i;
            const double rk = (ns.lambda(tp[idx]) - lambda_prev_0) / h;
            rks.push_back(rk);
            std::vector<double> d(n);
            for (size_t j = 0; j < n; j++) d[j] = (m[idx][j] - m0[j]) / rk;
            D1s.push_back(std::move(d));
        }
        rks.push_back(1.0);
        const int K = (int)rks.size();  // = order
        const double hh = -h;           // predict_x0
        const double h_phi_1 = std::expm1(hh);
        std::vector<double> x_t_(n), x_t(n);
        for (size_t j = 0; j < n; j++) x_t_[j] = sigma_t / sigma_prev_0 * x[j] - alpha_t * h_phi_1 * m0[j];
        // sum_k w[k] D1s[k] at element j
        auto combine = [&](const std::vector<double>& w, size_t j) {
            double s = 0;
            for (size_t k = 0; k < D1s.size(); k++) s += w[k] * D1s[k][j];
            return s;
        };

        if (variant == UniPCVariant::vary_coeff) {
            // multistep_uni_pc_vary_update: C[i][k] = r_i^k / (k + 1)!, predictor rows from inv(C[:-1, :-1]),
            // corrector rows from inv(C)
            std::vector<std::vector<double>> C(K, std::vector<double>(K));
            for (int i = 0; i < K; i++) {
                double col = 1;
                for (int k = 0; k < K; k++) {
                    C[i][k] = col;
                    col = col * rks[i] / (k + 2);
                }
            }
            std::vector<std::vector<double>> A_p, A_c;
            if (!D1s.empty()) {
                std::vector<std::vector<double>> Cp(K - 1, std::vector<double>(K - 1));
                for (int i = 0; i < K - 1; i++)
                    for (int k = 0; k < K - 1; k++) Cp[i][k] = C[i][k];
                A_p = inverse(Cp);
            }
            if (use_corrector) A_c = inverse(C);
            std::vector<double> h_phi_ks;  // h phi_k(h), k = 1 .. K + 1
            double h_phi_k = h_phi_1, factorial_k = 1;
            for (int k = 1; k <= K + 1; k++) {
                h_phi_ks.push_back(h_phi_k);
                h_phi_k = h_phi_k / hh - 1 / factorial_k;
                factorial_k *= k + 1;
            }
            x_t = x_t_;
            for (int k = 0; k < K - 1; k++)
                for (size_t j = 0; j < n; j++) x_t[j] -= alpha_t * h_phi_ks[k + 1] * combine(A_p[k], j);
            if (use_corrector) {
                std::vector<float> xf(x_t.begin(), x_t.end());
                model_fn(xf, t, model_t);
                x_t = x_t_;
                int k = 0;
                for (k = 0; k < K - 1; k++)
                    for (size_t j = 0; j < n; j++) x_t[j] -= alpha_t * h_phi_ks[k + 1] * combine(A_c[k], j);
                if (K > 1) k = K - 2;  // the webui reads A_c[k][-1] with k left at its last value (0 when K = 1)
                for (size_t j = 0; j < n; j++) x_t[j] -= alpha_t * h_phi_ks[K] * ((model_t[j] - m0[j]) * A_c[k][K - 1]);
            }
        } else {
            // multistep_uni_pc_bh_update: B(h) = h (bh1) or e^h - 1 (bh2); R[i][k] = r_k^i, b_i = h phi_{i+1} i! / B(h)
            const double B_h = variant == UniPCVariant::bh1 ? hh : std::expm1(hh);
            std::vector<std::vector<double>> R(order, std::vector<double>(K));
            std::vector<double> b;
            double h_phi_k = h_phi_1 / hh - 1, factorial_i = 1;
            for (int i = 1; i <= order; i++) {
                for (int k = 0; k < K; k++) R[i - 1][k] = std::pow(rks[k], i - 1);
                b.push_back(h_phi_k * factorial_i / B_h);
                factorial_i *= i + 1;
                h_phi_k = h_phi_k / hh - 1 / factorial_i;
            }
            std::vector<double> rhos_p, rhos_c;
            if (!D1s.empty()) {
                if (order == 2) {
                    rhos_p = {0.5};
                } else {
                    std::vector<std::vector<double>> Rp(order - 1, std::vector<double>(order - 1));
                    for (int i = 0; i < order - 1; i++)
                        for (int k = 0; k < order - 1; k++) Rp[i][k] = R[i][k];
                    rhos_p = solve(Rp, std::vector<double>(b.begin(), b.end() - 1));
                }
            }
            if (use_corrector) rhos_c = order == 1 ? std::vector<double>{0.5} : solve(R, b);
            for (size_t j = 0; j < n; j++) x_t[j] = x_t_[j] - alpha_t * B_h * (D1s.empty() ? 0.0 : combine(rhos_p, j));
            if (use_corrector) {
                std::vector<float> xf(x_t.begin(), x_t.end());
                model_fn(xf, t, model_t);
                for (size_t j = 0; j < n; j++) {
                    const double corr_res = D1s.empty() ? 0.0 : combine(rhos_c, j);
                    x_t[j] = x_t_[j] - alpha_t * B_h * (corr_res + rhos_c.back() * (model_t[j] - m0[j]));
                }
            }
        }
        if (!use_corrector) model_t.clear();
        for (size_t j = 0; j < n; j++) x[j] = (float)x_t[j];
    }
};

}  // namespace

UniPCVariant parse_unipc_variant(const std::string& s) {
    if (s == "bh1") return UniPCVariant::bh1;
    if (s == "bh2") return UniPCVariant::bh2;
    if (s == "vary_coeff") return UniPCVariant::vary_coeff;
    throw std::runtime_error("unknown UniPC variant '" + s + "' (valid: bh1, bh2, vary_coeff)");
}

UniPCSkip parse_unipc_skip(const std::string& s) {
    if (s == "time_uniform") return UniPCSkip::time_uniform;
    if (s == "time_quadratic") return UniPCSkip::time_quadratic;
    if (s == "logSNR") return UniPCSkip::logSNR;
    throw std::runtime_error("unknown UniPC skip type '" + s + "' (valid: time_uniform, time_quadratic, logSNR)");
}

void sample_unipc(const Denoiser& model, std::vector<float>& x, int steps, const std::vector<float>& alphas_cumprod,
                  const SamplerCallback& callback, const UniPCOptions& opt, double t_start) {
    const int order = opt.order;
    if (order < 1) throw std::runtime_error("the UniPC order must be at least 1, got " + std::to_string(order));
    if (steps < order)  // uni_pc.py: assert steps >= order, "UniPC order must be < sampling steps"
        throw std::runtime_error("UniPC of order " + std::to_string(order) + " needs at least " + std::to_string(order) +
                                 " steps, got " + std::to_string(steps));
    const VpSchedule ns(alphas_cumprod);
    const std::vector<double> ts = time_steps(opt.skip_type, ns, steps, t_start);
    UniPC u{model, ns, opt.variant, {}, {}};

    std::vector<std::vector<double>> m(1);  // the model's x0 estimates, oldest first, at most `order`
    std::vector<double> tp{ts[0]};
    u.model_fn(x, ts[0], m[0]);
    std::vector<double> model_x;
    auto report = [&](int step, double t) {
        if (!callback) return;
        std::vector<float> d(m.back().begin(), m.back().end());
        callback(step, steps, (float)(ns.sigma(t) / ns.alpha(t)), x, d);
    };
    // the first order - 1 steps at increasing order, then `order` (lower at the end with lower_order_final)
    for (int step = 1; step <= steps; step++) {
        report(step - 1, tp.back());
        const bool warmup = step < order;
        const int step_order = warmup ? step : opt.lower_order_final ? std::min(order, steps + 1 - step) : order;
        const bool use_corrector = step != steps;
        u.update(x, m, tp, ts[step], step_order, use_corrector, model_x);
        if (warmup) {
            m.push_back(model_x);
            tp.push_back(ts[step]);
        } else {
            m.erase(m.begin()), tp.erase(tp.begin());
            tp.push_back(ts[step]);
            if (step < steps) m.push_back(model_x);
            else m.push_back({});  // the final estimate is not needed
        }
    }
}

}  // namespace sd
