// test_precision.cpp — bf16 matrix products end to end: the tiny SD 1.x model's image at bf16 against the same
// image at fp32 (PSNR), bf16 determinism across thread counts through the whole pipeline, and (skipped by
// default) the full-size SD1.5 UNet's fp32 and bf16 speed and difference. The kernels' own bf16 numerics are
// tested against a bf16-rounded reference in test_gemm.cpp / test_conv.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "clock.h"
#include "full_model.h"
#include "kernels/kernels.h"
#include "models/unet.h"
#include "pipeline/txt2img.h"
#include "skip.h"

using namespace sd;

namespace {

// bf16 dot products on the best instruction set: AVX-512 with AVX512_BF16, or NEON with BF16 (BFDOT).
bool bf16_available() { return cpu_has_bf16() && (best_isa() == Isa::avx512 || best_isa() == Isa::neon); }

// PSNR of two 8-bit images over the [0, 255] range; infinite when identical.
double psnr_u8(const Image& a, const Image& b) {
    REQUIRE(a.pixels.size() == b.pixels.size());
    double se = 0;
    for (size_t i = 0; i < a.pixels.size(); i++) {
        double d = (double)a.pixels[i] - b.pixels[i];
        se += d * d;
    }
    return se == 0 ? INFINITY : 10 * std::log10(255.0 * 255.0 * (double)a.pixels.size() / se);
}

Image generate_at(Model& m, const GenerateParams& p, Precision precision, int threads) {
    set_precision(precision);
    set_num_threads(threads);
    Arena arena;
    Image img = generate(m, p, arena);
    set_precision(Precision::fp32);
    set_num_threads(0);
    return img;
}

}  // namespace

// The whole pipeline (CLIP, 4 euler_a steps of the UNet with CFG, VAE), because the image is what bf16 must not
// change visibly. Measured on this model: 47.7 dB here; 46.3..48.8 dB for other prompts and seeds 7..9 at 2 and 4
// steps, 48.7..51.2 dB at 8 steps, euler and euler_a alike (the VAE decode of a fixed latent alone: 49.2 dB). The
// tiny random model is not chaotic enough to amplify the rounding, so the image-level test is meaningful, and
// 35 dB (the bound asked of the full-size model, which measured 49.9 dB at 256x256, 2 steps) leaves > 10 dB of
// margin. A broken bf16 kernel (wrong pair order, a lost K tail) gives noise, far below 35 dB. The images must
// differ, or the bf16 path did not run.
TEST_CASE("precision: the tiny model's bf16 image is within 35 dB PSNR of the fp32 one, same bits for 1..3 threads") {
    if (!bf16_available()) {
        CHECK_FALSE(precision_supported(Precision::bf16));
        SKIPPED("no AVX512_BF16 or ARM64 BF16 on this CPU");
        return;
    }
    Model m = load_model("tests/data/tiny_sd.safetensors");
    GenerateParams p;
    p.prompt = "a red cube on a wooden table";
    p.negative_prompt = "blurry";
    p.width = p.height = 64;
    p.steps = 4;
    p.seed = 7;
    Image fp32 = generate_at(m, p, Precision::fp32, 0);
    Image bf16 = generate_at(m, p, Precision::bf16, 1);
    double psnr = psnr_u8(fp32, bf16);
    MESSAGE("tiny model, 64x64, 4 steps: bf16 vs fp32 PSNR " << psnr << " dB");
    CHECK(psnr >= 35.0);
    CHECK(psnr < 90.0);  // not identical: the products really were bf16
    for (int threads : {2, 3}) {
        Image again = generate_at(m, p, Precision::bf16, threads);
        INFO("threads=" << threads);
        CHECK(again.pixels == bf16.pixels);
    }
}

// Not run by default (`build/run_tests -tc="*full-size SD1.5 UNet*" --no-skip`): one SD1.5 UNet evaluation at a
// 32x32 latent, batch 2 (one CFG step of a 256x256 image), in fp32 then bf16 on one thread, timed by the thread's
// CPU time (the machine is shared), and how far apart the outputs are. Model: tests/full_model.h ($SD_MODEL or
// sd15_f16.safetensors in the project root). Measured on Zen 4: fp32 4.18 s, bf16 2.40 s (1.75x; 1.73..1.85x over runs), output
// NMSE 5.7e-5. What bf16 leaves at f32 speed (attention, norms, packing the weights) caps the gain below the
// kernels' ~1.9x.
TEST_CASE("precision: full-size SD1.5 UNet, 32x32 latent, batch 2, fp32 vs bf16" * doctest::skip()) {
    REQUIRE(bf16_available());
    SafeTensors model(test::full_size_model());
    UNet u = load_unet(model);
    const int64_t B = 2, h = 32, w = 32, T = 77;
    Tensor x = Tensor::zeros({B, 4, h, w}), ctx = Tensor::zeros({B, T, u.cfg.context_dim});
    for (int64_t i = 0; i < x.numel(); i++) x.f32()[i] = std::sin(0.37f * i);
    for (int64_t i = 0; i < ctx.numel(); i++) ctx.f32()[i] = std::cos(0.11f * i);
    float t[2] = {999, 500};
    const double gflop = unet_flops(u, B, h, w, T) * 1e-9;
    set_num_threads(1);
    std::vector<float> out[2];
    double cpu[2] = {INFINITY, INFINITY};
    for (int run = 0; run < 4; run++) {  // fp32, bf16, fp32, bf16: the best of two, the first pages the weights in
        int k = run % 2;
        set_precision(k == 0 ? Precision::fp32 : Precision::bf16);
        Arena arena;
        double c0 = thread_cpu_seconds();
        Tensor y = unet_forward(u, x, t, ctx, arena);
        double s = thread_cpu_seconds() - c0;
        cpu[k] = std::fmin(cpu[k], s);
        out[k].assign(y.f32(), y.f32() + y.numel());
        MESSAGE(std::string(precision_name(active_precision())) << ": " << s << " s CPU (1 thread), " << gflop / s
                                                                << " GFLOP/s");
    }
    set_precision(Precision::fp32);
    set_num_threads(0);
    double err2 = 0, ref2 = 0, max_abs = 0, scale = 0;
    for (size_t i = 0; i < out[0].size(); i++) {
        double d = (double)out[1][i] - out[0][i];
        err2 += d * d;
        ref2 += (double)out[0][i] * out[0][i];
        max_abs = std::fmax(max_abs, std::fabs(d));
        scale = std::fmax(scale, std::fabs(out[0][i]));
    }
    MESSAGE("bf16 speed-up " << cpu[0] / cpu[1] << "x; output NMSE " << err2 / ref2 << ", max-abs " << max_abs
                             << " of scale " << scale);
    CHECK(err2 / ref2 < 1e-3);
}
