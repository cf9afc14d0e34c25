// SDXL against tools/reference_sdxl.py's PyTorch goldens (tests/data/golden_sdxl.safetensors) on the tiny SDXL
// checkpoint (tests/data/tiny_sdxl.safetensors, real sgm key layout): CLIP-L's hidden_states[-2] without the final
// norm, the bigG tower (penultimate without ln_final, pooled output through text_projection), the size embeddings,
// the UNet (label_emb, transformer depth per level, no attention at level 0) and whole sampling runs from the prompt
// to the final latent (the empty negative prompt zeroed as the webui does, CFG 5; a one-step CFG 1 Turbo-style run).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "compare.h"
#include "models/open_clip.h"
#include "models/taesd.h"
#include "pipeline/img2img.h"
#include "pipeline/sdxl.h"
#include "pipeline/txt2img.h"
#include "tokenizer/clip_tokenizer.h"

using namespace sd;

namespace {

const char* kTinyXL = "tests/data/tiny_sdxl.safetensors";
const char* kTiny1 = "tests/data/tiny_sd.safetensors";  // its VAE stands in (the SDXL VAE has the same layout)

SafeTensors& golden() {
    static SafeTensors g("tests/data/golden_sdxl.safetensors");
    return g;
}
Model& tiny_xl() {
    static Model m = load_model(kTinyXL, kTiny1);
    return m;
}
std::vector<int> ids_of(const std::string& name) {
    Tensor t = golden().get(name, {77});
    std::vector<int> ids(77);
    for (int i = 0; i < 77; i++) ids[i] = (int)t.f32()[i];
    return ids;
}

}  // namespace

TEST_CASE("sdxl: the tiny checkpoint loads as SDXL: two encoders, per-level depth, label_emb, VAE scale") {
    Model& m = tiny_xl();
    CHECK(m.sdxl());
    CHECK(m.clip.cfg.width == 8);
    CHECK(m.open_clip.cfg.width == 8);
    CHECK(m.open_clip.text_projection.same_shape({8, 8}));
    const UNetConfig& c = m.unet.cfg;
    CHECK(c.channel_mult == std::vector<int>{1, 1, 2});
    CHECK(c.attention == std::vector<bool>{false, true, true});
    CHECK(c.transformer_depth == std::vector<int>{0, 2, 1});
    CHECK(c.middle_depth == 1);
    CHECK(c.adm_in_channels == 8 + kSdxlSizeDims);
    CHECK(c.context_dim == 16);
    CHECK(c.head_dim == 16);
    CHECK(m.vae.scale == kSdxlVaeScale);
    CHECK(m.prediction == Prediction::eps);
    // SDXL's native 1024x1024 decodes in tiles by default (the full pass needs 1.5 GB of activations); SD 1.x not.
    CHECK(vae_tile_decode(-1, 1024, 1024, vae_auto_tile_pixels(m)));
    CHECK(!vae_tile_decode(-1, 768, 768, vae_auto_tile_pixels(m)));
    CHECK(!vae_tile_decode(-1, 1024, 1024));
}

TEST_CASE("sdxl: CLIP-L hidden_states[-2] and the bigG tower (penultimate, pooled) match the golden") {
    Model& m = tiny_xl();
    // f32 sums of at most 32 terms of O(1) values (as the SD 2.x tower's golden): measured ~1e-6; 1e-4 still fails
    // the final norm applied (~0.5) or the pooled output read at the last position instead of the end token.
    const double tol = 1e-4;
    Arena arena;
    for (const char* sfx : {"a", "b"}) {
        std::vector<int> ids = ids_of(std::string("text/ids_") + sfx);
        arena.reset();
        Tensor hl = clip_encode(m.clip, ids.data(), 2, arena, nullptr, /*final_norm=*/false);
        test::Diff d = test::compare(hl.f32(), golden().get(std::string("clip_l/hidden_") + sfx, {77, 8}).f32(), 77 * 8,
                                     test::abs_tol(tol));
        INFO(d.summary(std::string("clip_l ") + sfx));
        CHECK(d.ok);

        std::vector<int> g = ids;
        open_clip_pad_ids(g.data(), 77);
        float pooled[8];
        Tensor hg = open_clip_encode_xl(m.open_clip, g.data(), arena, pooled);
        d = test::compare(hg.f32(), golden().get(std::string("bigg/hidden_") + sfx, {77, 8}).f32(), 77 * 8,
                          test::abs_tol(tol));
        INFO(d.summary(std::string("bigg hidden ") + sfx));
        CHECK(d.ok);
        d = test::compare(pooled, golden().get(std::string("bigg/pooled_") + sfx, {8}).f32(), 8, test::abs_tol(tol));
        INFO(d.summary(std::string("bigg pooled ") + sfx));
        CHECK(d.ok);
    }
}

TEST_CASE("sdxl: size conditioning: 6 sinusoids of 256, (h, w), (top, left), (h, w)") {
    std::vector<float> got(kSdxlSizeDims);
    sdxl_size_embedding(got.data(), 1024, 768, 16, 32);
    // float32 sin/cos of arguments up to 1024 against torch's float32: a few ulp of the argument (~1e-4 at 1024).
    test::Diff d = test::compare(got.data(), golden().get("vector/size", {kSdxlSizeDims}).f32(), kSdxlSizeDims,
                                 test::abs_tol(5e-4));
    INFO(d.summary("vector/size"));
    CHECK(d.ok);
    // Swapping height and width moves whole 256-blocks by O(1).
    std::vector<float> swapped(kSdxlSizeDims);
    sdxl_size_embedding(swapped.data(), 768, 1024, 16, 32);
    CHECK(!test::compare(swapped.data(), got.data(), kSdxlSizeDims, test::abs_tol(0.1)).ok);
}

TEST_CASE("sdxl: UNet with label_emb and per-level transformer depth matches the golden") {
    Model& m = tiny_xl();
    Arena arena;
    Tensor x = golden().get("unet/x", {2, 4, 8, 8}), t = golden().get("unet/t", {2});
    Tensor ctx = golden().get("unet/context", {2, 77, 16}), y = golden().get("unet/y", {2, 8 + kSdxlSizeDims});
    Tensor want = golden().get("unet/out", {2, 4, 8, 8});
    Tensor got = unet_forward(m.unet, x, t.f32(), ctx, arena, &y);
    // As the SD 1.x/2.x UNet goldens: 1e-5 of the output's scale (measured ~1e-6).
    test::Diff d = test::compare(got.f32(), want.f32(), want.numel(), test::scale_tol(1e-5));
    INFO(d.summary("unet/out"));
    CHECK(d.ok);
    // Without its vector the SDXL UNet refuses to run.
    CHECK_THROWS_WITH_AS(unet_forward(m.unet, x, t.f32(), ctx, arena), doctest::Contains("needs the f32 vector y"),
                         std::runtime_error);
}

TEST_CASE("sdxl: whole sampling runs from the prompt match the golden (CFG 5 with the zeroed empty negative; Turbo)") {
    // The reference starts from token ids; they must be what our tokenizer makes of the prompt.
    const char* prompt = "a photo of an astronaut riding a horse";
    std::vector<int> ids = ClipTokenizer::get().encode(prompt);
    std::vector<int> want_ids = ids_of("text/ids_a");
    for (size_t i = 0; i < ids.size(); i++) CHECK(want_ids[i + 1] == ids[i]);

    Model& m = tiny_xl();
    struct Run { const char* name; double cfg; uint64_t seed; int steps; ScheduleKind schedule; };
    for (const Run& r : {Run{"euler", 5.0, 1, 3, ScheduleKind::discrete}, Run{"turbo", 1.0, 2, 1, ScheduleKind::sgm_uniform}}) {
        GenerateParams p;
        p.prompt = prompt;
        p.negative_prompt = "";
        p.sampler = SamplerKind::euler;
        p.schedule = r.schedule;
        p.steps = r.steps;
        p.cfg_scale = r.cfg;
        p.seed = r.seed;
        p.rng = RngKind::cpu;
        p.width = 128;
        p.height = 64;
        Arena arena;
        Tensor x = sample_latent(m, p, arena);  // (1, 4, 8, 16)
        Tensor want = golden().get(std::string(r.name) + "/x", {1, 4, 8, 16});
        // Three steps of f32 UNet passes against float64 (as the SD 2.x runs): ~1e-6 of the latent's scale; 1e-4
        // fails an unzeroed empty negative prompt, the sizes as (w, h), or the pooled output left out of y.
        test::Diff d = test::compare(x.f32(), want.f32(), want.numel(), test::scale_tol(1e-4));
        INFO(d.summary(std::string("sdxl ") + r.name));
        CHECK(d.ok);
    }
}

TEST_CASE("sdxl: emphasis rescales each encoder's part to its own unweighted mean; pooled is the first chunk's") {
    Model& m = tiny_xl();
    const TextEncoder enc = text_encoder(m, 1);
    CHECK(enc.groups == std::vector<int64_t>{8, 8});
    Arena arena;
    std::vector<Tensor> pooled_w, pooled_p;
    Tensor weighted = encode_texts(enc, {"a (red:1.5) cube"}, nullptr, arena, nullptr, &pooled_w)[0];
    Tensor plain = encode_texts(enc, {"a red cube"}, nullptr, arena, nullptr, &pooled_p)[0];
    REQUIRE(weighted.same_shape({1, 77, 16}));
    for (int g = 0; g < 2; g++) {  // EmphasisOriginal: each part's mean equals the unweighted part's mean
        double mw = 0, mp = 0;
        for (int t = 0; t < 77; t++)
            for (int c = 8 * g; c < 8 * g + 8; c++) mw += weighted.f32()[t * 16 + c], mp += plain.f32()[t * 16 + c];
        CHECK(mw / (77 * 8) == doctest::Approx(mp / (77 * 8)).epsilon(1e-5));
    }
    // The pooled output is taken before emphasis: the same token ids give the same pooled vector.
    REQUIRE(pooled_w.size() == 1);
    for (int i = 0; i < 8; i++) CHECK(pooled_w[0].f32()[i] == pooled_p[0].f32()[i]);
}

// img2img --taesd on SDXL encodes with the TAESDXL encoder, as the webui's sd_vae_taesd.encoder_model() picks
// taesdxl_encoder.pth for SDXL models (the SD1 encoder gives other latents). The encoder itself is golden-tested in test_taesd.
TEST_CASE("sdxl: img2img with --taesd encodes with TAESDXL") {
    Image img;
    img.width = 64; img.height = 48; img.channels = 3;
    for (int i = 0; i < 64 * 48 * 3; i++) img.pixels.push_back((uint8_t)(i * 37 % 251));
    Tensor x = Tensor::zeros({1, 3, 48, 64});
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 64 * 48; i++) x.f32()[c * 64 * 48 + i] = img.pixels[i * 3 + c] / 255.0f;
    Arena arena;
    std::vector<float> z = encode_image(tiny_xl(), img, /*taesd=*/true, arena);
    Tensor xl = taesd_encode(load_taesd_encoder("", /*xl=*/true), x, arena);
    REQUIRE(z.size() == (size_t)xl.numel());
    CHECK(std::memcmp(z.data(), xl.f32(), z.size() * sizeof(float)) == 0);
    Tensor sd1 = taesd_encode(load_taesd_encoder(), x, arena);
    CHECK(std::memcmp(z.data(), sd1.f32(), z.size() * sizeof(float)) != 0);
}

// An SDXL embedding file (clip_l and clip_g tensors) against tools/ti_sdxl_reference.py: each encoder splices its own
// part at the name's positions (the webui's EmbeddingsWithFixes, textual_inversion_key clip_l / clip_g), emphasis per
// encoder, and the pooled output sees the spliced bigG input.
TEST_CASE("sdxl: a textual-inversion embedding with clip_l and clip_g is spliced into each encoder as the webui does") {
    namespace fs = std::filesystem;
    SafeTensors gold("tests/data/golden_ti_sdxl.safetensors");
    const fs::path dir = fs::temp_directory_path() / ("sd_embxl_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    write_safetensors((dir / "shiny-thing.safetensors").string(),
                      {{"clip_g", gold.get("emb/clip_g")}, {"clip_l", gold.get("emb/clip_l")}});
    write_safetensors((dir / "sd1-thing.safetensors").string(), {{"emb_params", Tensor::zeros({1, 8})}});
    write_safetensors((dir / "swapped.safetensors").string(),  // widths 4 + 12: the same sum, split otherwise
                      {{"clip_g", Tensor::zeros({1, 12})}, {"clip_l", Tensor::zeros({1, 4})}});
    const TextEncoder enc = text_encoder(tiny_xl(), 1);
    EmbeddingDb db;
    db.load_dir(dir.string(), enc.width);  // the webui's expected_shape: CLIP-L's width + bigG's
    Arena arena;
    CondSchedule c = learned_conditioning(enc, "a (shiny-thing:1.2) cube", 20, &db, arena);
    REQUIRE(c.conds.size() == 1);
    REQUIRE(c.pooled.size() == 1);
    // Scale-relative bounds as the SDXL text goldens above (float64 reference, f16 weights, f32 here).
    test::Diff d = test::compare(c.conds[0], gold.get("cond"), test::scale_tol(2e-5));
    CHECK_MESSAGE(d.ok, d.summary("sdxl TI conditioning"));
    d = test::compare(c.pooled[0], gold.get("pooled"), test::scale_tol(2e-5));
    CHECK_MESSAGE(d.ok, d.summary("sdxl TI pooled"));
    // the vectors matter: the name as plain text is far from it
    CondSchedule plain = learned_conditioning(enc, "a (shiny-thing:1.2) cube", 20, nullptr, arena);
    CHECK(!test::compare(plain.conds[0], gold.get("cond"), test::scale_tol(2e-5)).ok);
    // a one-tensor (SD 1.x-style) embedding of another width is skipped, as the webui skips it: its name stays text
    CHECK(tokenize_prompt("sd1-thing", &db)[0].fixes.empty());
    // a pair of the right total width but other parts: one sentence naming both splits
    CHECK_THROWS_WITH_AS(learned_conditioning(enc, "swapped", 20, &db, arena),
                         doctest::Contains("holds clip_l vectors 4 wide and clip_g 12 wide, but this model's text "
                                           "encoders take clip_l vectors 8 wide and clip_g 8 wide"),
                         std::runtime_error);
    // clip_l and clip_g with different vector counts: refused when read
    write_safetensors((dir / "uneven.safetensors").string(),
                      {{"clip_g", Tensor::zeros({2, 8})}, {"clip_l", Tensor::zeros({3, 8})}});
    CHECK_THROWS_WITH_AS(load_text_embedding((dir / "uneven.safetensors").string()),
                         doctest::Contains("needs as many clip_l as clip_g vectors, it has 3 and 2"), std::runtime_error);
    fs::remove_all(dir);
}
