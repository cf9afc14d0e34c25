// api.cpp — route table and handlers of the webui-compatible API (see api.h).
#include "server/api.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "json.h"
#include "app/image_io.h"
#include "pipeline/loras.h"

namespace sd::serve {
namespace {

http::Response json_response(int status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

http::Response detail(int status, const std::string& msg) {
    return json_response(status, JsonWriter().object().key("detail").value(msg).end().str());
}

http::Response unprocessable(const std::vector<FieldError>& errors) { return json_response(422, detail_json(errors)); }

http::Response unprocessable(const std::string& field, const std::string& msg) {
    FieldError e;
    e.loc = {"\"body\"", json_quote(field)};
    e.msg = msg;
    e.type = "value_error";
    return unprocessable(std::vector<FieldError>{e});
}

// The webui's api_middleware shape for an exception inside a handler.
http::Response failure(int status, const std::string& error_type, const std::string& message) {
    return json_response(status, JsonWriter()
                                     .object()
                                     .key("error").value(error_type)
                                     .key("detail").value(status == 503 ? message : "")
                                     .key("body").value("")
                                     .key("errors").value(message)
                                     .end()
                                     .str());
}

// Processed.js() of modules/processing.py (the response's "info", a JSON string), from the job's shared infotext
// fields: the same values the PNGs' parameters hold, from one place.
std::string processed_json(const JobResult& r, int batch_size, const std::string& denoising_strength_json) {
    const InfoText& f = r.info;
    const size_t total = r.seeds.size();
    JsonWriter info;
    info.object().key("prompt").value(f.prompt).key("all_prompts").array();
    for (size_t i = 0; i < total; i++) info.value(f.prompt);
    info.end().key("negative_prompt").value(f.negative_prompt).key("all_negative_prompts").array();
    for (size_t i = 0; i < total; i++) info.value(f.negative_prompt);
    info.end().key("seed").value(f.seed).key("all_seeds").array();
    for (uint64_t s : r.seeds) info.value(s);
    info.end().key("subseed").value((int64_t)-1).key("all_subseeds").array();
    for (size_t i = 0; i < total; i++) info.value((int64_t)-1);
    info.end().key("subseed_strength").value((int64_t)0);
    info.key("width").value(f.width).key("height").value(f.height).key("sampler_name").value(f.sampler);
    info.key("cfg_scale").value(f.cfg_scale).key("steps").value(f.steps).key("batch_size").value(batch_size);
    info.key("restore_faces").value(false).key("face_restoration_model").null();
    info.key("sd_model_name").value(r.model_name).key("sd_model_hash").value(r.model_hash);
    info.key("sd_vae_name").null().key("sd_vae_hash").null();
    info.key("seed_resize_from_w").value((int64_t)-1).key("seed_resize_from_h").value((int64_t)-1);
    info.key("denoising_strength").raw(denoising_strength_json);
    info.key("extra_generation_params").object().key("Schedule type").value(f.schedule_type);
    for (const auto& [k, v] : f.extra) info.key(k).value(v);
    info.end().key("index_of_first_image").value((int64_t)0).key("infotexts").array();
    for (const auto& s : r.infotexts) info.value(s);
    info.end().key("styles").array().end().key("job_timestamp").value(r.job_timestamp);
    info.key("clip_skip").value(f.clip_skip);
    info.key("is_using_inpainting_conditioning").value(!f.conditional_mask_weight.empty());
    info.key("version").value(r.version).end();
    return info.str();
}

RngKind rng_of(const std::string& randn_source) {
    return randn_source == "CPU" ? RngKind::cpu : RngKind::philox;  // GPU (CUDA) and NV share Philox
}

// NetworkOnDisk.metadata: the safetensors header's "__metadata__" (sd_models.read_metadata_from_safetensors: in
// file order, a string value that starts with '{' replaced by the JSON it holds), then stably sorted by
// metadata_tags_order; *alias is ss_output_name when there is one. A file that cannot be read gives {}, as the
// webui reports the error and lists the LoRA without metadata.
std::string lora_metadata_json(const std::string& path, std::string* alias) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return "{}";
    uint8_t len8[8] = {};
    std::string header;
    uint64_t n = 0;
    if (std::fread(len8, 1, 8, f) == 8) {
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        if (n >= 2 && n <= (100u << 20)) {  // the safetensors format's own bound on the header
            header.resize(n);
            if (std::fread(&header[0], 1, n, f) != n) header.clear();
        }
    }
    std::fclose(f);
    JsonValue h;
    try {
        JsonLimits lim;
        lim.max_values = 1u << 22;
        h = parse_json(header, lim);
    } catch (const std::exception&) {
        return "{}";
    }
    const JsonValue* md = h.get("__metadata__");
    if (!md || md->kind != JsonValue::Object) return "{}";
    auto order = [](const std::string& k) {
        static const std::pair<const char*, int> tags[] = {{"ss_sd_model_name", 1}, {"ss_resolution", 2},
                                                           {"ss_clip_skip", 3}, {"ss_num_train_images", 10},
                                                           {"ss_tag_frequency", 20}};
        for (const auto& [name, o] : tags)
            if (k == name) return o;
        return 999;
    };
    std::vector<size_t> idx(md->keys.size());
    for (size_t i = 0; i < idx.size(); i++) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return order(md->keys[a]) < order(md->keys[b]); });
    JsonWriter w;
    w.object();
    for (size_t i : idx) {
        const JsonValue& v = md->items[i];
        std::string text = write_json(v);
        if (v.kind == JsonValue::String && !v.text.empty() && v.text[0] == '{') {
            try {
                text = write_json(parse_json(v.text));
            } catch (const std::exception&) {
            }
        }
        if (md->keys[i] == "ss_output_name" && v.kind == JsonValue::String) *alias = v.text;
        w.key(md->keys[i]).raw(text);
    }
    return w.end().str();
}

}  // namespace

void Api::handle(const http::Request& req, std::shared_ptr<http::Responder> out) {
    if (!cfg_.credentials.empty() && !http::basic_auth_ok(req.header("authorization"), cfg_.credentials)) {
        http::Response r = detail(401, req.header("authorization") ? "Incorrect username or password"
                                                                    : "Not authenticated");
        r.headers.push_back({"WWW-Authenticate", "Basic"});
        out->send(r);
        return;
    }
    const std::string& p = req.path;
    const bool get = req.method == "GET" || req.method == "HEAD", post = req.method == "POST";
    auto empty_list = [&] { out->send(json_response(200, "[]")); };

    struct Route {
        const char* path;
        bool get, post;
    };
    static const Route routes[] = {
        {"/", true, false}, {"/index.html", true, false}, {"/sdapi/v1/txt2img", false, true},
        {"/sdapi/v1/samplers", true, false}, {"/sdapi/v1/schedulers", true, false},
        {"/sdapi/v1/sd-models", true, false}, {"/sdapi/v1/sd-vae", true, false}, {"/sdapi/v1/loras", true, false},
        {"/sdapi/v1/embeddings", true, false}, {"/sdapi/v1/upscalers", true, false},
        {"/sdapi/v1/latent-upscale-modes", true, false}, {"/sdapi/v1/hypernetworks", true, false},
        {"/sdapi/v1/face-restorers", true, false}, {"/sdapi/v1/prompt-styles", true, false},
        {"/sdapi/v1/scripts", true, false}, {"/sdapi/v1/options", true, true}, {"/sdapi/v1/progress", true, false},
        {"/sdapi/v1/interrupt", false, true}, {"/sdapi/v1/skip", false, true}, {"/sdapi/v1/png-info", false, true},
        {"/sdapi/v1/refresh-checkpoints", false, true}, {"/internal/progress", false, true},
        {"/internal/ping", true, false}, {"/sdapi/v1/refresh-embeddings", false, true},
        {"/sdapi/v1/img2img", false, true}, {"/sdapi/v1/refresh-loras", false, true},
        {"/sdapi/v1/extra-single-image", false, true}, {"/sdapi/v1/extra-batch-images", false, true},
    };
    const Route* route = nullptr;
    for (const Route& r : routes)
        if (p == r.path) route = &r;
    if (!route) return out->send(detail(404, "Not Found"));
    if (!((get && route->get) || (post && route->post))) {
        http::Response r = detail(405, "Method Not Allowed");
        r.headers.push_back({"Allow", route->get && route->post ? "GET, POST" : route->get ? "GET" : "POST"});
        return out->send(r);
    }

    if (p == "/" || p == "/index.html") {
        http::Response r;
        r.content_type = "text/html; charset=utf-8";
        r.body = ui_page();
        r.headers.push_back({"Cache-Control", "no-cache"});
        return out->send(r);
    }
    if (p == "/sdapi/v1/txt2img") return txt2img(req, out);
    if (p == "/sdapi/v1/samplers") return out->send(json_response(200, samplers_json()));
    if (p == "/sdapi/v1/schedulers") return out->send(json_response(200, schedulers_json()));
    if (p == "/sdapi/v1/sd-models") return out->send(sd_models());
    if (p == "/sdapi/v1/embeddings") return out->send(embeddings(false));
    if (p == "/sdapi/v1/refresh-embeddings") {
        http::Response r = embeddings(true);
        return out->send(r.status == 200 ? json_response(200, "null") : r);
    }
    if (p == "/sdapi/v1/img2img") return img2img(req, out);
    if (p == "/sdapi/v1/scripts") return out->send(json_response(200, "{\"txt2img\":[],\"img2img\":[]}"));
    if (p == "/sdapi/v1/loras") return out->send(loras());
    if (p == "/sdapi/v1/refresh-loras") {
        http::Response r = loras();
        return out->send(r.status == 200 ? json_response(200, "null") : r);  // list_available_networks() is None
    }
    if (p == "/sdapi/v1/upscalers") return out->send(upscalers());
    if (p == "/sdapi/v1/latent-upscale-modes") {  // shared.latent_upscale_modes, those the hires fix runs
        JsonWriter w;
        w.array();
        for (const char* m : {"Latent", "Latent (bicubic)", "Latent (nearest)", "Latent (nearest-exact)"})
            w.object().key("name").value(m).end();
        return out->send(json_response(200, w.end().str()));
    }
    if (p == "/sdapi/v1/extra-single-image") return extras(req, out, false);
    if (p == "/sdapi/v1/extra-batch-images") return extras(req, out, true);
    if (p == "/sdapi/v1/sd-vae" || p == "/sdapi/v1/hypernetworks" || p == "/sdapi/v1/face-restorers" ||
        p == "/sdapi/v1/prompt-styles")
        return empty_list();
    if (p == "/sdapi/v1/options") return out->send(get ? options_get() : options_post(req));
    if (p == "/sdapi/v1/progress") return out->send(progress(req));
    if (p == "/internal/progress") return out->send(internal_progress(req));
    if (p == "/internal/ping") return out->send(json_response(200, "{}"));
    if (p == "/sdapi/v1/interrupt") {
        engine_.interrupt();
        return out->send(json_response(200, "{}"));
    }
    if (p == "/sdapi/v1/skip") {
        engine_.skip();
        return out->send(json_response(200, "null"));  // the webui's skip() returns None
    }
    if (p == "/sdapi/v1/png-info") return out->send(png_info(req));
    if (p == "/sdapi/v1/refresh-checkpoints") {
        engine_.refresh_checkpoints();
        return out->send(json_response(200, "null"));
    }
    out->send(detail(404, "Not Found"));
}

// The job both generation routes make from the request's common fields; false when a refusal was sent.
bool Api::make_job(const Txt2ImgRequest& t, std::shared_ptr<http::Responder>& out, Job* job) {
    try {  // <lora:NAME:...> tags: an unknown name or a bad weight is refused before any work, as the CLI does
        std::vector<ExtraNetworkTag> tags;
        strip_extra_networks(t.prompt, &tags);
        for (const LoraTag& l : lora_tags(tags)) find_lora(engine_.lora_dir(), l.name);
    } catch (const std::exception& e) {
        out->send(unprocessable("prompt", e.what()));
        return false;
    }
    if (!t.checkpoint.empty()) {
        Checkpoint c;
        if (!engine_.find_checkpoint(t.checkpoint, &c)) {
            FieldError e;
            e.loc = {"\"body\"", "\"override_settings\"", "\"sd_model_checkpoint\""};
            e.msg = "model '" + t.checkpoint + "' not found";
            e.type = "value_error";
            out->send(unprocessable(std::vector<FieldError>{e}));
            return false;
        }
        job->checkpoint = c.path;
    }
    const int clip_skip = t.clip_skip > 0 ? t.clip_skip : engine_.clip_skip_default();
    if (clip_skip > engine_.text_layers()) {
        out->send(unprocessable("override_settings", "CLIP_stop_at_last_layers " + std::to_string(clip_skip) +
                                                         " is more than the text encoder's " +
                                                         std::to_string(engine_.text_layers()) + " layers"));
        return false;
    }
    // The CLI's memory check, at once when the model is loaded and idle; else the worker makes it before the
    // job's first step, and the answer is the same 422.
    if (std::string no_room = engine_.memory_refusal_now(job->checkpoint, t.width, t.height); !no_room.empty()) {
        out->send(unprocessable("width", no_room));
        return false;
    }
    GenerateParams& g = job->params;
    g.prompt = t.prompt;
    g.negative_prompt = t.negative_prompt;
    g.sampler = t.sampler;
    g.schedule = t.schedule;
    g.steps = t.steps;
    g.cfg_scale = t.cfg_scale;
    g.width = t.width;
    g.height = t.height;
    g.seed = t.seed >= 0 ? (uint64_t)t.seed : std::random_device{}() % 4294967294u;
    g.clip_skip = clip_skip;
    g.rng = rng_of(t.randn_source.empty() ? randn_source_ : t.randn_source);
    job->batch_size = t.batch_size;
    job->n_iter = t.n_iter;
    job->save_images = t.save_images;
    job->task_id = t.force_task_id;
    job->sampler_label = t.sampler_label;
    job->schedule_label = t.schedule_label;
    if (t.enable_hr) {
        auto hp = std::make_shared<HiresParams>();
        hp->scale = t.hr_scale;
        hp->width = t.hr_resize_x;
        hp->height = t.hr_resize_y;
        hp->steps = t.hr_second_pass_steps;
        hp->strength = t.denoising_strength;
        // The webui's names: shared.latent_upscale_modes' ("Latent", "Latent (bicubic)", ...; none given: its
        // default "Latent"), the built-in Lanczos and Nearest, or an upscaler model of /upscalers by name.
        hp->upscaler.clear();
        const std::string name = t.hr_upscaler.empty() ? "Latent" : t.hr_upscaler;
        for (const char* ours : {"latent", "latent-antialiased", "latent-bicubic", "latent-bicubic-antialiased",
                                 "latent-nearest", "latent-nearest-exact", "lanczos", "nearest"})
            if (hires_upscaler_label(ours) == name) hp->upscaler = ours;
        if (hp->upscaler.empty())
            for (const UpscalerEntry& u : list_upscalers(engine_.upscalers_dir()))
                if (u.name == name && !u.path.empty()) hp->upscaler = u.path;
        if (hp->upscaler.empty()) {
            out->send(unprocessable("hr_upscaler", "could not find upscaler named " + name));
            return false;
        }
        try {
            check_hires(t.width, t.height, *hp);
        } catch (const std::exception& e) {
            out->send(unprocessable("hr_upscaler", e.what()));
            return false;
        }
        const HiresTarget target = hires_target(t.width, t.height, *hp);
        if (std::string no_room = engine_.memory_refusal_now(job->checkpoint, target.upscale_w, target.upscale_h);
            !no_room.empty()) {
            out->send(unprocessable("hr_scale", no_room));
            return false;
        }
        job->hires_upscaler_named = !t.hr_upscaler.empty();
        job->hires = hp;
    }
    return true;
}

// Queues the job; its answer is the webui's TextToImageResponse / ImageToImageResponse.
void Api::submit(Job job, const Txt2ImgRequest& t, std::shared_ptr<http::Responder> out) {
    engine_.submit(std::move(job), [out, batch_size = t.batch_size, send_images = t.send_images,
                                    parameters = t.parameters_json, strength = t.denoising_strength_json](JobResult r) {
        if (r.status == 422) return out->send(unprocessable("width", r.error));
        if (r.status != 200) {
            out->send(failure(r.status, r.status == 503 ? "HTTPException" : "RuntimeError", r.error));
            return;
        }
        const std::string info = processed_json(r, batch_size, strength);
        JsonWriter w;
        w.object().key("images").array();
        if (send_images)
            for (const auto& png : r.pngs) w.value(http::base64_encode(png.data(), png.size()));
        w.end().key("parameters").raw(parameters).key("info").value(info).end();
        out->send(json_response(200, w.str()));
    });
}

void Api::txt2img(const http::Request& req, std::shared_ptr<http::Responder> out) {
    Txt2ImgRequest t;
    std::vector<FieldError> errors;
    if (!parse_txt2img(req.body, cfg_.limits, &t, &errors)) return out->send(unprocessable(errors));
    Job job;
    if (make_job(t, out, &job)) submit(std::move(job), t, out);
}

// The webui's img2imgapi through the CLI's img2img (pipeline/img2img.h): the init image decoded here (a bad one is
// a 422 naming init_images, where the webui answers 500), resized by resize_mode to width × height, encoded and
// sampled from part way down the schedule. With a mask it is the webui's inpainting (pipeline/masking.h): the
// mask must have the init image's size (the webui would crop or stretch a different one without a word).
void Api::img2img(const http::Request& req, std::shared_ptr<http::Responder> out) {
    Img2ImgRequest t;
    std::vector<FieldError> errors;
    if (!parse_img2img(req.body, cfg_.limits, &t, &errors)) return out->send(unprocessable(errors));
    struct Params {  // one allocation, so the job's Img2imgParams can point at its InpaintParams
        Img2imgParams img2img;
        InpaintParams inpaint;
    };
    auto holder = std::make_shared<Params>();
    Img2imgParams& ip = holder->img2img;
    try {
        ip.init = decode_image(t.init_image, "init_images[0]", 16 * cfg_.limits.max_pixels);
    } catch (const std::exception& e) {
        return out->send(unprocessable("init_images", e.what()));
    }
    if (!t.mask.empty()) {
        InpaintParams& in = holder->inpaint;
        try {
            in.mask = decode_image(t.mask, "mask", 16 * cfg_.limits.max_pixels);
        } catch (const std::exception& e) {
            return out->send(unprocessable("mask", e.what()));
        }
        if (in.mask.width != ip.init.width || in.mask.height != ip.init.height)
            return out->send(unprocessable("mask", "the mask is " + std::to_string(in.mask.width) + "x" +
                                                       std::to_string(in.mask.height) + " but init_images[0] is " +
                                                       std::to_string(ip.init.width) + "x" +
                                                       std::to_string(ip.init.height) + "; they must be the same size"));
        in.blur = t.mask_blur_x;
        in.blur_y = t.mask_blur_y;
        in.invert = t.inpainting_mask_invert == 1;
        in.fill = (InpaintFill)t.inpainting_fill;
        in.full_res = t.inpaint_full_res;
        in.padding = t.inpaint_full_res_padding;
        ip.inpaint = &in;
    }
    ip.strength = t.denoising_strength;
    ip.resize_mode = (ResizeMode)t.resize_mode;
    Job job;
    job.img2img = std::shared_ptr<const Img2imgParams>(holder, &holder->img2img);
    if (make_job(t, out, &job)) submit(std::move(job), t, out);
}

// The webui's get_upscalers: shared.sd_upscalers as name, model_name (the Upscaler class's: None for the built-ins
// and, here, for the model files too), model_path (UpscalerData.data_path), model_url (None) and scale.
http::Response Api::upscalers() {
    JsonWriter w;
    w.array();
    for (const UpscalerEntry& u : list_upscalers(engine_.upscalers_dir())) {
        w.object().key("name").value(u.name).key("model_name").null().key("model_path");
        if (u.path.empty()) w.null();
        else w.value(u.path);
        w.key("model_url").null().key("scale").value(u.scale).end();
    }
    return json_response(200, w.end().str());
}

// The webui's extras_single_image_api / extras_batch_images_api: the images decoded and the upscalers looked up
// here (a bad one is a 422 naming its field; the webui asserts, a 500), the output's size checked before any work,
// then a queued job (server/extras.h); the answer is ExtrasSingleImageResponse {"html_info", "image"} or
// ExtrasBatchImagesResponse {"html_info", "images"}.
void Api::extras(const http::Request& req, std::shared_ptr<http::Responder> out, bool batch) {
    ExtrasRequest x;
    std::vector<FieldError> errors;
    if (!parse_extras(req.body, batch, cfg_.limits, &x, &errors)) return out->send(unprocessable(errors));
    auto job = std::make_shared<ExtrasJob>();
    const std::vector<UpscalerEntry> all = list_upscalers(engine_.upscalers_dir());
    auto find = [&](const std::string& field, const std::string& name, std::shared_ptr<const UpscalerEntry>* u) {
        if (name == "None") return true;
        for (const UpscalerEntry& e : all)
            if (e.name == name) {
                *u = std::make_shared<UpscalerEntry>(e);
                return true;
            }
        std::string names;
        for (const UpscalerEntry& e : all) names += (names.empty() ? "" : ", ") + e.name;
        out->send(unprocessable(field, "could not find upscaler named " + name + " (there are: " + names + ")"));
        return false;
    };
    if (!find("upscaler_1", x.upscaler_1, &job->upscaler_1) || !find("upscaler_2", x.upscaler_2, &job->upscaler_2))
        return;
    const std::string field = batch ? "imageList" : "image";
    for (size_t i = 0; i < x.images.size(); i++) {
        const std::string what = batch ? "imageList[" + std::to_string(i) + "]" : "image";
        Image img;
        try {
            img = decode_image(x.images[i], what, 16 * cfg_.limits.max_pixels);
        } catch (const std::exception& e) {
            return out->send(unprocessable(field, e.what()));
        }
        if (img.channels == 4) {  // img.convert("RGB"), as `sd upscale`: the alpha channel is dropped
            Image rgb = img;
            rgb.channels = 3;
            rgb.pixels.clear();
            for (size_t k = 0; k < img.pixels.size(); k += 4) rgb.pixels.insert(rgb.pixels.end(), &img.pixels[k], &img.pixels[k + 3]);
            img = std::move(rgb);
        }
        const auto [w, h] = extras_output_size(x, img.width, img.height);
        const int64_t most = 16 * cfg_.limits.max_pixels;
        if (w < 8 || h < 8 || w > kMaxImageSide || h > kMaxImageSide || (int64_t)w * h > most)
            return out->send(unprocessable(x.resize_mode == 1 ? "upscaling_resize_w" : "upscaling_resize",
                                           "upscaling " + what + " (" + std::to_string(img.width) + "x" +
                                               std::to_string(img.height) + ") would make a " + std::to_string(w) +
                                               "x" + std::to_string(h) + " image; this server makes at least 8 and at "
                                               "most " + std::to_string(kMaxImageSide) + " pixels a side and " +
                                               std::to_string(most) + " pixels in all"));
        std::vector<std::pair<std::string, std::string>> text;  // read_info_from_image: the input's text chunks
        try {
            text = read_png_text(x.images[i]);
        } catch (const std::exception&) {
        }
        job->images.push_back(std::move(img));
        job->texts.push_back(std::move(text));
    }
    job->request = std::move(x);
    Job j;
    j.extras = job;
    j.params.steps = 0;
    engine_.submit(std::move(j), [out, batch](JobResult r) {
        if (r.status != 200) {
            out->send(failure(r.status, r.status == 503 ? "HTTPException" : "RuntimeError", r.error));
            return;
        }
        JsonWriter w;
        w.object().key("html_info").value(r.html_info);
        if (batch) {
            w.key("images").array();
            for (const auto& png : r.pngs) w.value(http::base64_encode(png.data(), png.size()));
            w.end();
        } else {
            w.key("image");
            if (r.pngs.empty()) w.null();  // interrupted or skipped
            else w.value(http::base64_encode(r.pngs[0].data(), r.pngs[0].size()));
        }
        out->send(json_response(200, w.end().str()));
    });
}

// The webui's get_embeddings: every embedding by name with its EmbeddingItem fields. step, sd_checkpoint and
// sd_checkpoint_name come from a .pt's pickled dict; a .safetensors file has none, so they are null, as there.
http::Response Api::embeddings(bool reload) {
    std::shared_ptr<const EmbeddingDb> db;
    try {
        db = engine_.embeddings(reload);
    } catch (const std::exception& e) {
        return failure(500, "RuntimeError", e.what());
    }
    JsonWriter w;
    auto list = [&](const char* key, const std::vector<const TextEmbedding*>& es) {
        w.key(key).object();
        for (const TextEmbedding* e : es)
            w.key(e->name).object()
                .key("step").null()
                .key("sd_checkpoint").null()
                .key("sd_checkpoint_name").null()
                .key("shape").value(e->shape)
                .key("vectors").value(e->vectors)
                .end();
        w.end();
    };
    w.object();
    list("loaded", db->loaded());
    list("skipped", db->skipped());
    return json_response(200, w.end().str());
}

// The webui's Lora extension (extensions-builtin/Lora/scripts/lora_script.py get_loras, create_lora_json): every
// file of the LoRA folder by stem, read again on each call (its refresh-loras rescans; here a listing is always
// fresh, as the prompts' tags are looked up live).
http::Response Api::loras() {
    JsonWriter w;
    w.array();
    for (const auto& [name, path] : list_lora_files(engine_.lora_dir())) {
        std::string alias = name;
        const std::string metadata = path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0
                                         ? lora_metadata_json(path, &alias)
                                         : "{}";
        w.object().key("name").value(name).key("alias").value(alias).key("path").value(path);
        w.key("metadata").raw(metadata).end();
    }
    return json_response(200, w.end().str());
}

http::Response Api::sd_models() {
    JsonWriter w;
    w.array();
    for (const Checkpoint& c : engine_.checkpoints()) {
        w.object().key("title").value(c.title()).key("model_name").value(c.model_name);
        if (c.hash.empty()) w.key("hash").null();
        else w.key("hash").value(c.hash);
        w.key("sha256").null().key("filename").value(c.path).key("config").null().end();
    }
    return json_response(200, w.end().str());
}

http::Response Api::options_get() {
    Checkpoint c = engine_.current_checkpoint();
    JsonWriter w;
    w.object()
        .key("sd_model_checkpoint").value(c.title())
        .key("sd_checkpoint_hash").value(c.hash)
        .key("CLIP_stop_at_last_layers").value(engine_.clip_skip_default())
        .key("randn_source").value(randn_source_)
        .key("sd_vae").value("Automatic")
        .key("samples_format").value("png")
        .key("live_previews_enable").value(true)
        .key("show_progress_every_n_steps").value(1)
        .key("live_preview_content").value("Prompt")
        .key("show_progress_type").value("TAESD")
        .key("eta_ancestral").value(1.0)
        .key("eta_noise_seed_delta").value(0)
        .end();
    return json_response(200, w.str());
}

http::Response Api::options_post(const http::Request& req) {
    OptionsUpdate u;
    std::vector<FieldError> errors;
    if (!parse_options(req.body, &u, &errors)) return unprocessable(errors);
    Checkpoint c;
    if (!u.checkpoint.empty() && !engine_.find_checkpoint(u.checkpoint, &c))
        return unprocessable("sd_model_checkpoint", "model '" + u.checkpoint + "' not found");
    if (u.clip_skip > engine_.text_layers())
        return unprocessable("CLIP_stop_at_last_layers", "CLIP_stop_at_last_layers " + std::to_string(u.clip_skip) +
                                                             " is more than the text encoder's " +
                                                             std::to_string(engine_.text_layers()) + " layers");
    if (!u.checkpoint.empty()) engine_.set_current_checkpoint(c);
    if (u.clip_skip > 0) engine_.set_clip_skip_default(u.clip_skip);
    if (!u.randn_source.empty()) randn_source_ = u.randn_source;
    return json_response(200, "null");
}

http::Response Api::progress(const http::Request& req) {
    std::string skip_text;
    bool skip_image = false;
    if (http::query_param(req.query, "skip_current_image", &skip_text)) {
        std::string s = skip_text;
        for (char& ch : s) ch = (char)std::tolower((unsigned char)ch);
        if (s == "true" || s == "1" || s == "yes" || s == "on") skip_image = true;
        else if (!(s == "false" || s == "0" || s == "no" || s == "off")) {
            FieldError e;
            e.loc = {"\"query\"", "\"skip_current_image\""};
            e.msg = "value could not be parsed to a boolean";
            e.type = "type_error.bool";
            return unprocessable(std::vector<FieldError>{e});
        }
    }
    ProgressInfo p = engine_.progress(!skip_image);
    JsonWriter w;
    w.object().key("progress").value(p.progress).key("eta_relative").value(p.eta_relative);
    w.key("state").object()
        .key("skipped").value(p.skipped)
        .key("interrupted").value(p.interrupted)
        .key("stopping_generation").value(false)
        .key("job").value(p.job)
        .key("job_count").value(p.job_count)
        .key("job_timestamp").value(p.job_timestamp.empty() ? "0" : p.job_timestamp)
        .key("job_no").value(p.job_no)
        .key("sampling_step").value(p.sampling_step)
        .key("sampling_steps").value(p.sampling_steps)
        .key("queued").value(p.queued)
        .end();
    if (!skip_image && !p.job.empty() && !p.preview_png.empty())
        w.key("current_image").value(http::base64_encode(p.preview_png.data(), p.preview_png.size()));
    else
        w.key("current_image").null();
    if (p.queued > 0) w.key("textinfo").value("Queued: " + std::to_string(p.queued));
    else w.key("textinfo").null();
    return json_response(200, w.end().str());
}

http::Response Api::internal_progress(const http::Request& req) {
    JsonValue obj;
    std::vector<FieldError> errors;
    if (!parse_body_object(req.body, true, &obj, &errors)) return unprocessable(errors);
    std::string id;
    int64_t id_live_preview = -1;
    bool want_preview = true;
    if (const JsonValue* v = obj.get("id_task"); v && v->kind == JsonValue::String) id = v->text;
    if (const JsonValue* v = obj.get("id_live_preview"); v && v->kind == JsonValue::Number) id_live_preview = (int64_t)v->number;
    if (const JsonValue* v = obj.get("live_preview"); v && v->kind == JsonValue::Bool) want_preview = v->boolean;
    TaskState t = engine_.task(id);
    ProgressInfo p = engine_.progress(t.active && want_preview);
    JsonWriter w;
    w.object().key("active").value(t.active).key("queued").value(t.queued).key("completed").value(t.completed);
    if (t.active) {
        w.key("progress").value(p.progress).key("eta").value(p.eta_relative);
        if (want_preview && !p.preview_png.empty() && p.preview_id != id_live_preview)
            w.key("live_preview").value("data:image/png;base64," +
                                        http::base64_encode(p.preview_png.data(), p.preview_png.size()));
        else
            w.key("live_preview").null();
        w.key("id_live_preview").value(p.preview_id);
        w.key("textinfo").value("Step " + std::to_string(p.sampling_step) + "/" + std::to_string(p.sampling_steps) +
                                (p.job_count > 1 ? ", image " + std::to_string(p.job_no + 1) + "/" +
                                                       std::to_string(p.job_count)
                                                 : ""));
    } else {
        w.key("progress").null().key("eta").null().key("live_preview").null().key("id_live_preview").value(-1);
        if (t.queued)
            w.key("textinfo").value("In queue: " + std::to_string(t.queue_position) + "/" +
                                    std::to_string(t.queue_length));
        else
            w.key("textinfo").value(t.completed ? "" : "Waiting...");
    }
    w.key("queue_position").value(t.queue_position);
    return json_response(200, w.end().str());
}

http::Response Api::png_info(const http::Request& req) {
    std::vector<uint8_t> image;
    std::vector<FieldError> errors;
    if (!parse_png_info(req.body, &image, &errors)) return unprocessable(errors);
    std::string info;
    JsonWriter items;
    items.object();
    static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (image.size() >= 8 && std::equal(kPng, kPng + 8, image.begin())) {
        std::vector<std::pair<std::string, std::string>> chunks;
        try {
            chunks = read_png_text(image);
        } catch (const std::exception& e) {
            return unprocessable("image", std::string("the image is not a readable PNG: ") + e.what());
        }
        for (const auto& [k, v] : chunks) {
            if (k == "parameters" && info.empty()) info = to_utf8(v);
            else if (k != "parameters") items.key(to_utf8(k)).value(to_utf8(v));
        }
    } else if (!image.empty()) {
        // JPEG/WebP keep parameters in EXIF, which this server does not read: the webui then finds none either
        // when the EXIF is absent. Anything that is not an image at all is refused.
        const bool jpeg = image.size() >= 3 && image[0] == 0xFF && image[1] == 0xD8 && image[2] == 0xFF;
        const bool webp = image.size() >= 12 && std::equal(image.begin() + 8, image.begin() + 12, "WEBP");
        if (!jpeg && !webp) return unprocessable("image", "the image is not a PNG, JPEG or WebP file");
    }
    items.end();
    JsonWriter w;
    w.object().key("info").value(info).key("items").raw(items.str());
    w.key("parameters").raw(info.empty() ? "{}" : parse_generation_parameters_json(info));
    return json_response(200, w.end().str());
}

}  // namespace sd::serve
