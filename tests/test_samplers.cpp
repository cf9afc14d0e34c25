// Schedules and samplers against tests/data/golden_samplers.safetensors (tools/sampler_reference.py:
// schedules as the webui computes them in float32 torch, samplers re-derived in float64 torch from
// k-diffusion's formulas with an analytic Gaussian denoiser and recorded noise), plus names and .npy output.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "app/npy.h"
#include "pipeline/samplers.h"
#include "pipeline/schedule.h"
#include "pipeline/txt2img.h"
#include "safetensors.h"

using namespace sd;

namespace {

const char* kGolden = "tests/data/golden_samplers.safetensors";

std::vector<float> golden(const SafeTensors& st, const std::string& name) {
    Tensor t = st.get(name);
    return std::vector<float>(t.f32(), t.f32() + t.numel());
}

double g_worst = 0;  // the largest normalised error seen by close(), reported by the sampler tests

// Max error relative to the golden's magnitude (at least 1); prints max-abs, the normalised error and the
// first index beyond tol.
bool close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want, double tol) {
    if (got.size() != want.size()) {
        MESSAGE(what << ": " << got.size() << " values, want " << want.size());
        return false;
    }
    double scale = 1, max_abs = 0;
    for (float w : want) scale = std::max(scale, (double)std::fabs(w));
    long first = -1;
    for (size_t i = 0; i < got.size(); i++) {
        double e = std::fabs((double)got[i] - want[i]);
        max_abs = std::max(max_abs, e);
        if (first < 0 && !(e <= tol * scale)) first = (long)i;
    }
    g_worst = std::max(g_worst, max_abs / scale);
    if (first >= 0) {
        MESSAGE(what << ": max-abs " << max_abs << ", normalised " << max_abs / scale << " > " << tol << "; first at "
                     << first << ": got " << got[(size_t)first] << " want " << want[(size_t)first]);
        return false;
    }
    return true;
}

// Element-wise relative error, for positive sequences such as sigmas (0 must match exactly).
bool close_rel(const std::string& what, const std::vector<float>& got, const std::vector<float>& want, double rel) {
    if (got.size() != want.size()) {
        MESSAGE(what << ": " << got.size() << " values, want " << want.size());
        return false;
    }
    for (size_t i = 0; i < got.size(); i++) {
        if (!(std::fabs((double)got[i] - want[i]) <= rel * std::fabs((double)want[i]))) {
            MESSAGE(what << "[" << i << "]: got " << got[i] << " want " << want[i] << " (rel "
                         << std::fabs((double)got[i] - want[i]) / std::fabs((double)want[i]) << " > " << rel << ")");
            return false;
        }
    }
    return true;
}

// Serves the golden's recorded noise: the k-th randn call gets noise/pool[k].
class ReplayRng : public Rng {
public:
    explicit ReplayRng(std::vector<float> pool) : pool_(std::move(pool)) {}
    void randn(float* out, int64_t n) override {
        REQUIRE(n == 24);
        REQUIRE((size_t)(calls + 1) * 24 <= pool_.size());
        for (int64_t i = 0; i < n; i++) out[i] = pool_[(size_t)(calls * 24 + i)];
        calls++;
    }
    using Rng::randn;
    int calls = 0;
private:
    std::vector<float> pool_;
};

// D(x, sigma) for data x0 ~ N(mu, s^2) per element: the exact posterior mean.
Denoiser gaussian_denoiser(const std::vector<float>& mu, const std::vector<float>& s, int* evals) {
    return [mu, s, evals](const std::vector<float>& x, float sigma, std::vector<float>& out) {
        REQUIRE(x.size() == mu.size());
        out.resize(x.size());
        double sg2 = (double)sigma * sigma;
        for (size_t i = 0; i < x.size(); i++) {
            double s2 = (double)s[i] * s[i];
            out[i] = (float)((s2 * x[i] + sg2 * mu[i]) / (s2 + sg2));
        }
        if (evals) (*evals)++;
    };
}

// DDIM CFG++'s denoiser: classifier-free guidance between two such Gaussians (cond mu, uncond mu_u), at the
// golden's scale 7.5 times the sampler's multiplier, handing back the unconditional estimate when asked.
Denoiser guided_gaussian_denoiser(const std::vector<float>& mu, const std::vector<float>& mu_u, const std::vector<float>& s,
                                  int* evals) {
    Denoiser cond = gaussian_denoiser(mu, s, evals), uncond = gaussian_denoiser(mu_u, s, nullptr);
    return [cond, uncond](const std::vector<float>& x, float sigma, std::vector<float>& out, const DenoiseExtras& e) {
        std::vector<float> dc, du;
        cond(x, sigma, dc);
        uncond(x, sigma, du);
        out.resize(x.size());
        for (size_t i = 0; i < x.size(); i++) out[i] = (float)(du[i] + 7.5 * e.cfg_multiplier * ((double)dc[i] - du[i]));
        if (e.uncond) *e.uncond = du;
    };
}

struct Case { SamplerKind kind; const char* schedule; int steps; const char* variant; SamplerOptions opt; };

SamplerOptions with(double SamplerOptions::*field, double value) {
    SamplerOptions o;
    o.*field = value;
    return o;
}

// Runs one golden case; returns false (after messages) on any mismatch.
void check_run(const SafeTensors& st, const DiscreteSchedule& sd, const Case& c) {
    std::string name = std::string("run/") + sampler_name(c.kind) + "/" + c.schedule + "/n" + std::to_string(c.steps) +
                       (c.variant ? std::string("/") + c.variant : std::string());
    CAPTURE(name);
    std::vector<float> sigmas = golden(st, name + "/sigmas");

    // The sigmas the webui would pick (schedule, DPM2's discard, LCM's table, DDIM's timesteps). The golden
    // rounds each float32 torch op (linspace, lerp in log space, exp, pow); we round once, from double.
    std::vector<float> ours = sampler_sigmas(c.kind, parse_schedule(c.schedule), c.steps, sd);
    CHECK(close_rel(name + " sigmas", ours, sigmas, 2e-6));

    // Run on the golden's sigmas, so this checks the sampler alone.
    std::vector<float> mu = golden(st, "den/mu"), s = golden(st, "den/s"), init = golden(st, "noise/init");
    ReplayRng rng(golden(st, "noise/pool"));
    int evals = 0;
    Denoiser model = c.kind == SamplerKind::ddim_cfgpp ? guided_gaussian_denoiser(mu, golden(st, "den/mu_uncond"), s, &evals)
                                                        : gaussian_denoiser(mu, s, &evals);
    std::vector<double> timesteps;  // the UNet timesteps UniPC names
    if (c.kind == SamplerKind::unipc) {
        Denoiser plain = model;
        model = [plain, &timesteps](const std::vector<float>& x, float sigma, std::vector<float>& out, const DenoiseExtras& e) {
            timesteps.push_back(e.timestep);
            plain(x, sigma, out, e);
        };
    }
    std::vector<float> x = init;
    float scale = initial_noise_scale(c.kind, sigmas);
    for (float& v : x) v *= scale;
    std::vector<std::vector<float>> traj_x, traj_d;
    SamplerCallback cb = [&](int step, int steps, float sigma, const std::vector<float>& xs, const std::vector<float>& d) {
        CHECK(step == (int)traj_x.size());
        // Restart rebuilds its list; DPM fast / adaptive walk their own grid over the table's sigma range
        const bool own_grid = c.kind == SamplerKind::dpm_fast || c.kind == SamplerKind::dpm_adaptive ||
                              c.kind == SamplerKind::unipc;
        if (c.kind == SamplerKind::unipc) CHECK(steps == (int)sigmas.size());  // as many steps as DDIM timesteps
        if (!own_grid) CHECK(steps == (int)sigmas.size() - 1);
        if (!own_grid && c.kind != SamplerKind::restart) CHECK(sigma == sigmas[(size_t)step]);
        traj_x.push_back(xs);
        traj_d.push_back(d);
    };
    // The SDE samplers' noise sampler: the same recorded pool, in call order; the queries are checked below.
    std::vector<float> queries;
    SamplerOptions opt = c.opt;
    if (sampler_uses_brownian_noise(c.kind)) {
        opt.noise_sampler = [&](float sigma, float sigma_next, std::vector<float>& noise) {
            queries.push_back(sigma);
            queries.push_back(sigma_next);
            rng.randn(noise.data(), (int64_t)noise.size());
        };
    }
    sample(c.kind, model, x, sigmas, rng, cb, opt);
    if (st.has(name + "/queries")) {
        // DPM++ SDE asks at exp(-(t + h / 2)) computed in float32; torch's CPU expf differs from the C library's
        // in the last bit for ~9% of arguments (and CUDA's from both), so allow 2 float ulps. The other SDE
        // samplers ask at the sigmas themselves: exact.
        CHECK(close_rel(name + " noise queries", queries, golden(st, name + "/queries"),
                        c.kind == SamplerKind::dpmpp_sde ? 2.4e-7 : 0.0));
    } else {
        CHECK(queries.empty());
    }

    // Tolerance: the latent is stored as float32 after every update (2^-24 relative) over up to 22 model
    // evaluations, against a float64 reference: observed errors stay below 1e-6 of the latent's scale, while
    // a wrong coefficient, sigma or noise term shows at 1e-3 or more.
    // DPM adaptive: its first error estimates (x_low - x_high ~ 1e-9) are below the float32 rounding of the
    // model's inputs (the reference is float64 throughout; the webui float32), so its step sizes, a smooth
    // function of them, drift slightly: observed 1.1e-4; a wrong step or controller coefficient shows at 1e-2.
    CHECK(close(name + " x", x, golden(st, name + "/x"), c.kind == SamplerKind::dpm_adaptive ? 1e-3 : 1e-5));
    CHECK_MESSAGE(rng.calls == (int)golden(st, name + "/draws")[0], name << ": " << rng.calls << " randn calls");
    if (c.kind == SamplerKind::unipc) {  // one model call per step, the first at timestep 1000 (t = 1) - 1
        REQUIRE(timesteps.size() == sigmas.size());
        CHECK(std::fabs(timesteps.front() - 999.0) < 1e-9);
        for (double t : timesteps) CHECK((t >= 0 && t <= 999));
        // time_uniform: t_k = 1 - k (1 - 1/1000) / N, the UNet at 1000 (t_k - 1/1000) = 999 (1 - k / N)
        if (c.opt.unipc.skip_type == UniPCSkip::time_uniform)
            for (size_t k = 0; k < timesteps.size(); k++)
                CHECK(std::fabs(timesteps[k] - 999.0 * (1 - (double)k / timesteps.size())) < 1e-9);
    }
    if (st.has(name + "/traj_x")) {
        std::vector<float> gx = golden(st, name + "/traj_x"), gd = golden(st, name + "/traj_denoised");
        REQUIRE(traj_x.size() * 24 == gx.size());
        for (size_t i = 0; i < traj_x.size(); i++) {
            std::vector<float> wx(gx.begin() + (long)i * 24, gx.begin() + (long)(i + 1) * 24);
            std::vector<float> wd(gd.begin() + (long)i * 24, gd.begin() + (long)(i + 1) * 24);
            CHECK(close(name + " x at step " + std::to_string(i), traj_x[i], wx, 1e-5));
            CHECK(close(name + " denoised at step " + std::to_string(i), traj_d[i], wd, 1e-5));
        }
    }
}

}  // namespace

TEST_CASE("schedule: SD's DDPM table matches ldm / k-diffusion (float32)") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    REQUIRE(sd.sigmas.size() == 1000);
    // alphas_cumprod is float64 arithmetic rounded once; torch's linspace may differ from ours in the last
    // double bit, which can move the float32 rounding by one ulp.
    CHECK(close_rel("alphas_cumprod", sd.alphas_cumprod, golden(st, "table/alphas_cumprod"), 1.2e-7));
    CHECK(close_rel("sigmas", sd.sigmas, golden(st, "table/sigmas"), 2.4e-7));
    CHECK(close_rel("log_sigmas", sd.log_sigmas, golden(st, "table/log_sigmas"), 2.4e-7));
    CHECK(std::fabs(sd.sigma_min() - 0.0291675f) < 1e-6);
    CHECK(std::fabs(sd.sigma_max() - 14.614642f) < 1e-5);
}

TEST_CASE("schedule: discrete, karras and exponential sigmas for the SD and LCM tables") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule(), lcm = lcm_schedule(sd);
    for (auto [tname, table] : {std::pair<const char*, const DiscreteSchedule*>{"sd", &sd}, {"lcm", &lcm}}) {
        for (ScheduleKind kind : {ScheduleKind::discrete, ScheduleKind::karras, ScheduleKind::exponential}) {
            for (int n : {1, 2, 4, 10, 20, 25}) {
                std::string name = std::string("sched/") + tname + "/" + schedule_name(kind) + "/n" + std::to_string(n);
                // float32 torch (linspace, lerp, exp / pow) vs our double, rounded once: a few float ulps
                CHECK(close_rel(name, make_sigmas(kind, n, *table), golden(st, name), 2e-6));
            }
        }
    }
}

TEST_CASE("schedule: the webui's other schedules (modules/sd_schedulers.py) for the SD and LCM tables") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule(), lcm = lcm_schedule(sd);
    for (auto [tname, table] : {std::pair<const char*, const DiscreteSchedule*>{"sd", &sd}, {"lcm", &lcm}}) {
        for (ScheduleKind kind : all_schedules()) {
            if (kind == ScheduleKind::discrete || kind == ScheduleKind::karras || kind == ScheduleKind::exponential) continue;
            for (int n : {1, 2, 3, 4, 7, 10, 11, 20, 25, 50}) {
                std::string name = std::string("sched/") + tname + "/" + schedule_name(kind) + "/n" + std::to_string(n);
                // Same bound as above: the reference rounds each float32 torch op, we round once from double
                // (KL Optimal: float32 as the webui, tan's slope near sigma_max amplifies an ulp of alpha ~20x).
                CHECK(close_rel(name, make_sigmas(kind, n, *table), golden(st, name), 2e-6));
            }
        }
    }
    for (auto [a, b] : {std::pair<double, double>{0.5, 0.7}, {0.9, 0.3}}) {
        char name[64];
        std::snprintf(name, sizeof name, "sched/sd/beta_a%g_b%g/n10", a, b);
        ScheduleOptions opt;
        opt.beta_alpha = a;
        opt.beta_beta = b;
        CHECK(close_rel(name, make_sigmas(ScheduleKind::beta, 10, sd, opt), golden(st, name), 2e-6));
    }
    // The shapes the webui gives them: KL Optimal ends at sigma_min, not 0; DDIM's stride can add a level;
    // Align Your Steps at 11 steps is NVIDIA's list as written.
    CHECK(make_sigmas(ScheduleKind::kl_optimal, 4, sd).back() > 0.029f);
    CHECK(make_sigmas(ScheduleKind::ddim, 7, sd).size() == 9);
    CHECK(make_sigmas(ScheduleKind::align_your_steps, 11, sd)[1] == 6.475f);
    // beta_ppf inverts I_x(a, b): the symmetric case is symmetric, a = b = 1 is uniform
    CHECK(std::fabs(beta_ppf(0.5, 0.6, 0.6) - 0.5) < 1e-15);
    CHECK(std::fabs(beta_ppf(0.3, 1.0, 1.0) - 0.3) < 1e-15);
    CHECK(std::fabs(beta_ppf(0.25, 2.0, 1.0) - 0.5) < 1e-15);  // I_x(2, 1) = x^2
    CHECK_THROWS_AS(make_sigmas(ScheduleKind::beta, 4, sd, ScheduleOptions{0.0, 0.6}), std::runtime_error);
}

TEST_CASE("schedule: the webui's sigma min / sigma max / rho settings, and its infotext entries") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    for (ScheduleKind kind : all_schedules()) {
        for (auto [smin, smax, rho] : {std::tuple<double, double, double>{0.1, 10.0, 0.0}, {0.0, 8.0, 5.0}, {0.05, 0.0, 3.0}}) {
            char name[96];
            std::snprintf(name, sizeof name, "sched/sd/%s/min%g_max%g_rho%g/n10", schedule_name(kind), smin, smax, rho);
            ScheduleOptions opt;
            opt.sigma_min = smin, opt.sigma_max = smax, opt.rho = rho;
            CHECK(close_rel(name, make_sigmas(kind, 10, sd, opt), golden(st, name), 2e-6));
        }
    }
    ScheduleOptions opt;
    opt.sigma_min = 0.1, opt.sigma_max = 10, opt.rho = 5;
    // They move the schedules that take them ...
    CHECK(make_sigmas(ScheduleKind::karras, 10, sd, opt)[0] == 10.0f);
    CHECK(make_sigmas(ScheduleKind::normal, 10, sd, opt) != make_sigmas(ScheduleKind::normal, 10, sd));
    // ... and the webui's infotext says so, in its order, for any named schedule (Uniform ignores the bounds but
    // still records them); rho only where the schedule has one and it differs from its default.
    using Entries = std::vector<std::pair<std::string, double>>;
    CHECK(schedule_infotext(ScheduleKind::karras, true, sd, opt) ==
          Entries{{"Schedule min sigma", 0.1}, {"Schedule max sigma", 10.0}, {"Schedule rho", 5.0}});
    CHECK(schedule_infotext(ScheduleKind::discrete, true, sd, opt) ==
          Entries{{"Schedule min sigma", 0.1}, {"Schedule max sigma", 10.0}});
    CHECK(schedule_infotext(ScheduleKind::discrete, false, sd, opt).empty());  // Automatic without a default
    opt.rho = 7;
    CHECK(schedule_infotext(ScheduleKind::karras, true, sd, opt).size() == 2);  // rho 7 is Karras's default
    CHECK(schedule_infotext(ScheduleKind::polyexponential, true, sd, opt).back() == Entries::value_type{"Schedule rho", 7.0});
    opt = ScheduleOptions{};
    opt.sigma_max = sd.sigma_max();  // equal to the model's own: not written
    CHECK(schedule_infotext(ScheduleKind::exponential, true, sd, opt).empty());
    CHECK(schedule_infotext(ScheduleKind::beta, true, sd, {}) ==
          Entries{{"Beta schedule alpha", 0.6}, {"Beta schedule beta", 0.6}});
}

TEST_CASE("schedule: Align Your Steps takes the SDXL list for SDXL models") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    for (int n : {4, 10, 11, 25}) {
        std::string name = "sched/sd/align_your_steps/sdxl/n" + std::to_string(n);
        ScheduleOptions opt;
        opt.sdxl = true;
        CHECK(close_rel(name, make_sigmas(ScheduleKind::align_your_steps, n, sd, opt), golden(st, name), 2e-6));
    }
    // The selection by model family: SDXL (base or refiner) gets the SDXL list, every other family the SD 1.5 one.
    CHECK(schedule_options_for(ModelFamily::sdxl, {}).sdxl);
    CHECK(!schedule_options_for(ModelFamily::sd1, {}).sdxl);
    CHECK(!schedule_options_for(ModelFamily::sd2, {}).sdxl);
    CHECK(make_sigmas(ScheduleKind::align_your_steps, 11, sd, schedule_options_for(ModelFamily::sdxl, {}))[3] == 2.181f);
}

TEST_CASE("schedule: sigma_to_t and t_to_sigma (log-sigma interpolation)") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    std::vector<float> sig = golden(st, "map/sigma_in"), t_want = golden(st, "map/t_out");
    for (size_t i = 0; i < sig.size(); i++) {
        // the golden's w and t are float32 (t near 999 has ulp 6e-5; we differ by <= 5e-5); 2e-4 of a timestep is far below what
        // the UNet's timestep embedding resolves
        CHECK_MESSAGE(std::fabs(sd.sigma_to_t(sig[i]) - t_want[i]) < 2e-4, "sigma " << sig[i]);
    }
    std::vector<float> t_in = golden(st, "map/t_in"), sig_want = golden(st, "map/sigma_out"), sig_got;
    for (float t : t_in) sig_got.push_back((float)sd.t_to_sigma(t));
    CHECK(close_rel("t_to_sigma", sig_got, sig_want, 2e-6));

    // The table's own sigmas map to exact integer timesteps (DDIM and LCM feed the UNet these).
    int inexact = 0;
    for (int t = 0; t < 1000; t++) inexact += sd.sigma_to_t(sd.sigmas[(size_t)t]) != (double)t;
    CHECK(inexact == 0);
    CHECK(sd.sigma_to_t(1e-3f) == 0.0);    // below the table: clamped
    CHECK(sd.sigma_to_t(100.0f) == 999.0);  // above
}

TEST_CASE("schedule: LCM's table is SD's every 20th timestep from 19, quantized") {
    DiscreteSchedule sd = sd_schedule(), lcm = lcm_schedule(sd);
    REQUIRE(lcm.sigmas.size() == 50);
    CHECK(lcm.sigmas[0] == sd.sigmas[19]);
    CHECK(lcm.sigmas[49] == sd.sigmas[999]);
    CHECK(lcm.sigma_to_t(sd.sigmas[500]) == 499.0);  // nearest entry in log sigma: 499 = 24 * 20 + 19
    CHECK(lcm.sigma_to_t(lcm.sigma_max()) == 999.0);
    CHECK(std::fabs(lcm.t_to_sigma(39) - sd.sigmas[39]) < 1e-6 * sd.sigmas[39]);
    double c_skip, c_out;
    lcm_boundary_scalings(19, &c_skip, &c_out);  // 10 t = 190: 0.25 / 36100.25 and 190 / sqrt(36100.25)
    CHECK(std::fabs(c_skip - 6.925160e-6) < 1e-11);
    CHECK(std::fabs(c_out - 0.99999654) < 1e-8);
}

TEST_CASE("samplers: every sampler x schedule x {1, 4, 10} steps against the float64 reference") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    const SamplerKind kinds[] = {SamplerKind::euler, SamplerKind::euler_a, SamplerKind::heun, SamplerKind::dpm2,
                                 SamplerKind::dpm2_a, SamplerKind::dpmpp_2m, SamplerKind::dpmpp_2s_a, SamplerKind::lms,
                                 SamplerKind::ddim, SamplerKind::lcm, SamplerKind::dpmpp_sde, SamplerKind::dpmpp_2m_sde,
                                 SamplerKind::dpmpp_2m_sde_heun, SamplerKind::dpmpp_3m_sde, SamplerKind::restart,
                                 SamplerKind::plms, SamplerKind::dpm_fast, SamplerKind::dpm_adaptive,
                                 SamplerKind::ddim_cfgpp, SamplerKind::unipc};
    for (SamplerKind kind : kinds) {
        for (const char* schedule : {"discrete", "karras", "exponential"}) {
            if ((sampler_is_timestep(kind) || kind == SamplerKind::dpm_adaptive) && std::string(schedule) != "discrete")
                continue;  // the webui ignores the schedule (DPM adaptive: but for the initial noise scale)
            for (int steps : {1, 4, 10}) {
                if (kind == SamplerKind::unipc) steps = steps == 1 ? 7 : steps;  // order 3 needs 3 steps; 7 gives 8
                check_run(st, sd, Case{kind, schedule, steps, nullptr, {}});
            }
            if (kind == SamplerKind::dpm_fast)  // its order pattern depends on steps % 3
                for (int steps : {2, 3, 6}) check_run(st, sd, Case{kind, schedule, steps, nullptr, {}});
            // Restart rebuilds the schedule and restarts from 20 steps (twice from 36)
            if (kind == SamplerKind::restart)
                for (int steps : {20, 36}) check_run(st, sd, Case{kind, schedule, steps, nullptr, {}});
        }
    }
    MESSAGE("largest normalised error vs the float64 reference: " << g_worst);
}

TEST_CASE("samplers: Euler, DPM++ 2M and DPM2 on the webui's other schedules") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    for (SamplerKind kind : {SamplerKind::euler, SamplerKind::dpmpp_2m, SamplerKind::dpm2}) {
        for (ScheduleKind sched : all_schedules()) {
            if (sched == ScheduleKind::discrete || sched == ScheduleKind::karras || sched == ScheduleKind::exponential) continue;
            for (int steps : {4, 10}) check_run(st, sd, Case{kind, schedule_name(sched), steps, nullptr, {}});
        }
    }
}

TEST_CASE("samplers: churn, eta and s_noise options") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    check_run(st, sd, {SamplerKind::euler, "discrete", 10, "churn", with(&SamplerOptions::s_churn, 1.0)});
    check_run(st, sd, {SamplerKind::heun, "karras", 4, "churn", with(&SamplerOptions::s_churn, 2.0)});
    check_run(st, sd, {SamplerKind::dpm2, "exponential", 4, "churn", with(&SamplerOptions::s_churn, 1.0)});
    check_run(st, sd, {SamplerKind::euler_a, "discrete", 10, "eta05", with(&SamplerOptions::eta, 0.5)});
    check_run(st, sd, {SamplerKind::dpmpp_2s_a, "karras", 4, "eta0", with(&SamplerOptions::eta, 0.0)});
    check_run(st, sd, {SamplerKind::dpm2_a, "discrete", 4, "snoise08", with(&SamplerOptions::s_noise, 0.8)});
    check_run(st, sd, {SamplerKind::ddim, "discrete", 10, "eta1", with(&SamplerOptions::eta_ddim, 1.0)});
    check_run(st, sd, {SamplerKind::dpmpp_sde, "karras", 10, "eta05", with(&SamplerOptions::eta, 0.5)});
    check_run(st, sd, {SamplerKind::dpmpp_sde, "karras", 4, "eta0", with(&SamplerOptions::eta, 0.0)});
    check_run(st, sd, {SamplerKind::dpmpp_2m_sde, "exponential", 10, "eta05", with(&SamplerOptions::eta, 0.5)});
    check_run(st, sd, {SamplerKind::dpmpp_2m_sde_heun, "exponential", 10, "snoise08", with(&SamplerOptions::s_noise, 0.8)});
    check_run(st, sd, {SamplerKind::dpmpp_3m_sde, "exponential", 10, "eta0", with(&SamplerOptions::eta, 0.0)});
    check_run(st, sd, {SamplerKind::dpmpp_3m_sde, "karras", 10, "eta05", with(&SamplerOptions::eta, 0.5)});
    check_run(st, sd, {SamplerKind::dpm_fast, "discrete", 10, "eta0", with(&SamplerOptions::eta, 0.0)});
    check_run(st, sd, {SamplerKind::dpm_adaptive, "discrete", 10, "eta0", with(&SamplerOptions::eta, 0.0)});
    check_run(st, sd, {SamplerKind::ddim_cfgpp, "discrete", 10, "eta1", with(&SamplerOptions::eta_ddim, 1.0)});
}

TEST_CASE("samplers: UniPC's settings (variant, skip type, order, lower order final)") {
    SafeTensors st(kGolden);
    DiscreteSchedule sd = sd_schedule();
    auto unipc = [](UniPCVariant v, UniPCSkip skip, int order, bool lower_order_final) {
        SamplerOptions o;
        o.unipc = UniPCOptions{v, skip, order, lower_order_final};
        return o;
    };
    const UniPCVariant bh1 = UniPCVariant::bh1, bh2 = UniPCVariant::bh2, vary = UniPCVariant::vary_coeff;
    const UniPCSkip uniform = UniPCSkip::time_uniform;
    check_run(st, sd, {SamplerKind::unipc, "discrete", 10, "bh2", unipc(bh2, uniform, 3, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 10, "vary_coeff", unipc(vary, uniform, 3, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 4, "vary_coeff", unipc(vary, uniform, 3, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 10, "logSNR", unipc(bh1, UniPCSkip::logSNR, 3, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 7, "time_quadratic", unipc(bh1, UniPCSkip::time_quadratic, 3, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 4, "order1", unipc(bh1, uniform, 1, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 10, "order2", unipc(bh1, uniform, 2, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 10, "order5", unipc(bh2, uniform, 5, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 10, "order4_vary", unipc(vary, uniform, 4, true)});
    check_run(st, sd, {SamplerKind::unipc, "discrete", 10, "full_order_final", unipc(bh1, uniform, 3, false)});
    // more order than steps: the webui's assertion, here one sentence
    std::vector<float> x(24, 0.0f);
    CHECK_THROWS_WITH_AS(sample_unipc(gaussian_denoiser(x, std::vector<float>(24, 1.0f), nullptr), x, 2,
                                      sd.alphas_cumprod, {}, UniPCOptions{}),
                         "UniPC of order 3 needs at least 3 steps, got 2", std::runtime_error);
    CHECK(parse_unipc_variant("vary_coeff") == vary);
    CHECK(parse_unipc_skip("logSNR") == UniPCSkip::logSNR);
    CHECK_THROWS_AS(parse_unipc_variant("bh3"), std::runtime_error);
}

TEST_CASE("samplers: webui step rules (DPM2 discard, DDIM timesteps, initial noise scale)") {
    DiscreteSchedule sd = sd_schedule();
    // DPM2 asks for steps + 1 levels and drops the next-to-last
    std::vector<float> plain = make_sigmas(ScheduleKind::karras, 11, sd);
    std::vector<float> dpm2 = sampler_sigmas(SamplerKind::dpm2, ScheduleKind::karras, 10, sd);
    REQUIRE(dpm2.size() == 11);
    CHECK(dpm2[9] == plain[9]);
    CHECK(dpm2[10] == 0.0f);
    // DDIM, 20 steps: timesteps 1, 51, ..., 951 from the top, exact table sigmas, 19 model evaluations
    std::vector<float> ddim = sampler_sigmas(SamplerKind::ddim, ScheduleKind::discrete, 20, sd);
    REQUIRE(ddim.size() == 20);
    CHECK(ddim.front() == sd.sigmas[951]);
    CHECK(ddim.back() == sd.sigmas[1]);
    for (size_t k = 0; k < ddim.size(); k++) CHECK(sd.sigma_to_t(ddim[k]) == 951.0 - 50.0 * (double)k);
    CHECK(sampler_sigmas(SamplerKind::ddim, ScheduleKind::discrete, 3, sd).size() == 4);  // 1000 // 3 = 333: 1, 334, 667, 999
    CHECK(initial_noise_scale(SamplerKind::ddim, ddim) == 1.0f);
    std::vector<float> euler = sampler_sigmas(SamplerKind::euler, ScheduleKind::discrete, 20, sd);
    CHECK(initial_noise_scale(SamplerKind::euler, euler) == euler[0]);
    CHECK(std::fabs(euler[0] - sd.sigma_max()) < 1e-6 * sd.sigma_max());
    // LCM samples its own table
    CHECK(sampler_sigmas(SamplerKind::lcm, ScheduleKind::discrete, 4, sd).back() == 0.0f);
    CHECK(sampler_table(SamplerKind::lcm, sd).sigmas.size() == 50);
    CHECK_THROWS_AS(sampler_sigmas(SamplerKind::euler, ScheduleKind::discrete, 0, sd), std::runtime_error);
}

TEST_CASE("samplers: LMS coefficients integrate the Lagrange basis exactly") {
    std::vector<float> t = {14.6f, 9.0f, 5.5f, 3.0f, 1.4f, 0.0f};
    for (int i = 0; i < 5; i++) {
        int order = std::min(i + 1, 4);
        double sum = 0;
        for (int j = 0; j < order; j++) sum += linear_multistep_coeff(order, t, i, j);
        CHECK(std::fabs(sum - ((double)t[i + 1] - t[i])) < 1e-12);  // the basis sums to 1
    }
    // order 2 at i = 1: integral of (tau - t0) / (t1 - t0) over [t1, t2] (for the newest derivative, j = 0)
    double t0 = t[0], t1 = t[1], t2 = t[2];
    double want = ((t2 - t0) * (t2 - t0) - (t1 - t0) * (t1 - t0)) / (2.0 * (t1 - t0));
    CHECK(std::fabs(linear_multistep_coeff(2, t, 1, 0) - want) < 1e-12);
    CHECK_THROWS_AS(linear_multistep_coeff(3, t, 1, 0), std::logic_error);
}

TEST_CASE("samplers: every sampler the webui 1.10.1 lists, by label and alias") {
    // modules/sd_samplers_kdiffusion.py samplers_k_diffusion, sd_samplers_timesteps.py samplers_timesteps,
    // sd_samplers_lcm.py samplers_lcm: (label, aliases)
    const std::vector<std::pair<const char*, std::vector<const char*>>> webui = {
        {"DPM++ 2M", {"k_dpmpp_2m"}}, {"DPM++ SDE", {"k_dpmpp_sde"}}, {"DPM++ 2M SDE", {"k_dpmpp_2m_sde"}},
        {"DPM++ 2M SDE Heun", {"k_dpmpp_2m_sde_heun"}}, {"DPM++ 2S a", {"k_dpmpp_2s_a"}},
        {"DPM++ 3M SDE", {"k_dpmpp_3m_sde"}}, {"Euler a", {"k_euler_a", "k_euler_ancestral"}}, {"Euler", {"k_euler"}},
        {"LMS", {"k_lms"}}, {"Heun", {"k_heun"}}, {"DPM2", {"k_dpm_2"}}, {"DPM2 a", {"k_dpm_2_a"}},
        {"DPM fast", {"k_dpm_fast"}}, {"DPM adaptive", {"k_dpm_ad"}}, {"Restart", {"restart"}}, {"DDIM", {"ddim"}},
        {"DDIM CFG++", {"ddim_cfgpp"}}, {"PLMS", {"plms"}}, {"UniPC", {"unipc"}}, {"LCM", {"k_lcm"}}};
    CHECK(webui.size() == all_samplers().size());
    for (const auto& [label, aliases] : webui) {
        CAPTURE(label);
        std::optional<ScheduleKind> sched;
        const SamplerKind k = parse_sampler(label, &sched);
        CHECK(!sched.has_value());
        CHECK(std::string(sampler_display_name(k)) == label);
        for (const char* a : aliases) CHECK(parse_sampler(a) == k);
    }
}

TEST_CASE("samplers: names, display names and schedule suffixes") {
    std::optional<ScheduleKind> sched;
    CHECK(parse_sampler("euler_a", &sched) == SamplerKind::euler_a);
    CHECK(!sched.has_value());
    CHECK(parse_sampler("Euler a", &sched) == SamplerKind::euler_a);
    CHECK(parse_sampler("EULER A") == SamplerKind::euler_a);
    CHECK(parse_sampler("k_euler_ancestral") == SamplerKind::euler_a);
    CHECK(parse_sampler("DPM++ 2M Karras", &sched) == SamplerKind::dpmpp_2m);
    CHECK(sched == ScheduleKind::karras);
    CHECK(parse_sampler("DPM2 Karras", &sched) == SamplerKind::dpm2);
    CHECK(sched == ScheduleKind::karras);
    CHECK(parse_sampler("dpm2 a karras", &sched) == SamplerKind::dpm2_a);
    CHECK(parse_sampler("dpmpp_2m_karras", &sched) == SamplerKind::dpmpp_2m);
    CHECK(sched == ScheduleKind::karras);
    CHECK(parse_sampler("k_dpmpp_2s_a_ka", &sched) == SamplerKind::dpmpp_2s_a);
    CHECK(sched == ScheduleKind::karras);
    CHECK(parse_sampler("Euler Exponential", &sched) == SamplerKind::euler);
    CHECK(sched == ScheduleKind::exponential);
    CHECK(parse_sampler("LMS Uniform", &sched) == SamplerKind::lms);
    CHECK(sched == ScheduleKind::discrete);
    CHECK(parse_sampler(" DDIM ", &sched) == SamplerKind::ddim);
    CHECK(!sched.has_value());
    for (SamplerKind k : all_samplers()) {
        CHECK(parse_sampler(sampler_name(k)) == k);
        CHECK(parse_sampler(sampler_display_name(k)) == k);
    }
    CHECK(std::string(sampler_display_name(SamplerKind::dpmpp_2s_a)) == "DPM++ 2S a");
    CHECK(std::string(sampler_display_name(SamplerKind::dpm2_a)) == "DPM2 a");
    try {
        parse_sampler("Karras");
        CHECK(false);
    } catch (const std::runtime_error& e) {
        std::string msg = e.what();
        CHECK(msg.find("'Karras'") != std::string::npos);
        CHECK(msg.find("dpmpp_2m (DPM++ 2M)") != std::string::npos);  // the error lists the valid names
    }
    CHECK(parse_sampler("DPM++ 3M SDE Exponential", &sched) == SamplerKind::dpmpp_3m_sde);
    CHECK(sched == ScheduleKind::exponential);
    CHECK(parse_sampler("DPM++ 2M SDE Heun Karras", &sched) == SamplerKind::dpmpp_2m_sde_heun);
    CHECK(sched == ScheduleKind::karras);
    CHECK(parse_sampler("k_dpmpp_sde") == SamplerKind::dpmpp_sde);
    CHECK(std::string(webui_schedule_type(SamplerKind::dpmpp_2m_sde, std::nullopt)) == "Exponential");
    CHECK(std::string(webui_schedule_type(SamplerKind::dpmpp_sde, std::nullopt)) == "Karras");
    CHECK_THROWS_AS(parse_sampler("dpm++ 4m sde"), std::runtime_error);

    CHECK(parse_schedule("Karras") == ScheduleKind::karras);
    CHECK(parse_schedule("uniform") == ScheduleKind::discrete);
    CHECK(parse_schedule("discrete") == ScheduleKind::discrete);
    CHECK_THROWS_AS(parse_schedule("cosine"), std::runtime_error);
    CHECK(std::string(schedule_label(ScheduleKind::karras)) == "Karras");
    CHECK(std::string(schedule_label(ScheduleKind::exponential)) == "Exponential");
    CHECK(std::string(schedule_label(ScheduleKind::discrete)) == "Uniform");
    CHECK(webui_automatic_schedule(SamplerKind::dpmpp_2m) == ScheduleKind::karras);
    CHECK(webui_automatic_schedule(SamplerKind::euler_a) == ScheduleKind::discrete);
    // What the webui writes as 'Schedule type' (KDiffusionSampler.get_sigmas overwrites "Automatic" with the
    // schedule it ran when that is a named one; DDIM writes the choice as is)
    CHECK(std::string(webui_schedule_type(SamplerKind::euler_a, std::nullopt)) == "Automatic");
    CHECK(std::string(webui_schedule_type(SamplerKind::dpmpp_2m, std::nullopt)) == "Karras");
    CHECK(std::string(webui_schedule_type(SamplerKind::dpmpp_2m, ScheduleKind::discrete)) == "Uniform");
    CHECK(std::string(webui_schedule_type(SamplerKind::ddim, std::nullopt)) == "Automatic");
    CHECK(std::string(webui_schedule_type(SamplerKind::ddim, ScheduleKind::karras)) == "Karras");
    // every schedule by name and label; webui aliases; sampler-name suffixes
    for (ScheduleKind k : all_schedules()) {
        CHECK(parse_schedule(schedule_name(k)) == k);
        CHECK(parse_schedule(schedule_label(k)) == k);
        CHECK(parse_sampler(std::string("Euler ") + schedule_label(k), &sched) == SamplerKind::euler);
        CHECK(sched == k);
        CHECK(parse_sampler(std::string("dpmpp_2m_") + schedule_name(k), &sched) == SamplerKind::dpmpp_2m);
        CHECK(sched == k);
    }
    CHECK(parse_schedule("SGMUniform") == ScheduleKind::sgm_uniform);
    CHECK(parse_schedule("align your steps") == ScheduleKind::align_your_steps);
    CHECK(is_automatic_schedule("Automatic"));
    CHECK_THROWS_AS(parse_schedule("automatic"), std::runtime_error);  // a per-sampler choice, resolved by the CLI
    CHECK(parse_sampler("DPM++ 2M SGM Uniform", &sched) == SamplerKind::dpmpp_2m);
    CHECK(sched == ScheduleKind::sgm_uniform);
}

TEST_CASE("npy: version 1.0 header, 64-byte aligned data, little-endian float32") {
    std::vector<float> v(24);
    for (int i = 0; i < 24; i++) v[(size_t)i] = (float)i * 0.5f - 3;
    std::string b = npy_bytes(v.data(), {2, 3, 4});
    REQUIRE(b.size() > 10);
    CHECK(b.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
    size_t header_len = (unsigned char)b[8] | ((size_t)(unsigned char)b[9] << 8);
    CHECK((10 + header_len) % 64 == 0);
    std::string header = b.substr(10, header_len);
    CHECK(header.find("'descr': '<f4'") != std::string::npos);
    CHECK(header.find("'fortran_order': False") != std::string::npos);
    CHECK(header.find("'shape': (2, 3, 4)") != std::string::npos);
    CHECK(header.back() == '\n');
    REQUIRE(b.size() == 10 + header_len + 24 * 4);
    float back[24];
    std::memcpy(back, b.data() + 10 + header_len, sizeof back);  // this host is little-endian (x86, arm64)
    for (int i = 0; i < 24; i++) CHECK(back[i] == v[(size_t)i]);
    CHECK(npy_bytes(v.data(), {7}).find("'shape': (7,)") != std::string::npos);  // 1-d keeps its comma
    CHECK_THROWS_AS(write_npy("/nonexistent-dir/x.npy", v.data(), {24}), std::runtime_error);
}
