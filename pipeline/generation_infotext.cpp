// generation_infotext.cpp — see generation_infotext.h.
#include "pipeline/generation_infotext.h"

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
    if (p.schedule == ScheduleKind::beta && !sampler_is_timestep(p.sampler)) {  // KDiffusionSampler.get_sigmas
        info.extra.push_back({"Beta schedule alpha", python_float_repr(p.schedule_options.beta_alpha)});
        info.extra.push_back({"Beta schedule beta", python_float_repr(p.schedule_options.beta_beta)});
    }
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

}  // namespace sd
