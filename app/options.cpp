// options.cpp — a hand-written parser: every value is checked for type and range as it is read.
#include "app/options.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace sd {
namespace {

long long parse_int(const std::string& flag, const char* s, long long lo, long long hi) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s, &end, 10);
    if (!*s || *end || errno)
        throw UsageError(flag + " expects a whole number, got '" + s + "'");
    if (v < lo || v > hi)
        throw UsageError(flag + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                         ", got " + s);
    return v;
}

double parse_float(const std::string& flag, const char* s, double lo, double hi) {
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(s, &end);
    if (!*s || *end || errno || !std::isfinite(v))
        throw UsageError(flag + " expects a finite number, got '" + s + "'");
    if (v < lo || v > hi)
        throw UsageError(flag + " must be between " + std::to_string((int)lo) + " and " + std::to_string((int)hi) +
                         ", got " + s);
    return v;
}

}  // namespace

std::string usage() {
    return R"(sd — Stable Diffusion on the CPU

usage:
  sd -m MODEL -p PROMPT [options]      generate an image
  sd info MODEL                        model family, parameters per component, dtypes, file size
  sd tokenize "TEXT"                   print CLIP token ids (with start and end tokens)
  sd tokenize --weights "PROMPT"       one line per 77-token chunk: id:weight as the text encoder sees them
  sd tokenize --schedule --steps N "PROMPT"   the prompt-editing schedule: END_STEP<TAB>TEXT per line
  sd bench -m MODEL [-W W -H H -t N]   time text encode, one UNet step (batch 2) and the VAE decode;
                                       with -p "<lora:...>": LoRA merge against run-time cost
  sd serve -m MODEL [--listen ...]     web UI and the webui's HTTP API (sd serve --help)

options:
  -m, --model PATH          checkpoint (.safetensors, SD 1.x or 2.x single file, f32/f16/bf16)
  -p, --prompt TEXT         what to draw
  -n, --negative-prompt T   what to avoid (default: empty)
      --sampler NAME        euler, euler_a, heun, dpm2, dpm2_a, dpmpp_2m, dpmpp_2s_a, dpmpp_sde, dpmpp_2m_sde,
                            dpmpp_2m_sde_heun, dpmpp_3m_sde, dpm_fast, dpm_adaptive, lms, ddim, ddim_cfgpp, plms,
                            unipc, restart, lcm, or the webui's names ("Euler a", "DPM++ 2M Karras", "DPM++ 3M SDE", ...)
                            (default: euler_a)
      --scheduler NAME      automatic, uniform (= discrete), karras, exponential, polyexponential, sgm_uniform,
                            kl_optimal, align_your_steps, simple, normal, ddim, beta, or their webui labels
                            (default: what the sampler name says, else automatic: the webui's per-sampler
                            default: Karras for DPM++ 2M, DPM++ SDE, DPM++ 2S a, DPM2, DPM2 a, Restart;
                            Exponential for DPM++ 2M SDE (Heun), DPM++ 3M SDE; Uniform for the others)
      --beta-alpha F        the Beta schedule's alpha (default: 0.6, as the webui)
      --beta-beta F         the Beta schedule's beta (default: 0.6)
      --sigma-min F, --sigma-max F   the schedule's noise range (webui "sigma min/max"; default 0: the
                            model's, ~0.0292..14.6); not for Uniform, Simple, DDIM, Align Your Steps
      --rho F               Karras / Polyexponential steepness (webui "rho"; default 0: 7 / 1)
      --unipc-variant V     UniPC: bh1, bh2 or vary_coeff (default: bh1, as the webui)
      --unipc-skip-type S   UniPC: time_uniform, time_quadratic or logSNR (default: time_uniform)
      --unipc-order N       UniPC: 1..50, at most the steps (default: 3)
      --unipc-no-lower-order-final   UniPC: keep the full order over the last steps (webui default: lower it)
      --steps N             sampling steps, 1..1000 (default: 20)
      --cfg-scale F         classifier-free guidance scale (default: 7)
  -W, --width N             image width, multiple of 64 (default: 512)
  -H, --height N            image height, multiple of 64 (default: 512)
      --seed N              seed; -1 picks a random one and prints it (default: -1)
      --rng philox|cpu      noise generator (default: philox). philox is torch's CUDA generator, what the
                            webui uses on NVIDIA GPUs, where most shared images and seeds come from, so
                            their seeds reproduce here; cpu is torch's CPU generator (webui "RNG: CPU").
      --embeddings-dir DIR  textual-inversion embeddings (.safetensors) named in prompts (default: the
                            folder embeddings/ beside the model)
      --lora-dir DIR        LoRA / LyCORIS files (.safetensors, also in subfolders) the prompt names with
                            <lora:NAME:WEIGHT> or <lora:NAME:TE_WEIGHT:UNET_WEIGHT> (default: the folder
                            loras/ beside the model)
      --lora-apply MODE     merge (default, the cheapest per step: docs/performance.md): LoRAs are added
                            into private copies of the weights they touch, once per prompt; runtime:
                            linear layers add (x·down)·up as they run (3×3 LoCon, LoHa and LoKr are
                            merged either way). `sd bench -p "<lora:...>"` measures both
      --clip-skip N         use the N-th CLIP layer from the end, 1..12 (default: 1 = last layer); SD 2.x
                            always uses the penultimate OpenCLIP layer, as the webui does (recorded only)
      --prediction eps|v    what the UNet predicts (default: decided as the webui does; `sd info` says)
      --vae FILE            use this VAE (.safetensors, ldm names) instead of the checkpoint's own
      --preview FILE        rewrite FILE (PNG, via TAESD) after every step with the current estimate
      --batch-count N       make N images with seeds seed, seed+1, ... (default: 1)
  -o, --output PATH         PNG to write; with --batch-count > 1, -1, -2, ... are added (default: output.png)
      --taesd               decode with the built-in tiny autoencoder (fast, approximate)
      --precision fp32|bf16 matrix product precision (default: bf16 where the CPU has AVX512_BF16 or ARM64 BF16, else fp32)
      --vae-tiling          decode in overlapping tiles (default: automatic above 1024x1024; SDXL above 768x768)
      --no-vae-tiling       never tile the decode
      --dump-latents DIR    write the initial noise and the latent after every step as .npy files
img2img and inpainting (the webui's img2img tab):
      --init-img FILE       start from this image (PNG/JPEG; transparency flattened onto white)
      --strength F          denoising strength 0..1: how much of the schedule is redone (default: 0.75);
                            also --denoising-strength
      --resize-mode M       resize (default), crop, fill or latent: how the image is fitted to -W x -H
      --mask FILE           inpaint: white = repaint, black = keep (resized like the image if its size differs)
      --mask-blur N         Gaussian blur of the mask in pixels (default: 4)
      --invert-mask         repaint the black part instead
      --inpainting-fill M   what the masked area starts from: original (default), fill, latent_noise,
                            latent_nothing
      --inpaint-full-res    repaint only the masked area's bounding box at full resolution, pasted back
      --inpaint-padding N   pixels around that box (default: 32)
hires fix (txt2img):
      --hires-scale F       upscale the first pass by F and redo it with img2img (e.g. 2)
      --hires-width N       or upscale to this width (with --hires-height 0 or absent: keep the aspect)
      --hires-height N      and/or this height
      --hires-steps N       second pass steps (default: as --steps)
      --hires-strength F    second pass denoising strength (default: 0.7)
      --hires-upscaler U    latent (default), latent-antialiased, latent-bicubic, latent-bicubic-antialiased,
                            latent-nearest, latent-nearest-exact, lanczos, nearest, or an upscaler model .safetensors
  -t, --threads N           worker threads (default: all cores)
      --runs N              bench: timed runs per stage, median reported (default: 3)
  -v, --verbose             more detail on stderr
  -h, --help                this text
      --version             print the version
environment:
  SD_ISA=scalar|avx2|avx512|neon   force a kernel instruction set (error if the CPU lacks it)
  SD_PRECISION=fp32|bf16           matrix product precision when --precision is not given
)";
}

Options parse_args(int argc, const char* const* argv) {
    Options o;
    int i = 1;
    if (i < argc && argv[i][0] != '-') {
        std::string c = argv[i];
        if (c == "info" || c == "tokenize" || c == "bench" || c == "help" || c == "generate") {
            o.command = c;
            i++;
        }
    }
    for (; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) throw UsageError(a + " needs a value");
            return argv[++i];
        };
        if (a == "-h" || a == "--help") o.command = "help";
        else if (a == "--version") o.command = "version";
        else if (a == "-v" || a == "--verbose") o.verbose = true;
        else if (a == "-m" || a == "--model") o.model = value();
        else if (a == "-p" || a == "--prompt") o.prompt = value();
        else if (a == "-n" || a == "--negative-prompt") o.negative_prompt = value();
        else if (a == "--sampler" || a == "--sampling-method") o.sampler = value();
        else if (o.command == "tokenize" && a == "--schedule") o.tokenize_schedule = true;
        else if (o.command == "tokenize" && a == "--weights") o.tokenize_weights = true;
        else if (a == "--embeddings-dir") o.embeddings_dir = value();
        else if (a == "--lora-dir") o.lora_dir = value();
        else if (a == "--lora-apply") o.lora_apply = value();
        else if (a == "--scheduler" || a == "--schedule") o.scheduler = value();
        else if (a == "--beta-alpha") o.beta_alpha = parse_float(a, value(), 1e-3, 100);
        else if (a == "--beta-beta") o.beta_beta = parse_float(a, value(), 1e-3, 100);
        else if (a == "--sigma-min") o.sigma_min = parse_float(a, value(), 0, 1000);
        else if (a == "--sigma-max") o.sigma_max = parse_float(a, value(), 0, 1000);
        else if (a == "--rho") o.rho = parse_float(a, value(), 0, 100);
        else if (a == "--unipc-variant") {
            o.unipc_variant = value();
            if (o.unipc_variant != "bh1" && o.unipc_variant != "bh2" && o.unipc_variant != "vary_coeff")
                throw UsageError("--unipc-variant must be bh1, bh2 or vary_coeff, got '" + o.unipc_variant + "'");
        } else if (a == "--unipc-skip-type") {
            o.unipc_skip_type = value();
            if (o.unipc_skip_type != "time_uniform" && o.unipc_skip_type != "time_quadratic" && o.unipc_skip_type != "logSNR")
                throw UsageError("--unipc-skip-type must be time_uniform, time_quadratic or logSNR, got '" +
                                 o.unipc_skip_type + "'");
        } else if (a == "--unipc-order") o.unipc_order = (int)parse_int(a, value(), 1, 50);
        else if (a == "--unipc-no-lower-order-final") o.unipc_lower_order_final = false;
        else if (a == "--steps") o.steps = (int)parse_int(a, value(), 1, 1000);
        else if (a == "--cfg-scale" || a == "--cfg") o.cfg_scale = parse_float(a, value(), -100, 100);
        else if (a == "-W" || a == "--width") o.width = (int)parse_int(a, value(), 64, 8192);
        else if (a == "-H" || a == "--height") o.height = (int)parse_int(a, value(), 64, 8192);
        else if (a == "--seed") {
            const char* s = value();
            o.random_seed = std::strcmp(s, "-1") == 0;
            if (!o.random_seed) {
                errno = 0;
                char* end = nullptr;
                unsigned long long v = std::strtoull(s, &end, 10);
                if (!*s || *end || !std::isdigit((unsigned char)s[0]))
                    throw UsageError(a + " expects a whole number or -1, got '" + s + "'");
                if (errno == ERANGE)
                    throw UsageError(a + " must be between 0 and 18446744073709551615, got " + s);
                o.seed = v;
            }
        } else if (a == "--rng") {
            o.rng = value();
            if (o.rng != "philox" && o.rng != "cpu") throw UsageError("--rng must be philox or cpu, got '" + o.rng + "'");
        } else if (a == "--clip-skip") o.clip_skip = (int)parse_int(a, value(), 1, 12);
        else if (a == "-t" || a == "--threads") o.threads = (int)parse_int(a, value(), 1, 1024);
        else if (a == "-o" || a == "--output") {
            o.output = value();
            if (o.output.empty()) throw UsageError(a + " needs a file name, got an empty one");
        }
        else if (a == "--batch-count" || a == "-b") o.batch_count = (int)parse_int(a, value(), 1, 10000);
        else if (a == "--dump-latents") o.dump_latents = value();
        else if (a == "--taesd") o.taesd = true;
        else if (a == "--vae") {
            o.vae = value();
            if (o.vae.empty()) throw UsageError(a + " needs a file name, got an empty one");
        } else if (a == "--preview") {
            o.preview = value();
            if (o.preview.empty()) throw UsageError(a + " needs a file name, got an empty one");
        } else if (a == "--prediction") {
            o.prediction = value();
            if (o.prediction != "eps" && o.prediction != "v")
                throw UsageError("--prediction must be eps or v, got '" + o.prediction + "'");
        }
        else if (a == "--precision") {
            o.precision = value();
            if (o.precision != "fp32" && o.precision != "bf16")
                throw UsageError("--precision must be fp32 or bf16, got '" + o.precision + "'");
        } else if (a == "--vae-tiling") o.vae_tiling = 1;
        else if (a == "--no-vae-tiling") o.vae_tiling = 0;
        else if (a == "--init-img") {
            o.init_img = value();
            if (o.init_img.empty()) throw UsageError(a + " needs a file name, got an empty one");
        } else if (a == "--strength" || a == "--denoising-strength") o.strength = parse_float(a, value(), 0, 1);
        else if (a == "--resize-mode") o.resize_mode = value();
        else if (a == "--mask") {
            o.mask = value();
            if (o.mask.empty()) throw UsageError(a + " needs a file name, got an empty one");
        } else if (a == "--mask-blur") o.mask_blur = (int)parse_int(a, value(), 0, 64);
        else if (a == "--invert-mask") o.invert_mask = true;
        else if (a == "--inpainting-fill") {
            o.inpainting_fill = value();
            if (o.inpainting_fill != "fill" && o.inpainting_fill != "original" && o.inpainting_fill != "latent_noise" &&
                o.inpainting_fill != "latent_nothing")
                throw UsageError("--inpainting-fill must be fill, original, latent_noise or latent_nothing, got '" +
                                 o.inpainting_fill + "'");
        } else if (a == "--inpaint-full-res") o.inpaint_full_res = true;
        else if (a == "--inpaint-padding") o.inpaint_padding = (int)parse_int(a, value(), 0, 256);
        else if (a == "--hires-scale") o.hires_scale = parse_float(a, value(), 1, 8);
        else if (a == "--hires-width") o.hires_width = (int)parse_int(a, value(), 0, 8192);
        else if (a == "--hires-height") o.hires_height = (int)parse_int(a, value(), 0, 8192);
        else if (a == "--hires-steps") o.hires_steps = (int)parse_int(a, value(), 0, 1000);
        else if (a == "--hires-strength") o.hires_strength = parse_float(a, value(), 0, 1);
        else if (a == "--hires-upscaler") o.hires_upscaler = value();
        else if (a == "--runs") o.bench_runs = (int)parse_int(a, value(), 1, 100);
        else if (a.size() > 1 && a[0] == '-') throw UsageError("unknown option '" + a + "' (see sd --help)");
        else o.args.push_back(a);
    }
    if (o.command == "help" || o.command == "version") return o;
    if (o.command == "generate" || o.command == "bench") {
        if (o.lora_apply != "merge" && o.lora_apply != "runtime")
            throw UsageError("--lora-apply must be merge or runtime, got '" + o.lora_apply + "'");
        if (!o.args.empty()) throw UsageError("unexpected argument '" + o.args[0] + "' (did you mean -p \"" + o.args[0] + "\"?)");
        if (o.width % 64 || o.height % 64)
            throw UsageError("width and height must be multiples of 64, got " + std::to_string(o.width) + "x" +
                             std::to_string(o.height));
        if (o.sigma_min != 0 && o.sigma_max != 0 && o.sigma_min >= o.sigma_max)
            throw UsageError("--sigma-min must be below --sigma-max, got " + std::to_string(o.sigma_min) + " and " +
                             std::to_string(o.sigma_max));
    }
    if (o.command == "generate") {
        if (!o.mask.empty() && o.init_img.empty())
            throw UsageError("--mask needs --init-img: the mask says which part of that image to repaint");
        if (o.hires() && !o.init_img.empty())
            throw UsageError("the hires fix is for txt2img; with --init-img, ask for the larger size with -W/-H");
        if (o.hires() && o.hires_strength <= 0)
            throw UsageError("--hires-strength must be above 0: at 0 the second pass would run no step");
    }
    if (o.command == "info" && o.args.size() != 1 && !(o.args.empty() && !o.model.empty()))
        throw UsageError("usage: sd info MODEL");
    if (o.command == "info" && o.args.empty()) o.args.push_back(o.model);
    if (o.command == "tokenize" && o.args.size() != 1 && !(o.args.empty() && !o.prompt.empty()))
        throw UsageError("usage: sd tokenize \"TEXT\"");
    if (o.command == "tokenize" && o.args.empty()) o.args.push_back(o.prompt);
    return o;
}

}  // namespace sd
