// hires.h — the webui's "Hires. fix" (processing.py StableDiffusionProcessingTxt2Img: calculate_target_resolution,
// sample, sample_hr_pass): a txt2img first pass at the small size, an upscale to the target size — of the latent
// (torch interpolate: "Latent", "Latent (bicubic)", ...) or of the decoded image (Lanczos, Nearest, or an ESRGAN
// model via pipeline/upscale.h) re-encoded —, then an img2img second pass there with its own strength and step
// count (the img2img_fix_steps rule: exactly hires_steps steps run), seeded like the first.
// Left out: a second checkpoint, sampler, schedule or prompt for the second pass.
// Its infotext fields: add_hires_infotext (app/generation_infotext.h).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "pipeline/img2img.h"

namespace sd {

struct HiresParams {
    double scale = 2.0;           // "Upscale by" (used when width and height are both 0)
    int width = 0, height = 0;    // "Resize width/height to"; one of them 0: from the other, keeping the aspect
    int steps = 0;                // second-pass steps; 0: as the first pass
    double strength = 0.7;        // second-pass denoising strength
    std::string upscaler = "latent";  // latent, latent-antialiased, latent-bicubic, latent-bicubic-antialiased,
                                      // latent-nearest, latent-nearest-exact, lanczos, nearest, or an upscaler
                                      // model file (.safetensors)
};

// calculate_target_resolution: the size the first pass is upscaled to, and how many latent columns / rows the
// second pass cuts off (when both a width and a height are asked for and the aspect differs).
struct HiresTarget {
    int upscale_w = 0, upscale_h = 0;  // hr_upscale_to_x / _y
    int truncate_x = 0, truncate_y = 0;
    int width() const { return upscale_w - 8 * truncate_x; }   // the second pass's (and the image's) size
    int height() const { return upscale_h - 8 * truncate_y; }
};
// Inline: the server checks a request's size with it before any work, without the pipeline linked in (fuzzers).
inline HiresTarget hires_target(int width, int height, const HiresParams& hp) {
    HiresTarget t;
    if (hp.width == 0 && hp.height == 0) {
        t.upscale_w = (int)(width * hp.scale);
        t.upscale_h = (int)(height * hp.scale);
    } else if (hp.height == 0) {
        t.upscale_w = hp.width;
        t.upscale_h = hp.width * height / width;
    } else if (hp.width == 0) {
        t.upscale_w = hp.height * width / height;
        t.upscale_h = hp.height;
    } else {
        const double src_ratio = (double)width / height, dst_ratio = (double)hp.width / hp.height;
        if (src_ratio < dst_ratio) {
            t.upscale_w = hp.width;
            t.upscale_h = hp.width * height / width;
        } else {
            t.upscale_w = hp.height * width / height;
            t.upscale_h = hp.height;
        }
        t.truncate_x = (t.upscale_w - hp.width) / 8;  // both >= 0 here: Python's // is C's /
        t.truncate_y = (t.upscale_h - hp.height) / 8;
    }
    return t;
}

// The webui's name of the upscaler ("Latent", "Latent (antialiased)", "Latent (bicubic)", "Lanczos", "Nearest",
// or a model file's stem,
// as its ESRGAN loader names models); throws one sentence for an unknown name.
std::string hires_upscaler_label(const std::string& name);

// Checks a hires request before anything is loaded: the upscaler's name (a model file must exist and end in
// .safetensors), the target size (multiples of 64 up to 8192, as sd's UNet needs). Throws one sentence.
void check_hires(int width, int height, const HiresParams& hp);

// images.resize_image(0, im, w, h, upscaler_name=...) with the Lanczos or Nearest upscaler (Upscaler.upscale:
// one pass to int(W·scale) by int(H·scale) with the filter, then a Lanczos resize to the multiple of 8 below
// and to (w, h)).
Image upscale_with_filter(const Image& im, int w, int h, PilFilter filter);

// CPU seconds per stage of a hires run (all threads).
struct HiresTimes {
    double first_pass = 0, upscale = 0, second_pass = 0, decode = 0;
};

// First pass (p at p.width × p.height), upscale, second pass: the final latent at the target size.
Tensor hires_latent(Model& m, const GenerateParams& p, const HiresParams& hp, Arena& arena,
                    HiresTimes* times = nullptr, const StepCallback& on_step = {},
                    const std::atomic<bool>* cancel = nullptr);
// hires_latent, decoded: the image at the target size.
Image generate_hires(Model& m, const GenerateParams& p, const HiresParams& hp, Arena& arena,
                     HiresTimes* times = nullptr, const StepCallback& on_step = {},
                     const std::atomic<bool>* cancel = nullptr);

}  // namespace sd
