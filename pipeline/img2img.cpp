// img2img.cpp — init image → latent → sampling from part way down the schedule → image.
#include "pipeline/img2img.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "clock.h"
#include "models/ops.h"
#include "pipeline/masking.h"

namespace sd {

ResizeMode parse_resize_mode(const std::string& name) {
    if (name == "0" || name == "just_resize" || name == "resize") return ResizeMode::just_resize;
    if (name == "1" || name == "crop" || name == "crop_and_resize") return ResizeMode::crop_and_resize;
    if (name == "2" || name == "fill" || name == "resize_and_fill") return ResizeMode::resize_and_fill;
    if (name == "3" || name == "latent" || name == "latent_upscale") return ResizeMode::latent_upscale;
    throw std::runtime_error("--resize-mode must be resize, crop, fill or latent (0..3), got '" + name + "'");
}

InpaintFill parse_inpainting_fill(const std::string& name) {
    if (name == "fill" || name == "0") return InpaintFill::fill;
    if (name == "original" || name == "1") return InpaintFill::original;
    if (name == "latent_noise" || name == "2") return InpaintFill::latent_noise;
    if (name == "latent_nothing" || name == "3") return InpaintFill::latent_nothing;
    throw std::runtime_error("--inpainting-fill must be fill, original, latent_noise or latent_nothing, got '" + name + "'");
}

const char* resize_mode_label(ResizeMode mode) {
    switch (mode) {
        case ResizeMode::crop_and_resize: return "Crop and resize";
        case ResizeMode::resize_and_fill: return "Resize and fill";
        case ResizeMode::latent_upscale: return "Just resize (latent upscale)";
        default: return "Just resize";
    }
}

Image flatten_alpha(const Image& im, uint8_t r, uint8_t g, uint8_t b) {
    if (im.channels == 3) return im;
    if (im.channels != 4) throw std::runtime_error("flatten_alpha: expected an RGB or RGBA image");
    Image out;
    out.width = im.width; out.height = im.height; out.channels = 3;
    out.pixels.resize((size_t)im.width * im.height * 3);
    const uint8_t bg[3] = {r, g, b};
    for (size_t i = 0; i < (size_t)im.width * im.height; i++) {
        const uint32_t a = im.pixels[i * 4 + 3];
        for (int c = 0; c < 3; c++) {
            // PIL's BLEND: DIV255(bg · (255 − a) + in · a), DIV255(v) = ((v + 128) >> 8 + v + 128) >> 8
            uint32_t v = bg[c] * (255 - a) + im.pixels[i * 4 + c] * a + 128;
            out.pixels[i * 3 + c] = (uint8_t)(((v >> 8) + v) >> 8);
        }
    }
    return out;
}

Image resize_image(ResizeMode mode, const Image& im, int width, int height) {
    auto resize = [](const Image& x, int w, int h) { return pil_resize(x, w, h, PilFilter::lanczos); };
    if (mode == ResizeMode::just_resize) return resize(im, width, height);
    // Python: ratio and src_ratio are floats, the sizes integer divisions of ints.
    const double ratio = (double)width / height, src_ratio = (double)im.width / im.height;
    Image res;
    res.width = width; res.height = height; res.channels = im.channels;
    res.pixels.assign((size_t)width * height * im.channels, 0);  // Image.new("RGB"): black
    if (mode == ResizeMode::crop_and_resize) {
        const int src_w = ratio > src_ratio ? width : im.width * height / im.height;
        const int src_h = ratio <= src_ratio ? height : im.height * width / im.width;
        Image resized = resize(im, src_w, src_h);
        pil_paste(res, resized, width / 2 - src_w / 2, height / 2 - src_h / 2);
        return res;
    }
    const int src_w = ratio < src_ratio ? width : im.width * height / im.height;
    const int src_h = ratio >= src_ratio ? height : im.height * width / im.width;
    Image resized = resize(im, src_w, src_h);
    pil_paste(res, resized, width / 2 - src_w / 2, height / 2 - src_h / 2);
    // Resize and fill: the empty bands get the edge rows (columns) smeared out by resizing a zero-height (width)
    // box at the edge, which PIL's filter turns into a blend of the nearest rows. The webui passes no filter
    // there: PIL's default, BICUBIC.
    const double rw = resized.width, rh = resized.height;
    if (ratio < src_ratio) {
        const int fill_height = height / 2 - src_h / 2;
        if (fill_height > 0) {
            pil_paste(res, pil_resize(resized, width, fill_height, PilFilter::bicubic, {0, 0, (double)width, 0}), 0, 0);
            pil_paste(res, pil_resize(resized, width, fill_height, PilFilter::bicubic, {0, rh, (double)width, rh}), 0,
                      fill_height + src_h);
        }
    } else if (ratio > src_ratio) {
        const int fill_width = width / 2 - src_w / 2;
        if (fill_width > 0) {
            pil_paste(res, pil_resize(resized, fill_width, height, PilFilter::bicubic, {0, 0, 0, (double)height}), 0, 0);
            pil_paste(res, pil_resize(resized, fill_width, height, PilFilter::bicubic, {rw, 0, rw, (double)height}),
                      fill_width + src_w, 0);
        }
    }
    return res;
}

Img2imgSteps img2img_steps(int steps, double strength, int hires_steps) {
    Img2imgSteps s;
    const double st = std::min(strength, 0.999);
    if (hires_steps > 0) {
        s.steps = strength > 0 ? (int)(hires_steps / st) : 0;
        s.t_enc = hires_steps - 1;
    } else {
        s.steps = steps;
        s.t_enc = (int)(st * steps);
    }
    return s;
}

Img2imgRun img2img_run(SamplerKind kind, const std::vector<float>& sigmas, const Img2imgSteps& s,
                       const DiscreteSchedule& table) {
    Img2imgRun r;
    if (s.steps <= 0) throw std::runtime_error("img2img: denoising strength leaves no step to run");
    if (sampler_is_timestep(kind)) {
        // sigmas are those of timesteps[L - 1], ..., timesteps[0] (sampler_sigmas): timesteps[:t_enc] are the last t_enc
        const int T = (int)table.alphas_cumprod.size(), L = (int)sigmas.size();
        if (s.t_enc >= L) throw std::runtime_error("img2img: denoising strength leaves no step to run");
        r.sigmas.assign(sigmas.end() - s.t_enc, sigmas.end());
        const int t_noise = std::min(1 + s.t_enc * (T / s.steps), T - 1);  // timesteps[t_enc]
        const float abar = table.alphas_cumprod[t_noise];
        r.x0_scale = std::sqrt(abar);  // float32, as torch.sqrt of the float32 table entry
        r.noise_scale = std::sqrt(1.0f - abar);
        if (s.t_enc > 0) r.unipc_t_start = std::min(1 + (s.t_enc - 1) * (T / s.steps), T - 1) / 1000.0 + 1 / 1000.0;
        return r;
    }
    // sigmas has the schedule's steps + 1 entries (one more before a discarded penultimate sigma was dropped);
    // the webui slices from steps - t_enc - 1 whatever the length.
    const int from = s.steps - s.t_enc - 1;
    if (from < 0 || from >= (int)sigmas.size() - 1)
        throw std::runtime_error("img2img: denoising strength leaves no step to run");
    r.sigmas.assign(sigmas.begin() + from, sigmas.end());
    r.noise_scale = r.sigmas[0];
    return r;
}

void sample_img2img(SamplerKind kind, const Denoiser& model, std::vector<float>& x, const Img2imgRun& run, Rng& rng,
                    const SamplerCallback& callback, const SamplerOptions& opt) {
    const std::vector<float>& sig = run.sigmas;
    switch (kind) {
        case SamplerKind::dpm_fast:  // sigma_min = sigma_sched[-2], sigma_max = sigma_sched[0], n = len - 1
            return sample_dpm_fast(model, x, sig[sig.size() - 2], sig[0], (int)sig.size() - 1, rng, callback, opt);
        case SamplerKind::dpm_adaptive:
            return sample_dpm_adaptive(model, x, sig[sig.size() - 2], sig[0], rng, callback, opt);
        case SamplerKind::unipc:  // steps = len(timesteps[:t_enc]), t_start as img2img_run says
            return sample_unipc(model, x, (int)sig.size(), sd_schedule().alphas_cumprod, callback, opt.unipc,
                                run.unipc_t_start);
        default: return sample(kind, model, x, sig, rng, callback, opt);
    }
}

void blend_latent(std::vector<float>& x, const LatentStart& start) {
    const std::vector<float>& keep = start.keep;
    for (size_t i = 0; i < x.size(); i++)  // float32 as torch: init * mask + nmask * x
        x[i] = start.latent[i] * keep[i] + (1.0f - keep[i]) * x[i];
}

Denoiser blend_denoiser(Denoiser inner, const LatentStart& start, bool timestep_sampler) {
    if (!timestep_sampler)
        return [inner, &start](const std::vector<float>& x, float sigma, std::vector<float>& denoised,
                               const DenoiseExtras& extras) {
            inner(x, sigma, denoised, extras);
            blend_latent(denoised, start);
        };
    return [inner, &start](const std::vector<float>& x, float sigma, std::vector<float>& denoised,
                           const DenoiseExtras& extras) {
        // x = x_t / sqrt(abar) with abar = 1 / (1 + sigma²): the UNet sees x_t · (1 − keep) + init · keep, i.e.
        // xb = x · (1 − keep) + init · keep · sqrt(1 + sigma²) at this scale. Its eps e = (xb − Db) / sigma; the
        // sampler reads eps and pred_x0 off D = x − sigma · e against its own x, so D = Db + (x − xb).
        const double s = std::sqrt(1.0 + (double)sigma * sigma);
        std::vector<float> xb(x.size());
        for (size_t i = 0; i < x.size(); i++) {
            const float xt = (float)(x[i] / s);  // the webui's float32 x_t
            xb[i] = (float)((xt * (1.0f - start.keep[i]) + start.latent[i] * start.keep[i]) * s);
        }
        inner(xb, sigma, denoised, extras);
        for (size_t i = 0; i < x.size(); i++) {
            denoised[i] = (float)(denoised[i] + ((double)x[i] - xb[i]));
            if (extras.uncond) (*extras.uncond)[i] = (float)((*extras.uncond)[i] + ((double)x[i] - xb[i]));
        }
    };
}

namespace {

// x (1, 3, H, W): in [-1, 1] for the VAE, [0, 1] for TAESD → UNet-space latent (1, 4, H/8, W/8), as floats.
std::vector<float> encode_tensor(Model& m, const Tensor& x, bool taesd, Arena& arena, int64_t* h = nullptr,
                                 int64_t* w = nullptr, const int* vae_tiling_for_encode = nullptr) {
    Tensor z;
    if (taesd) {
        if (!m.taesd_encoder) m.taesd_encoder = std::make_unique<Taesd>(load_taesd_encoder("", m.sdxl()));
        z = taesd_encode(*m.taesd_encoder, x, arena);
    } else {
        if (!m.vae.has_encoder) throw std::runtime_error("this VAE has no encoder; img2img needs one (or use --taesd)");
        // tiled as the decoder is (above its model's threshold, or as --vae-tiling says), when the sides allow it
        const int64_t H = x.shape[2], W = x.shape[3];
        const bool tiled = vae_tiling_for_encode && H % 8 == 0 && W % 8 == 0 &&
                           vae_tile_decode(*vae_tiling_for_encode, W, H, vae_auto_tile_pixels(m));
        z = tiled ? vae_encode_tiled(m.vae, x, arena) : vae_encode(m.vae, x, arena);
    }
    if (h) *h = z.shape[2];
    if (w) *w = z.shape[3];
    std::vector<float> out(z.f32(), z.f32() + z.numel());
    for (float v : out)
        if (!std::isfinite(v)) throw std::runtime_error("the image encoder produced NaN/Inf");
    return out;
}

void check_encodable(int width, int height) {
    if (width % 8 || height % 8)
        throw std::runtime_error("the image to encode must be a multiple of 8 pixels on each side, got " +
                                 std::to_string(width) + "x" + std::to_string(height));
}

}  // namespace

std::vector<float> encode_image(Model& m, const Image& img, bool taesd, Arena& arena, int vae_tiling, int64_t* h,
                                int64_t* w) {
    if (img.channels != 3) throw std::runtime_error("encode_image: expected an RGB image");
    if (!h) check_encodable(img.width, img.height);
    if (img.width < 8 || img.height < 8)
        throw std::runtime_error("the image to encode is " + std::to_string(img.width) + "x" +
                                 std::to_string(img.height) + " pixels; it needs at least 8 on each side");
    const int64_t H = img.height, W = img.width, HW = H * W;
    ArenaScope scope(arena);
    Tensor x = arena.alloc({1, 3, H, W});
    for (int64_t c = 0; c < 3; c++)
        for (int64_t i = 0; i < HW; i++) {
            const float v = (float)img.pixels[i * 3 + c] / 255.0f;  // np.float32 / 255.0, as the webui
            x.f32()[c * HW + i] = taesd ? v : v * 2.0f - 1.0f;
        }
    return encode_tensor(m, x, taesd, arena, h, w, &vae_tiling);
}

std::vector<float> encode_latent_resize(Model& m, const Image& img, int width, int height, bool taesd, Arena& arena,
                                        int vae_tiling) {
    int64_t h = 0, w = 0;
    std::vector<float> z = encode_image(m, img, taesd, arena, vae_tiling, &h, &w);
    // init_latent = F.interpolate(init_latent, size=(height // 8, width // 8), mode="bilinear")
    return torch_interpolate(z, 4, h, w, height / 8, width / 8, LatentInterp::bilinear);
}

std::vector<float> inpainting_image_conditioning(Model& m, const Image& image, const Image& mask, Arena& arena) {
    check_encodable(image.width, image.height);
    if (mask.width != image.width || mask.height != image.height)
        throw std::runtime_error("inpainting_image_conditioning: the mask and the image differ in size");
    const int64_t H = image.height, W = image.width, HW = H * W, h = H / 8, w = W / 8;
    std::vector<float> cm((size_t)HW);
    for (int64_t i = 0; i < HW; i++) {
        const uint8_t* p = &mask.pixels[i * mask.channels];
        // .convert("L") of the (RGB-pasted) mask: its grey value; / 255, rounded (np.round / torch.round)
        const uint32_t l = mask.channels >= 3 ? (p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16 : p[0];
        cm[i] = std::nearbyint((float)l / 255.0f);
    }
    std::vector<float> z;
    {
        ArenaScope scope(arena);
        Tensor x = arena.alloc({1, 3, H, W});
        for (int64_t c = 0; c < 3; c++)
            for (int64_t i = 0; i < HW; i++) {
                const float src = (float)image.pixels[i * 3 + c] / 255.0f * 2.0f - 1.0f;
                x.f32()[c * HW + i] = src * (1.0f - cm[i]);  // torch.lerp(src, src·(1 − m), 1)
            }
        z = encode_tensor(m, x, false, arena);  // encode_first_stage: always the VAE
    }
    std::vector<float> out((size_t)(5 * h * w));
    for (int64_t y = 0; y < h; y++)  // F.interpolate(mode="nearest"): source index floor(i · 8)
        for (int64_t xx = 0; xx < w; xx++) out[y * w + xx] = cm[(y * 8) * W + xx * 8];
    std::copy(z.begin(), z.end(), out.begin() + h * w);
    return out;
}

std::vector<float> unmasked_image_conditioning(Model& m, int64_t h, int64_t w, bool taesd, Arena& arena) {
    std::vector<float> z;
    {
        ArenaScope scope(arena);
        Tensor x = arena.alloc({1, 3, 8 * h, 8 * w});
        for (int64_t i = 0; i < x.numel(); i++) x.f32()[i] = taesd ? 0.5f : 0.5f * 2.0f - 1.0f;
        z = encode_tensor(m, x, taesd, arena);
    }
    std::vector<float> out((size_t)(5 * h * w), 1.0f);  // F.pad(..., (0,0,0,0,1,0), value=1): the mask channel first
    std::copy(z.begin(), z.end(), out.begin() + h * w);
    return out;
}

Image generate_img2img(Model& m, const GenerateParams& p, const Img2imgParams& ip, Arena& arena, StageTimes* times,
                       const StepCallback& on_step, const std::atomic<bool>* cancel,
                       std::vector<std::pair<std::string, std::string>>* extra) {
    const double t0 = process_cpu_seconds();
    std::vector<std::pair<std::string, std::string>> info;
    const InpaintParams* ip_mask = ip.inpaint;
    Image image = flatten_alpha(ip.init);
    // StableDiffusionProcessingImg2Img.init, in its order
    Image image_mask, mask_for_overlay;
    bool have_mask = false, cropped = false;
    CropRegion crop;
    if (ip_mask) {
        Image mk = binary_mask(ip_mask->mask);
        if (ip_mask->invert) {
            mk = invert_mask(mk);
            info.push_back({"Mask mode", "Inpaint not masked"});
        }
        const int blur_y = ip_mask->blur_y < 0 ? ip_mask->blur : ip_mask->blur_y;
        mk = blur_mask(mk, ip_mask->blur, blur_y);
        if (ip_mask->blur > 0 && blur_y == ip_mask->blur)  // the mask_blur property: None when x and y differ
            info.push_back({"Mask blur", std::to_string(ip_mask->blur)});
        if (ip_mask->full_res) {
            mask_for_overlay = mk;
            if (crop_region_v2(mk, ip_mask->padding, &crop)) {
                crop = expand_crop_region(crop, p.width, p.height, mk.width, mk.height);
                image_mask = resize_image(ResizeMode::resize_and_fill, pil_crop(mk, crop.x1, crop.y1, crop.x2, crop.y2),
                                          p.width, p.height);
                cropped = have_mask = true;
                info.push_back({"Inpaint area", "Only masked"});
                info.push_back({"Masked area padding", std::to_string(ip_mask->padding)});
            } else {
                std::fprintf(stderr, "note: the mask is blank, so \"only masked\" cannot be done; running img2img\n");
            }
        } else {
            image_mask = resize_image(ip.resize_mode, mk, p.width, p.height);
            mask_for_overlay = image_mask;
            for (uint8_t& v : mask_for_overlay.pixels) v = (uint8_t)std::min(255, 2 * v);  // np.clip(mask * 2)
            have_mask = true;
        }
    }
    if (!cropped && ip.resize_mode != ResizeMode::latent_upscale) image = resize_image(ip.resize_mode, image, p.width, p.height);
    Image overlay;
    if (have_mask) {
        if (mask_for_overlay.width != image.width || mask_for_overlay.height != image.height)
            mask_for_overlay = resize_image(ip.resize_mode, mask_for_overlay, image.width, image.height);
        overlay = masked_overlay(image, mask_for_overlay);
    }
    if (cropped) {
        image = pil_crop(image, crop.x1, crop.y1, crop.x2, crop.y2);
        image = resize_image(ResizeMode::resize_and_fill, image, p.width, p.height);
    }
    if (have_mask && ip_mask->fill != InpaintFill::original) {
        if (image.width != image_mask.width || image.height != image_mask.height)
            throw std::runtime_error("inpainting with --resize-mode latent needs an init image of the output size");
        image = fill_masked(image, image_mask);
        if (ip_mask->fill == InpaintFill::fill) info.push_back({"Masked content", "fill"});
    }

    LatentStart start;
    start.strength = ip.strength;
    if (ip.resize_mode == ResizeMode::latent_upscale) {
        start.latent = encode_latent_resize(m, image, p.width, p.height, p.taesd, arena, p.vae_tiling);
    } else {
        start.latent = encode_image(m, image, p.taesd, arena, p.vae_tiling);
    }
    if (m.unet.cfg.in_channels == 9) {  // img2img_image_conditioning → inpainting_image_conditioning
        if (image.width != p.width || image.height != p.height)
            throw std::runtime_error("an inpainting model cannot be used with --resize-mode latent; choose another mode");
        Image ones;
        if (!have_mask) {  // no mask: all ones (the whole image masked out)
            ones.width = image.width; ones.height = image.height; ones.channels = 1;
            ones.pixels.assign((size_t)image.width * image.height, 255);
        }
        start.image_cond = inpainting_image_conditioning(m, image, have_mask ? image_mask : ones, arena);
        info.insert(info.begin(), {"Conditional mask weight", "1.0"});  // the webui's inpainting_mask_weight
    }
    if (have_mask) {
        start.keep = latent_keep_mask(image_mask, p.width / 8, p.height / 8);
        if (ip_mask->fill == InpaintFill::latent_noise) {
            // create_random_tensors with the image's seed: the same draw the sampler's noise starts with
            ImageRng rng(p.rng, {p.seed});
            std::vector<float> noise = rng.randn((int64_t)start.latent.size());
            for (size_t i = 0; i < noise.size(); i++)
                start.latent[i] = start.latent[i] * start.keep[i] + noise[i] * (1.0f - start.keep[i]);
            info.push_back({"Masked content", "latent noise"});
        } else if (ip_mask->fill == InpaintFill::latent_nothing) {
            for (size_t i = 0; i < start.latent.size(); i++) start.latent[i] *= start.keep[i];
            info.push_back({"Masked content", "latent nothing"});
        }
    }
    const double encode_cpu = process_cpu_seconds() - t0;
    GenerateParams q = p;
    q.start = &start;
    Image out = generate(m, q, arena, times, on_step, cancel);
    if (have_mask) out = apply_overlay(out, cropped ? &crop : nullptr, overlay);
    if (times) times->encode_cpu = encode_cpu;
    if (extra) *extra = info;
    return out;
}

}  // namespace sd
