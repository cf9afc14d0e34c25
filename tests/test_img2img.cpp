// img2img against its references: PIL's resize filters, the webui's resize modes and flatten, torch's latent
// interpolate (tools/resample_reference.py → golden_resample), the strength → schedule rule, and whole img2img,
// hires-pass and inpainting-blend runs on the tiny model (tools/img2img_reference.py → golden_img2img).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <unistd.h>
#include <string>

#include "pipeline/resample.h"
#include "compare.h"
#include "pipeline/hires.h"
#include "pipeline/img2img.h"
#include "pipeline/masking.h"
#include "json.h"
#include "safetensors.h"

using namespace sd;

namespace {

Image golden_image(const SafeTensors& st, const std::string& name) {
    const TensorInfo* t = st.find(name);
    REQUIRE_MESSAGE(t != nullptr, name);
    REQUIRE(t->dtype == "U8");
    REQUIRE(t->shape.size() == 3);
    Image im;
    im.height = (int)t->shape[0]; im.width = (int)t->shape[1]; im.channels = (int)t->shape[2];
    const uint8_t* p = (const uint8_t*)st.data(*t);
    im.pixels.assign(p, p + (t->end - t->begin));
    return im;
}

// Number of pixels bytes that differ (0 = identical), after checking the sizes.
int64_t bytes_differ(const Image& got, const Image& want) {
    REQUIRE(got.width == want.width);
    REQUIRE(got.height == want.height);
    REQUIRE(got.channels == want.channels);
    int64_t bad = 0;
    for (size_t i = 0; i < got.pixels.size(); i++) bad += got.pixels[i] != want.pixels[i];
    return bad;
}

std::vector<float> floats(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

}  // namespace

TEST_CASE("resample: PIL's nearest, bilinear, bicubic and lanczos, byte for byte, with boxes and gray images") {
    SafeTensors g("tests/data/golden_resample.safetensors");
    const Image src = golden_image(g, "src"), gray = golden_image(g, "srcL");
    const std::pair<const char*, PilFilter> filters[] = {{"nearest", PilFilter::nearest},
                                                         {"bilinear", PilFilter::bilinear},
                                                         {"bicubic", PilFilter::bicubic},
                                                         {"lanczos", PilFilter::lanczos}};
    const int sizes[][2] = {{64, 48}, {17, 11}, {40, 30}, {23, 37}, {81, 30}, {40, 7}};
    const PilBox boxes[] = {{0, 0, 40, 0}, {0, 30, 40, 30}, {0, 0, 0, 30}, {40, 0, 40, 30}, {3.5, 2.25, 31, 20.75}};
    const int box_sizes[][2] = {{40, 5}, {40, 5}, {6, 30}, {6, 30}, {19, 25}};
    for (auto [name, f] : filters) {
        for (auto& wh : sizes) {
            std::string k = std::string(name) + "/" + std::to_string(wh[0]) + "x" + std::to_string(wh[1]);
            INFO(k);
            CHECK(bytes_differ(pil_resize(src, wh[0], wh[1], f), golden_image(g, "rs/" + k)) == 0);
            CHECK(bytes_differ(pil_resize(gray, wh[0], wh[1], f), golden_image(g, "rsL/" + k)) == 0);
        }
        for (int i = 0; i < 5; i++) {
            std::string k = std::string("box/") + name + "/" + std::to_string(i);
            INFO(k);
            CHECK(bytes_differ(pil_resize(src, box_sizes[i][0], box_sizes[i][1], f, boxes[i]), golden_image(g, k)) == 0);
        }
    }
}

TEST_CASE("img2img: the webui's resize modes and flatten, byte for byte") {
    SafeTensors g("tests/data/golden_resample.safetensors");
    const Image src = golden_image(g, "src");
    const int sizes[][2] = {{64, 48}, {32, 64}, {40, 30}, {48, 48}, {64, 32}, {24, 16}};
    for (int m = 0; m < 3; m++)
        for (auto& wh : sizes) {
            std::string k = "mode/" + std::to_string(m) + "/" + std::to_string(wh[0]) + "x" + std::to_string(wh[1]);
            INFO(k);
            CHECK(bytes_differ(resize_image((ResizeMode)m, src, wh[0], wh[1]), golden_image(g, k)) == 0);
        }
    CHECK(bytes_differ(flatten_alpha(golden_image(g, "flatten_in")), golden_image(g, "flatten")) == 0);
    CHECK(parse_resize_mode("crop") == ResizeMode::crop_and_resize);
    CHECK(parse_resize_mode("3") == ResizeMode::latent_upscale);
    CHECK_THROWS_WITH(parse_resize_mode("stretch"), doctest::Contains("--resize-mode must be"));
}

TEST_CASE("resample: torch's interpolate of latents (nearest, nearest-exact, bilinear, bicubic, antialiased)") {
    SafeTensors g("tests/data/golden_resample.safetensors");
    const std::vector<float> in = floats(g.get("lat/in"));  // (4, 5, 7)
    const std::pair<const char*, LatentInterp> modes[] = {{"nearest", LatentInterp::nearest},
                                                          {"nearest-exact", LatentInterp::nearest_exact},
                                                          {"bilinear", LatentInterp::bilinear},
                                                          {"bicubic", LatentInterp::bicubic}};
    const int sizes[][2] = {{10, 14}, {3, 4}, {8, 11}, {5, 7}};
    for (auto [name, mode] : modes)
        for (auto& hw : sizes) {
            std::string k = std::string("lat/") + name + "/" + std::to_string(hw[0]) + "x" + std::to_string(hw[1]);
            std::vector<float> got = torch_interpolate(in, 4, 5, 7, hw[0], hw[1], mode);
            Tensor want = g.get(k);
            REQUIRE(want.numel() == (int64_t)got.size());
            // float32 throughout on both sides; only the order of the sums may differ
            test::Diff d = test::compare(got.data(), want.f32(), want.numel(), test::abs_tol(2e-6));
            CHECK_MESSAGE(d.ok, d.summary(k));
        }
    // antialias=True (the hires fix's "Latent (antialiased)" and "Latent (bicubic antialiased)"), down and up
    const int aa_sizes[][2] = {{10, 14}, {3, 4}, {8, 11}, {5, 7}, {2, 3}, {4, 9}, {13, 20}};
    for (auto [name, mode] : {std::pair{"bilinear_aa", LatentInterp::bilinear_aa},
                              std::pair{"bicubic_aa", LatentInterp::bicubic_aa}})
        for (auto& hw : aa_sizes) {
            std::string k = std::string("lat/") + name + "/" + std::to_string(hw[0]) + "x" + std::to_string(hw[1]);
            std::vector<float> got = torch_interpolate(in, 4, 5, 7, hw[0], hw[1], mode);
            Tensor want = g.get(k);
            REQUIRE(want.numel() == (int64_t)got.size());
            // float32 on both sides; the wider windows sum up to 9 products per axis (values up to 2.9: 4e-6 is
            // ~16 float32 steps there)
            test::Diff d = test::compare(got.data(), want.f32(), want.numel(), test::abs_tol(4e-6));
            CHECK_MESSAGE(d.ok, d.summary(k));
        }
}

TEST_CASE("img2img: strength → steps, the hires fix's fixed step count, and the part of the schedule run") {
    // setup_img2img_steps: t_enc = int(min(s, 0.999) · steps); t_enc + 1 steps run
    CHECK(img2img_steps(20, 0.75).steps == 20);
    CHECK(img2img_steps(20, 0.75).t_enc == 15);
    CHECK(img2img_steps(20, 0.5).t_enc == 10);
    CHECK(img2img_steps(20, 1.0).t_enc == 19);  // 0.999 · 20 = 19.98 → 19: all 20 steps
    CHECK(img2img_steps(20, 0.0).t_enc == 0);   // one step at the smallest sigma
    CHECK(img2img_steps(7, 0.3).t_enc == 2);
    // img2img_fix_steps (the hires pass): the schedule is stretched so that exactly n steps run
    CHECK(img2img_steps(20, 0.7, 10).steps == 14);  // int(10 / 0.7) = 14
    CHECK(img2img_steps(20, 0.7, 10).t_enc == 9);
    CHECK(img2img_steps(20, 1.0, 10).steps == 10);  // int(10 / 0.999) = 10
    std::vector<float> sig = {14.6f, 7.f, 3.f, 1.f, 0.5f, 0.f};  // 5 steps
    const DiscreteSchedule& table = sd_schedule();
    Img2imgRun run = img2img_run(SamplerKind::euler, sig, img2img_steps(5, 0.6), table);  // t_enc 3: from 1
    CHECK(run.sigmas == std::vector<float>{7.f, 3.f, 1.f, 0.5f, 0.f});
    CHECK(run.x0_scale == 1.0f);
    CHECK(run.noise_scale == 7.f);
    // timestep samplers: 6 steps → timesteps 1, 167, ..., 997 (range(0, 1000, 166): 7 of them); t_enc 3 visits
    // 333, 167, 1, noised at 499
    std::vector<float> ddim = sampler_sigmas(SamplerKind::ddim, ScheduleKind::discrete, 6, table);
    REQUIRE(ddim.size() == 7);
    run = img2img_run(SamplerKind::ddim, ddim, img2img_steps(6, 0.6), table);
    CHECK(run.sigmas == std::vector<float>{table.sigmas[333], table.sigmas[167], table.sigmas[1]});
    CHECK(run.x0_scale == std::sqrt(table.alphas_cumprod[499]));
    CHECK(run.noise_scale == std::sqrt(1.0f - table.alphas_cumprod[499]));
    CHECK(img2img_run(SamplerKind::unipc, ddim, img2img_steps(6, 0.6), table).unipc_t_start == doctest::Approx(0.334));
}

TEST_CASE("img2img: encode, img2img, hires-pass and inpainting-blend runs on the tiny model match the reference") {
    SafeTensors g("tests/data/golden_img2img.safetensors");
    Model m = load_model("tests/data/tiny_sd.safetensors");
    Arena arena;
    // The encode path: uint8 → /255 → 2x − 1 → VAE mean × 0.18215. Tolerance as the VAE's own golden.
    std::vector<float> z = encode_image(m, golden_image(g, "init"), false, arena);
    Tensor want_z = g.get("init_latent");
    REQUIRE(want_z.numel() == (int64_t)z.size());
    test::Diff dz = test::compare(z.data(), want_z.f32(), want_z.numel(), test::scale_tol(2e-5, 1e-10));
    CHECK_MESSAGE(dz.ok, dz.summary("encode"));

    struct Run { const char* name; uint64_t seed; int steps; double strength; int hires; bool mask; };
    for (const Run& r : {Run{"i2i", 5, 5, 0.6, 0, false}, Run{"hr", 6, 3, 0.5, 3, false}, Run{"mask", 7, 4, 1.0, 0, true}}) {
        LatentStart start;
        start.latent = floats(want_z);  // the reference starts from its own (float32) latent
        start.strength = r.strength;
        start.hires_steps = r.hires;
        if (r.mask) start.keep = floats(g.get("mask/keep"));
        GenerateParams p;
        p.prompt = "a photo of an astronaut riding a horse";
        p.sampler = SamplerKind::euler;
        p.schedule = ScheduleKind::discrete;
        p.steps = r.steps;
        p.cfg_scale = 7.0;
        p.seed = r.seed;
        p.rng = RngKind::cpu;
        p.width = p.height = 64;
        p.start = &start;
        std::vector<float> sig;
        Tensor x = sample_latent(m, p, arena, nullptr, [&](int k, int n) { if (k == 0) sig.resize(n); });
        Tensor want = g.get(std::string(r.name) + "/x");
        CHECK(sig.size() + 1 == (size_t)g.get(std::string(r.name) + "/sigmas").numel());
        REQUIRE(x.numel() == want.numel());
        // as the txt2img golden: every element within 1e-5 of the latent's scale, NMSE ~20x above f32's
        test::Diff d = test::compare(x.f32(), want.f32(), x.numel(), test::scale_tol(1e-5, 1e-10));
        MESSAGE(d.summary(std::string("img2img ") + r.name));
        CHECK_MESSAGE(d.ok, d.summary(std::string("img2img ") + r.name));
    }
}

TEST_CASE("img2img: DDIM, PLMS, UniPC, DPM fast and adaptive, a masked DDIM and a DDIM hires pass match the reference") {
    SafeTensors g("tests/data/golden_img2img.safetensors");
    Model m = load_model("tests/data/tiny_sd.safetensors");
    Arena arena;
    struct Run { const char* name; SamplerKind sampler; uint64_t seed; int steps; double strength; int hires; };
    for (const Run& r : {Run{"ddim", SamplerKind::ddim, 9, 6, 0.6, 0}, Run{"plms", SamplerKind::plms, 10, 8, 0.75, 0},
                         Run{"unipc", SamplerKind::unipc, 11, 8, 0.6, 0},
                         Run{"dpm_fast", SamplerKind::dpm_fast, 12, 6, 0.6, 0},
                         Run{"dpm_adaptive", SamplerKind::dpm_adaptive, 13, 5, 0.5, 0},
                         Run{"ddim_mask", SamplerKind::ddim, 14, 8, 0.9, 0},
                         Run{"ddim_hr", SamplerKind::ddim, 15, 20, 0.5, 3}}) {
        const std::string name = r.name;
        LatentStart start;
        start.latent = floats(g.get("init_latent"));
        start.strength = r.strength;
        start.hires_steps = r.hires;
        if (name == "ddim_mask") start.keep = floats(g.get("ddim_mask/keep"));
        GenerateParams p;
        p.prompt = "a photo of an astronaut riding a horse";
        p.sampler = r.sampler;
        p.schedule = ScheduleKind::discrete;
        p.steps = r.steps;
        p.cfg_scale = 7.0;
        p.seed = r.seed;
        p.rng = RngKind::cpu;
        p.width = p.height = 64;
        p.start = &start;
        Tensor x = sample_latent(m, p, arena);
        Tensor want = g.get(name + "/x");
        REQUIRE(x.numel() == want.numel());
        // as the k-diffusion runs above. DPM adaptive's step sizes are a smooth function of error estimates that
        // sit below float32 rounding (test_samplers.cpp says why), so they drift with the kernels' summation order:
        // AVX-512 6.1e-6 of the scale, AVX2 5.3e-5, scalar 1.9e-5, NEON (qemu) 2.9e-5; a wrong controller
        // coefficient shows at 1e-2. Its bound is test_samplers.cpp's.
        const bool adaptive = r.sampler == SamplerKind::dpm_adaptive;
        test::Diff d = test::compare(x.f32(), want.f32(), x.numel(),
                                     adaptive ? test::scale_tol(1e-3, 1e-7) : test::scale_tol(1e-5, 1e-10));
        MESSAGE(d.summary("img2img " + name));
        CHECK_MESSAGE(d.ok, d.summary("img2img " + name));
    }
}

TEST_CASE("img2img: resize mode latent encodes the init image at its own size (67x61) and resizes the latent") {
    SafeTensors g("tests/data/golden_img2img.safetensors");
    Model m = load_model("tests/data/tiny_sd.safetensors");
    Arena arena;
    const Image init = golden_image(g, "latent_mode/init");
    REQUIRE(init.width == 67);
    int64_t h = 0, w = 0;
    std::vector<float> z = encode_image(m, init, false, arena, -1, &h, &w);
    CHECK(h == 7);  // floor(61 / 8): each downsampling floors an odd side, as ldm's
    CHECK(w == 8);
    Tensor want_z = g.get("latent_mode/z");
    REQUIRE(want_z.numel() == (int64_t)z.size());
    test::Diff dz = test::compare(z.data(), want_z.f32(), want_z.numel(), test::scale_tol(2e-5, 1e-10));
    CHECK_MESSAGE(dz.ok, dz.summary("encode 67x61"));
    std::vector<float> x0 = encode_latent_resize(m, init, 64, 64, false, arena);
    Tensor want = g.get("latent_mode/x0");
    REQUIRE(want.numel() == (int64_t)x0.size());
    test::Diff d = test::compare(x0.data(), want.f32(), want.numel(), test::scale_tol(2e-5, 1e-10));
    CHECK_MESSAGE(d.ok, d.summary("latent resize 67x61 -> 64x64"));
    Image tiny;
    tiny.width = 7; tiny.height = 40; tiny.channels = 3;
    tiny.pixels.assign(7 * 40 * 3, 128);
    CHECK_THROWS_WITH(encode_latent_resize(m, tiny, 64, 64, false, arena),
                      doctest::Contains("it needs at least 8 on each side"));
}

TEST_CASE("hires: the Lanczos and Nearest upscalers as resize_image runs them, byte for byte") {
    SafeTensors g("tests/data/golden_resample.safetensors");
    const Image src = golden_image(g, "src");
    const int sizes[][2] = {{80, 60}, {96, 64}, {100, 75}, {32, 24}};
    for (auto [name, f] : {std::pair{"lanczos", PilFilter::lanczos}, std::pair{"nearest", PilFilter::nearest}})
        for (auto& wh : sizes) {
            std::string k = std::string("up/") + name + "/" + std::to_string(wh[0]) + "x" + std::to_string(wh[1]);
            INFO(k);
            CHECK(bytes_differ(upscale_with_filter(src, wh[0], wh[1], f), golden_image(g, k)) == 0);
        }
}

TEST_CASE("hires: target sizes and truncation as calculate_target_resolution") {
    auto target = [](int w, int h, double scale, int rx, int ry) {
        HiresParams hp;
        hp.scale = scale; hp.width = rx; hp.height = ry;
        return hires_target(w, h, hp);
    };
    HiresTarget t = target(512, 512, 2.0, 0, 0);
    CHECK(t.upscale_w == 1024); CHECK(t.upscale_h == 1024); CHECK(t.width() == 1024);
    t = target(512, 768, 1.5, 0, 0);
    CHECK(t.upscale_w == 768); CHECK(t.upscale_h == 1152);
    t = target(512, 768, 2.0, 1024, 0);  // width only: height from the aspect
    CHECK(t.upscale_w == 1024); CHECK(t.upscale_h == 1536); CHECK(t.truncate_y == 0);
    t = target(512, 768, 2.0, 0, 1024);
    CHECK(t.upscale_w == 682); CHECK(t.upscale_h == 1024);
    t = target(512, 768, 2.0, 1024, 1024);  // both: fill the wider side, cut the rest in latent rows
    CHECK(t.upscale_w == 1024); CHECK(t.upscale_h == 1536);
    CHECK(t.truncate_x == 0); CHECK(t.truncate_y == 64);
    CHECK(t.width() == 1024); CHECK(t.height() == 1024);
    CHECK(hires_upscaler_label("latent-bicubic") == "Latent (bicubic)");
    CHECK(hires_upscaler_label("Latent (nearest-exact)") == "Latent (nearest-exact)");
    CHECK(hires_upscaler_label("latent-antialiased") == "Latent (antialiased)");
    CHECK(hires_upscaler_label("Latent (bicubic antialiased)") == "Latent (bicubic antialiased)");
    CHECK(hires_upscaler_label("lanczos") == "Lanczos");
    CHECK(hires_upscaler_label("models/4x-UltraSharp.safetensors") == "4x-UltraSharp");
    CHECK_THROWS_WITH(hires_upscaler_label("bilinear"), doctest::Contains("--hires-upscaler must be latent"));
    HiresParams odd;
    odd.scale = 1.3;
    CHECK_THROWS_WITH(check_hires(512, 512, odd), doctest::Contains("665x665 image; sd needs multiples of 64"));
    HiresParams pth;
    pth.upscaler = "tests/data/tiny_sd.safetensors.pth";
    CHECK_THROWS_WITH(check_hires(64, 64, pth), doctest::Contains("no upscaler model file"));
}

TEST_CASE("hires: first pass, latent upscale and second pass on the tiny model match the reference") {
    SafeTensors g("tests/data/golden_img2img.safetensors");
    Model m = load_model("tests/data/tiny_sd.safetensors");
    Arena arena;
    GenerateParams p;
    p.prompt = "a photo of an astronaut riding a horse";
    p.sampler = SamplerKind::euler;
    p.schedule = ScheduleKind::discrete;
    p.steps = 3;
    p.cfg_scale = 7.0;
    p.seed = 1;
    p.rng = RngKind::cpu;
    p.width = p.height = 64;
    HiresParams hp;
    hp.scale = 2.0;
    hp.steps = 3;
    hp.strength = 0.5;
    hp.upscaler = "latent";
    std::vector<int> steps_seen;
    Tensor x = hires_latent(m, p, hp, arena, nullptr, [&](int k, int n) { if (k == 0) steps_seen.push_back(n); });
    CHECK(steps_seen == std::vector<int>{3, 3});  // first pass 3 steps, second pass exactly the hires steps
    Tensor want = g.get("hires/x");
    REQUIRE(x.numel() == want.numel());
    REQUIRE(x.shape[2] == 16);
    test::Diff d = test::compare(x.f32(), want.f32(), x.numel(), test::scale_tol(1e-5, 1e-10));
    MESSAGE(d.summary("hires"));
    CHECK_MESSAGE(d.ok, d.summary("hires"));
}

namespace {
// The largest per-byte difference (sizes checked first).
int max_byte_diff(const Image& got, const Image& want) {
    REQUIRE(got.width == want.width);
    REQUIRE(got.height == want.height);
    REQUIRE(got.channels == want.channels);
    int worst = 0;
    for (size_t i = 0; i < got.pixels.size(); i++) worst = std::max(worst, std::abs(got.pixels[i] - want.pixels[i]));
    return worst;
}
}  // namespace

TEST_CASE("masking: binary mask, invert, PIL's GaussianBlur, fill, overlay, crop region as the webui (PIL bytes)") {
    SafeTensors g("tests/data/golden_masking.safetensors");
    const Image image = golden_image(g, "image");
    const Image b = binary_mask(golden_image(g, "mask_rgb"));
    CHECK(bytes_differ(b, golden_image(g, "binary_rgb")) == 0);
    CHECK(bytes_differ(binary_mask(golden_image(g, "mask_rgba")), golden_image(g, "binary_rgba")) == 0);
    CHECK(bytes_differ(invert_mask(b), golden_image(g, "inverted")) == 0);
    // cv2's 8-bit Gaussian quantises its kernel to fixed point; ours is the exact Gaussian: one level at most
    const Image b4 = blur_mask(b, 4);
    CHECK(max_byte_diff(b4, golden_image(g, "blur4")) <= 1);
    CHECK(max_byte_diff(blur_mask(b, 2), golden_image(g, "blur2")) <= 1);
    // from here on the webui's blurred mask itself, so the steps after it are compared byte for byte
    const Image w4 = golden_image(g, "blur4");
    for (int r : {0, 2, 4, 16, 64}) {
        INFO("GaussianBlur radius ", r);
        CHECK(bytes_differ(pil_gaussian_blur(golden_image(g, "gauss_in"), (float)r), golden_image(g, "gauss/" + std::to_string(r))) == 0);
    }
    CHECK(bytes_differ(fill_masked(image, w4), golden_image(g, "fill")) == 0);
    Image mfo = w4;
    for (uint8_t& v : mfo.pixels) v = (uint8_t)std::min(255, 2 * v);
    const Image overlay = masked_overlay(image, mfo);
    CHECK(bytes_differ(overlay, golden_image(g, "overlay")) == 0);
    Image generated = image;
    for (uint8_t& v : generated.pixels) v = (uint8_t)(255 - v);
    CHECK(bytes_differ(apply_overlay(generated, nullptr, overlay), golden_image(g, "composited")) == 0);
    for (int pad : {0, 8, 32}) {
        CropRegion r;
        REQUIRE(crop_region_v2(w4, pad, &r));
        r = expand_crop_region(r, 64, 32, 48, 40);
        const int32_t* wv = (const int32_t*)g.data(*g.find("crop/" + std::to_string(pad)));
        INFO("pad ", pad);
        CHECK(r.x1 == wv[0]); CHECK(r.y1 == wv[1]); CHECK(r.x2 == wv[2]); CHECK(r.y2 == wv[3]);
    }
    const int32_t* c8 = (const int32_t*)g.data(*g.find("crop/8"));
    CropRegion r8{c8[0], c8[1], c8[2], c8[3]};
    CHECK(bytes_differ(apply_overlay(golden_image(g, "generated_small"), &r8, masked_overlay(image, w4)),
                       golden_image(g, "uncropped")) == 0);
    std::vector<float> keep = latent_keep_mask(w4, 6, 5);
    const Image lat = golden_image(g, "latmask");
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 30; i++) CHECK(keep[c * 30 + i] == 1.0f - lat.pixels[i]);
    Image blank = b;
    std::fill(blank.pixels.begin(), blank.pixels.end(), 0);
    CropRegion none;
    CHECK_FALSE(crop_region_v2(blank, 32, &none));
}

namespace {
// tests/data/tiny_sd.safetensors with its UNet's first conv widened from 4 to 9 input channels (the golden's extra
// 5, as an inpainting checkpoint's), written to `path`: every other tensor's bytes as they are.
void write_tiny_inpaint(const std::string& path, const SafeTensors& golden) {
    SafeTensors st("tests/data/tiny_sd.safetensors");
    const std::string conv = "model.diffusion_model.input_blocks.0.0.weight";
    const TensorInfo* extra = golden.find("inpaint9/conv_in_extra");
    REQUIRE(extra != nullptr);
    REQUIRE(extra->dtype == "F16");
    std::string header = "{\"__metadata__\":{";
    bool first = true;
    for (auto& [k, v] : st.metadata()) {
        header += (first ? "" : ",") + json_quote(k) + ":" + json_quote(v);
        first = false;
    }
    header += "}";
    std::vector<uint8_t> data;
    for (const TensorInfo& t : st.tensors()) {
        std::vector<int64_t> shape = t.shape;
        const uint8_t* p = (const uint8_t*)st.data(t);
        std::vector<uint8_t> bytes(p, p + (t.end - t.begin));
        if (t.name == conv) {  // (C, 4, 3, 3) f16 + (C, 5, 3, 3) → (C, 9, 3, 3), per output channel
            REQUIRE(t.dtype == "F16");
            const int64_t C = shape[0], a = 4 * 9 * 2, b = 5 * 9 * 2;
            const uint8_t* e = (const uint8_t*)golden.data(*extra);
            bytes.clear();
            for (int64_t c = 0; c < C; c++) {
                bytes.insert(bytes.end(), p + c * a, p + (c + 1) * a);
                bytes.insert(bytes.end(), e + c * b, e + (c + 1) * b);
            }
            shape[1] = 9;
        }
        std::string dims;
        for (int64_t d : shape) dims += (dims.empty() ? "" : ",") + std::to_string(d);
        header += "," + json_quote(t.name) + ":{\"dtype\":" + json_quote(t.dtype) + ",\"shape\":[" + dims +
                  "],\"data_offsets\":[" + std::to_string(data.size()) + "," + std::to_string(data.size() + bytes.size()) + "]}";
        data.insert(data.end(), bytes.begin(), bytes.end());
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    std::ofstream f(path, std::ios::binary);
    uint64_t n = header.size();
    f.write((const char*)&n, 8);
    f.write(header.data(), (std::streamsize)header.size());
    f.write((const char*)data.data(), (std::streamsize)data.size());
    REQUIRE(f.good());
}
}  // namespace

TEST_CASE("inpainting model: the 9-channel UNet input and a masked img2img run match the reference") {
    SafeTensors g("tests/data/golden_img2img.safetensors");
    char tmpl[] = "/tmp/sd_test_inpaint_XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    const std::string path = tmpl;
    write_tiny_inpaint(path, g);
    Model m = load_model(path);
    unlink(path.c_str());
    REQUIRE(m.unet.cfg.in_channels == 9);
    Arena arena;
    const Image init = golden_image(g, "init"), mask = golden_image(g, "inpaint9/mask");
    std::vector<float> cond = inpainting_image_conditioning(m, init, mask, arena);
    Tensor want_cond = g.get("inpaint9/image_cond");
    REQUIRE(want_cond.numel() == (int64_t)cond.size());
    // the mask channel exactly, the masked image's latent as the VAE golden
    for (int i = 0; i < 64; i++) CHECK(cond[i] == want_cond.f32()[i]);
    test::Diff dc = test::compare(cond.data() + 64, want_cond.f32() + 64, 256, test::scale_tol(2e-5, 1e-10));
    CHECK_MESSAGE(dc.ok, dc.summary("inpainting conditioning"));

    LatentStart start;
    start.latent = floats(g.get("init_latent"));
    start.strength = 1.0;
    start.keep = latent_keep_mask(mask, 8, 8);
    start.image_cond = floats(want_cond);
    GenerateParams p;
    p.prompt = "a photo of an astronaut riding a horse";
    p.sampler = SamplerKind::euler;
    p.schedule = ScheduleKind::discrete;
    p.steps = 4;
    p.cfg_scale = 7.0;
    p.seed = 8;
    p.rng = RngKind::cpu;
    p.width = p.height = 64;
    p.start = &start;
    Tensor x = sample_latent(m, p, arena);
    Tensor want = g.get("inpaint9/x");
    REQUIRE(x.numel() == want.numel());
    test::Diff d = test::compare(x.f32(), want.f32(), x.numel(), test::scale_tol(1e-5, 1e-10));
    MESSAGE(d.summary("inpaint9"));
    CHECK_MESSAGE(d.ok, d.summary("inpaint9"));
    // without a mask (txt2img on an inpainting model) the UNet gets a mask of ones and the grey image's latent
    std::vector<float> plain = unmasked_image_conditioning(m, 8, 8, false, arena);
    for (int i = 0; i < 64; i++) CHECK(plain[i] == 1.0f);
}
