// infotext.h — the generation parameters text the webui writes into its PNGs ("parameters" chunk) and
// reads back in its PNG Info tab. Same key order, same value quoting, same omissions.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sd {

struct InfoText {
    std::string prompt, negative_prompt;
    int steps = 20;
    std::string sampler = "Euler a";      // webui display name
    std::string schedule_type;            // "Karras", "Exponential", "Uniform", ...; empty: omitted
    double cfg_scale = 7.0;
    uint64_t seed = 0;
    int width = 512, height = 512;
    std::string model_hash;               // first 10 hex digits of the checkpoint's SHA-256; empty: omitted
    std::string model_name;               // file name without extension; empty: omitted
    std::string vae_hash;                 // first 10 hex digits of an external VAE file's SHA-256; empty: omitted
    std::string vae_name;                 // e.g. "TAESD" when decoded with it, the --vae file's stem; empty: omitted
    std::string denoising_strength;       // img2img and hires fix, e.g. "0.75"; empty: omitted
    std::string conditional_mask_weight;  // inpainting checkpoints, e.g. "1.0"; empty: omitted
    int clip_skip = 1;                    // written only when > 1, as the webui does
    std::string rng;                      // "CPU" or "NV"; empty (the webui's "GPU") is omitted
    std::string prediction;               // "eps" / "v" (not a webui key: an extra parameter, as extensions add
                                          // them, written for SD 2.x and --prediction); empty: omitted
    // the webui's extra_generation_params set while sampling, in the order it adds them ("Beta schedule alpha", ...)
    std::vector<std::pair<std::string, std::string>> extra;
    std::string version;                  // e.g. "sd 0.1"; empty: omitted
};

// "PROMPT\nNegative prompt: NEG\nSteps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42,
//  Size: 512x512, Model hash: ..., Model: ..., Clip skip: 2, RNG: CPU, Version: ..."
std::string format_infotext(const InfoText& p);

// The webui's value quoting: values containing ',', ':' or a newline become a JSON string.
std::string infotext_quote(const std::string& v);
// Python's repr() of a float: shortest text that reads back to the same double ("7.0" -> "7.0", 7.5 -> "7.5").
std::string python_float_repr(double v);

}  // namespace sd
