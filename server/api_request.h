// api_request.h — the webui API's request bodies, read and validated as the webui's pydantic models do, with
// no server around them (so a fuzzer can call them): the same field names and defaults, pydantic v1's
// coercions (20.0 and "20" are an int, "true" a bool, a number a str, null the default), unknown fields
// ignored, and every refusal a FieldError that becomes HTTP 422 {"detail": [{"loc": ["body", field], "msg",
// "type"}]}. On top of the webui: limits (steps, pixels, images per request) are refused here, before any
// work, and values this engine cannot honour (a sampler it lacks, a second hires checkpoint) are refused instead of ignored.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "json.h"
#include "pipeline/rng.h"
#include "pipeline/sampler_names.h"
#include "pipeline/samplers.h"
#include "pipeline/schedule.h"

namespace sd::serve {

struct ApiLimits {
    int max_steps = 150;
    int64_t max_pixels = 1024 * 1024;  // width * height
    int max_side = 2048;
    int max_images = 16;               // batch_size * n_iter
};

struct FieldError {
    std::vector<std::string> loc;  // JSON values: "\"body\"", "\"steps\"", or a number (a byte offset)
    std::string msg, type;
    std::string ctx;               // JSON object text or empty
};

// {"detail": [{"loc": [...], "msg": ..., "type": ..., "ctx": ...}, ...]}
std::string detail_json(const std::vector<FieldError>& errors);

// Reads a body that must be a JSON object; false (errors set) for bad JSON, a non-object, or an empty body
// when required. An empty body with required false gives an empty object.
bool parse_body_object(const std::string& body, bool required, JsonValue* out, std::vector<FieldError>* errors);

struct Txt2ImgRequest {
    std::string prompt, negative_prompt;
    int64_t seed = -1;                   // -1: random
    SamplerKind sampler = SamplerKind::euler;
    ScheduleKind schedule = ScheduleKind::discrete;
    std::string sampler_label = "Euler"; // the webui's name of the sampler chosen
    std::string schedule_label;          // "Automatic" unless given
    int steps = 50, width = 512, height = 512, batch_size = 1, n_iter = 1;
    double cfg_scale = 7.0;
    bool send_images = true, save_images = false;
    std::string force_task_id;
    // override_settings we honour; empty / 0: not given
    std::string checkpoint;              // sd_model_checkpoint
    int clip_skip = 0;                   // CLIP_stop_at_last_layers
    std::string randn_source;            // "GPU", "NV" or "CPU"
    std::string parameters_json;         // the response's "parameters": every field of the request model
    double denoising_strength = 0.75;
    std::string denoising_strength_json = "null";
    // The hires fix (StableDiffusionProcessingTxt2Img's hr_* fields; txt2img only). The second checkpoint,
    // sampler, scheduler and prompts are refused unless left at the webui's "same as the first pass".
    bool enable_hr = false;
    double hr_scale = 2.0;
    std::string hr_upscaler;             // the webui's name ("Latent", "Lanczos", a model's); empty: not given
    int hr_second_pass_steps = 0, hr_resize_x = 0, hr_resize_y = 0;
};

bool parse_txt2img(const std::string& body, const ApiLimits& limits, Txt2ImgRequest* out,
                   std::vector<FieldError>* errors);

// The webui's StableDiffusionImg2ImgProcessingAPI: txt2img's fields plus the init image and inpainting ones.
struct Img2ImgRequest : Txt2ImgRequest {
    std::vector<uint8_t> init_image;     // init_images[0], decoded from base64 (not yet from PNG/JPEG)
    std::vector<uint8_t> mask;           // decoded from base64; empty: no mask (img2img, not inpainting)
    int resize_mode = 0;                 // 0 just resize, 1 crop and resize, 2 resize and fill, 3 latent
    int mask_blur_x = 4, mask_blur_y = 4;
    int inpainting_fill = 0;             // 0 fill, 1 original, 2 latent noise, 3 latent nothing
    bool inpaint_full_res = true;
    int inpaint_full_res_padding = 0;
    int inpainting_mask_invert = 0;      // 1: repaint where the mask is black
};

bool parse_img2img(const std::string& body, const ApiLimits& limits, Img2ImgRequest* out,
                   std::vector<FieldError>* errors);

// The webui's ExtrasSingleImageRequest / ExtrasBatchImagesRequest (modules/api/models.py ExtrasBaseRequest): the
// Extras tab's upscale. Face restoration (gfpgan / codeformer visibility above 0) is refused: there is none here.
struct ExtrasRequest {
    std::vector<std::vector<uint8_t>> images;  // image, or imageList[i].data, decoded from base64
    int resize_mode = 0;                       // 0: scale by upscaling_resize; 1: to upscaling_resize_w × _h
    bool show_extras_results = true;
    double upscaling_resize = 2;
    int upscaling_resize_w = 512, upscaling_resize_h = 512;
    bool upscaling_crop = true;
    std::string upscaler_1 = "None", upscaler_2 = "None";
    double upscaler_2_visibility = 0;
};
// batch: imageList (at most limits.max_images entries) instead of image.
bool parse_extras(const std::string& body, bool batch, const ApiLimits& limits, ExtrasRequest* out,
                  std::vector<FieldError>* errors);

// POST /sdapi/v1/options: the settings we honour, validated; unknown keys are ignored as the webui's opts.set does.
struct OptionsUpdate {
    std::string checkpoint;  // empty: unchanged
    int clip_skip = 0;       // 0: unchanged
    std::string randn_source;
};
bool parse_options(const std::string& body, OptionsUpdate* out, std::vector<FieldError>* errors);

// POST /sdapi/v1/png-info: {"image": base64 or data URL}. The image's bytes (empty when "").
bool parse_png_info(const std::string& body, std::vector<uint8_t>* image, std::vector<FieldError>* errors);

// The webui's parse_generation_parameters: prompt, "Negative prompt", and the last line's "Key: value" pairs
// (quoted values unquoted, "Size: 512x512" as Size-1 / Size-2, "Clip skip" defaulting to "1"), as a JSON object.
std::string parse_generation_parameters_json(const std::string& infotext);

// Text that may not be UTF-8 (a Latin-1 tEXt chunk) as valid UTF-8: invalid bytes are read as Latin-1.
std::string to_utf8(const std::string& s);

// The webui's sampler and scheduler lists, limited to those this engine runs, as /samplers and /schedulers.
std::string samplers_json();
std::string schedulers_json();

}  // namespace sd::serve
