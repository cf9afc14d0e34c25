// txt2img.h — from a prompt to an image: tokenizer → CLIP → sampler driving the UNet with CFG → VAE → RGB.
//
// The model is loaded once (weights stay in the mapped checkpoint) and can make any number of images.
// The denoiser closure here is where the k-diffusion conventions live: c_in = 1/sqrt(sigma²+1) scales the
// UNet input, t = sigma_to_t(sigma) is its timestep, D = x − sigma·eps (or, for v-prediction models,
// c_skip·x + c_out·v: pipeline/prediction.h) its denoised estimate, and classifier-free guidance (Ho & Salimans
// 2022) out = out_uncond + cfg·(out_cond − out_uncond), cond and uncond as one batch of 2; at CFG 1 the uncond pass is
// not run at all. SD 1.x conditions on CLIP ViT-L/14's last layer, SD 2.x on OpenCLIP ViT-H/14's penultimate one.
// img2img, inpainting and the hires fix start sampling from an encoded image instead: pipeline/img2img.h.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/checkpoint.h"
#include "pipeline/image.h"
#include "models/clip.h"
#include "models/lora.h"
#include "models/open_clip.h"
#include "models/taesd.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/conditioning.h"
#include "pipeline/prediction.h"
#include "pipeline/rng.h"
#include "pipeline/samplers.h"
#include "pipeline/schedule.h"
#include "safetensors.h"

namespace sd {

struct Model {
    std::unique_ptr<SafeTensors> file;  // the mapped checkpoint every weight view points into
    CheckpointInfo info;
    ClipTextModel clip;                 // SD 1.x; SDXL's CLIP ViT-L (conditioner.embedders.0)
    OpenClipTextModel open_clip;        // SD 2.x; SDXL's OpenCLIP ViT-bigG (conditioner.embedders.1)
    UNet unet;
    Vae vae;
    std::unique_ptr<SafeTensors> vae_file;  // --vae: the external VAE's mapped file; null: the checkpoint's own
    Prediction prediction = Prediction::eps;
    std::string prediction_why;         // why (pipeline/prediction.h), for `sd info` and -v
    std::unique_ptr<Taesd> taesd;       // loaded on first use (--taesd, --preview)
    std::string loras;                  // the LoRAs applied to the weights now (pipeline/loras.h); "": none
    LowRankTable low_rank;              // of those, the ones the layers add at run time (--lora-apply runtime)
    std::unique_ptr<Taesd> taesd_encoder;  // loaded on first use (img2img with --taesd)
    bool sd2() const { return info.family == ModelFamily::sd2; }
    bool sdxl() const { return info.family == ModelFamily::sdxl; }
};

// The UNet's channels per attention head: 0 for SD 1.x (8 heads at every level), 64 for SD 2.x and SDXL
// (heads_by_width), or what the file's unet_config metadata states as num_head_channels (the tiny test models do).
int64_t unet_head_dim(const SafeTensors& st, bool heads_by_width);

// Maps the checkpoint, checks it is an SD 1.x or 2.x model, binds text encoder, UNet and VAE (no weight is
// copied) and decides epsilon or v (`prediction`: "" decides as the webui does, else "eps" / "v").
// vae_path: a VAE file (ldm names, with or without "first_stage_model.") that replaces the checkpoint's own.
Model load_model(const std::string& path, const std::string& vae_path = "", const std::string& prediction = "");
// (Re)binds the text encoder and UNet to m.file's tensors (after LoRA overrides changed: pipeline/loras.h).
void bind_networks(Model& m);

struct LatentStart;  // pipeline/img2img.h

struct GenerateParams {
    std::string prompt, negative_prompt;
    SamplerKind sampler = SamplerKind::euler_a;
    ScheduleKind schedule = ScheduleKind::discrete;
    ScheduleOptions schedule_options;
    UniPCOptions unipc;        // the webui's UniPC settings (UniPC only)
    int steps = 20;
    double cfg_scale = 7.0;
    int width = 512, height = 512;
    uint64_t seed = 0;
    RngKind rng = RngKind::philox;
    int clip_skip = 1;
    bool taesd = false;
    int vae_tiling = -1;       // VAE decode in tiles: -1 auto (above 1024×1024 pixels), 0 off, 1 on; not TAESD
    // The trajectory, each latent (1, 4, h, w) named: "noise" (the seed's standard normals), then "step_000" (the
    // scaled initial noise, or img2img's noised start), "step_001", ... (x after each step), the last the final
    // latent (--dump-latents writes them as .npy). Empty: not called.
    std::function<void(const std::string& name, const std::vector<float>& x, int64_t h, int64_t w)> on_latent;
    // Called after each sampling step (1, 2, ...) with the model's denoised estimate D(x), (1, 4, H/8, W/8):
    // what live previews show. Empty: not called.
    std::function<void(int step, const std::vector<float>& denoised)> on_denoised;
    const EmbeddingDb* embeddings = nullptr;  // textual-inversion embeddings the prompts may name
    // Called after every step with the TAESD decode of the denoised estimate (preview_image); its time, decode
    // included, is StageTimes::preview (--preview writes it as a PNG). Empty: no preview is decoded.
    std::function<void(const Image& preview)> on_preview;
    std::string lora_dir;      // where the prompt's <lora:NAME:...> files are (pipeline/loras.h)
    LoraApply lora_apply = LoraApply::merge;  // merged into copies of the touched weights, or added at run time
    const LatentStart* start = nullptr;  // img2img / hires pass: start from this latent part way down; null: noise
};

// The schedule options for a model of `family`: Align Your Steps takes the SDXL list for SDXL (the webui's
// sd_model.is_sdxl), the SD 1.5 list for every other family.
ScheduleOptions schedule_options_for(ModelFamily family, ScheduleOptions opt);

// The webui counts prompt-editing steps in denoiser calls: a sampler it marks second-order (two model calls per
// step) gets a schedule over 2 × steps (its SamplerData.total_steps).
int webui_total_steps(SamplerKind kind, int steps);

// Wall-clock seconds per stage of the last generate() call.
struct StageTimes {
    double text = 0, sampling = 0, decode = 0;
    double preview = 0;  // of `sampling`: the previews (TAESD decode and on_preview: PNG encode, write)
    double text_cpu = 0, sampling_cpu = 0, decode_cpu = 0;  // CPU seconds of the whole process (all threads)
    double encode_cpu = 0;  // img2img: resizing and encoding the init image
};

// Called with step 0 when sampling starts, then after every sampling step (1, 2, ...).
using StepCallback = std::function<void(int step, int steps)>;

// Thrown when `cancel` becomes true during sampling (Ctrl-C): nothing is produced.
struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("interrupted; no image was written") {}
};

// Reads the prompts as generate() will (tags, AND, schedules, emphasis) and throws the error it would meet —
// a LoRA tag's bad weight, a weight Python's float() refuses — so the CLI can refuse before loading anything.
void check_prompts(const std::string& prompt, const std::string& negative_prompt, int total_steps);

// The model's text encoder for the conditioning code: SD 1.x CLIP (with clip skip and embeddings) or SD 2.x
// OpenCLIP (no embeddings yet).
TextEncoder text_encoder(const Model& m, int clip_skip);

// Text conditioning of one plain text (emphasis and BREAK read, no scheduling or AND): its 75-token chunks, each
// encoded to (77, width), concatenated → (1, 77·k, width). The result owns its memory; `arena` is only scratch.
Tensor encode_prompt(const Model& m, const std::string& text, int clip_skip, Arena& arena);

// The UNet's context: [uncond, cond] as (2, T, width) when with_uncond, else cond as (1, T, width); the two are
// padded to the same number of chunks with empty-prompt chunks (the webui's "Pad conds" option, off by default:
// generate() does not pad).
Tensor make_conditioning(const Model& m, const std::string& prompt, const std::string& negative_prompt, bool with_uncond,
                         int clip_skip, Arena& arena);
// D(x; sigma) for the samplers over one (1, 4, h, w) latent: the UNet on [x, x]·c_in with `context` (B = 2: CFG
// with scale cfg_scale) or on x·c_in (B = 1), its output read as m.prediction says; with lcm, LCM's boundary
// scalings are applied to D.
// Throws on NaN/Inf, and Cancelled once *cancel is true.
Denoiser make_cfg_denoiser(Model& m, const Tensor& context, double cfg_scale, const DiscreteSchedule& table,
                           int64_t h, int64_t w, Arena& arena, const std::atomic<bool>* cancel = nullptr,
                           bool lcm = false);

// The live preview: the TAESD decode of a (1, 4, h, w) latent as 8-bit RGB (8h, 8w); an empty image when the
// latent holds NaN/Inf (the sampler then says why).
Image preview_image(Model& m, const std::vector<float>& latent, int64_t h, int64_t w, Arena& arena);

// The final latent (1, 4, H/8, W/8) for p; throws if the model produces NaN/Inf (naming the stage and step).
Tensor sample_latent(Model& m, const GenerateParams& p, Arena& arena, StageTimes* times = nullptr,
                     const StepCallback& on_step = {}, const std::atomic<bool>* cancel = nullptr);
// Decodes a latent with the VAE (or TAESD) into 8-bit RGB, as the webui quantises: clamp((x+1)/2)·255, truncated.
// The VAE decodes in tiles (vae_decode_tiled) when vae_tile_decode(vae_tiling, W, H) says so, as few and as large
// as fit 1 GiB of activations (vae_decode_tile).
Image decode_latent(Model& m, const Tensor& latent, bool taesd, Arena& arena, int vae_tiling = -1);
// Whether the VAE decode of a width × height image is tiled: vae_tiling 1 yes, 0 no, -1 above auto_above pixels
// (1024×1024 for SD 1.x/2.x; vae_auto_tile_pixels(m) gives the model's).
bool vae_tile_decode(int vae_tiling, int64_t width, int64_t height, int64_t auto_above = 1024 * 1024);
// Above how many pixels the model's VAE decode is tiled by default: 1024×1024, and 768×768 for SDXL, whose native
// 1024×1024 would otherwise need 1.5 GB of decoder activations on top of the mapped weights (0.4 GB tiled).
int64_t vae_auto_tile_pixels(const Model& m);
// The webui's CFG denoiser over a prompt schedule and AND parts (sd_samplers_cfg_denoiser.py): at its k-th call
// (k counts from 0) each part's and the uncond's conditioning for step k; the parts (padded among themselves by
// repeating their last vector) and the uncond run as one UNet batch when their lengths agree, else separately
// (no "Pad conds"); D = D_u + Σ weight_i · cfg · (D_i − D_u). uncond null: cond parts only (cfg 1, one part).
Denoiser make_multicond_denoiser(Model& m, const MultiCond& cond, const CondSchedule* uncond, double cfg_scale,
                                 const DiscreteSchedule& table, int64_t h, int64_t w, Arena& arena,
                                 const std::atomic<bool>* cancel = nullptr, bool lcm = false,
                                 const std::vector<float>* concat = nullptr);  // extra UNet input channels (k, h, w)
// sample_latent + decode_latent.
Image generate(Model& m, const GenerateParams& p, Arena& arena, StageTimes* times = nullptr,
               const StepCallback& on_step = {}, const std::atomic<bool>* cancel = nullptr);

// Rough working memory (bytes) one image of this size needs beyond the mapped weights, for refusing
// sizes that cannot fit before anything is allocated.
size_t estimate_working_memory(const Model& m, int width, int height, bool taesd, int vae_tiling = -1);

}  // namespace sd
