// api_request.cpp — pydantic-style reading of the webui API's request bodies (see api_request.h).
#include "server/api_request.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <tuple>

#include "app/infotext.h"
#include "pipeline/hires.h"
#include "server/http.h"

namespace sd::serve {
namespace {

std::string lower(std::string s) {
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
}

FieldError field_error(const std::vector<std::string>& path, const std::string& msg, const std::string& type,
                       const std::string& ctx = "") {
    FieldError e;
    e.loc.push_back("\"body\"");
    for (const auto& p : path) e.loc.push_back(json_quote(p));
    e.msg = msg;
    e.type = type;
    e.ctx = ctx;
    return e;
}

// pydantic v1 coercions. Each returns false (and records the error) when the value cannot be read;
// a null value leaves *out at its default.
struct Reader {
    std::vector<FieldError>* errors;
    std::vector<std::string> prefix;  // e.g. {"override_settings"}

    std::vector<std::string> at(const std::string& f) const {
        std::vector<std::string> p = prefix;
        p.push_back(f);
        return p;
    }

    bool integer(const JsonValue& v, const std::string& f, int64_t* out) {
        if (v.kind == JsonValue::Null) return true;
        if (v.kind == JsonValue::Bool) { *out = v.boolean; return true; }
        if (v.kind == JsonValue::Number && std::isfinite(v.number) && std::fabs(v.number) < 9.2e18) {
            *out = (int64_t)v.number;  // int(20.7) == 20, as pydantic v1
            return true;
        }
        if (v.kind == JsonValue::String) {
            std::string s = v.text;
            size_t b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
            if (b != std::string::npos) {
                s = s.substr(b, e - b + 1);
                size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
                bool digits = i < s.size() && s.size() - i <= 18;
                for (size_t k = i; k < s.size(); k++) digits &= s[k] >= '0' && s[k] <= '9';
                if (digits) { *out = std::strtoll(s.c_str(), nullptr, 10); return true; }
            }
        }
        errors->push_back(field_error(at(f), "value is not a valid integer", "type_error.integer"));
        return false;
    }

    bool number(const JsonValue& v, const std::string& f, double* out) {
        if (v.kind == JsonValue::Null) return true;
        if (v.kind == JsonValue::Bool) { *out = v.boolean; return true; }
        if (v.kind == JsonValue::Number && std::isfinite(v.number)) { *out = v.number; return true; }
        if (v.kind == JsonValue::String && !v.text.empty() && v.text.size() < 64) {
            char* end = nullptr;
            double d = std::strtod(v.text.c_str(), &end);
            if (end && *end == 0 && std::isfinite(d)) { *out = d; return true; }
        }
        errors->push_back(field_error(at(f), "value is not a valid float", "type_error.float"));
        return false;
    }

    bool boolean(const JsonValue& v, const std::string& f, bool* out) {
        if (v.kind == JsonValue::Null) return true;
        if (v.kind == JsonValue::Bool) { *out = v.boolean; return true; }
        if (v.kind == JsonValue::Number && (v.text == "0" || v.text == "1")) { *out = v.text == "1"; return true; }
        if (v.kind == JsonValue::String) {
            std::string s = lower(v.text);
            for (const char* t : {"1", "on", "t", "true", "y", "yes"})
                if (s == t) { *out = true; return true; }
            for (const char* t : {"0", "off", "f", "false", "n", "no"})
                if (s == t) { *out = false; return true; }
        }
        errors->push_back(field_error(at(f), "value could not be parsed to a boolean", "type_error.bool"));
        return false;
    }

    bool string(const JsonValue& v, const std::string& f, std::string* out) {
        if (v.kind == JsonValue::Null) return true;
        if (v.kind == JsonValue::String) { *out = v.text; return true; }
        if (v.kind == JsonValue::Number) { *out = v.text; return true; }  // pydantic v1: str(20)
        if (v.kind == JsonValue::Bool) { *out = v.boolean ? "True" : "False"; return true; }
        errors->push_back(field_error(at(f), "str type expected", "type_error.str"));
        return false;
    }

    bool object(const JsonValue& v, const std::string& f) {
        if (v.kind == JsonValue::Null || v.kind == JsonValue::Object) return true;
        errors->push_back(field_error(at(f), "value is not a valid dict", "type_error.dict"));
        return false;
    }

    bool list(const JsonValue& v, const std::string& f) {
        if (v.kind == JsonValue::Null || v.kind == JsonValue::Array) return true;
        errors->push_back(field_error(at(f), "value is not a valid list", "type_error.list"));
        return false;
    }

    void ge(int64_t v, int64_t limit, const std::string& f) {
        if (v < limit)
            errors->push_back(field_error(at(f), "ensure this value is greater than or equal to " + std::to_string(limit),
                                          "value_error.number.not_ge",
                                          "{\"limit_value\":" + std::to_string(limit) + "}"));
    }
    void le(int64_t v, int64_t limit, const std::string& f) {
        if (v > limit)
            errors->push_back(field_error(at(f), "ensure this value is less than or equal to " + std::to_string(limit),
                                          "value_error.number.not_le",
                                          "{\"limit_value\":" + std::to_string(limit) + "}"));
    }
    void value_error(const std::string& f, const std::string& msg) {
        errors->push_back(field_error(at(f), msg, "value_error"));
    }
};

// The fields of the webui's request models: name, type, default (as JSON), in the models' order (the order the
// response's "parameters" echoes them in).
enum class Kind { Str, Int, Float, Bool, Dict, List, Any };
struct Field {
    const char* name;
    Kind kind;
    const char* def;
};
// StableDiffusionProcessing's own fields, which both request models start with (modules/processing.py).
const Field kProcessingFields[] = {
    {"prompt", Kind::Str, "\"\""}, {"negative_prompt", Kind::Str, "\"\""}, {"styles", Kind::List, "null"},
    {"seed", Kind::Int, "-1"}, {"subseed", Kind::Int, "-1"}, {"subseed_strength", Kind::Float, "0"},
    {"seed_resize_from_h", Kind::Int, "-1"}, {"seed_resize_from_w", Kind::Int, "-1"},
    {"sampler_name", Kind::Str, "null"}, {"scheduler", Kind::Str, "null"}, {"batch_size", Kind::Int, "1"},
    {"n_iter", Kind::Int, "1"}, {"steps", Kind::Int, "50"}, {"cfg_scale", Kind::Float, "7.0"},
    {"width", Kind::Int, "512"}, {"height", Kind::Int, "512"}, {"restore_faces", Kind::Bool, "null"},
    {"tiling", Kind::Bool, "null"}, {"do_not_save_samples", Kind::Bool, "false"},
    {"do_not_save_grid", Kind::Bool, "false"}, {"eta", Kind::Float, "null"},
    {"denoising_strength", Kind::Float, "0.75"}, {"s_min_uncond", Kind::Float, "null"},
    {"s_churn", Kind::Float, "null"}, {"s_tmax", Kind::Float, "null"}, {"s_tmin", Kind::Float, "null"},
    {"s_noise", Kind::Float, "null"}, {"override_settings", Kind::Dict, "null"},
    {"override_settings_restore_afterwards", Kind::Bool, "true"}, {"refiner_checkpoint", Kind::Str, "null"},
    {"refiner_switch_at", Kind::Float, "null"}, {"disable_extra_networks", Kind::Bool, "false"},
    {"firstpass_image", Kind::Str, "null"}, {"comments", Kind::Dict, "null"},
};
// Then StableDiffusionProcessingTxt2Img's, then StableDiffusionTxt2ImgProcessingAPI's additions (modules/api/models.py).
const Field kTxt2ImgOwnFields[] = {
    {"enable_hr", Kind::Bool, "false"}, {"firstphase_width", Kind::Int, "0"}, {"firstphase_height", Kind::Int, "0"},
    {"hr_scale", Kind::Float, "2.0"}, {"hr_upscaler", Kind::Str, "null"}, {"hr_second_pass_steps", Kind::Int, "0"},
    {"hr_resize_x", Kind::Int, "0"}, {"hr_resize_y", Kind::Int, "0"}, {"hr_checkpoint_name", Kind::Str, "null"},
    {"hr_sampler_name", Kind::Str, "null"}, {"hr_scheduler", Kind::Str, "null"}, {"hr_prompt", Kind::Str, "\"\""},
    {"hr_negative_prompt", Kind::Str, "\"\""}, {"force_task_id", Kind::Str, "null"},
    {"sampler_index", Kind::Str, "\"Euler\""}, {"script_name", Kind::Str, "null"}, {"script_args", Kind::List, "[]"},
    {"send_images", Kind::Bool, "true"}, {"save_images", Kind::Bool, "false"}, {"alwayson_scripts", Kind::Dict, "{}"},
    {"infotext", Kind::Str, "null"},
};
// Or StableDiffusionProcessingImg2Img's, then StableDiffusionImg2ImgProcessingAPI's; include_init_images is read
// but, being `exclude`d, never echoed. mask_blur is a property there, so its default is null.
const Field kImg2ImgOwnFields[] = {
    {"init_images", Kind::List, "null"}, {"resize_mode", Kind::Int, "0"}, {"image_cfg_scale", Kind::Float, "null"},
    {"mask", Kind::Str, "null"}, {"mask_blur_x", Kind::Int, "4"}, {"mask_blur_y", Kind::Int, "4"},
    {"mask_blur", Kind::Int, "null"}, {"mask_round", Kind::Bool, "true"}, {"inpainting_fill", Kind::Int, "0"},
    {"inpaint_full_res", Kind::Bool, "true"}, {"inpaint_full_res_padding", Kind::Int, "0"},
    {"inpainting_mask_invert", Kind::Int, "0"}, {"initial_noise_multiplier", Kind::Float, "null"},
    {"latent_mask", Kind::Str, "null"}, {"force_task_id", Kind::Str, "null"},
    {"sampler_index", Kind::Str, "\"Euler\""}, {"include_init_images", Kind::Bool, "false"},
    {"script_name", Kind::Str, "null"}, {"script_args", Kind::List, "[]"},
    {"send_images", Kind::Bool, "true"}, {"save_images", Kind::Bool, "false"}, {"alwayson_scripts", Kind::Dict, "{}"},
    {"infotext", Kind::Str, "null"},
};

template <size_t N>
std::vector<Field> processing_fields_then(const Field (&own)[N]) {
    std::vector<Field> all(std::begin(kProcessingFields), std::end(kProcessingFields));
    all.insert(all.end(), std::begin(own), std::end(own));
    return all;
}
const std::vector<Field> kTxt2ImgFields = processing_fields_then(kTxt2ImgOwnFields);
const std::vector<Field> kImg2ImgFields = processing_fields_then(kImg2ImgOwnFields);

// The webui's samplers (modules/sd_samplers_*.py): label, aliases, options as the API shows them.
struct SamplerRow {
    const char* name;
    const char* aliases;  // comma-separated
    const char* options;  // JSON object text
};
const SamplerRow kSamplerRows[] = {
    {"DPM++ 2M", "k_dpmpp_2m", "{\"scheduler\":\"karras\"}"},
    {"DPM++ SDE", "k_dpmpp_sde", "{\"scheduler\":\"karras\",\"second_order\":\"True\",\"brownian_noise\":\"True\"}"},
    {"DPM++ 2M SDE", "k_dpmpp_2m_sde", "{\"scheduler\":\"exponential\",\"brownian_noise\":\"True\"}"},
    {"DPM++ 2M SDE Heun", "k_dpmpp_2m_sde_heun",
     "{\"scheduler\":\"exponential\",\"brownian_noise\":\"True\",\"solver_type\":\"heun\"}"},
    {"DPM++ 2S a", "k_dpmpp_2s_a", "{\"scheduler\":\"karras\",\"uses_ensd\":\"True\",\"second_order\":\"True\"}"},
    {"DPM++ 3M SDE", "k_dpmpp_3m_sde",
     "{\"scheduler\":\"exponential\",\"discard_next_to_last_sigma\":\"True\",\"brownian_noise\":\"True\"}"},
    {"Euler a", "k_euler_a,k_euler_ancestral", "{\"uses_ensd\":\"True\"}"},
    {"Euler", "k_euler", "{}"},
    {"LMS", "k_lms", "{}"},
    {"Heun", "k_heun", "{\"second_order\":\"True\"}"},
    {"DPM2", "k_dpm_2", "{\"scheduler\":\"karras\",\"discard_next_to_last_sigma\":\"True\",\"second_order\":\"True\"}"},
    {"DPM2 a", "k_dpm_2_a",
     "{\"scheduler\":\"karras\",\"discard_next_to_last_sigma\":\"True\",\"uses_ensd\":\"True\",\"second_order\":\"True\"}"},
    {"DPM fast", "k_dpm_fast", "{\"uses_ensd\":\"True\"}"},
    {"DPM adaptive", "k_dpm_ad", "{\"uses_ensd\":\"True\"}"},
    {"Restart", "restart", "{\"scheduler\":\"karras\",\"second_order\":\"True\"}"},
    {"DDIM", "ddim", "{}"},
    {"DDIM CFG++", "ddim_cfgpp", "{}"},
    {"PLMS", "plms", "{}"},
    {"UniPC", "unipc", "{}"},
    {"LCM", "k_lcm", "{}"},
};

// modules/sd_schedulers.py
struct SchedulerRow {
    const char* name;
    const char* label;
    const char* aliases;  // JSON or null
    const char* rho;      // JSON number or null
    bool inner;
};
const SchedulerRow kSchedulerRows[] = {
    {"automatic", "Automatic", "null", "null", false},
    {"uniform", "Uniform", "null", "null", true},
    {"karras", "Karras", "null", "7.0", false},
    {"exponential", "Exponential", "null", "null", false},
    {"polyexponential", "Polyexponential", "null", "1.0", false},
    {"sgm_uniform", "SGM Uniform", "[\"SGMUniform\"]", "null", true},
    {"kl_optimal", "KL Optimal", "null", "null", false},
    {"align_your_steps", "Align Your Steps", "null", "null", false},
    {"simple", "Simple", "null", "null", true},
    {"normal", "Normal", "null", "null", true},
    {"ddim", "DDIM", "null", "null", true},
    {"beta", "Beta", "null", "null", true},
};

bool sampler_supported(const std::string& name) {
    try {
        std::optional<ScheduleKind> suffix;
        parse_sampler(name, &suffix);
        return !suffix;  // a bare name, not one that only parses by losing a word
    } catch (const std::exception&) {
        return false;
    }
}

bool schedule_supported(const std::string& name) {
    if (lower(name) == "automatic") return true;
    try {
        parse_schedule(name);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

// The webui's label for a sampler name (any alias), or empty when it is none of ours.
std::string sampler_label_of(SamplerKind kind) {
    for (const auto& r : kSamplerRows)
        if (sampler_supported(r.name) && parse_sampler(r.name) == kind) return r.name;
    return sampler_display_name(kind);
}

}  // namespace

std::string detail_json(const std::vector<FieldError>& errors) {
    JsonWriter w;
    w.object().key("detail").array();
    for (const auto& e : errors) {
        w.object().key("loc").array();
        for (const auto& l : e.loc) w.raw(l);
        w.end().key("msg").value(e.msg).key("type").value(e.type);
        if (!e.ctx.empty()) w.key("ctx").raw(e.ctx);
        w.end();
    }
    return w.end().end().str();
}

bool parse_body_object(const std::string& body, bool required, JsonValue* out, std::vector<FieldError>* errors) {
    size_t b = body.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) {
        if (!required) { out->kind = JsonValue::Object; return true; }
        FieldError e;
        e.loc = {"\"body\""};
        e.msg = "field required";
        e.type = "value_error.missing";
        errors->push_back(e);
        return false;
    }
    try {
        JsonLimits lim;
        lim.max_depth = 32;
        lim.max_values = 1u << 20;
        *out = parse_json(body, lim);
    } catch (const std::exception& ex) {
        // "JSON error at byte N: ..." — FastAPI puts the position next to "body".
        std::string msg = ex.what();
        long pos = 0;
        if (std::sscanf(msg.c_str(), "JSON error at byte %ld", &pos) != 1) pos = 0;
        FieldError e;
        e.loc = {"\"body\"", std::to_string(pos)};
        e.msg = msg;
        e.type = "value_error.jsondecode";
        errors->push_back(e);
        return false;
    }
    if (out->kind != JsonValue::Object) {
        FieldError e;
        e.loc = {"\"body\""};
        e.msg = "value is not a valid dict";
        e.type = "type_error.dict";
        errors->push_back(e);
        return false;
    }
    return true;
}

namespace {

// One typed value of a field as read, for the request-specific part of a parser.
struct FieldValue {
    const JsonValue* json = nullptr;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    std::string s;
};

// What txt2img and img2img share: every field of `fields` read with pydantic's coercions into *out and echoed in
// out->parameters_json (those named in `hidden` as null, those in `excluded` not at all), then the checks on the
// common values. `extra` takes the fields only one of them has (it returns false for a name it does not know).
bool parse_generation(const JsonValue& obj, const std::vector<Field>& fields, const ApiLimits& limits, Txt2ImgRequest* out,
                      std::vector<FieldError>* errors,
                      const std::function<void(const std::string&, const FieldValue&, Reader&)>& extra,
                      const std::vector<std::string>& hidden = {}, const std::vector<std::string>& excluded = {}) {
    Reader rd{errors, {}};
    const size_t errors_before = errors->size();
    JsonWriter params;  // "parameters": every field, the request's value (coerced) or the default
    params.object();
    std::string sampler_name, sampler_index = "Euler", scheduler;
    std::string script_name;
    const JsonValue* overrides = nullptr;
    auto listed = [](const std::vector<std::string>& l, const std::string& n) {
        return std::find(l.begin(), l.end(), n) != l.end();
    };
    for (const Field& f : fields) {
        const std::string name = f.name;
        const JsonValue* v = obj.get(f.name);
        std::string shown = !v ? f.def : "null";  // this field's JSON in "parameters"
        FieldValue fv;
        fv.json = v;
        bool ok = true;
        if (v) {
            JsonWriter one;
            switch (f.kind) {
            case Kind::Int:
                if ((ok = rd.integer(*v, name, &fv.i)) && v->kind != JsonValue::Null) shown = one.value(fv.i).str();
                break;
            case Kind::Float:
                if ((ok = rd.number(*v, name, &fv.d)) && v->kind != JsonValue::Null) shown = one.value(fv.d).str();
                break;
            case Kind::Bool:
                if ((ok = rd.boolean(*v, name, &fv.b)) && v->kind != JsonValue::Null) shown = one.value(fv.b).str();
                break;
            case Kind::Str:
                if ((ok = rd.string(*v, name, &fv.s)) && v->kind != JsonValue::Null) shown = one.value(fv.s).str();
                break;
            case Kind::Dict:
                if ((ok = rd.object(*v, name)) && v->kind != JsonValue::Null) shown = write_json(*v);
                break;
            case Kind::List:
                if ((ok = rd.list(*v, name)) && v->kind != JsonValue::Null) shown = write_json(*v);
                break;
            case Kind::Any: shown = write_json(*v); break;
            }
        }
        if (!listed(excluded, name)) params.key(name).raw(ok && !listed(hidden, name) ? shown : "null");
        if (!v || !ok || v->kind == JsonValue::Null) continue;
        const int64_t i = fv.i;
        const double d = fv.d;
        const bool b = fv.b;
        const std::string& s = fv.s;
        if (name == "prompt") out->prompt = s;
        else if (name == "negative_prompt") out->negative_prompt = s;
        else if (name == "seed") out->seed = i;
        else if (name == "sampler_name") sampler_name = s;
        else if (name == "sampler_index") sampler_index = s;
        else if (name == "scheduler") scheduler = s;
        else if (name == "batch_size") out->batch_size = (int)std::max<int64_t>(std::min<int64_t>(i, 1 << 20), -1);
        else if (name == "n_iter") out->n_iter = (int)std::max<int64_t>(std::min<int64_t>(i, 1 << 20), -1);
        else if (name == "steps") out->steps = (int)std::max<int64_t>(std::min<int64_t>(i, 1 << 20), -1);
        else if (name == "width") out->width = (int)std::max<int64_t>(std::min<int64_t>(i, 1 << 20), -1);
        else if (name == "height") out->height = (int)std::max<int64_t>(std::min<int64_t>(i, 1 << 20), -1);
        else if (name == "cfg_scale") out->cfg_scale = d;
        else if (name == "send_images") out->send_images = b;
        else if (name == "save_images") out->save_images = b;
        else if (name == "force_task_id") out->force_task_id = s;
        else if (name == "enable_hr") out->enable_hr = b;
        else if (name == "script_name") script_name = s;
        else if (name == "override_settings") overrides = v;
        else if (name == "denoising_strength") {
            out->denoising_strength = d;
            out->denoising_strength_json = json_float(d);
        } else if (extra) extra(name, fv, rd);
    }
    out->parameters_json = params.end().str();
    if (errors->size() > errors_before) return false;

    // Values. The webui takes sampler_name, else sampler_index; a trailing schedule name selects the schedule.
    const std::string sampler = !sampler_name.empty() ? sampler_name : sampler_index;
    std::optional<ScheduleKind> suffix;
    try {
        out->sampler = parse_sampler(sampler, &suffix);
        out->sampler_label = sampler_label_of(out->sampler);
    } catch (const std::exception& e) {
        rd.value_error(!sampler_name.empty() ? "sampler_name" : "sampler_index", e.what());
    }
    out->schedule = suffix ? *suffix : webui_automatic_schedule(out->sampler);
    if (!scheduler.empty() && lower(scheduler) != "automatic") {
        try {
            out->schedule = parse_schedule(scheduler);
        } catch (const std::exception& e) {
            rd.value_error("scheduler", e.what());
        }
    }
    out->schedule_label = schedule_label(out->schedule);
    rd.ge(out->steps, 1, "steps");
    rd.le(out->steps, limits.max_steps, "steps");
    rd.ge(out->batch_size, 1, "batch_size");
    rd.ge(out->n_iter, 1, "n_iter");
    if (out->batch_size >= 1 && out->n_iter >= 1 && (int64_t)out->batch_size * out->n_iter > limits.max_images)
        rd.value_error("n_iter", "batch_size * n_iter is " + std::to_string((int64_t)out->batch_size * out->n_iter) +
                                     "; this server makes at most " + std::to_string(limits.max_images) +
                                     " images per request");
    for (auto [name, v] : {std::pair<const char*, int>{"width", out->width}, {"height", out->height}}) {
        if (v < 64 || v % 64) rd.value_error(name, std::string(name) + " must be a positive multiple of 64, got " +
                                                       std::to_string(v));
        else rd.le(v, limits.max_side, name);
    }
    if ((int64_t)out->width * out->height > limits.max_pixels && out->width > 0 && out->height > 0)
        rd.value_error("width", "width * height is " + std::to_string((int64_t)out->width * out->height) +
                                    " pixels; this server allows at most " + std::to_string(limits.max_pixels));
    if (!(out->cfg_scale >= 0 && out->cfg_scale <= 100)) rd.value_error("cfg_scale", "cfg_scale must be between 0 and 100");
    if (out->seed < -1) rd.ge(out->seed, -1, "seed");
    if (!script_name.empty()) rd.value_error("script_name", "scripts are not supported by this server");

    if (overrides) {
        Reader ro{errors, {"override_settings"}};
        if (const JsonValue* v = overrides->get("sd_model_checkpoint")) ro.string(*v, "sd_model_checkpoint", &out->checkpoint);
        if (const JsonValue* v = overrides->get("CLIP_stop_at_last_layers")) {
            int64_t cs = 0;
            if (ro.integer(*v, "CLIP_stop_at_last_layers", &cs) && v->kind != JsonValue::Null) {
                ro.ge(cs, 1, "CLIP_stop_at_last_layers");
                ro.le(cs, 12, "CLIP_stop_at_last_layers");
                out->clip_skip = (int)std::max<int64_t>(0, std::min<int64_t>(cs, 12));
            }
        }
        if (const JsonValue* v = overrides->get("randn_source")) {
            if (ro.string(*v, "randn_source", &out->randn_source) && !out->randn_source.empty() &&
                out->randn_source != "GPU" && out->randn_source != "CPU" && out->randn_source != "NV")
                ro.value_error("randn_source", "randn_source must be GPU, CPU or NV");
        }
    }
    return errors->size() == errors_before;
}

}  // namespace

bool parse_txt2img(const std::string& body, const ApiLimits& limits, Txt2ImgRequest* out,
                   std::vector<FieldError>* errors) {
    JsonValue obj;
    if (!parse_body_object(body, true, &obj, errors)) return false;
    const size_t before = errors->size();
    std::string hr_checkpoint, hr_sampler, hr_scheduler, hr_prompt, hr_negative;
    auto clamp = [](int64_t v) { return (int)std::max<int64_t>(std::min<int64_t>(v, 1 << 20), -(1 << 20)); };
    auto extra = [&](const std::string& name, const FieldValue& f, Reader&) {
        if (name == "hr_scale") out->hr_scale = f.d;
        else if (name == "hr_upscaler") out->hr_upscaler = f.s;
        else if (name == "hr_second_pass_steps") out->hr_second_pass_steps = clamp(f.i);
        else if (name == "hr_resize_x") out->hr_resize_x = clamp(f.i);
        else if (name == "hr_resize_y") out->hr_resize_y = clamp(f.i);
        else if (name == "hr_checkpoint_name") hr_checkpoint = f.s;
        else if (name == "hr_sampler_name") hr_sampler = f.s;
        else if (name == "hr_scheduler") hr_scheduler = f.s;
        else if (name == "hr_prompt") hr_prompt = f.s;
        else if (name == "hr_negative_prompt") hr_negative = f.s;
    };
    const bool ok = parse_generation(obj, kTxt2ImgFields, limits, out, errors, extra);
    if (!ok || !out->enable_hr) return ok;
    out->denoising_strength_json = json_float(out->denoising_strength);  // Processed.js: the second pass's
    // The hires fix: what the second pass cannot do differently here, then its values and the size it makes,
    // all before any work.
    Reader rd{errors, {}};
    if (!hr_checkpoint.empty() && hr_checkpoint != "Use same checkpoint")
        rd.value_error("hr_checkpoint_name", "a second checkpoint for the hires pass is not supported by this server");
    if (!hr_sampler.empty() && lower(hr_sampler) != "use same sampler" && hr_sampler != out->sampler_label)
        rd.value_error("hr_sampler_name", "a second sampler for the hires pass is not supported by this server");
    if (!hr_scheduler.empty() && lower(hr_scheduler) != "use same scheduler" && hr_scheduler != out->schedule_label)
        rd.value_error("hr_scheduler", "a second scheduler for the hires pass is not supported by this server");
    if (!hr_prompt.empty() && hr_prompt != out->prompt)
        rd.value_error("hr_prompt", "a second prompt for the hires pass is not supported by this server");
    if (!hr_negative.empty() && hr_negative != out->negative_prompt)
        rd.value_error("hr_negative_prompt", "a second negative prompt for the hires pass is not supported by this "
                                             "server");
    if (!(out->denoising_strength > 0 && out->denoising_strength <= 1))
        rd.value_error("denoising_strength", "denoising_strength must be above 0 and at most 1 for the hires fix");
    rd.ge(out->hr_second_pass_steps, 0, "hr_second_pass_steps");
    rd.le(out->hr_second_pass_steps, limits.max_steps, "hr_second_pass_steps");
    for (auto [name, v] : {std::pair<const char*, int>{"hr_resize_x", out->hr_resize_x}, {"hr_resize_y", out->hr_resize_y}}) {
        rd.ge(v, 0, name);
        rd.le(v, limits.max_side, name);
    }
    if (out->hr_resize_x == 0 && out->hr_resize_y == 0 && !(out->hr_scale >= 1 && out->hr_scale <= 8))
        rd.value_error("hr_scale", "hr_scale must be between 1 and 8");
    if (errors->size() > before) return false;
    HiresParams hp;
    hp.scale = out->hr_scale;
    hp.width = out->hr_resize_x;
    hp.height = out->hr_resize_y;
    const HiresTarget t = hires_target(out->width, out->height, hp);
    const char* field = hp.width || hp.height ? (hp.width ? "hr_resize_x" : "hr_resize_y") : "hr_scale";
    const std::string size = std::to_string(t.width()) + "x" + std::to_string(t.height());
    if (t.width() <= 0 || t.height() <= 0 || t.width() % 64 || t.height() % 64)
        rd.value_error(field, "the hires fix would make a " + size + " image; sd needs multiples of 64 on each side");
    else if (t.upscale_w > limits.max_side || t.upscale_h > limits.max_side)  // the upscale before the crop, too
        rd.value_error(field, "the hires fix would upscale to " + std::to_string(t.upscale_w) + "x" +
                                  std::to_string(t.upscale_h) + "; this server allows at most " +
                                  std::to_string(limits.max_side) + " pixels a side");
    else if ((int64_t)t.upscale_w * t.upscale_h > limits.max_pixels)
        rd.value_error(field, "the hires fix would upscale to " + std::to_string(t.upscale_w) + "x" +
                                  std::to_string(t.upscale_h) + "; this server allows at most " +
                                  std::to_string(limits.max_pixels) + " pixels");
    return errors->size() == before;
}

// The webui's img2imgapi: init_images must be there (its 404 "Init image not found" is a 422 here, naming the
// field), each a base64 image or data URL; mask likewise. "parameters" echoes them as null unless
// include_init_images, as the webui clears them. Values the pipeline does not have are refused, not ignored.
bool parse_img2img(const std::string& body, const ApiLimits& limits, Img2ImgRequest* out,
                   std::vector<FieldError>* errors) {
    JsonValue obj;
    if (!parse_body_object(body, true, &obj, errors)) return false;
    const size_t before = errors->size();
    const JsonValue* init = nullptr;
    std::string mask;
    bool include = false;
    if (const JsonValue* v = obj.get("include_init_images")) {
        std::vector<FieldError> again;  // parse_generation reports a bad value
        Reader{&again, {}}.boolean(*v, "include_init_images", &include);
    }
    auto extra = [&](const std::string& name, const FieldValue& f, Reader& rd) {
        auto clamp = [](int64_t v) { return (int)std::max<int64_t>(std::min<int64_t>(v, 1 << 20), -(1 << 20)); };
        if (name == "init_images") init = f.json;
        else if (name == "mask") mask = f.s;
        else if (name == "resize_mode") out->resize_mode = clamp(f.i);
        else if (name == "mask_blur") out->mask_blur_x = out->mask_blur_y = clamp(f.i);  // the property's setter
        else if (name == "mask_blur_x") out->mask_blur_x = clamp(f.i);
        else if (name == "mask_blur_y") out->mask_blur_y = clamp(f.i);
        else if (name == "inpainting_fill") out->inpainting_fill = clamp(f.i);
        else if (name == "inpaint_full_res") out->inpaint_full_res = f.b;
        else if (name == "inpaint_full_res_padding") out->inpaint_full_res_padding = clamp(f.i);
        else if (name == "inpainting_mask_invert") out->inpainting_mask_invert = clamp(f.i);
        else if (name == "initial_noise_multiplier" && f.d != 1.0)  // the webui's default option value is 1.0
            rd.value_error(name, "initial_noise_multiplier other than 1.0 is not supported by this server");
        else if (name == "mask_round" && !f.b)
            rd.value_error(name, "mask_round false (a mask left unrounded) is not supported by this server");
        else if (name == "image_cfg_scale" || name == "latent_mask")
            rd.value_error(name, name + " is not supported by this server");
    };
    const std::vector<std::string> hidden = include ? std::vector<std::string>{}
                                                    : std::vector<std::string>{"init_images", "mask"};
    const bool ok = parse_generation(obj, kImg2ImgFields, limits, out, errors, extra, hidden, {"include_init_images"});
    Reader rd{errors, {}};
    if (!init) {
        if (!obj.get("init_images") || obj.get("init_images")->kind == JsonValue::Null)
            errors->push_back(field_error({"init_images"}, "Init image not found", "value_error.missing"));
    } else if (init->items.size() != 1) {
        rd.value_error("init_images", "init_images must hold exactly one image, it holds " +
                                          std::to_string(init->items.size()));
    } else if (init->items[0].kind != JsonValue::String) {
        errors->push_back(field_error({"init_images", "0"}, "str type expected", "type_error.str"));
    } else if (!http::base64_decode(init->items[0].text, &out->init_image) || out->init_image.empty()) {
        rd.value_error("init_images", "init_images[0] is not a base64 image");
    }
    if (!mask.empty() && (!http::base64_decode(mask, &out->mask) || out->mask.empty()))
        rd.value_error("mask", "mask is not a base64 image");
    if (!(out->denoising_strength >= 0 && out->denoising_strength <= 1))
        rd.value_error("denoising_strength", "denoising_strength must be between 0 and 1");
    if (out->resize_mode < 0 || out->resize_mode > 3)
        rd.value_error("resize_mode", "resize_mode must be 0 (just resize), 1 (crop and resize), 2 (resize and fill) "
                                      "or 3 (just resize, latent upscale)");
    if (out->inpainting_fill < 0 || out->inpainting_fill > 3)
        rd.value_error("inpainting_fill", "inpainting_fill must be 0 (fill), 1 (original), 2 (latent noise) or 3 "
                                          "(latent nothing)");
    if (out->inpainting_mask_invert < 0 || out->inpainting_mask_invert > 1)
        rd.value_error("inpainting_mask_invert", "inpainting_mask_invert must be 0 or 1");
    // Bounds on the work a mask asks for: the blur's kernel grows with its radius (the webui's slider stops at 64).
    for (auto [name, v, most] : {std::tuple<const char*, int, int>{"mask_blur_x", out->mask_blur_x, 64},
                                 {"mask_blur_y", out->mask_blur_y, 64},
                                 {"inpaint_full_res_padding", out->inpaint_full_res_padding, 256}}) {
        rd.ge(v, 0, name);
        rd.le(v, most, name);
    }
    out->denoising_strength_json = json_float(out->denoising_strength);  // Processed.js: the strength used
    return ok && errors->size() == before;
}

// ExtrasBaseRequest's fields with pydantic's checks (Literal[0, 1], ge / le / gt), then the image(s). An upscale
// factor above 16 or a target side above 16384 is refused here; the output's size is checked again against the
// decoded image before any work (server/extras.h).
bool parse_extras(const std::string& body, bool batch, const ApiLimits& limits, ExtrasRequest* out,
                  std::vector<FieldError>* errors) {
    JsonValue obj;
    if (!parse_body_object(body, true, &obj, errors)) return false;
    Reader rd{errors, {}};
    const size_t before = errors->size();
    auto number_in = [&](const char* f, int lo, int hi, double* v) {  // Field(ge=lo, le=hi)
        if (const JsonValue* j = obj.get(f); j && rd.number(*j, f, v)) {
            const std::string lo_s = std::to_string(lo), hi_s = std::to_string(hi);
            if (*v < lo)
                errors->push_back(field_error({f}, "ensure this value is greater than or equal to " + lo_s,
                                              "value_error.number.not_ge", "{\"limit_value\":" + lo_s + "}"));
            else if (*v > hi)
                errors->push_back(field_error({f}, "ensure this value is less than or equal to " + hi_s,
                                              "value_error.number.not_le", "{\"limit_value\":" + hi_s + "}"));
        }
    };
    auto integer = [&](const char* f, int64_t lo, int64_t hi, int* v) {
        int64_t i = *v;
        if (const JsonValue* j = obj.get(f); j && rd.integer(*j, f, &i)) {
            rd.ge(i, lo, f);
            rd.le(i, hi, f);
            *v = (int)std::max<int64_t>(lo, std::min<int64_t>(i, hi));
        }
    };
    if (const JsonValue* j = obj.get("resize_mode")) {
        int64_t m = 0;
        if (rd.integer(*j, "resize_mode", &m) && j->kind != JsonValue::Null) {
            if (m != 0 && m != 1)
                errors->push_back(field_error({"resize_mode"}, "unexpected value; permitted: 0, 1", "value_error.const",
                                              "{\"given\":" + std::to_string(m) + ",\"permitted\":[0,1]}"));
            out->resize_mode = m == 1;
        }
    }
    if (const JsonValue* j = obj.get("show_extras_results")) rd.boolean(*j, "show_extras_results", &out->show_extras_results);
    double gfpgan = 0, codeformer = 0, codeformer_weight = 0;
    number_in("gfpgan_visibility", 0, 1, &gfpgan);
    number_in("codeformer_visibility", 0, 1, &codeformer);
    number_in("codeformer_weight", 0, 1, &codeformer_weight);
    if (gfpgan > 0 && gfpgan <= 1) rd.value_error("gfpgan_visibility", "GFPGAN face restoration is not available on this server");
    if (codeformer > 0 && codeformer <= 1)
        rd.value_error("codeformer_visibility", "CodeFormer face restoration is not available on this server");
    if (const JsonValue* j = obj.get("upscaling_resize"); j && rd.number(*j, "upscaling_resize", &out->upscaling_resize)) {
        if (!(out->upscaling_resize > 0))
            errors->push_back(field_error({"upscaling_resize"}, "ensure this value is greater than 0",
                                          "value_error.number.not_gt", "{\"limit_value\":0}"));
        else if (out->upscaling_resize > 16)
            rd.value_error("upscaling_resize", "upscaling_resize must be at most 16 on this server");
    }
    integer("upscaling_resize_w", 1, 16384, &out->upscaling_resize_w);
    integer("upscaling_resize_h", 1, 16384, &out->upscaling_resize_h);
    if (const JsonValue* j = obj.get("upscaling_crop")) rd.boolean(*j, "upscaling_crop", &out->upscaling_crop);
    if (const JsonValue* j = obj.get("upscaler_1")) rd.string(*j, "upscaler_1", &out->upscaler_1);
    if (const JsonValue* j = obj.get("upscaler_2")) rd.string(*j, "upscaler_2", &out->upscaler_2);
    number_in("extras_upscaler_2_visibility", 0, 1, &out->upscaler_2_visibility);
    if (const JsonValue* j = obj.get("upscale_first")) {
        bool b = false;
        rd.boolean(*j, "upscale_first", &b);
    }
    if (!batch) {
        std::string image;
        if (const JsonValue* j = obj.get("image")) rd.string(*j, "image", &image);
        size_t b = image.find_first_not_of(" \t\r\n");
        image = b == std::string::npos ? "" : image.substr(b);
        std::vector<uint8_t> bytes;
        if (image.empty()) rd.value_error("image", "image not selected");  // the webui's assertion (its 500)
        else if (!http::base64_decode(image, &bytes) || bytes.empty()) rd.value_error("image", "image is not a base64 image");
        else out->images.push_back(std::move(bytes));
    } else {
        const JsonValue* list = obj.get("imageList");
        if (!list || list->kind == JsonValue::Null) {
            errors->push_back(field_error({"imageList"}, "field required", "value_error.missing"));
        } else if (rd.list(*list, "imageList")) {
            if ((int64_t)list->items.size() > limits.max_images)
                rd.value_error("imageList", "imageList holds " + std::to_string(list->items.size()) +
                                                " images; this server takes at most " + std::to_string(limits.max_images));
            for (size_t i = 0; i < list->items.size() && errors->size() == before; i++) {
                const JsonValue& f = list->items[i];
                const std::string at = std::to_string(i);
                const JsonValue* data = f.kind == JsonValue::Object ? f.get("data") : nullptr;
                const JsonValue* name = f.kind == JsonValue::Object ? f.get("name") : nullptr;
                if (f.kind != JsonValue::Object) {
                    errors->push_back(field_error({"imageList", at}, "value is not a valid dict", "type_error.dict"));
                } else if (!data || !name) {
                    errors->push_back(field_error({"imageList", at, !data ? "data" : "name"}, "field required",
                                                  "value_error.missing"));
                } else {
                    Reader ri{errors, {"imageList", at}};
                    std::string d, n;
                    std::vector<uint8_t> bytes;
                    if (ri.string(*data, "data", &d) && ri.string(*name, "name", &n)) {
                        if (!http::base64_decode(d, &bytes) || bytes.empty())
                            ri.value_error("data", "imageList[" + at + "].data is not a base64 image");
                        else out->images.push_back(std::move(bytes));
                    }
                }
            }
        }
    }
    return errors->size() == before;
}

bool parse_options(const std::string& body, OptionsUpdate* out, std::vector<FieldError>* errors) {
    JsonValue obj;
    if (!parse_body_object(body, true, &obj, errors)) return false;
    Reader rd{errors, {}};
    const size_t before = errors->size();
    if (const JsonValue* v = obj.get("sd_model_checkpoint")) {
        rd.string(*v, "sd_model_checkpoint", &out->checkpoint);
    }
    if (const JsonValue* v = obj.get("CLIP_stop_at_last_layers")) {
        int64_t cs = 0;
        if (rd.integer(*v, "CLIP_stop_at_last_layers", &cs) && v->kind != JsonValue::Null) {
            rd.ge(cs, 1, "CLIP_stop_at_last_layers");
            rd.le(cs, 12, "CLIP_stop_at_last_layers");
            out->clip_skip = (int)std::max<int64_t>(0, std::min<int64_t>(cs, 12));
        }
    }
    if (const JsonValue* v = obj.get("randn_source")) {
        if (rd.string(*v, "randn_source", &out->randn_source) && !out->randn_source.empty() &&
            out->randn_source != "GPU" && out->randn_source != "CPU" && out->randn_source != "NV")
            rd.value_error("randn_source", "randn_source must be GPU, CPU or NV");
    }
    return errors->size() == before;
}

bool parse_png_info(const std::string& body, std::vector<uint8_t>* image, std::vector<FieldError>* errors) {
    JsonValue obj;
    if (!parse_body_object(body, true, &obj, errors)) return false;
    Reader rd{errors, {}};
    const JsonValue* v = obj.get("image");
    std::string s;
    if (!v) {
        errors->push_back(field_error({"image"}, "field required", "value_error.missing"));
        return false;
    }
    if (!rd.string(*v, "image", &s)) return false;
    size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
    image->clear();
    if (s.empty()) return true;
    if (!http::base64_decode(s, image) || image->empty()) {
        rd.value_error("image", "image is not valid base64");
        return false;
    }
    return true;
}

std::string to_utf8(const std::string& s) {
    std::string out;
    const unsigned char* p = (const unsigned char*)s.data();
    size_t n = s.size();
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len == 2) ok = c >= 0xC2;
        if (ok && len == 3) {
            unsigned cp = (c & 0x0F) << 12 | (p[i + 1] & 0x3F) << 6 | (p[i + 2] & 0x3F);
            ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok && len == 4) {
            unsigned cp = (c & 0x07) << 18 | (p[i + 1] & 0x3F) << 12 | (p[i + 2] & 0x3F) << 6 | (p[i + 3] & 0x3F);
            ok = cp >= 0x10000 && cp <= 0x10FFFF;
        }
        if (ok) {
            out.append(s, i, len);
            i += len;
        } else {  // Latin-1 byte → U+0080..U+00FF
            out += (char)(0xC0 | c >> 6);
            out += (char)(0x80 | (c & 0x3F));
            i++;
        }
    }
    return out;
}

std::string parse_generation_parameters_json(const std::string& text_in) {
    // modules/infotext_utils.py parse_generation_parameters: the last line holds the "Key: value" list
    // when it has at least three of them; earlier lines are the prompt, then "Negative prompt: ...".
    std::string text = to_utf8(text_in);
    std::vector<std::string> lines;
    size_t b = 0;
    while (b <= text.size()) {
        size_t e = text.find('\n', b);
        if (e == std::string::npos) e = text.size();
        lines.push_back(text.substr(b, e - b));
        b = e + 1;
    }
    std::vector<std::pair<std::string, std::string>> kv;
    std::string last = lines.empty() ? "" : lines.back();
    {
        // re_param: \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
        size_t i = 0;
        std::vector<std::pair<std::string, std::string>> found;
        while (i < last.size()) {
            while (i < last.size() && std::isspace((unsigned char)last[i])) i++;
            size_t colon = last.find(':', i);
            if (colon == std::string::npos) break;
            std::string key = last.substr(i, colon - i);
            bool key_ok = !key.empty() && (std::isalnum((unsigned char)key[0]) || key[0] == '_');
            for (char c : key) key_ok &= std::isalnum((unsigned char)c) || c == '_' || c == ' ' || c == '-' || c == '/';
            i = colon + 1;
            while (i < last.size() && std::isspace((unsigned char)last[i])) i++;
            std::string val;
            if (i < last.size() && last[i] == '"') {
                size_t j = i + 1;
                while (j < last.size() && last[j] != '"') j += last[j] == '\\' ? 2 : 1;
                if (j >= last.size()) j = last.size() - 1;
                std::string quoted = last.substr(i, j - i + 1);
                try {
                    JsonValue jv = parse_json(quoted);
                    val = jv.kind == JsonValue::String ? jv.text : quoted;
                } catch (const std::exception&) {
                    val = quoted;
                }
                i = j + 1;
                while (i < last.size() && last[i] != ',') i++;
            } else {
                size_t comma = last.find(',', i);
                if (comma == std::string::npos) comma = last.size();
                val = last.substr(i, comma - i);
                i = comma;
            }
            if (i < last.size()) i++;  // the comma
            if (key_ok) found.push_back({key, val});
        }
        if (found.size() >= 3) {
            kv = found;
            lines.pop_back();
        }
    }
    std::string prompt, negative;
    bool in_negative = false;
    for (size_t i = 0; i < lines.size(); i++) {
        std::string line = lines[i];
        size_t s = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
        line = s == std::string::npos ? "" : line.substr(s, e - s + 1);
        if (line.compare(0, 16, "Negative prompt:") == 0) {
            in_negative = true;
            line = line.substr(16);
            size_t t = line.find_first_not_of(' ');
            line = t == std::string::npos ? "" : line.substr(t);
        }
        std::string& dst = in_negative ? negative : prompt;
        dst += (dst.empty() ? "" : "\n") + line;
    }
    // A Python dict: a repeated key keeps its first position and takes the last value.
    std::vector<std::pair<std::string, std::string>> res;
    auto set = [&](const std::string& k, const std::string& v) {
        for (auto& kv_ : res)
            if (kv_.first == k) { kv_.second = v; return; }
        res.push_back({k, v});
    };
    set("Prompt", prompt);
    set("Negative prompt", negative);
    for (auto& [k, v] : kv) {
        size_t x = v.find('x');
        bool size = x != std::string::npos && x > 0 && x + 1 < v.size() &&
                    v.find_first_not_of("0123456789") == x && v.find_first_not_of("0123456789", x + 1) == std::string::npos;
        if (size) {
            set(k + "-1", v.substr(0, x));
            set(k + "-2", v.substr(x + 1));
        } else {
            set(k, v);
        }
    }
    auto has = [&](const char* k) {
        for (const auto& kv_ : res)
            if (kv_.first == k) return true;
        return false;
    };
    if (!has("Clip skip")) set("Clip skip", "1");
    // Values written as JSON numbers, not strings: the schedule settings' defaults (the int 0 the webui fills in)
    // and the settings their infotext keys map to (opts.cast_value: a float), after the pasted pairs.
    std::vector<std::pair<std::string, std::string>> numbers;
    const std::pair<const char*, const char*> schedule_settings[] = {
        {"Schedule min sigma", "sigma_min"}, {"Schedule max sigma", "sigma_max"}, {"Schedule rho", "rho"}};
    std::vector<std::pair<std::string, std::string>> settings;
    for (const char* key : {"Schedule max sigma", "Schedule min sigma", "Schedule rho"})  // infotext_utils' order
        if (!has(key)) numbers.push_back({key, "0"});
    for (const auto& [key, setting] : schedule_settings) {  // shared_options' order
        for (const auto& [k, v] : kv) {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (k == key && end != v.c_str() && std::isfinite(d)) settings.push_back({setting, python_float_repr(d)});
        }
    }
    numbers.insert(numbers.end(), settings.begin(), settings.end());
    JsonWriter w;
    w.object();
    for (const auto& kv_ : res) w.key(kv_.first).value(kv_.second);
    for (const auto& [k, v] : numbers) w.key(k).raw(v);
    return w.end().str();
}

std::string samplers_json() {
    JsonWriter w;
    w.array();
    for (const auto& r : kSamplerRows) {
        if (!sampler_supported(r.name)) continue;
        w.object().key("name").value(r.name).key("aliases").array();
        std::string a = r.aliases;
        size_t b = 0;
        while (b < a.size()) {
            size_t e = a.find(',', b);
            if (e == std::string::npos) e = a.size();
            w.value(a.substr(b, e - b));
            b = e + 1;
        }
        w.end().key("options").raw(r.options).end();
    }
    return w.end().str();
}

std::string schedulers_json() {
    JsonWriter w;
    w.array();
    for (const auto& r : kSchedulerRows) {
        if (!schedule_supported(r.name)) continue;
        w.object().key("name").value(r.name).key("label").value(r.label).key("aliases").raw(r.aliases);
        w.key("default_rho").raw(r.rho).key("need_inner_model").value(r.inner).end();
    }
    return w.end().str();
}

}  // namespace sd::serve
