// bench.cpp — stage timings for the model benchmark. Shared machines are noisy: medians, and throughput
// quoted against a peak measured in the same process with the same thread count.
#include "app/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "app/memory.h"
#include "kernels/kernels.h"
#include "models/ops.h"
#include "pipeline/txt2img.h"
#include "tokenizer/clip_tokenizer.h"

namespace sd {
namespace {

double now() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Median wall and CPU seconds of `runs` calls. CPU time (all threads) is what a shared, loaded machine does
// not distort: GFLOP per CPU-second compares with the per-core peak however busy the other cores are.
struct Timing { double wall, cpu; };
Timing median_time(int runs, const std::function<void()>& fn) {
    std::vector<double> w, c;
    for (int r = 0; r < runs; r++) {
        double t0 = now(), c0 = process_cpu_seconds();
        fn();
        w.push_back(now() - t0);
        c.push_back(process_cpu_seconds() - c0);
    }
    std::sort(w.begin(), w.end());
    std::sort(c.begin(), c.end());
    return {w[w.size() / 2], c[c.size() / 2]};
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
    if (active_precision() == Precision::BF16)  // vdpbf16ps does twice the multiply-adds of an FMA
        std::printf("bf16 products peak at ~2x that: %% peak below can exceed 100%%\n");

    double t0 = now();
    Model m = load_model(o.model, o.vae, o.prediction);
    double load_s = now() - t0;
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
