// sampler_names.cpp — the webui's sampler names and the rules it applies around each sampler.
#include "pipeline/sampler_names.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace sd {

namespace {

struct SamplerNames {
    SamplerKind kind;
    const char* short_name;
    const char* display;   // modules/sd_samplers_*.py labels
    const char* alias1;    // the webui's aliases
    const char* alias2;
};

const SamplerNames kSamplers[] = {
    {SamplerKind::euler, "euler", "Euler", "k_euler", nullptr},
    {SamplerKind::euler_a, "euler_a", "Euler a", "k_euler_a", "k_euler_ancestral"},
    {SamplerKind::heun, "heun", "Heun", "k_heun", nullptr},
    {SamplerKind::dpm2, "dpm2", "DPM2", "k_dpm_2", nullptr},
    {SamplerKind::dpm2_a, "dpm2_a", "DPM2 a", "k_dpm_2_a", nullptr},
    {SamplerKind::dpmpp_2m, "dpmpp_2m", "DPM++ 2M", "k_dpmpp_2m", nullptr},
    {SamplerKind::dpmpp_2s_a, "dpmpp_2s_a", "DPM++ 2S a", "k_dpmpp_2s_a", nullptr},
    {SamplerKind::lms, "lms", "LMS", "k_lms", nullptr},
    {SamplerKind::ddim, "ddim", "DDIM", nullptr, nullptr},
    {SamplerKind::lcm, "lcm", "LCM", "k_lcm", nullptr},
    {SamplerKind::dpmpp_sde, "dpmpp_sde", "DPM++ SDE", "k_dpmpp_sde", nullptr},
    {SamplerKind::dpmpp_2m_sde, "dpmpp_2m_sde", "DPM++ 2M SDE", "k_dpmpp_2m_sde", nullptr},
    {SamplerKind::dpmpp_2m_sde_heun, "dpmpp_2m_sde_heun", "DPM++ 2M SDE Heun", "k_dpmpp_2m_sde_heun", nullptr},
    {SamplerKind::dpmpp_3m_sde, "dpmpp_3m_sde", "DPM++ 3M SDE", "k_dpmpp_3m_sde", nullptr},
    {SamplerKind::restart, "restart", "Restart", nullptr, nullptr},
    {SamplerKind::plms, "plms", "PLMS", nullptr, nullptr},
    {SamplerKind::dpm_fast, "dpm_fast", "DPM fast", "k_dpm_fast", nullptr},
    {SamplerKind::dpm_adaptive, "dpm_adaptive", "DPM adaptive", "k_dpm_ad", nullptr},
    {SamplerKind::ddim_cfgpp, "ddim_cfgpp", "DDIM CFG++", nullptr, nullptr},
    {SamplerKind::unipc, "unipc", "UniPC", nullptr, nullptr},
};

const SamplerNames& names_of(SamplerKind kind) {
    for (const SamplerNames& n : kSamplers)
        if (n.kind == kind) return n;
    throw std::logic_error("sampler without names");
}

std::string lower(std::string s) {
    for (char& ch : s) ch = (char)std::tolower((unsigned char)ch);
    return s;
}

bool strip_suffix(std::string& s, const std::string& suffix) {
    if (s.size() <= suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
    s.resize(s.size() - suffix.size());
    return true;
}

}  // namespace

SamplerKind parse_sampler(const std::string& name, std::optional<ScheduleKind>* schedule_from_suffix) {
    std::string s = lower(name);
    while (!s.empty() && std::isspace((unsigned char)s.back())) s.pop_back();
    while (!s.empty() && std::isspace((unsigned char)s.front())) s.erase(s.begin());

    std::optional<ScheduleKind> suffix;
    // Any schedule's name, label or alias after a space or underscore, longest first ("sgm uniform" before
    // "uniform"); the webui's get_sampler_and_scheduler strips " " + label the same way.
    std::vector<std::pair<std::string, ScheduleKind>> words;
    for (ScheduleKind k : all_schedules()) {
        for (std::string w : {std::string(schedule_name(k)), lower(schedule_label(k))}) {
            words.push_back({w, k});
            for (char& ch : w) ch = ch == '_' ? ' ' : ch == ' ' ? '_' : ch;
            words.push_back({w, k});
        }
    }
    words.push_back({"uniform", ScheduleKind::discrete});
    words.push_back({"sgmuniform", ScheduleKind::sgm_uniform});
    std::stable_sort(words.begin(), words.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    for (const auto& [word, kind] : words) {
        if (strip_suffix(s, " " + word) || strip_suffix(s, "_" + word)) {
            suffix = kind;
            break;
        }
    }
    if (!suffix && strip_suffix(s, "_ka")) suffix = ScheduleKind::karras;  // webui aliases: k_dpmpp_2m_ka
    while (!s.empty() && std::isspace((unsigned char)s.back())) s.pop_back();

    for (const SamplerNames& n : kSamplers) {
        if (s == n.short_name || s == lower(n.display) || (n.alias1 && s == n.alias1) || (n.alias2 && s == n.alias2)) {
            if (schedule_from_suffix) *schedule_from_suffix = suffix;
            return n.kind;
        }
    }
    std::string valid;
    for (const SamplerNames& n : kSamplers) valid += std::string(valid.empty() ? "" : ", ") + n.short_name + " (" + n.display + ")";
    throw std::runtime_error("unknown sampler '" + name + "' (valid: " + valid +
                             "; a name may end in a schedule, e.g. \"DPM++ 2M Karras\")");
}

const char* sampler_name(SamplerKind kind) { return names_of(kind).short_name; }
const char* sampler_display_name(SamplerKind kind) { return names_of(kind).display; }

const std::vector<SamplerKind>& all_samplers() {
    static const std::vector<SamplerKind> all = [] {
        std::vector<SamplerKind> v;
        for (const SamplerNames& n : kSamplers) v.push_back(n.kind);
        return v;
    }();
    return all;
}

std::optional<ScheduleKind> webui_default_schedule(SamplerKind kind) {
    switch (kind) {  // modules/sd_samplers_kdiffusion.py samplers_k_diffusion options {'scheduler': ...}
        case SamplerKind::dpmpp_2m:
        case SamplerKind::dpmpp_sde:
        case SamplerKind::dpmpp_2s_a:
        case SamplerKind::dpm2:
        case SamplerKind::dpm2_a:
        case SamplerKind::restart: return ScheduleKind::karras;
        case SamplerKind::dpmpp_2m_sde:
        case SamplerKind::dpmpp_2m_sde_heun:
        case SamplerKind::dpmpp_3m_sde: return ScheduleKind::exponential;
        default: return std::nullopt;
    }
}

bool sampler_is_timestep(SamplerKind kind) {
    return kind == SamplerKind::ddim || kind == SamplerKind::ddim_cfgpp || kind == SamplerKind::plms ||
           kind == SamplerKind::unipc;
}

bool sampler_uses_brownian_noise(SamplerKind kind) {
    return kind == SamplerKind::dpmpp_sde || kind == SamplerKind::dpmpp_2m_sde || kind == SamplerKind::dpmpp_2m_sde_heun ||
           kind == SamplerKind::dpmpp_3m_sde;
}

ScheduleKind webui_automatic_schedule(SamplerKind kind) {
    return webui_default_schedule(kind).value_or(ScheduleKind::discrete);
}

const char* webui_schedule_type(SamplerKind kind, std::optional<ScheduleKind> chosen) {
    if (sampler_is_timestep(kind)) return chosen ? schedule_label(*chosen) : "Automatic";  // CompVisSampler
    if (!chosen) chosen = webui_default_schedule(kind);
    return chosen ? schedule_label(*chosen) : "Automatic";
}

bool sampler_is_ancestral(SamplerKind kind) {
    return kind == SamplerKind::euler_a || kind == SamplerKind::dpm2_a || kind == SamplerKind::dpmpp_2s_a ||
           kind == SamplerKind::lcm || kind == SamplerKind::dpm_fast || kind == SamplerKind::dpm_adaptive;
}

DiscreteSchedule sampler_table(SamplerKind kind, const DiscreteSchedule& sd) {
    return kind == SamplerKind::lcm ? lcm_schedule(sd) : sd;
}

std::vector<float> sampler_sigmas(SamplerKind kind, ScheduleKind schedule, int steps, const DiscreteSchedule& sd,
                                  const ScheduleOptions& opt) {
    if (steps < 1) throw std::runtime_error("the number of sampling steps must be at least 1, got " + std::to_string(steps));
    switch (kind) {
        case SamplerKind::ddim:
        case SamplerKind::ddim_cfgpp:
        case SamplerKind::plms:
        case SamplerKind::unipc: {
            // modules/sd_samplers_timesteps.py CompVisSampler.get_timesteps:
            // clip(range(0, 1000, 1000 // steps) + 1, 0, 999), visited from the last down to the first.
            const int T = (int)sd.sigmas.size();
            if (steps > T) throw std::runtime_error("DDIM takes at most " + std::to_string(T) + " steps");
            std::vector<int> timesteps;
            for (int t = 0; t < T; t += T / steps) timesteps.push_back(std::min(t + 1, T - 1));
            std::vector<float> out;
            for (auto it = timesteps.rbegin(); it != timesteps.rend(); ++it) out.push_back(sd.sigmas[*it]);
            return out;
        }
        case SamplerKind::lcm: return make_sigmas(schedule, steps, lcm_schedule(sd), opt);
        case SamplerKind::dpm2:
        case SamplerKind::dpm2_a:
        case SamplerKind::dpmpp_3m_sde: {  // KDiffusionSampler.get_sigmas, discard_next_to_last_sigma
            std::vector<float> s = make_sigmas(schedule, steps + 1, sd, opt);
            s.erase(s.end() - 2);
            return s;
        }
        default: return make_sigmas(schedule, steps, sd, opt);
    }
}

float initial_noise_scale(SamplerKind kind, const std::vector<float>& sigmas) {
    // modules/sd_samplers_kdiffusion.py sample: x = x * sigmas[0]; the timestep samplers take the noise as is
    return sampler_is_timestep(kind) ? 1.0f : sigmas.at(0);
}
}  // namespace sd
