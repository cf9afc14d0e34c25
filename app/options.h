// options.h — the command line, parsed and validated into one struct before anything is loaded.
//
// Every flag, its default and its meaning live in usage(); parse_args() throws UsageError with one sentence
// naming the offending flag. Sampler and scheduler names are checked by the sampler module.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sd {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Options {
    std::string command = "generate";  // generate | info | tokenize | bench | help | version
    std::vector<std::string> args;     // positional arguments of info / tokenize
    std::string model;                 // -m
    std::string prompt, negative_prompt;
    std::string sampler = "euler_a", scheduler;  // scheduler empty: the sampler name's suffix, else "automatic"
    double beta_alpha = 0.6, beta_beta = 0.6;    // the Beta schedule's distribution (webui settings)
    double sigma_min = 0, sigma_max = 0, rho = 0;  // webui "sigma min/max", "rho": 0 = the default
    std::string unipc_variant = "bh1", unipc_skip_type = "time_uniform";  // webui uni_pc_* settings
    int unipc_order = 3;
    bool unipc_lower_order_final = true;
    int steps = 20;
    double cfg_scale = 7.0;
    int width = 512, height = 512;
    uint64_t seed = 0;                 // 0 .. 2^64-1, as torch and the webui accept
    bool random_seed = true;           // --seed -1 or none: pick one
    std::string rng = "philox";        // philox | cpu
    int clip_skip = 1;
    int threads = 0;                   // 0: all cores
    std::string output = "output.png";
    int batch_count = 1;
    std::string dump_latents;          // folder for .npy trajectory dumps; empty: off
    bool taesd = false;
    std::string vae;                   // --vae FILE: external VAE; empty: the checkpoint's
    std::string prediction;            // eps | v; empty: decided as the webui does
    std::string preview;               // --preview FILE: TAESD preview PNG rewritten every step; empty: off
    std::string precision;             // fp32 | bf16; empty: best for this CPU
    int vae_tiling = -1;               // -1 auto, 0 off, 1 on
    int bench_runs = 3;
    bool verbose = false;
    std::string embeddings_dir;        // --embeddings-dir; empty: embeddings/ beside the model
    std::string lora_dir;              // --lora-dir; empty: loras/ beside the model
    std::string lora_apply = "merge";  // --lora-apply merge|runtime (models/lora.h LoraApply)
    bool tokenize_weights = false;     // tokenize --weights: id:weight per 77-token chunk
    bool tokenize_schedule = false;    // tokenize --schedule: the prompt schedule over --steps
    // img2img and inpainting (pipeline/img2img.h, pipeline/masking.h)
    std::string init_img;              // --init-img FILE; empty: txt2img
    double strength = 0.75;            // --strength: the webui's denoising strength
    std::string resize_mode = "resize";  // resize | crop | fill | latent
    std::string mask;                  // --mask FILE (white = repaint); empty: none
    int mask_blur = 4;
    bool invert_mask = false;
    std::string inpainting_fill = "original";  // fill | original | latent_noise | latent_nothing
    bool inpaint_full_res = false;     // --inpaint-full-res: only the masked area, at full resolution
    int inpaint_padding = 32;
    // hires fix (txt2img only)
    double hires_scale = 0;            // > 0: on (--hires-scale); or --hires-width/--hires-height
    int hires_width = 0, hires_height = 0;
    int hires_steps = 0;               // 0: the first pass's count
    double hires_strength = 0.7;
    std::string hires_upscaler = "latent";
    bool hires() const { return hires_scale > 0 || hires_width > 0 || hires_height > 0; }
};

Options parse_args(int argc, const char* const* argv);
std::string usage();

}  // namespace sd
