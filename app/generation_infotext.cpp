// generation_infotext.cpp — see generation_infotext.h.
#include "app/generation_infotext.h"

#include "pipeline/conditioning.h"
#include "pipeline/loras.h"
#include "pipeline/prompt_parser.h"
#include "pipeline/sampler_names.h"

namespace sd {

InfoText generation_infotext(const GenerateParams& p, const std::string& sampler_label,
                             const std::string& schedule_label) {
    InfoText info;
    info.prompt = p.prompt;
    info.negative_prompt = p.negative_prompt;
    info.steps = p.steps;
    info.sampler = sampler_label;
    info.schedule_type = schedule_label;
    // KDiffusionSampler.get_sigmas: the schedule's settings, when the sampler runs a named schedule (not a timestep
    // sampler, not "Automatic" without a default schedule)
    const bool named = !sampler_is_timestep(p.sampler) && !schedule_label.empty() && schedule_label != "Automatic";
    for (const auto& [key, value] :
         schedule_infotext(p.schedule, named, sampler_table(p.sampler, sd_schedule()), p.schedule_options))
        info.extra.push_back({key, python_float_repr(value)});
    info.cfg_scale = p.cfg_scale;
    info.seed = p.seed;
    // The webui's Lora extension adds its hashes when the networks activate, before the TI hashes.
    std::vector<ExtraNetworkTag> tags;
    strip_extra_networks(p.prompt, &tags);
    const std::string lora_hashes = webui_lora_hashes(lora_tags(tags), p.lora_dir);
    if (!lora_hashes.empty()) info.extra.push_back({"Lora hashes", lora_hashes});
    if (p.embeddings) {
        std::string ti = webui_ti_hashes(strip_extra_networks(p.prompt, nullptr), p.negative_prompt,
                                         webui_total_steps(p.sampler, p.steps), *p.embeddings);
        if (!ti.empty()) info.extra.push_back({"TI hashes", ti});
    }
    info.width = p.width;
    info.height = p.height;
    info.clip_skip = p.clip_skip;
    info.rng = p.rng == RngKind::philox ? "NV" : "CPU";
    return info;
}

void add_hires_infotext(const HiresParams& hp, InfoText& info) {
    info.denoising_strength = python_float_repr(hp.strength);
    if (hp.width == 0 && hp.height == 0) info.extra.push_back({"Hires upscale", python_float_repr(hp.scale)});
    else info.extra.push_back({"Hires resize", std::to_string(hp.width) + "x" + std::to_string(hp.height)});
    if (hp.steps > 0) info.extra.push_back({"Hires steps", std::to_string(hp.steps)});
    info.extra.push_back({"Hires upscaler", hires_upscaler_label(hp.upscaler)});
}

}  // namespace sd
