// hires.cpp — first pass, upscale, img2img second pass, as the webui's sample_hr_pass.
#include "pipeline/hires.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "clock.h"
#include "pipeline/upscale.h"

namespace sd {
namespace {

struct LatentMode {
    const char* cli;
    const char* label;
    LatentInterp interp;
};
// shared.latent_upscale_modes
const LatentMode kLatentModes[] = {{"latent", "Latent", LatentInterp::bilinear},
                                   {"latent-antialiased", "Latent (antialiased)", LatentInterp::bilinear_aa},
                                   {"latent-bicubic", "Latent (bicubic)", LatentInterp::bicubic},
                                   {"latent-bicubic-antialiased", "Latent (bicubic antialiased)", LatentInterp::bicubic_aa},
                                   {"latent-nearest", "Latent (nearest)", LatentInterp::nearest},
                                   {"latent-nearest-exact", "Latent (nearest-exact)", LatentInterp::nearest_exact}};

std::string lower(std::string s) {
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
}

const LatentMode* latent_mode(const std::string& name) {
    for (const LatentMode& m : kLatentModes)
        if (name == m.cli || lower(name) == lower(m.label)) return &m;
    return nullptr;
}

bool is_model_file(const std::string& name) {
    return name.find('/') != std::string::npos || name.find('.') != std::string::npos;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string stem(const std::string& path) {
    size_t s = path.find_last_of('/');
    std::string f = s == std::string::npos ? path : path.substr(s + 1);
    size_t d = f.rfind('.');
    return d == std::string::npos || d == 0 ? f : f.substr(0, d);
}

// images.resize_image(0, im, w, h, upscaler_name): the upscaler only when enlarging, then Lanczos to (w, h).
Image resize_with_upscaler(const Image& im, int w, int h, const std::function<Image(const Image&, double)>& upscale) {
    Image cur = im;
    const double scale = std::max((double)w / im.width, (double)h / im.height);
    if (scale > 1.0) cur = upscale(cur, scale);
    if (cur.width != w || cur.height != h) cur = pil_resize(cur, w, h, PilFilter::lanczos);
    return cur;
}

}  // namespace

std::string hires_upscaler_label(const std::string& name) {
    if (const LatentMode* m = latent_mode(name)) return m->label;
    if (lower(name) == "lanczos") return "Lanczos";
    if (lower(name) == "nearest") return "Nearest";
    if (is_model_file(name)) return stem(name);
    throw std::runtime_error("--hires-upscaler must be latent, latent-antialiased, latent-bicubic, "
                             "latent-bicubic-antialiased, latent-nearest, latent-nearest-exact, lanczos, nearest or an "
                             "upscaler model .safetensors file, got '" + name + "'");
}

void check_hires(int width, int height, const HiresParams& hp) {
    hires_upscaler_label(hp.upscaler);
    if (is_model_file(hp.upscaler) && !latent_mode(hp.upscaler)) {
        struct stat st;
        if (stat(hp.upscaler.c_str(), &st) != 0)
            throw std::runtime_error("--hires-upscaler: no upscaler model file '" + hp.upscaler + "'");
        if (!ends_with(lower(hp.upscaler), ".safetensors"))
            throw std::runtime_error("--hires-upscaler '" + hp.upscaler +
                                     "' is not a .safetensors file; convert it to safetensors (it is never unpickled)");
        load_upscaler(hp.upscaler);  // a file of another kind is refused now, not after the first pass
    }
    const HiresTarget t = hires_target(width, height, hp);
    if (t.width() <= 0 || t.height() <= 0 || t.width() % 64 || t.height() % 64 || t.width() > 8192 ||
        t.height() > 8192)
        throw std::runtime_error("the hires fix would make a " + std::to_string(t.width()) + "x" +
                                 std::to_string(t.height()) + " image; sd needs multiples of 64 up to 8192 on each side");
}

Image upscale_with_filter(const Image& im, int w, int h, PilFilter filter) {
    return resize_with_upscaler(im, w, h, [filter](const Image& x, double scale) {
        // UpscalerLanczos / UpscalerNearest.do_upscale: one resize to int(W·scale) by int(H·scale)
        return upscaler_upscale(x, scale, [filter, scale](const Image& y) {
            return pil_resize(y, (int)(y.width * scale), (int)(y.height * scale), filter);
        });
    });
}

Tensor hires_latent(Model& m, const GenerateParams& p, const HiresParams& hp, Arena& arena, HiresTimes* times,
                    const StepCallback& on_step, const std::atomic<bool>* cancel) {
    check_hires(p.width, p.height, hp);
    const HiresTarget t = hires_target(p.width, p.height, hp);
    double c0 = process_cpu_seconds();
    Tensor first = sample_latent(m, p, arena, nullptr, on_step, cancel);  // (1, 4, h, w)
    double c1 = process_cpu_seconds();
    const int64_t h = first.shape[2], w = first.shape[3];
    const int64_t uh = t.upscale_h / 8, uw = t.upscale_w / 8;
    std::vector<float> up;
    if (const LatentMode* lm = latent_mode(hp.upscaler)) {
        std::vector<float> z(first.f32(), first.f32() + first.numel());
        up = torch_interpolate(z, 4, h, w, uh, uw, lm->interp);
    } else {
        Image img = decode_latent(m, first, p.taesd, arena, p.vae_tiling);
        Image big;
        if (lower(hp.upscaler) == "lanczos") big = upscale_with_filter(img, t.upscale_w, t.upscale_h, PilFilter::lanczos);
        else if (lower(hp.upscaler) == "nearest") big = upscale_with_filter(img, t.upscale_w, t.upscale_h, PilFilter::nearest);
        else {
            const Upscaler u = load_upscaler(hp.upscaler);  // UpscalerESRGAN: the model's passes
            big = resize_with_upscaler(img, t.upscale_w, t.upscale_h, [&u](const Image& x, double scale) {
                return upscaler_upscale(x, scale, [&u](const Image& y) { return upscale_with_model(u, y); });
            });
        }
        up = encode_image(m, big, p.taesd, arena, p.vae_tiling);
    }
    // samples[:, :, ty//2 : H - (ty+1)//2, tx//2 : W - (tx+1)//2]
    LatentStart start;
    start.strength = hp.strength;
    start.hires_steps = hp.steps > 0 ? hp.steps : p.steps;
    const int64_t y0 = t.truncate_y / 2, x0 = t.truncate_x / 2;
    const int64_t oh = uh - t.truncate_y, ow = uw - t.truncate_x;
    start.latent.resize((size_t)(4 * oh * ow));
    for (int64_t c = 0; c < 4; c++)
        for (int64_t y = 0; y < oh; y++)
            std::memcpy(&start.latent[(size_t)((c * oh + y) * ow)], &up[(size_t)((c * uh + y + y0) * uw + x0)],
                        (size_t)ow * sizeof(float));
    double c2 = process_cpu_seconds();
    GenerateParams q = p;
    q.width = (int)ow * 8;
    q.height = (int)oh * 8;
    q.steps = start.hires_steps;  // the second pass's conds are scheduled over its own steps (calculate_hr_conds)
    q.start = &start;
    Tensor second = sample_latent(m, q, arena, nullptr, on_step, cancel);
    if (times) {
        times->first_pass = c1 - c0;
        times->upscale = c2 - c1;
        times->second_pass = process_cpu_seconds() - c2;
    }
    return second;
}

Image generate_hires(Model& m, const GenerateParams& p, const HiresParams& hp, Arena& arena, HiresTimes* times,
                     const StepCallback& on_step, const std::atomic<bool>* cancel) {
    Tensor latent = hires_latent(m, p, hp, arena, times, on_step, cancel);
    double c0 = process_cpu_seconds();
    Image out = decode_latent(m, latent, p.taesd, arena, p.vae_tiling);
    if (times) times->decode = process_cpu_seconds() - c0;
    return out;
}

}  // namespace sd
