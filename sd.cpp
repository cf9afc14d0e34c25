// sd.cpp — the command-line interface: parse, validate, run, and report every failure as one sentence.
//
//   sd -m MODEL -p PROMPT [options]   text to image (PNG with the webui's parameters chunk)
//   sd info MODEL | sd tokenize TEXT | sd bench -m MODEL | sd upscale -m UPSCALER -i IN -o OUT.png
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "app/bench.h"
#include "app/generation_infotext.h"
#include "app/image_io.h"
#include "app/infotext.h"
#include "app/memory.h"
#include "app/model_hash.h"
#include "app/npy.h"
#include "app/options.h"
#include "app/upscale_cmd.h"
#include "clock.h"
#include "kernels/kernels.h"
#include "models/checkpoint.h"
#include "models/upscaler.h"
#include "pipeline/hires.h"
#include "pipeline/img2img.h"
#include "pipeline/loras.h"
#include "pipeline/prediction.h"
#include "pipeline/txt2img.h"
#include "server/serve.h"
#include "tokenizer/clip_tokenizer.h"

using namespace sd;

namespace {

const char* kVersion = "sd 0.1";
std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
    if (g_interrupted.exchange(true)) _exit(130);  // a second Ctrl-C: leave at once (nothing is half-written)
}

std::string stem(const std::string& path) {
    size_t s = path.rfind('/');
    std::string name = s == std::string::npos ? path : path.substr(s + 1);
    size_t d = name.rfind('.');
    return d == std::string::npos || d == 0 ? name : name.substr(0, d);
}

// The output path for image i of n: cat.png, or cat-1.png, cat-2.png, ... for a batch.
std::string output_path(const std::string& out, int i, int n) {
    if (n == 1) return out;
    size_t d = out.rfind('.'), s = out.rfind('/');
    if (d == std::string::npos || (s != std::string::npos && d < s)) return out + "-" + std::to_string(i + 1);
    return out.substr(0, d) + "-" + std::to_string(i + 1) + out.substr(d);
}

void check_output_writable(const std::string& out) {
    size_t s = out.rfind('/');
    std::string dir = s == std::string::npos ? "." : s == 0 ? "/" : out.substr(0, s);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw std::runtime_error("cannot write '" + out + "': folder '" + dir + "' does not exist");
    if (access(dir.c_str(), W_OK) != 0)
        throw std::runtime_error("cannot write '" + out + "': folder '" + dir + "' is not writable");
    if (stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        throw std::runtime_error("cannot write '" + out + "': it is a folder");
}

// Progress on stderr: a bar redrawn in place on a terminal, one plain line per step otherwise.
struct Progress {
    bool tty = isatty(2);
    double start = wall_seconds();
    void step(int k, int n) {
        if (k == 0) { start = wall_seconds(); return; }
        double el = wall_seconds() - start, per = el / k, eta = per * (n - k);
        if (tty) {
            int width = 30, fill = (int)((double)width * k / n);
            std::fprintf(stderr, "\r  [%.*s%*s] %d/%d  %.2f s/step  ETA %.0f s ", fill,
                         "##############################", width - fill, "", k, n, per, eta);
            if (k == n) std::fprintf(stderr, "\n");
        } else {
            std::fprintf(stderr, "step %d/%d  %.2f s/step  ETA %.0f s\n", k, n, per, eta);
        }
        std::fflush(stderr);
    }
};

int cmd_info(const Options& o) {
    SafeTensors st(o.args[0]);
    CheckpointInfo info = inspect_checkpoint(st);
    const std::string upscaler = describe_upscaler(st);
    if (!upscaler.empty()) {  // format_info's file, dtype and metadata lines under an upscaler's own head and verdict
        std::string text = format_info(info), line;
        std::printf("%s: an upscaler: %s\n", info.path.c_str(), upscaler.c_str());
        for (size_t at = text.find('\n') + 1, end; at < text.size(); at = end + 1) {
            end = text.find('\n', at);
            line = text.substr(at, end - at);
            if (line.rfind("  other", 0) != 0 && line.rfind("  runs in sd", 0) != 0) std::printf("%s\n", line.c_str());
        }
        const bool runs = upscaler.rfind("an upscaler this program cannot run", 0) != 0;
        std::printf("  %-14s%s\n", "runs in sd", runs ? ("yes — sd upscale -m " + info.path + " -i IN -o OUT.png").c_str() : "no");
        return 0;
    }
    std::printf("%s", format_info(info).c_str());
    if (info.family == ModelFamily::sd1 || info.family == ModelFamily::sd2) {
        // What generating with it would use: the webui's decision (pipeline/prediction.h), which for an SD 2.x file
        // runs its UNet once on an 8x8 latent.
        try {
            Arena arena;
            UNet unet;
            if (info.family == ModelFamily::sd2 && o.prediction.empty())
                unet = load_unet(st, "model.diffusion_model.", unet_head_dim(st, true));
            PredictionChoice pc = decide_prediction(info, unet.input_blocks.empty() ? nullptr : &unet, o.prediction, arena);
            std::printf("  %-14s%s (%s)\n", "prediction", prediction_name(pc.prediction), pc.why.c_str());
        } catch (const std::exception& e) {
            std::printf("  %-14sunknown (%s)\n", "prediction", e.what());
        }
    }
    return 0;
}

// The shortest decimal that reads back as the float32 the text encoder multiplies by: 1.21, 0.90909094, 1.
std::string weight_text(double w) {
    char b[64];
    for (int prec = 1; prec <= 9; prec++) {
        std::snprintf(b, sizeof b, "%.*g", prec, (double)(float)w);
        if ((float)std::strtod(b, nullptr) == (float)w) break;
    }
    return b;
}

// The embeddings a prompt may name: --embeddings-dir, else embeddings/ beside the model (when there is one).
std::string embeddings_dir(const Options& o) {
    if (!o.embeddings_dir.empty()) return o.embeddings_dir;
    if (o.model.empty()) return "";
    size_t s = o.model.rfind('/');
    return (s == std::string::npos ? std::string() : o.model.substr(0, s + 1)) + "embeddings";
}

int cmd_tokenize(const Options& o) {
    if (o.tokenize_schedule) {
        for (const ScheduledText& e : prompt_schedule(o.args[0], o.steps))
            std::printf("%d\t%s\n", e.end_at_step, e.text.c_str());
        return 0;
    }
    if (o.tokenize_weights) {
        EmbeddingDb db;
        if (!embeddings_dir(o).empty()) db.load_dir(embeddings_dir(o), 768);  // SD 1.x's CLIP width
        for (const PromptChunk& c : tokenize_prompt(strip_extra_networks(o.args[0], nullptr), &db)) {
            for (size_t i = 0; i < c.tokens.size(); i++)
                std::printf("%s%d:%s", i ? " " : "", c.tokens[i], weight_text(c.weights[i]).c_str());
            std::printf("\n");
        }
        return 0;
    }
    std::vector<int> ids = ClipTokenizer::get().encode(o.args[0]);
    std::printf("49406");
    for (int id : ids) std::printf(" %d", id);
    std::printf(" 49407\n");
    return 0;
}

int cmd_generate(const Options& o) {
    if (o.model.empty())
        throw UsageError(
            "no model given: pass -m with an SD 1.x checkpoint, e.g. -m v1-5-pruned-emaonly.safetensors "
            "(the README's quick start shows where to download it and how to check it)");
    GenerateParams p;
    p.prompt = o.prompt;
    p.negative_prompt = o.negative_prompt;
    std::optional<ScheduleKind> suffix, chosen_schedule;
    try {  // a wrong name is a command-line mistake: exit status 2, as for the other flags
        p.sampler = parse_sampler(o.sampler, &suffix);
        // nullopt: "Automatic", the webui's default choice, which runs the sampler's default schedule
        if (!o.scheduler.empty()) chosen_schedule = is_automatic_schedule(o.scheduler) ? std::nullopt
                                                                                       : std::optional(parse_schedule(o.scheduler));
        else chosen_schedule = suffix;
        p.schedule = chosen_schedule ? *chosen_schedule : webui_automatic_schedule(p.sampler);
    } catch (const std::runtime_error& e) {
        throw UsageError(e.what());
    }
    p.schedule_options.beta_alpha = o.beta_alpha;
    p.schedule_options.beta_beta = o.beta_beta;
    p.schedule_options.sigma_min = o.sigma_min;
    p.schedule_options.sigma_max = o.sigma_max;
    p.schedule_options.rho = o.rho;
    p.unipc.variant = parse_unipc_variant(o.unipc_variant);
    p.unipc.skip_type = parse_unipc_skip(o.unipc_skip_type);
    p.unipc.order = o.unipc_order;
    p.unipc.lower_order_final = o.unipc_lower_order_final;
    if (p.sampler == SamplerKind::unipc && (int)sampler_sigmas(p.sampler, p.schedule, o.steps, sd_schedule()).size() < p.unipc.order)
        throw UsageError("UniPC of order " + std::to_string(p.unipc.order) + " (--unipc-order) needs at least that many steps, got --steps " +
                         std::to_string(o.steps));
    p.steps = o.steps;
    p.cfg_scale = o.cfg_scale;
    p.width = o.width;
    p.height = o.height;
    p.rng = parse_rng(o.rng);
    p.clip_skip = o.clip_skip;
    p.taesd = o.taesd;
    p.vae_tiling = o.vae_tiling;
    if (!o.dump_latents.empty())
        p.on_latent = [dir = o.dump_latents](const std::string& name, const std::vector<float>& x, int64_t h, int64_t w) {
            if (name == "noise") mkdir(dir.c_str(), 0755);  // each trajectory starts with its noise
            write_npy(dir + "/" + name + ".npy", x.data(), {1, 4, h, w});
        };
    if (!o.preview.empty())  // rewritten after every step, atomically: a viewer never sees half a file
        p.on_preview = [path = o.preview](const Image& im) { write_file_atomic(path, encode_png(im, {})); };
    for (int i = 0; i < o.batch_count; i++) check_output_writable(output_path(o.output, i, o.batch_count));
    if (!o.preview.empty()) check_output_writable(o.preview);
    uint64_t seed = !o.random_seed ? o.seed : std::random_device{}() % 4294967294u;

    check_prompts(p.prompt, p.negative_prompt, webui_total_steps(p.sampler, p.steps));  // before any loading
    p.lora_dir = o.lora_dir.empty() ? default_lora_dir(o.model) : o.lora_dir;
    p.lora_apply = parse_lora_apply(o.lora_apply);
    {
        std::vector<ExtraNetworkTag> tags;
        strip_extra_networks(p.prompt, &tags);
        for (const LoraTag& l : lora_tags(tags)) find_lora(p.lora_dir, l.name);  // an unknown name before any loading
    }
    // img2img: the init image is read and checked before the model is loaded
    Img2imgParams ip;
    InpaintParams inpaint;
    const bool img2img = !o.init_img.empty();
    if (img2img) {
        try {
            ip.resize_mode = parse_resize_mode(o.resize_mode);
        } catch (const std::runtime_error& e) {
            throw UsageError(e.what());
        }
        ip.init = read_image(o.init_img);
        ip.strength = o.strength;
        if (!o.mask.empty()) {
            inpaint.mask = read_image(o.mask);
            inpaint.blur = o.mask_blur;
            inpaint.invert = o.invert_mask;
            inpaint.fill = parse_inpainting_fill(o.inpainting_fill);
            inpaint.full_res = o.inpaint_full_res;
            inpaint.padding = o.inpaint_padding;
            ip.inpaint = &inpaint;
        }
    }
    HiresParams hp;
    const bool hires = o.hires();
    if (hires) {
        hp.scale = o.hires_scale > 0 ? o.hires_scale : 2.0;
        hp.width = o.hires_width;
        hp.height = o.hires_height;
        hp.steps = o.hires_steps;
        hp.strength = o.hires_strength;
        hp.upscaler = o.hires_upscaler;
        try {
            hires_upscaler_label(hp.upscaler);
        } catch (const std::runtime_error& e) {
            throw UsageError(e.what());
        }
        check_hires(p.width, p.height, hp);
    }
    double t0 = wall_seconds(), c0 = process_cpu_seconds();
    Model m = load_model(o.model, o.vae, o.prediction);
    EmbeddingDb embeddings;
    embeddings.load_dir(embeddings_dir(o), text_encoder(m, p.clip_skip).width);  // the webui's expected_shape
    p.embeddings = &embeddings;
    double load_s = wall_seconds() - t0, load_cpu = process_cpu_seconds() - c0;
    if (!m.sd2() && p.clip_skip > m.clip.cfg.layers)
        throw std::runtime_error("--clip-skip " + std::to_string(p.clip_skip) + " is more than the text encoder's " +
                                 std::to_string(m.clip.cfg.layers) + " layers");
    const int final_w = hires ? hires_target(p.width, p.height, hp).width() : p.width;
    const int final_h = hires ? hires_target(p.width, p.height, hp).height() : p.height;
    const std::string no_room = memory_refusal(estimate_working_memory(m, final_w, final_h, p.taesd, p.vae_tiling),
                                               available_memory(), final_w, final_h);
    if (!no_room.empty()) throw std::runtime_error(no_room);
    // The infotext's hashes are read from the files while the text encoder and the sampler run (a first run on a
    // 2 GB checkpoint would otherwise spend ~13 s here first); they are waited for when the PNG is written.
    ModelHashJob hash_job(o.model);
    std::unique_ptr<ModelHashJob> vae_hash_job;
    if (!o.vae.empty() && !p.taesd) vae_hash_job = std::make_unique<ModelHashJob>(o.vae);
    // Only now that every check has passed: an error before this point is the only line on stderr.
    if (o.random_seed) std::fprintf(stderr, "seed: %llu\n", (unsigned long long)seed);
    if (o.verbose) std::fprintf(stderr, "prediction: %s (%s)\n", prediction_name(m.prediction), m.prediction_why.c_str());
    if (m.sd2() && p.clip_skip > 1)
        std::fprintf(stderr, "note: --clip-skip %d is recorded but has no effect on SD 2.x models: they use the "
                     "penultimate text encoder layer, as the webui does\n", p.clip_skip);
    if (m.sdxl() && p.clip_skip > 1)
        std::fprintf(stderr, "note: --clip-skip %d is recorded but has no effect on SDXL models: both text encoders "
                     "give their penultimate layer, as the webui does (its 'Clip skip SDXL' option is off)\n",
                     p.clip_skip);

    std::signal(SIGINT, on_sigint);
    Arena arena;
    for (int i = 0; i < o.batch_count; i++) {
        p.seed = seed + (uint64_t)i;
        Progress progress;
        StageTimes times;
        HiresTimes hires_times;
        std::vector<std::pair<std::string, std::string>> img2img_info;
        Image img;
        int steps_run = 0;  // img2img runs fewer steps than --steps (the strength skips the start)
        try {
            auto on_step = [&](int k, int n) { progress.step(k, n); steps_run = k; };
            img = img2img ? generate_img2img(m, p, ip, arena, &times, on_step, &g_interrupted, &img2img_info)
                  : hires ? generate_hires(m, p, hp, arena, &hires_times, on_step, &g_interrupted)
                          : generate(m, p, arena, &times, on_step, &g_interrupted);
        } catch (const Cancelled&) {
            if (i == 0) throw;  // main() says no image was written
            std::fprintf(stderr, "%ssd: interrupted; %d of %d images were written\n", isatty(2) ? "\n" : "", i,
                         o.batch_count);
            return 130;
        }
        InfoText info = generation_infotext(p, sampler_display_name(p.sampler),
                                            webui_schedule_type(p.sampler, chosen_schedule));
        double th = wall_seconds();
        info.model_hash = hash_job.get();
        if (o.verbose && i == 0)
            std::fprintf(stderr, "model hash %s: waited %.2f s for it after decoding\n", info.model_hash.c_str(),
                         wall_seconds() - th);
        info.model_name = stem(o.model);
        info.vae_name = p.taesd ? "TAESD" : o.vae.empty() ? "" : stem(o.vae);
        info.vae_hash = vae_hash_job ? vae_hash_job->get() : "";
        if (img2img) info.denoising_strength = python_float_repr(ip.strength);
        for (auto& kv : img2img_info)  // "Conditional mask weight" has its own place in the webui's order
            if (kv.first == "Conditional mask weight") info.conditional_mask_weight = kv.second;
            else info.extra.push_back(kv);
        if (hires) add_hires_infotext(hp, info);
        info.prediction = m.sd2() || !o.prediction.empty() ? prediction_name(m.prediction) : "";
        info.version = kVersion;
        std::string path = output_path(o.output, i, o.batch_count);
        write_file_atomic(path, encode_png(img, {{"parameters", format_infotext(info)}}));
        std::fprintf(stderr, "wrote %s (seed %llu)\n", path.c_str(), (unsigned long long)p.seed);
        if (hires)
            std::fprintf(stderr, "cpu time: load %.2f s, first pass %.2f s, upscale %.2f s, second pass %.2f s, decode "
                         "%.2f s (all threads); peak memory %.2f GB\n", i == 0 ? load_cpu : 0.0, hires_times.first_pass,
                         hires_times.upscale, hires_times.second_pass, hires_times.decode, peak_rss_gb());
        else
            std::fprintf(stderr, "time: load %.2f s, text encode %.2f s, sampling %.2f s (%.2f s/step), decode %.2f s; "
                         "peak memory %.2f GB\n",
                         i == 0 ? load_s : 0.0, times.text, times.sampling, times.sampling / std::max(steps_run, 1), times.decode,
                         peak_rss_gb());
        if (o.verbose && !hires)
            std::fprintf(stderr, "cpu: load %.2f s, %stext encode %.2f s, sampling %.2f s, decode %.2f s (all threads)\n",
                         i == 0 ? load_cpu : 0.0,
                         img2img ? ("resize + encode " + std::to_string(times.encode_cpu).substr(0, 5) + " s, ").c_str() : "",
                         times.text_cpu, times.sampling_cpu, times.decode_cpu);
        if (p.on_preview)
            std::fprintf(stderr, "preview: %.3f s per step (TAESD decode + PNG write, included in sampling)\n",
                         times.preview / std::max(steps_run, 1));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "serve") == 0) return serve::serve_main(argc - 1, argv + 1, kVersion);
    if (argc > 1 && std::strcmp(argv[1], "upscale") == 0) return upscale_main(argc - 1, argv + 1);
    try {
        Options o = parse_args(argc, argv);
        if (o.command == "help") { std::printf("%s", usage().c_str()); return 0; }
        if (o.command == "version") { std::printf("%s\n", kVersion); return 0; }
        active_isa();  // an invalid SD_ISA is reported before any work, whatever the command
        if (o.threads > 0) set_num_threads(o.threads);
        // --precision, else SD_PRECISION (read by the kernels), else the fastest this CPU has: bf16 products
        // where it has AVX512_BF16 or ARM64 BF16. Asking for bf16 elsewhere is an error, not a silent fp32.
        if (!o.precision.empty()) set_precision(parse_precision(o.precision.c_str()));
        else if (!std::getenv("SD_PRECISION")) set_precision(best_precision());
        active_precision();  // an invalid or unsupported SD_PRECISION is reported before any work, too
        if (o.verbose)
            std::fprintf(stderr, "kernels: %s, precision: %s, threads: %d\n", isa_name(active_isa()),
                         precision_name(active_precision()), num_threads());
        if (o.command == "info") return cmd_info(o);
        if (o.command == "tokenize") return cmd_tokenize(o);
        if (o.command == "bench") return run_bench(o);
        return cmd_generate(o);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "sd: %s\n", e.what());
        return 2;
    } catch (const Cancelled& e) {
        std::fprintf(stderr, "%ssd: %s\n", isatty(2) ? "\n" : "", e.what());  // below the progress bar on a terminal
        return 130;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "sd: out of memory; try a smaller image or close other programs\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sd: %s\n", e.what());
        return 1;
    }
}
