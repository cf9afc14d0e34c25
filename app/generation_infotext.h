// generation_infotext.h — the infotext fields that follow from what generated an image, filled in one place for
// the CLI and the server (they used to keep their own copies, which drifted: the server lacked TI hashes and the
// beta schedule's values).
//
// As the webui's create_infotext fills them: prompts, steps, sampler and "Schedule type" labels, the schedule
// settings' extra_generation_params (Schedule min/max sigma, rho, Beta alpha/beta), CFG, seed, "TI hashes", size,
// clip skip and RNG. Left to the caller: what only it knows (model and VAE hash and name, prediction, version).
// Not written, as the webui v1.10 does not write them: "Batch size" and "Batch pos" (removed from create_infotext
// in January 2023; the webui's PNG Info still reads "Batch size" back, and so does ours).
#pragma once
#include <string>

#include "app/infotext.h"
#include "pipeline/hires.h"
#include "pipeline/txt2img.h"

namespace sd {

// sampler_label: the webui's name of the sampler ("Euler a"); schedule_label: its "Schedule type" ("Karras",
// "Automatic", or empty to leave it out). The TI hashes are read from p.embeddings (none when null).
InfoText generation_infotext(const GenerateParams& p, const std::string& sampler_label,
                             const std::string& schedule_label);

// The webui's infotext fields of a hires run: "Denoising strength" in its place, then "Hires upscale" or
// "Hires resize", "Hires steps" (when asked for) and "Hires upscaler", in the order its init() adds them.
void add_hires_infotext(const HiresParams& hp, InfoText& info);

}  // namespace sd
