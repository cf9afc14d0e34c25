// Text-to-image pipeline on the tiny SD 1.x checkpoint (tests/data/tiny_sd.safetensors, real key layout):
// classifier-free guidance against separate UNet passes, conditioning padding, determinism and seeds,
// every sampler end to end, and the NaN guard. The component numerics are proved by the golden tests.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "pipeline/txt2img.h"

using namespace sd;

namespace {
Model& tiny() {
    static Model m = load_model("tests/data/tiny_sd.safetensors");
    return m;
}
GenerateParams small(const char* prompt) {
    GenerateParams p;
    p.prompt = prompt;
    p.width = p.height = 64;
    p.steps = 3;
    p.seed = 7;
    return p;
}
}  // namespace

TEST_CASE("CFG denoiser = x - sigma * (eps_u + s (eps_c - eps_u)) with the UNet run per prompt") {
    Model& m = tiny();
    Arena arena;
    const int64_t h = 8, w = 8, n = 4 * h * w;
    Tensor context = make_conditioning(m, "a red cube", "blurry", true, 1, arena);  // (2, 77, C)
    REQUIRE(context.shape[0] == 2);
    const DiscreteSchedule table = sd_schedule();
    const double cfg = 7.5;
    const float sigma = 3.7f;
    std::vector<float> x(n), out;
    for (int64_t i = 0; i < n; i++) x[i] = std::sin(0.37f * i) * 2.0f;
    make_cfg_denoiser(m, context, cfg, table, h, w, arena)(x, sigma, out);

    // The same by hand: two batch-1 UNet passes, one per context.
    const float c_in = 1.0f / std::sqrt(sigma * sigma + 1.0f), t = (float)table.sigma_to_t(sigma);
    Tensor xin = Tensor::zeros({1, 4, h, w});
    for (int64_t i = 0; i < n; i++) xin.f32()[i] = x[i] * c_in;
    const int64_t TC = context.shape[1] * context.shape[2];
    Tensor ctx_u = Tensor::view_of(context.f32(), {1, context.shape[1], context.shape[2]});
    Tensor ctx_c = Tensor::view_of(context.f32() + TC, {1, context.shape[1], context.shape[2]});
    std::vector<float> eu(n), ec(n);
    Tensor e = unet_forward(m.unet, xin, &t, ctx_u, arena);
    std::memcpy(eu.data(), e.f32(), n * 4);
    arena.reset();
    e = unet_forward(m.unet, xin, &t, ctx_c, arena);
    std::memcpy(ec.data(), e.f32(), n * 4);
    double max_err = 0, max_val = 0, diff_uc = 0;
    for (int64_t i = 0; i < n; i++) {
        double want = x[i] - sigma * (eu[i] + cfg * (ec[i] - eu[i]));
        max_err = std::max(max_err, std::fabs(want - out[i]));
        max_val = std::max(max_val, std::fabs(want));
        diff_uc = std::max(diff_uc, (double)std::fabs(ec[i] - eu[i]));
    }
    INFO("max error " << max_err << " of " << max_val);
    CHECK(diff_uc > 1e-3);                // the prompts really differ, so the test can fail
    CHECK(max_err <= 1e-4 * max_val);     // batch-of-2 rows are computed like batch-of-1 rows (f32 rounding only)

    // cfg 1: the uncond is skipped altogether and D uses the cond pass alone.
    Tensor cond_only = make_conditioning(m, "a red cube", "blurry", false, 1, arena);
    REQUIRE(cond_only.shape[0] == 1);
    make_cfg_denoiser(m, cond_only, 1.0, table, h, w, arena)(x, sigma, out);
    max_err = 0;
    for (int64_t i = 0; i < n; i++) max_err = std::max(max_err, (double)std::fabs(x[i] - sigma * ec[i] - out[i]));
    CHECK(max_err <= 1e-4 * max_val);
}

TEST_CASE("a long prompt and a short negative prompt are padded to the same number of chunks") {
    Model& m = tiny();
    Arena arena;
    std::string long_prompt;
    for (int i = 0; i < 100; i++) long_prompt += "cat ";
    Tensor c = make_conditioning(m, long_prompt, "", true, 1, arena);
    CHECK(c.shape[0] == 2);
    CHECK(c.shape[1] == 154);
    Tensor empty = encode_prompt(m, "", 1, arena);
    // uncond = [empty chunk, empty chunk]: the padding chunk is the encoded empty prompt
    const int64_t C = c.shape[2];
    CHECK(std::memcmp(c.f32() + 77 * C, empty.f32(), 77 * C * 4) == 0);
    CHECK(std::memcmp(c.f32(), empty.f32(), 77 * C * 4) == 0);
}

TEST_CASE("same seed, same image; another seed or negative prompt, another image") {
    Model& m = tiny();
    Arena arena;
    GenerateParams p = small("a lighthouse at dusk");
    Image a = generate(m, p, arena), b = generate(m, p, arena);
    CHECK(a.width == 64);
    CHECK(a.height == 64);
    CHECK(a.pixels == b.pixels);
    GenerateParams q = p;
    q.seed = 8;
    CHECK(generate(m, q, arena).pixels != a.pixels);
    q = p;
    q.negative_prompt = "fog";
    CHECK(generate(m, q, arena).pixels != a.pixels);
    q = p;
    q.rng = RngKind::cpu;
    CHECK(generate(m, q, arena).pixels != a.pixels);
}

TEST_CASE("every sampler and schedule runs end to end on the tiny model") {
    Model& m = tiny();
    Arena arena;
    for (SamplerKind s : {SamplerKind::euler, SamplerKind::euler_a, SamplerKind::heun, SamplerKind::dpm2,
                          SamplerKind::dpm2_a, SamplerKind::dpmpp_2m, SamplerKind::dpmpp_2s_a, SamplerKind::lms,
                          SamplerKind::ddim, SamplerKind::lcm}) {
        for (ScheduleKind k : {ScheduleKind::discrete, ScheduleKind::karras}) {
            GenerateParams p = small("a cat");
            p.sampler = s;
            p.schedule = k;
            int last = -1;
            Tensor lat = sample_latent(m, p, arena, nullptr, [&](int step, int) { last = step; });
            CAPTURE(sampler_name(s));
            CHECK(last == p.steps);
            bool finite = true;
            for (int64_t i = 0; i < lat.numel(); i++) finite &= std::isfinite(lat.f32()[i]);
            CHECK(finite);
        }
    }
}

TEST_CASE("NaN in a latent stops the decode with a message instead of a black image") {
    Model& m = tiny();
    Arena arena;
    Tensor z = Tensor::zeros({1, 4, 8, 8});
    z.f32()[5] = NAN;
    CHECK_THROWS_WITH_AS(decode_latent(m, z, false, arena), doctest::Contains("NaN"), std::runtime_error);
    CHECK_THROWS_WITH_AS(decode_latent(m, z, true, arena), doctest::Contains("NaN"), std::runtime_error);
}

TEST_CASE("cancellation stops sampling with Cancelled") {
    Model& m = tiny();
    Arena arena;
    std::atomic<bool> cancel{true};
    CHECK_THROWS_AS(sample_latent(m, small("x"), arena, nullptr, {}, &cancel), Cancelled);
}
