// bench.cpp — stage timings for the model benchmark. Shared machines are noisy: medians, and throughput
// quoted against a peak measured in the same process with the same thread count.
#include "app/bench.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "clock.h"
#include "app/memory.h"
#include "app/options.h"
#include "kernels/kernels.h"
#include "models/ops.h"
#include "pipeline/loras.h"
#include "pipeline/txt2img.h"
#include "tokenizer/clip_tokenizer.h"

namespace sd {

FmaPeak measure_fma_peak(int threads) {
    const int64_t iters = 10000000;
    int saved = num_threads();
    set_num_threads(threads);
    std::vector<double> flops(threads), cpu(threads), walls, cores;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = wall_seconds();
        parallel_for(threads, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) {
                double c0 = thread_cpu_seconds();
                flops[i] = fma_peak_flops(iters);
                cpu[i] = thread_cpu_seconds() - c0;
            }
        });
        double s = wall_seconds() - t0;
        double total = 0;
        for (double f : flops) total += f;
        walls.push_back(total / s * 1e-9);
        cores.push_back(flops[0] / cpu[0] * 1e-9);
    }
    set_num_threads(saved);
    std::sort(walls.begin(), walls.end());
    std::sort(cores.begin(), cores.end());
    return {walls[walls.size() / 2], cores[cores.size() / 2]};
}

namespace {

// Median wall and CPU seconds of `runs` calls. CPU time (all threads) is what a shared, loaded machine does
// not distort: GFLOP per CPU-second compares with the per-core peak however busy the other cores are.
struct Timing { double wall, cpu; };
Timing median_time(int runs, const std::function<void()>& fn) {
    std::vector<double> w, c;
    for (int r = 0; r < runs; r++) {
        double t0 = wall_seconds(), c0 = process_cpu_seconds();
        fn();
        w.push_back(wall_seconds() - t0);
        c.push_back(process_cpu_seconds() - c0);
    }
    std::sort(w.begin(), w.end());
    std::sort(c.begin(), c.end());
    return {w[w.size() / 2], c[c.size() / 2]};
}

// The resident set now (VmRSS), GB: what a LoRA mode keeps, read after a step has touched it.
double rss_gb() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long kb = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    std::fclose(f);
    return kb / (1024.0 * 1024.0);
}

// `sd bench -p "<lora:...>"`: the two ways of applying LoRAs (models/lora.h LoraApply) around one UNet step, in one
// process: the one-time cost of preparing them (merge: ΔW into copies of the touched tensors; runtime: views of
// the factors), the resident memory each keeps over the plain model, and the step's CPU time, taking turns
// plain / merge / runtime so that other load on a shared machine falls on all three alike.
void lora_bench(const Options& o, Model& m, const std::vector<LoraTag>& tags, const std::function<void()>& step) {
    const std::string dir = o.lora_dir.empty() ? default_lora_dir(o.model) : o.lora_dir;
    const LoraApply modes[2] = {LoraApply::merge, LoraApply::runtime};
    const char* names[3] = {"plain", "merge", "runtime"};
    std::vector<std::string> warnings;
    step();
    const double base_rss = rss_gb();
    double prep_cpu[2], prep_wall[2], extra_rss[2];
    for (int i = 0; i < 2; i++) {
        double t0 = wall_seconds(), c0 = process_cpu_seconds();
        apply_loras(m, tags, dir, modes[i], &warnings);
        prep_wall[i] = wall_seconds() - t0, prep_cpu[i] = process_cpu_seconds() - c0;
        step();
        extra_rss[i] = rss_gb() - base_rss;
        apply_loras(m, {}, dir, modes[i], &warnings);
        step();
    }
    for (const std::string& w : warnings) std::printf("warning: %s\n", w.c_str());
    std::vector<double> cpu[3], wall[3];
    for (int r = 0; r < o.bench_runs; r++)
        for (int k = 0; k < 3; k++) {
            apply_loras(m, k ? tags : std::vector<LoraTag>(), dir, k ? modes[k - 1] : LoraApply::merge, &warnings);
            double t0 = wall_seconds(), c0 = process_cpu_seconds();
            step();
            wall[k].push_back(wall_seconds() - t0), cpu[k].push_back(process_cpu_seconds() - c0);
        }
    auto median = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
    std::printf("\nLoRAs: %s (%zu), %d runs of one UNet step (batch 2) each, taking turns\n", o.prompt.c_str(),
                tags.size(), o.bench_runs);
    std::printf("%-8s %14s %14s %12s %9s %14s\n", "mode", "prepare CPU-s", "prepare wall", "step CPU-s", "x plain",
                "extra RSS GB");
    const double plain = median(cpu[0]);
    for (int k = 0; k < 3; k++) {
        if (k == 0) std::printf("%-8s %14s %14s %12.3f %9.3f %14s\n", names[k], "-", "-", plain, 1.0, "-");
        else
            std::printf("%-8s %14.3f %14.3f %12.3f %9.3f %14.3f\n", names[k], prep_cpu[k - 1], prep_wall[k - 1],
                        median(cpu[k]), median(cpu[k]) / plain, extra_rss[k - 1]);
    }
    std::printf("step wall s (median): plain %.3f, merge %.3f, runtime %.3f; peak RSS %.2f GB\n", median(wall[0]),
                median(wall[1]), median(wall[2]), peak_rss_gb());
}

}  // namespace

int run_bench(const Options& o) {
    if (o.model.empty()) throw std::runtime_error("sd bench needs a model: sd bench -m MODEL.safetensors");
    SafeTensors(o.model);  // a missing or broken file is reported before the peak is measured
    const int threads = num_threads();
    std::printf("sd bench: %s, %dx%d, %d threads, kernels %s (CPU: %s), precision %s\n", o.model.c_str(), o.width,
                o.height, threads, isa_name(active_isa()), cpu_features(), precision_name(active_precision()));
    FmaPeak pk = measure_fma_peak(threads);
    const double peak = pk.wall, core_peak = pk.per_core;
    std::printf("fp32 FMA peak (measured): %.1f GFLOP/s on %d threads by the clock, %.1f GFLOP per CPU-second of one core\n",
                peak, threads, core_peak);
    if (const double bf16 = bf16_speedup())  // vdpbf16ps: 2x the FMA's rate on Zen 4, 0.5x on Sapphire Rapids
        std::printf("bf16 dot products peak at %.2fx that (measured)%s\n", bf16,
                    active_precision() == Precision::bf16 ? ": % peak below can exceed 100%" : "");

    double t0 = wall_seconds();
    Model m = load_model(o.model, o.vae, o.prediction);
    double load_s = wall_seconds() - t0;
    const int64_t h = o.height / 8, w = o.width / 8;
    Arena arena;

    // Text encode: one 77-token chunk, through the model's encoder(s) as the pipeline runs them (SD 2.x: the
    // OpenCLIP tower's penultimate layer; SDXL: CLIP-L's 11 of 12 layers and all 32 of bigG for the pooled output).
    auto ids = ClipTokenizer::get().encode_chunks("a photograph of an astronaut riding a horse");
    const TextEncoder enc = text_encoder(m, 1);
    std::vector<float> pooled((size_t)enc.pooled_width);
    Timing text_s = median_time(o.bench_runs, [&] {
        ArenaScope s(arena);
        enc.encode(ids[0], nullptr, arena, enc.pooled_width ? pooled.data() : nullptr);
    });
    const ClipConfig& cl = m.clip.cfg;
    double text_f = m.sdxl() ? clip_encode_flops(cl) * (cl.layers - 1) / cl.layers +
                                   open_clip_encode_flops(m.open_clip.cfg, m.open_clip.cfg.layers)
                    : m.sd2() ? open_clip_encode_flops(m.open_clip.cfg, m.open_clip.cfg.layers - 1)
                              : clip_encode_flops(cl);

    // One UNet evaluation, batch 2 (cond + uncond): what one CFG step costs.
    Tensor x = Tensor::zeros({2, 4, h, w}), ctx = Tensor::zeros({2, 77, m.unet.cfg.context_dim});
    for (int64_t i = 0; i < x.numel(); i++) x.f32()[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < ctx.numel(); i++) ctx.f32()[i] = (float)((i * 104729) % 1000) / 500.0f - 1.0f;
    const float ts[2] = {500, 500};
    Tensor y = Tensor::zeros({2, m.unet.cfg.adm_in_channels});  // SDXL's vector; unused otherwise
    for (int64_t i = 0; i < y.numel(); i++) y.f32()[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    auto unet_once = [&] {
        ArenaScope s(arena);
        unet_forward(m.unet, x, ts, ctx, arena, m.unet.cfg.adm_in_channels ? &y : nullptr);
    };
    std::vector<ExtraNetworkTag> tags;
    strip_extra_networks(o.prompt, &tags);
    if (!lora_tags(tags).empty()) {
        lora_bench(o, m, lora_tags(tags), unet_once);
        return 0;
    }
    unet_once();  // warm-up: pages the weights in and sizes the arena
    Timing unet_s = median_time(o.bench_runs, unet_once);
    double unet_f = unet_flops(m.unet, 2, h, w, 77);

    // VAE decode of one latent.
    Tensor z = Tensor::zeros({1, 4, h, w});
    for (int64_t i = 0; i < z.numel(); i++) z.f32()[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    Timing vae_s = median_time(std::max(1, o.bench_runs - 1), [&] {
        ArenaScope s(arena);
        vae_decode(m.vae, z, arena);
    });
    double vae_f = vae_decode_flops(m.vae, 1, h, w);

    // "by clock" is what a user waits; "per CPU-s" divides by the CPU time all threads used, so on a busy
    // shared machine it still says how close the code runs to the per-core peak.
    std::printf("\n%-28s %8s %9s %9s %7s %10s %7s\n", "stage", "GFLOP", "seconds", "GFLOP/s", "% peak", "per CPU-s",
                "% core");
    auto row = [&](const char* name, double f, Timing t) {
        double g = f * 1e-9;
        std::printf("%-28s %8.1f %9.3f %9.1f %6.1f%% %10.1f %6.1f%%\n", name, g, t.wall, g / t.wall,
                    100.0 * g / t.wall / peak, g / t.cpu, 100.0 * g / t.cpu / core_peak);
    };
    row("text encode (77 tokens)", text_f, text_s);
    row("UNet, batch 2 (one CFG step)", unet_f, unet_s);
    row("VAE decode", vae_f, vae_s);
    const double image_s = 2 * text_s.wall + 20 * unet_s.wall + vae_s.wall;
    std::printf("\nload %.2f s; 20-step image ≈ %.1f s; text encode = %.2f%% of it; peak RSS %.2f GB "
                "(checkpoint file %.2f GB)\n",
                load_s, image_s, 100.0 * 2 * text_s.wall / image_s, peak_rss_gb(), m.info.file_size / 1e9);
    return 0;
}

}  // namespace sd
