// img2img.h — image to image as the webui does it (modules/processing.py StableDiffusionProcessingImg2Img,
// sd_samplers_kdiffusion.py sample_img2img): the init image flattened onto white, resized to the output size,
// encoded by the VAE (or TAESD) into a latent x0, then sampling starts part way down the schedule from
// x0 + sigma_start · noise, so only the last `strength` of the denoising is redone (SDEdit, Meng et al. 2022,
// "SDEdit: Guided Image Synthesis and Editing with Stochastic Differential Equations", §3).
//
// The schedule (setup_img2img_steps): with `steps` requested and strength s, the sampler's full schedule of
// `steps` sigmas is built and its last t_enc + 1 = int(min(s, 0.999) · steps) + 1 steps are run. The hires fix
// instead asks for a step count of its own (hires_steps): the schedule is stretched to int(steps / min(s, 0.999))
// so exactly hires_steps steps run — the webui's img2img_fix_steps rule.
// The VAE's latent is the posterior mean: the webui samples mean + std · N(0, I) from torch's global generator,
// whose state no seed controls, so its own img2img is not reproducible there (std is ~1e-3 of the mean on SD's VAE).
// Every sampler runs in img2img as the webui runs it (img2img_run below). Left out: batches of init images.
#pragma once
#include <string>
#include <vector>

#include "pipeline/image.h"
#include "pipeline/resample.h"
#include "pipeline/txt2img.h"

namespace sd {

// The webui's resize_mode: 0 just resize, 1 crop and resize, 2 resize and fill, 3 just resize (latent upscale).
enum class ResizeMode { just_resize = 0, crop_and_resize = 1, resize_and_fill = 2, latent_upscale = 3 };
// "just_resize" / "resize" / "0", "crop" / "1", "fill" / "2", "latent" / "3"; throws naming the choices.
ResizeMode parse_resize_mode(const std::string& name);
// The webui's label, as its infotext writes it ("Just resize", ...).
const char* resize_mode_label(ResizeMode mode);

// images.flatten(img, "#ffffff"): an RGBA image composed over a background colour (PIL's paste with the alpha
// as mask, rounded as PIL rounds), as RGB; an RGB image unchanged.
Image flatten_alpha(const Image& im, uint8_t r = 255, uint8_t g = 255, uint8_t b = 255);

// images.resize_image(mode, im, width, height) with the webui's default upscaler (None: LANCZOS). The latent mode
// takes the webui's `else` branch, resize and fill (img2img itself resizes the latent instead of the image).
// 8-bit images of any channel count.
Image resize_image(ResizeMode mode, const Image& im, int width, int height);

struct Img2imgSteps {
    int steps = 0;  // length of the schedule the sampler's sigmas are built for
    int t_enc = 0;  // t_enc + 1 steps are run, from sigmas[steps - t_enc - 1]
};
// setup_img2img_steps; hires_steps > 0: the hires fix's fixed count (img2img_fix_steps).
Img2imgSteps img2img_steps(int steps, double strength, int hires_steps = 0);

// Where sampling starts: the latent the webui's sample_img2img begins from and the part of the schedule it runs.
struct LatentStart {
    std::vector<float> latent;  // x0 (1, 4, h, w) in UNet space
    double strength = 0.75;     // denoising strength in (0, 1]
    int hires_steps = 0;        // > 0: the hires pass's fixed step count
    // Inpainting (pipeline/masking.h): per latent element, 1 where the original is kept ("mask" in the webui),
    // 0 where it is repainted; empty: none. Each step's denoised estimate and the result are blended
    // init · mask + x · (1 − mask).
    std::vector<float> keep;
    // Inpainting models: the UNet's extra input (5, h, w) = the mask and the masked image's latent; empty: none
    // (sample_latent then gives such a model unmasked_image_conditioning).
    std::vector<float> image_cond;
};

// The webui's inpainting conditioning for 9-channel UNets (processing.py inpainting_image_conditioning, with its
// inpainting_mask_weight 1): mask m = round(L / 255) at full resolution, the VAE latent (0.18215 · mean) of
// (2·image/255 − 1)·(1 − m), and m sampled to latent size (nearest) in front: (5, H/8, W/8).
std::vector<float> inpainting_image_conditioning(Model& m, const Image& image, const Image& mask, Arena& arena);
// txt2img_image_conditioning: a mask of ones and the latent of a grey (0.5) image, VAE or TAESD as `taesd`.
std::vector<float> unmasked_image_conditioning(Model& m, int64_t h, int64_t w, bool taesd, Arena& arena);

// The webui's Sampler.sample_img2img, per sampler family: the part of the sampler's schedule that runs and how
// the init latent x0 is noised to where it starts, x = x0_scale · x0 + noise_scale · noise.
// - k-diffusion samplers (sd_samplers_kdiffusion.py): sigma_sched = sigmas[steps − t_enc − 1:], x = x0 + noise ·
//   sigma_sched[0]; DPM fast and DPM adaptive solve from sigma_sched[0] down to sigma_sched[-2] (the last
//   positive one), DPM fast in len(sigma_sched) − 1 model evaluations.
// - Timestep samplers, DDIM, DDIM CFG++, PLMS, UniPC (sd_samplers_timesteps.py): of the ascending timesteps
//   min(1 + k · (1000 // steps), 999), the first t_enc are visited, from the top (DDIM and PLMS make t_enc − 1
//   steps between them), and x = sqrt(abar) · x0 + sqrt(1 − abar) · noise with abar = alphas_cumprod at
//   timesteps[t_enc]: one timestep above the first one visited, as the webui has it. UniPC makes t_enc steps of
//   its own time grid from t = timesteps[t_enc − 1] / 1000 + 1 / 1000 (its is_img2img start).
struct Img2imgRun {
    std::vector<float> sigmas;   // the noise levels of the part of the schedule that runs, in the order visited
    float x0_scale = 1, noise_scale = 0;
    double unipc_t_start = 1;    // UniPC: the continuous time its grid starts from
};
Img2imgRun img2img_run(SamplerKind kind, const std::vector<float>& sigmas, const Img2imgSteps& s,
                       const DiscreteSchedule& table);
// Runs `kind` from x (x0 noised as `run` says) over run.sigmas, as the webui's sample_img2img calls the sampler.
void sample_img2img(SamplerKind kind, const Denoiser& model, std::vector<float>& x, const Img2imgRun& run, Rng& rng,
                    const SamplerCallback& callback = {}, const SamplerOptions& opt = {});

// The webui's inpainting blend for ordinary checkpoints: each step's denoised estimate (CFGDenoiser, after the
// model) and the final latent (StableDiffusionProcessingImg2Img.sample) become init · keep + x · (1 − keep).
// Timestep samplers blend the model's input instead (CFGDenoiserTimesteps: mask_before_denoising): their latent
// x_t (variance preserving) becomes x_t · (1 − keep) + init · keep before the UNet sees it, while the sampler
// goes on from its own x_t with the eps predicted there.
Denoiser blend_denoiser(Denoiser inner, const LatentStart& start, bool timestep_sampler = false);
void blend_latent(std::vector<float>& x, const LatentStart& start);

// images_tensor_to_samples: an RGB image → its UNet-space latent (1, 4, H/8, W/8): the VAE's posterior mean ×
// 0.18215 of 2·x/255 − 1 (tiled above 1024×1024 pixels like the decoder, unless vae_tiling says otherwise), or
// TAESD's encoder of x/255. H and W must be multiples of 8.
// With h and w given, any size of at least 8×8 is encoded (the latent's size is written there: the VAE floors
// each side to H/8, TAESD rounds it up), as the webui's latent-upscale path encodes the init image at its own size.
std::vector<float> encode_image(Model& m, const Image& img, bool taesd, Arena& arena, int vae_tiling = -1,
                                int64_t* h = nullptr, int64_t* w = nullptr);
// Resize mode "latent" (processing.py, resize_mode 3): the init image, not resized, encoded at its own size, then
// its latent resized bilinearly (torch interpolate, align_corners False) to (height/8, width/8).
std::vector<float> encode_latent_resize(Model& m, const Image& img, int width, int height, bool taesd, Arena& arena,
                                        int vae_tiling = -1);

// Inpainting (the webui's inpaint tab): what the mask says and how the masked area is treated.
enum class InpaintFill { fill = 0, original = 1, latent_noise = 2, latent_nothing = 3 };
InpaintFill parse_inpainting_fill(const std::string& name);  // fill | original | latent_noise | latent_nothing
struct InpaintParams {
    Image mask;                    // as read; white (or opaque) = repaint
    int blur = 4;                  // "Mask blur"
    int blur_y = -1;               // the webui's mask_blur_y when it differs from blur (mask_blur_x); -1: as blur
    bool invert = false;           // "Inpaint not masked"
    InpaintFill fill = InpaintFill::original;
    bool full_res = false;         // "Only masked": the masked area's box, at the output size, pasted back
    int padding = 32;              // "Only masked padding, pixels"
};

// What the CLI asks of img2img.
struct Img2imgParams {
    Image init;                                  // as read (RGB or RGBA)
    double strength = 0.75;
    ResizeMode resize_mode = ResizeMode::just_resize;
    const InpaintParams* inpaint = nullptr;      // null: plain img2img
};

// The whole of img2img: flatten, resize, encode, sample from LatentStart (p's seed, steps, sampler, prompts),
// decode; with a mask, the webui's inpainting around that (pipeline/masking.h). p.width / p.height are the
// sampling size (the image's, except "only masked", which returns the init image's size). `extra` (if given)
// receives the infotext fields the webui adds for these settings, in its order.
Image generate_img2img(Model& m, const GenerateParams& p, const Img2imgParams& ip, Arena& arena,
                       StageTimes* times = nullptr, const StepCallback& on_step = {},
                       const std::atomic<bool>* cancel = nullptr,
                       std::vector<std::pair<std::string, std::string>>* extra = nullptr);

}  // namespace sd
