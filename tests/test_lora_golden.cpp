// LoRA against tools/lora_reference.py (tests/data/golden_lora.safetensors): the merged weights of a kohya
// LoRA/LoCon (linear, 1×1 and 3×3 conv), LoHa (plain and CP), LoKr (whole and factored, linear and conv) and PEFT file
// on the tiny SD 1.x checkpoint, kohya and PEFT files on SDXL tensor names (te1, te2's fused q/k/v, sgm UNet), a
// txt2img latent with all four SD 1.x files stacked from prompt tags, and strength 0 = no LoRA, bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "compare.h"
#include "models/lora.h"
#include "pipeline/loras.h"
#include "pipeline/txt2img.h"

using namespace sd;

namespace {

const char* kTiny = "tests/data/tiny_sd.safetensors";

std::vector<float> f32_of(const Tensor& t) {
    std::vector<float> v((size_t)t.numel());
    convert_to_f32(v.data(), t.data, t.dtype, t.numel());
    return v;
}

// The C++ merges in f32 and rounds to f16, the reference in float64 then f16: an element whose sum falls within f32
// rounding of an f16 halfway point may round the other way, so one f16 ulp (2^-10 relative) is allowed; a wrong
// scale, part or layer moves elements by far more (the updates are ~0.1-1 against weights ~0.1).
void check_merged(const SafeTensors& ckpt, const std::string& family, const std::string& name, const std::string& path,
                  float te, float unet) {
    SafeTensors golden("tests/data/golden_lora.safetensors");
    LoraFile f = read_lora(path);
    std::vector<std::string> warnings;
    std::map<std::string, Tensor> got = merge_loras(ckpt, family, {{name, &f, te, unet}}, &warnings);
    CHECK(warnings.empty());
    const std::string head = "merged/" + name + "/";
    std::set<std::string> want_names;
    for (const TensorInfo& t : golden.tensors())
        if (t.name.compare(0, head.size(), head) == 0) want_names.insert(t.name.substr(head.size()));
    std::set<std::string> got_names;
    for (const auto& [n, t] : got) got_names.insert(n);
    CHECK(got_names == want_names);
    for (const std::string& n : want_names) {
        if (!got.count(n)) continue;
        std::vector<float> g = f32_of(got.at(n)), w = f32_of(golden.get(head + n));
        REQUIRE(g.size() == w.size());
        int64_t off = 0;
        for (size_t i = 0; i < g.size(); i++)
            if (std::fabs(g[i] - w[i]) > std::ldexp(std::fabs(w[i]), -10) + 1e-7f) off++;
        CHECK_MESSAGE(off == 0, name << " " << n << ": " << off << " elements off by more than one f16 ulp");
    }
}

}  // namespace

TEST_CASE("lora golden: each SD 1.x format merges as the PyTorch reference") {
    SafeTensors ckpt(kTiny);
    for (const char* n : {"kohya_locon", "loha", "lokr", "peft"})
        check_merged(ckpt, "SD 1.x", n, std::string("tests/data/lora/") + n + ".safetensors", 1, 1);
}

TEST_CASE("lora golden: kohya SDXL and PEFT SDXL files on SDXL tensor names") {
    SafeTensors ckpt("tests/data/lora_sdxl/sdxl_names.safetensors");
    check_merged(ckpt, "SDXL", "sdxl_kohya", "tests/data/lora_sdxl/sdxl_kohya.safetensors", 0.75f, 1.5f);
    check_merged(ckpt, "SDXL", "sdxl_peft", "tests/data/lora_sdxl/sdxl_peft.safetensors", 0.75f, 1.5f);
}

TEST_CASE("lora golden: four LoRAs stacked from prompt tags give the reference's latent; strength 0 is no LoRA") {
    SafeTensors golden("tests/data/golden_lora.safetensors");
    Model m = load_model(kTiny);
    GenerateParams p;
    p.negative_prompt = "";
    p.sampler = SamplerKind::euler;
    p.schedule = ScheduleKind::discrete;
    p.steps = 3;
    p.cfg_scale = 7;
    p.seed = 1;
    p.rng = RngKind::cpu;
    p.width = p.height = 64;
    p.lora_dir = "tests/data/lora";
    const std::string prompt = "a photo of an astronaut riding a horse";
    Arena arena;
    p.prompt = prompt + " <lora:kohya_locon:0.8> <lora:loha:0.5:1.2> <lora:lokr> <lora:peft:te=-0.5:unet=0.7>";
    Tensor x = sample_latent(m, p, arena);
    Tensor want = golden.get("stacked/x");
    REQUIRE(x.numel() == want.numel());
    // The merged weights may differ from the reference's by one f16 ulp in a few elements (above); the stacked LoRAs
    // move this latent by half its scale. Measured: 4.7e-6 of the scale, NMSE 1.5e-11; UNet weight 0.6 instead of 0.7
    // on one of the four files: NMSE 7e-4.
    test::Diff d = test::compare(x.f32(), want.f32(), x.numel(), test::scale_tol(1e-4, 1e-8));
    MESSAGE(d.summary("stacked LoRAs"));
    CHECK_MESSAGE(d.ok, d.summary("stacked LoRAs"));

    // Strength 0: no tensor changes, so the latent is the plain run's, bit for bit; and merging again from the
    // mapped originals after a LoRA run leaves nothing behind.
    p.prompt = prompt;
    Tensor plain = sample_latent(m, p, arena);
    p.prompt = prompt + " <lora:kohya_locon:0> <lora:loha:0:0>";
    Tensor zero = sample_latent(m, p, arena);
    CHECK(std::memcmp(plain.f32(), zero.f32(), plain.nbytes()) == 0);
    Model fresh = load_model(kTiny);
    p.prompt = prompt;
    Tensor again = sample_latent(fresh, p, arena);
    CHECK(std::memcmp(plain.f32(), again.f32(), plain.nbytes()) == 0);
}

TEST_CASE("lora golden: a kohya SDXL LoRA on the tiny SDXL model: merged weights and the latent") {
    SafeTensors ckpt("tests/data/tiny_sdxl.safetensors");
    check_merged(ckpt, "SDXL", "sdxl_tiny", "tests/data/lora_sdxl/sdxl_tiny.safetensors", 0.7f, 1.3f);
    SafeTensors golden("tests/data/golden_lora.safetensors");
    Model m = load_model("tests/data/tiny_sdxl.safetensors", kTiny);  // the SD 1.x VAE stands in, as in test_sdxl
    GenerateParams p;
    p.prompt = "a photo of an astronaut riding a horse <lora:sdxl_tiny:0.7:1.3>";
    p.negative_prompt = "";
    p.sampler = SamplerKind::euler;
    p.schedule = ScheduleKind::discrete;
    p.steps = 3;
    p.cfg_scale = 5;
    p.seed = 1;
    p.rng = RngKind::cpu;
    p.width = 128;
    p.height = 64;
    p.lora_dir = "tests/data/lora_sdxl";
    Arena arena;
    Tensor x = sample_latent(m, p, arena);  // (1, 4, 8, 16)
    Tensor want = golden.get("sdxl/x", {1, 4, 8, 16});
    // As the SD 1.x stack: f16-ulp differences in merged weights, f32 against float64; the LoRA moves this latent
    // by a third of its scale.
    test::Diff d = test::compare(x.f32(), want.f32(), want.numel(), test::scale_tol(1e-4, 1e-8));
    MESSAGE(d.summary("sdxl LoRA"));
    CHECK_MESSAGE(d.ok, d.summary("sdxl LoRA"));
}
