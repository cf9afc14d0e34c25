// Prompt conditioning on the tiny SD 1.x checkpoint against tests/data/golden_conditioning.safetensors
// (tools/conditioning_reference.py: the float64 PyTorch CLIP with the webui's EmphasisOriginal over each
// schedule batch): emphasis and BREAK, a scheduled prompt (joint rescaling of its texts), AND parts; and the
// multi-cond CFG denoiser against separate UNet passes combined as the webui's combine_denoised does.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "pipeline/txt2img.h"
#include "safetensors.h"
#include "tests/compare.h"

using namespace sd;

namespace {
Model& tiny() {
    static Model m = load_model("tests/data/tiny_sd.safetensors");
    return m;
}

void check_close(const Tensor& got, const Tensor& want, const std::string& what) {
    REQUIRE(got.numel() == want.numel());
    test::Diff d = test::compare(got, want, test::scale_tol(2e-5));
    INFO(d.summary(what));
    CHECK(d.ok);
}
}  // namespace

TEST_CASE("conditioning: emphasis, a schedule and AND parts match the PyTorch reference") {
    SafeTensors gold("tests/data/golden_conditioning.safetensors");
    Model& m = tiny();
    Arena arena;
    const TextEncoder enc = text_encoder(m, 1);

    CondSchedule e = learned_conditioning(enc, "a (red:1.5) [cube], ((shiny)) BREAK on a table", 20, nullptr, arena);
    REQUIRE(e.conds.size() == 1);
    check_close(e.conds[0], gold.get("emphasis/0"), "emphasis");
    // The weights matter: the same text without emphasis is further away than the tolerance.
    Tensor plain = encode_prompt(m, "a red cube, shiny BREAK on a table", 1, arena);
    CHECK(!test::compare(plain, gold.get("emphasis/0"), test::scale_tol(2e-5)).ok);

    CondSchedule s = learned_conditioning(enc, "a [red:blue:0.5] cube, ([shiny|dull]:1.2)", 4, nullptr, arena);
    Tensor steps = gold.get("schedule/steps");
    REQUIRE(s.conds.size() == (size_t)steps.numel());
    for (size_t k = 0; k < s.conds.size(); k++) {
        CHECK(s.end_at_step[k] == (int)steps.f32()[k]);
        check_close(s.conds[k], gold.get("schedule/" + std::to_string(k)), "schedule entry " + std::to_string(k));
    }
    CHECK(&s.at(0) == &s.conds[0]);
    CHECK(&s.at(2) == &s.conds[1]);
    CHECK(&s.at(99) == &s.conds[0]);  // past the end: the webui falls back to the first entry

    MultiCond a = multicond_learned_conditioning(enc, "a red cube AND (a blue ball:1.3) :0.7", 20, nullptr, arena);
    REQUIRE(a.parts.size() == 2);
    Tensor w = gold.get("and/w");
    for (size_t k = 0; k < 2; k++) {
        CHECK(a.weights[k] == doctest::Approx(w.f32()[k]));
        check_close(a.parts[k].conds[0], gold.get("and_" + std::to_string(k) + "/0"), "AND part " + std::to_string(k));
    }
}

TEST_CASE("conditioning: the AND denoiser is D_u + sum_k w_k cfg (D_k - D_u), prompts of different lengths unpadded") {
    Model& m = tiny();
    Arena arena;
    const TextEncoder enc = text_encoder(m, 1);
    std::string long_part;
    for (int i = 0; i < 90; i++) long_part += "cat ";
    MultiCond c = multicond_learned_conditioning(enc, "a red cube AND " + long_part + ":0.5", 10, nullptr, arena);
    CondSchedule u = learned_conditioning(enc, "blurry", 10, nullptr, arena);
    REQUIRE(c.parts[1].conds[0].dim(1) == 154);  // two chunks; the other part and the uncond have one
    const int64_t h = 8, w = 8, n = 4 * h * w;
    const DiscreteSchedule table = sd_schedule();
    const double cfg = 6.0;
    const float sigma = 2.5f;
    std::vector<float> x(n), out;
    for (int64_t i = 0; i < n; i++) x[i] = std::cos(0.21f * i);
    make_multicond_denoiser(m, c, &u, cfg, table, h, w, arena)(x, sigma, out);

    const float c_in = 1.0f / std::sqrt(sigma * sigma + 1.0f), t = (float)table.sigma_to_t(sigma);
    Tensor xin = Tensor::zeros({1, 4, h, w});
    for (int64_t i = 0; i < n; i++) xin.f32()[i] = x[i] * c_in;
    auto eps_of = [&](const Tensor& ctx) {
        Tensor e = unet_forward(m.unet, xin, &t, ctx, arena);
        std::vector<float> v(e.f32(), e.f32() + n);
        arena.reset();
        return v;
    };
    // stack_conds: the one-chunk part is padded by repeating its last vector to the longer part's length.
    Tensor p0 = c.parts[0].conds[0], padded = Tensor::zeros({1, 154, p0.dim(2)});
    const int64_t C = p0.dim(2);
    std::memcpy(padded.f32(), p0.f32(), 77 * C * 4);
    for (int64_t k = 77; k < 154; k++) std::memcpy(padded.f32() + k * C, p0.f32() + 76 * C, C * 4);
    std::vector<float> e0 = eps_of(padded), e1 = eps_of(c.parts[1].conds[0]), eu = eps_of(u.conds[0]);
    double max_err = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double du = x[i] - sigma * (double)eu[i], d0 = x[i] - sigma * (double)e0[i], d1 = x[i] - sigma * (double)e1[i];
        double want = du + (d0 - du) * (1.0 * cfg) + (d1 - du) * (0.5 * cfg);
        max_err = std::max(max_err, std::fabs(want - out[i]));
        scale = std::max(scale, std::fabs(want));
    }
    INFO("max error " << max_err << " of " << scale);
    CHECK(max_err <= 1e-4 * scale);
}
