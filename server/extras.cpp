// extras.cpp — the Extras tab's upscale and the upscaler list (see extras.h).
#include "server/extras.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "app/infotext.h"
#include "pipeline/resample.h"
#include "models/upscaler.h"
#include "pipeline/upscale.h"

namespace sd::serve {
namespace fs = std::filesystem;

namespace {

// Upscaler.upscale's target: int((W · scale) // 8 · 8) by int((H · scale) // 8 · 8).
std::pair<int, int> upscale_target(int w, int h, double scale) {
    return {(int)(std::floor(w * scale / 8) * 8), (int)(std::floor(h * scale / 8) * 8)};
}

// ScriptPostprocessingUpscale.upscale's factor: upscaling_resize, or in mode 1 the larger of the two ratios.
double upscale_by(const ExtrasRequest& r, int w, int h) {
    return r.resize_mode == 1 ? std::max((double)r.upscaling_resize_w / w, (double)r.upscaling_resize_h / h)
                              : r.upscaling_resize;
}

// Upscaler.upscale(img, scale) of one entry: a built-in filter resizes once to int(W·scale) × int(H·scale)
// (UpscalerLanczos / UpscalerNearest.do_upscale), a model runs until the target is reached (pipeline/upscale.h);
// then a Lanczos resize to the target when the size differs.
Image upscale_one(const UpscalerEntry& u, const Image& img, double scale, const std::function<void()>& progress) {
    if (!u.path.empty()) {
        const Upscaler model = load_upscaler(u.path);
        return upscale_image(model, img, scale, {}, [&](int, int) {
            if (progress) progress();
        });
    }
    const auto [dest_w, dest_h] = upscale_target(img.width, img.height, scale);
    Image cur = pil_resize(img, (int)(img.width * scale), (int)(img.height * scale),
                           u.name == "Nearest" ? PilFilter::nearest : PilFilter::lanczos);
    if (cur.width != dest_w || cur.height != dest_h) cur = pil_resize(cur, dest_w, dest_h, PilFilter::lanczos);
    return cur;
}

}  // namespace

std::vector<UpscalerEntry> list_upscalers(const std::string& dir) {
    std::vector<UpscalerEntry> out = {{"None", "", 4}, {"Lanczos", "", 4}, {"Nearest", "", 4}};
    std::error_code ec;
    std::vector<fs::path> files;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end && files.size() < 1000; it.increment(ec)) {
        if (it.depth() >= 2) it.disable_recursion_pending();
        if (it->is_regular_file(ec) && it->path().extension() == ".safetensors") files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        try {
            const Upscaler u = load_upscaler(f.string());  // maps the file and reads the shapes: no weights copied
            out.push_back({f.stem().string(), f.string(), u.scale});
        } catch (const std::exception& e) {
            std::fprintf(stderr, "sd serve: upscaler left out: %s\n", e.what());
        }
    }
    return out;
}

std::pair<int, int> extras_output_size(const ExtrasRequest& r, int w, int h) {
    if (r.upscaler_1 == "None") return {w, h};
    if (r.resize_mode == 1 && r.upscaling_crop) return {r.upscaling_resize_w, r.upscaling_resize_h};
    return upscale_target(w, h, upscale_by(r, w, h));
}

Image extras_upscale(const ExtrasRequest& r, const Image& image, const UpscalerEntry* u1, const UpscalerEntry* u2,
                     std::string* info, const std::function<void()>& progress) {
    std::vector<std::pair<std::string, std::string>> pp;  // pp.info, in the order the script fills it
    Image img = image;
    if (u1) {
        const double by = upscale_by(r, image.width, image.height);
        if (r.resize_mode == 1)
            pp.push_back({"Postprocess upscale to", std::to_string(r.upscaling_resize_w) + "x" +
                                                        std::to_string(r.upscaling_resize_h)});
        else
            pp.push_back({"Postprocess upscale by", python_float_repr(by)});
        auto upscale = [&](const UpscalerEntry& u) {
            Image up = upscale_one(u, image, by, progress);
            if (r.resize_mode == 1 && r.upscaling_crop) {  // Image.new("RGB", size) and a centred paste
                Image cropped;
                cropped.width = r.upscaling_resize_w;
                cropped.height = r.upscaling_resize_h;
                cropped.channels = 3;
                cropped.pixels.assign((size_t)cropped.width * cropped.height * 3, 0);
                pil_paste(cropped, up, cropped.width / 2 - up.width / 2, cropped.height / 2 - up.height / 2);
                return cropped;
            }
            return up;
        };
        img = upscale(*u1);
        if (r.resize_mode == 1 && r.upscaling_crop)
            pp.push_back({"Postprocess crop to", std::to_string(img.width) + "x" + std::to_string(img.height)});
        pp.push_back({"Postprocess upscaler", u1->name});
        if (u2 && r.upscaler_2_visibility > 0) {
            const Image second = upscale(*u2);
            // Image.blend: in1 + alpha · (in2 − in1) in C float, truncated to 8 bits (Pillow's Blend.c)
            const float alpha = (float)r.upscaler_2_visibility;
            for (size_t i = 0; i < img.pixels.size(); i++)
                img.pixels[i] = (uint8_t)((float)img.pixels[i] + alpha * (float)((int)second.pixels[i] - (int)img.pixels[i]));
            pp.push_back({"Postprocess upscaler 2", u2->name});
        }
    }
    // run_postprocessing: ", ".join(k if k == v else f"{k}: {quote(v)}")
    std::string text;
    for (const auto& [k, v] : pp) text += (text.empty() ? "" : ", ") + (k == v ? k : k + ": " + infotext_quote(v));
    *info = text;
    return img;
}

std::string plaintext_to_html(const std::string& text) {
    std::string out = "<p>";
    for (char c : text) {  // html.escape(quote=True)
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#x27;"; break;
        case '\n': out += "<br>\n"; break;
        default: out += c;
        }
    }
    return out + "</p>";
}

}  // namespace sd::serve
