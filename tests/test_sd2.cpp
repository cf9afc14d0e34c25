// SD 2.x against tools/reference_sd2.py's PyTorch goldens (tests/data/golden_sd2.safetensors) on the tiny SD 2.x
// checkpoint (tests/data/tiny_sd2.safetensors, real key layout): the OpenCLIP text tower (penultimate and last
// layer, the webui's pad id 0), the UNet with linear proj_in/proj_out and heads of 16 channels, the webui's
// v-prediction probe and decision, and whole sampling runs for epsilon and v, with CFG and at CFG 1 (no uncond pass).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "app/image_io.h"
#include "compare.h"
#include "models/open_clip.h"
#include "pipeline/prediction.h"
#include "pipeline/txt2img.h"

using namespace sd;

namespace {

const char* kTiny2 = "tests/data/tiny_sd2.safetensors";
const char* kTiny1 = "tests/data/tiny_sd.safetensors";  // its VAE stands in (SD 2.x uses the SD 1.x VAE)

SafeTensors& golden() {
    static SafeTensors g("tests/data/golden_sd2.safetensors");
    return g;
}
Model& tiny2(Prediction p) {
    static Model eps = load_model(kTiny2, kTiny1, "eps");
    static Model v = load_model(kTiny2, kTiny1, "v");
    return p == Prediction::v ? v : eps;
}
std::vector<int> ids_of(const std::string& name) {
    Tensor t = golden().get(name, {77});
    std::vector<int> ids(77);
    for (int i = 0; i < 77; i++) ids[i] = (int)t.f32()[i];
    return ids;
}

}  // namespace

TEST_CASE("sd2: OpenCLIP tower matches the golden, penultimate and last layer, every ISA") {
    SafeTensors ckpt(kTiny2);
    OpenClipTextModel m = load_open_clip_text(ckpt, "cond_stage_model.model.", 2);
    CHECK(m.cfg.width == 8);
    CHECK(m.cfg.layers == 3);
    CHECK(m.cfg.mlp == 32);
    CHECK(m.cfg.vocab == 49408);
    // f32 sums of at most 32 terms of O(1) values: measured max-abs ~1e-6; 1e-4 fails a quick-GELU (~1e-2).
    const double tol = 1e-4;
    Arena arena;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
        if (!isa_supported(isa)) continue;
        set_isa(isa);
        for (const char* sfx : {"a", "b"}) {
            std::vector<int> ids = ids_of(std::string("clip/ids_") + sfx);
            for (int skip : {1, 2}) {
                std::string name = std::string(skip == 2 ? "clip/penultimate_" : "clip/last_") + sfx;
                arena.reset();
                Tensor got = open_clip_encode(m, ids.data(), skip, arena);
                REQUIRE(got.same_shape({77, 8}));
                Tensor want = golden().get(name, {77, 8});
                test::Diff d = test::compare(got.f32(), want.f32(), 77 * 8, test::abs_tol(tol));
                INFO(d.summary(std::string(isa_name(isa)) + " " + name));
                CHECK(d.ok);
                CHECK(d.max_abs < tol);
            }
        }
    }
    set_isa(best_isa());
}

TEST_CASE("sd2: the webui's OpenCLIP padding puts 0 after the first end token") {
    int ids[8] = {49406, 320, 49407, 49407, 49407, 49407, 49407, 49407};
    open_clip_pad_ids(ids, 8);
    const int want[8] = {49406, 320, 49407, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) CHECK(ids[i] == want[i]);
    // The pipeline's conditioning = tokenizer → padding → tower's penultimate layer: the golden's prompt and the
    // empty negative prompt.
    Model& m = tiny2(Prediction::v);
    Arena arena;
    Tensor ctx = make_conditioning(m, "a photo of an astronaut riding a horse", "", true, 1, arena);
    REQUIRE(ctx.same_shape({2, 77, 8}));
    test::Diff du = test::compare(ctx.f32(), golden().get("clip/uncond", {77, 8}).f32(), 77 * 8, test::abs_tol(1e-4));
    test::Diff dc = test::compare(ctx.f32() + 77 * 8, golden().get("clip/penultimate_a", {77, 8}).f32(), 77 * 8,
                                  test::abs_tol(1e-4));
    INFO(du.summary("uncond") << "; " << dc.summary("cond"));
    CHECK(du.ok);
    CHECK(dc.ok);
    // --clip-skip does not reach the SD 2.x tower (the webui ignores it there): the same conditioning.
    Tensor skip2 = make_conditioning(m, "a photo of an astronaut riding a horse", "", true, 2, arena);
    CHECK(std::memcmp(skip2.f32(), ctx.f32(), ctx.nbytes()) == 0);
}

TEST_CASE("sd2: UNet with linear proj and 16-channel heads matches the golden") {
    Model& m = tiny2(Prediction::eps);
    CHECK(m.unet.cfg.head_dim == 16);
    CHECK(m.unet.cfg.heads_at(32) == 2);
    CHECK(m.unet.cfg.heads_at(64) == 4);
    CHECK(m.unet.cfg.context_dim == 8);
    Arena arena;
    Tensor x = golden().get("unet/x", {2, 4, 8, 8}), t = golden().get("unet/t", {2});
    Tensor ctx = golden().get("unet/context", {2, 77, 8}), want = golden().get("unet/out", {2, 4, 8, 8});
    Tensor got = unet_forward(m.unet, x, t.f32(), ctx, arena);
    // As the SD 1.x UNet golden: 1e-5 of the output's scale (measured ~1e-6); 8 heads instead of 2/4 moves it ~0.1.
    test::Diff d = test::compare(got.f32(), want.f32(), want.numel(), test::scale_tol(1e-5));
    INFO(d.summary("unet/out"));
    CHECK(d.ok);

    // The webui's probe value on this UNet.
    double probe = v_probe(m.unet, arena);
    double want_probe = golden().get("unet/probe", {1}).f32()[0];
    INFO("probe " << probe << " want " << want_probe);
    CHECK(std::fabs(probe - want_probe) < 1e-5);
}

TEST_CASE("sd2: prediction is decided as the webui does: override, config beside the file, probe") {
    const char* old_cache = std::getenv("XDG_CACHE_HOME");
    std::string saved = old_cache ? old_cache : "";
    setenv("XDG_CACHE_HOME", "build/test_sd2_cache", 1);  // the probe cache goes there, not into ~/.cache
    // made here: in a fresh clone `make test-aarch64` leaves no build/, and sd makes only the cache folder and sd/
    std::system("rm -rf build/test_sd2_cache && mkdir -p build/test_sd2_cache");
    SafeTensors st(kTiny2);
    CheckpointInfo info = inspect_checkpoint(st);
    REQUIRE(info.family == ModelFamily::sd2);
    Model& m = tiny2(Prediction::eps);
    Arena arena;
    PredictionChoice pc = decide_prediction(info, &m.unet, "", arena);
    CHECK(pc.prediction == Prediction::eps);  // the tiny UNet's probe mean is -0.46, not below -1
    CHECK(pc.why.find("probe: mean") != std::string::npos);
    CHECK(decide_prediction(info, nullptr, "", arena).why.find("probe (cached)") != std::string::npos);
    CHECK(decide_prediction(info, &m.unet, "v", arena).prediction == Prediction::v);
    CHECK(decide_prediction(info, nullptr, "eps", arena).why == "--prediction eps");
    CHECK_THROWS(parse_prediction("x0"));

    // A config next to the file decides before any probe (the webui's find_checkpoint_config_near_filename).
    std::string dir = "build/test_sd2_yaml";
    std::system(("mkdir -p " + dir).c_str());
    CheckpointInfo copy = info;
    copy.path = dir + "/model.safetensors";
    {
        std::ofstream(dir + "/model.yaml") << "model:\n  params:\n    parameterization: \"v\"\n";
    }
    pc = decide_prediction(copy, nullptr, "", arena);
    CHECK(pc.prediction == Prediction::v);
    CHECK(pc.why.find("model.yaml") != std::string::npos);
    {
        std::ofstream(dir + "/model.yaml") << "model:\n  params:\n    linear_start: 0.00085\n";
    }
    CHECK(decide_prediction(copy, nullptr, "", arena).prediction == Prediction::eps);
    std::remove((dir + "/model.yaml").c_str());

    // SD 1.x: epsilon without a probe.
    SafeTensors st1(kTiny1);
    pc = decide_prediction(inspect_checkpoint(st1), nullptr, "", arena);
    CHECK(pc.prediction == Prediction::eps);
    if (old_cache) setenv("XDG_CACHE_HOME", saved.c_str(), 1);
    else unsetenv("XDG_CACHE_HOME");
}

TEST_CASE("sd2: sampling runs match the golden: epsilon and v, CFG 5 and CFG 1 (no uncond pass), euler and DPM++ 2M") {
    Tensor noise = golden().get("sample/noise", {1, 4, 8, 8});
    Tensor sig = golden().get("sample/sigmas", {4});
    const DiscreteSchedule table = sd_schedule();
    std::vector<float> sigmas = sampler_sigmas(SamplerKind::euler, ScheduleKind::discrete, 3, table);
    REQUIRE(sigmas.size() == 4);
    for (int i = 0; i < 4; i++) CHECK(sigmas[i] == sig.f32()[i]);
    for (Prediction pred : {Prediction::eps, Prediction::v}) {
        Model& m = tiny2(pred);
        for (double cfg : {5.0, 1.0}) {
            for (SamplerKind s : {SamplerKind::euler, SamplerKind::dpmpp_2m}) {
                Arena arena;
                Tensor ctx = make_conditioning(m, "a photo of an astronaut riding a horse", "", cfg != 1.0, 1, arena);
                CHECK(ctx.shape[0] == (cfg != 1.0 ? 2 : 1));  // CFG 1: the uncond is neither encoded nor run
                int evals = 0;
                Denoiser inner = make_cfg_denoiser(m, ctx, cfg, table, 8, 8, arena);
                Denoiser counted = [&](const std::vector<float>& x, float sigma, std::vector<float>& out) {
                    evals++;
                    inner(x, sigma, out);
                };
                std::vector<float> x(noise.f32(), noise.f32() + 256);
                for (float& v : x) v *= sigmas[0];
                ImageRng rng(RngKind::cpu, {1});
                sample(s, counted, x, sigmas, rng);
                CHECK(evals == 3);
                char name[64];
                std::snprintf(name, sizeof name, "sample/%s_cfg%d_%s", prediction_name(pred), (int)cfg,
                              s == SamplerKind::euler ? "euler" : "dpmpp_2m");
                Tensor want = golden().get(name, {1, 4, 8, 8});
                // Three steps of f32 UNet passes against float64: errors ~1e-6 of the latent's scale; 1e-4 still
                // fails epsilon read as v (and vice versa) by orders of magnitude, and CFG 5 against CFG 1 (~5e-2).
                test::Diff d = test::compare(x.data(), want.f32(), 256, test::scale_tol(1e-4));
                INFO(d.summary(name));
                CHECK(d.ok);
            }
        }
    }
}

TEST_CASE("sd2: generate end to end with --vae; a VAE file without the first_stage_model. prefix also loads") {
    Model& m = tiny2(Prediction::v);
    CHECK(m.sd2());
    CHECK(m.vae_file != nullptr);
    GenerateParams p;
    p.prompt = "a red cube";
    p.width = p.height = 64;
    p.steps = 2;
    p.cfg_scale = 1;
    p.seed = 3;
    p.sampler = SamplerKind::euler;
    const std::string preview = "build/test_sd2_preview.png";
    std::system("mkdir -p build");  // absent in a fresh clone under `make test-aarch64`
    p.on_preview = [&](const Image& im) { write_file_atomic(preview, encode_png(im, {})); };  // as --preview
    std::remove(preview.c_str());
    Arena arena;
    StageTimes times;
    Image img = generate(m, p, arena, &times);
    CHECK(img.width == 64);
    CHECK(img.height == 64);
    std::ifstream prev(preview, std::ios::binary);
    CHECK(prev.good());  // the preview was written (atomically) during sampling
    CHECK(times.preview > 0);
    std::remove(preview.c_str());

    // Without a VAE the SD 2.x file is refused with a sentence; a missing --vae file too.
    CHECK_THROWS_WITH_AS(load_model(kTiny2), doctest::Contains("without its VAE"), std::runtime_error);
    CHECK_THROWS_AS(load_model(kTiny2, "tests/data/no_such_vae.safetensors", "eps"), std::runtime_error);
    // A --vae that is not a VAE (the SD 2.x file itself has no decoder) is named.
    CHECK_THROWS_WITH_AS(load_model(kTiny2, kTiny2, "eps"), doctest::Contains("--vae needs a VAE"), std::runtime_error);
}

TEST_CASE("sd2: SD-Turbo's schedule: SGM Uniform gives the trailing timesteps 999, 749, 499, 249 (1 step: 999)") {
    // SD-Turbo's scheduler config: EulerDiscreteScheduler, epsilon, timestep_spacing "trailing" (999, 749, 499, 249
    // for 4 steps). The webui's SGM Uniform spaces t evenly from 999 with the end dropped: 999, 749.25, 499.5,
    // 249.75, within a quarter step of trailing; the default Uniform ends at t = 0 instead (999, 666, 333, 0).
    const DiscreteSchedule table = sd_schedule();
    std::vector<float> s4 = sampler_sigmas(SamplerKind::euler, ScheduleKind::sgm_uniform, 4, table);
    REQUIRE(s4.size() == 5);
    const double want[4] = {999, 749.25, 499.5, 249.75};
    for (int i = 0; i < 4; i++) CHECK(table.sigma_to_t(s4[i]) == doctest::Approx(want[i]).epsilon(1e-4));
    CHECK(s4[4] == 0);
    std::vector<float> u4 = sampler_sigmas(SamplerKind::euler, ScheduleKind::discrete, 4, table);
    CHECK(table.sigma_to_t(u4[3]) == doctest::Approx(0).epsilon(1e-4));
    // One step: every one of them is sigma_max (t = 999) then 0, and Euler lands on D(x; sigma_max).
    std::vector<float> s1 = sampler_sigmas(SamplerKind::euler, ScheduleKind::sgm_uniform, 1, table);
    REQUIRE(s1.size() == 2);
    CHECK(s1[0] == doctest::Approx(table.sigma_max()).epsilon(1e-6));
    CHECK(s1 == sampler_sigmas(SamplerKind::euler, ScheduleKind::discrete, 1, table));
}

TEST_CASE("sd2: v-prediction through the denoiser is the webui's DDIM v path, and every sampler runs on it") {
    // The webui's DDIM for v models (CompVisTimestepsVDenoiser) derives eps = sqrt(abar)·v + sqrt(1 − abar)·x_t from
    // the UNet's v at the variance-preserving x_t = x·c_in. Our samplers see D; DDIM reads eps = (x − D)/sigma.
    // The two agree when abar = 1/(sigma² + 1), i.e. at the table's own sigmas.
    Model& m = tiny2(Prediction::v);
    Arena arena;
    const DiscreteSchedule table = sd_schedule();
    Tensor ctx = make_conditioning(m, "a red cube", "", false, 1, arena);
    std::vector<float> x(256), d;
    for (int i = 0; i < 256; i++) x[i] = 3.0f * std::sin(0.91f * i);
    const int t_idx = 601;
    const float sigma = table.sigmas[t_idx];
    make_cfg_denoiser(m, ctx, 1.0, table, 8, 8, arena)(x, sigma, d);
    const double abar = table.alphas_cumprod[t_idx], c_in = 1 / std::sqrt((double)sigma * sigma + 1);
    Tensor xin = Tensor::zeros({1, 4, 8, 8});
    for (int i = 0; i < 256; i++) xin.f32()[i] = (float)(x[i] * c_in);
    const float t = (float)t_idx;
    Tensor v = unet_forward(m.unet, xin, &t, ctx, arena);
    double max_err = 0, scale = 0;
    for (int i = 0; i < 256; i++) {
        double eps_webui = std::sqrt(abar) * v.f32()[i] + std::sqrt(1 - abar) * xin.f32()[i];
        double eps_ours = (x[i] - (double)d[i]) / sigma;
        max_err = std::max(max_err, std::fabs(eps_webui - eps_ours));
        scale = std::max(scale, std::fabs(eps_webui));
    }
    INFO("max error " << max_err << " of " << scale);
    CHECK(max_err < 1e-5 * scale + 1e-6);

    for (SamplerKind s : {SamplerKind::euler, SamplerKind::euler_a, SamplerKind::heun, SamplerKind::dpm2,
                          SamplerKind::dpm2_a, SamplerKind::dpmpp_2m, SamplerKind::dpmpp_2s_a, SamplerKind::lms,
                          SamplerKind::ddim, SamplerKind::lcm}) {
        GenerateParams p;
        p.prompt = "a red cube";
        p.width = p.height = 64;
        p.steps = 2;
        p.seed = 5;
        p.sampler = s;
        p.cfg_scale = 4;
        Tensor lat = sample_latent(m, p, arena);
        bool finite = true;
        for (int64_t i = 0; i < lat.numel(); i++) finite = finite && std::isfinite(lat.f32()[i]);
        INFO(sampler_name(s));
        CHECK(finite);
        arena.reset();
    }
}

TEST_CASE("sd2: a textual-inversion embedding of the text tower's width is spliced in as the webui does") {
    namespace fs = std::filesystem;
    SafeTensors gold("tests/data/golden_ti_sd2.safetensors");
    const fs::path dir = fs::temp_directory_path() / ("sd_emb2_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    write_safetensors((dir / "shiny-thing.safetensors").string(), {{"emb_params", gold.get("emb/vec")}});
    write_safetensors((dir / "sd1-thing.safetensors").string(), {{"emb_params", Tensor::zeros({1, 768})}});
    Model& m = tiny2(Prediction::eps);
    const TextEncoder enc = text_encoder(m, 1);
    EmbeddingDb db;
    db.load_dir(dir.string(), enc.width);  // the webui's expected_shape: the text encoder's width (1024 for SD 2.x)
    Arena arena;
    // tools/ti_sd2_reference.py: placeholders at the name, OpenCLIP padding, vectors replacing their token
    // embeddings, penultimate layer, emphasis "Original" at weight 1.2
    CondSchedule c = learned_conditioning(enc, "a (shiny-thing:1.2) cube", 20, &db, arena);
    REQUIRE(c.conds.size() == 1);
    test::Diff d = test::compare(c.conds[0], gold.get("cond"), test::scale_tol(2e-5));
    MESSAGE(d.summary("sd2 TI conditioning"));
    CHECK(d.ok);
    // the vectors matter: the name as plain text is far from it
    CondSchedule plain = learned_conditioning(enc, "a (shiny-thing:1.2) cube", 20, nullptr, arena);
    CHECK(!test::compare(plain.conds[0], gold.get("cond"), test::scale_tol(2e-5)).ok);
    // an SD 1.x embedding (768 wide) is skipped for this model, as the webui skips it: its name stays text
    CHECK(tokenize_prompt("sd1-thing", &db)[0].fixes.empty());
    fs::remove_all(dir);
}
