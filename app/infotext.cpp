// infotext.cpp — mirrors create_infotext() of the AUTOMATIC1111 webui (modules/processing.py) for the
// keys sd produces; keys the webui would leave out (None) are left out here too.
#include "app/infotext.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace sd {

std::string infotext_quote(const std::string& v) {
    if (v.find_first_of(",:\n") == std::string::npos) return v;
    std::string out = "\"";  // json.dumps(v, ensure_ascii=False)
    for (unsigned char c : v) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
                else out += (char)c;
        }
    }
    return out + "\"";
}

std::string python_float_repr(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::string s = buf;
    if (s.find_first_of(".en") == std::string::npos) s += ".0";  // Python always shows a float as a float
    return s;
}

std::string format_infotext(const InfoText& p) {
    // The webui's cfg_scale is a Python float: "7.0", "7.5".
    std::string cfg = python_float_repr(p.cfg_scale);
    std::vector<std::pair<std::string, std::string>> kv = {
        {"Steps", std::to_string(p.steps)},
        {"Sampler", p.sampler},
        {"Schedule type", p.schedule_type},
        {"CFG scale", cfg},
        {"Seed", std::to_string(p.seed)},
        {"Size", std::to_string(p.width) + "x" + std::to_string(p.height)},
        {"Model hash", p.model_hash},
        {"Model", p.model_name},
        {"VAE hash", p.vae_hash},
        {"VAE", p.vae_name},
        {"Denoising strength", p.denoising_strength},
        {"Conditional mask weight", p.conditional_mask_weight},
        {"Clip skip", p.clip_skip > 1 ? std::to_string(p.clip_skip) : ""},
        {"RNG", p.rng},
        {"Prediction", p.prediction},  // extra_generation_params come after RNG
    };
    kv.insert(kv.end(), p.extra.begin(), p.extra.end());
    kv.push_back({"Version", p.version});
    std::string params;
    for (auto& [k, v] : kv) {
        if (v.empty()) continue;
        if (!params.empty()) params += ", ";
        params += k + ": " + infotext_quote(v);
    }
    std::string text = p.prompt;
    if (!p.negative_prompt.empty()) text += "\nNegative prompt: " + p.negative_prompt;
    text += "\n" + params;
    // Python's str.strip(): the webui strips surrounding whitespace of the whole text.
    size_t b = text.find_first_not_of(" \t\n\r\f\v"), e = text.find_last_not_of(" \t\n\r\f\v");
    return b == std::string::npos ? "" : text.substr(b, e - b + 1);
}

}  // namespace sd
