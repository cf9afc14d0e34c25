// The SDE samplers' Brownian-tree noise against tests/data/golden_brownian.safetensors
// (tools/brownian_reference.py: torchsde's BrownianTree and k-diffusion's noise sampler re-implemented in float32
// torch with numpy's own SeedSequence and the webui's per-draw generators).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "pipeline/brownian.h"
#include "safetensors.h"

using namespace sd;

namespace {

const char* kGolden = "tests/data/golden_brownian.safetensors";

std::vector<float> golden(const SafeTensors& st, const std::string& name) {
    Tensor t = st.get(name);
    return std::vector<float>(t.f32(), t.f32() + t.numel());
}

std::vector<uint32_t> words(const SafeTensors& st, const std::string& name) {
    std::vector<float> v = golden(st, name);
    std::vector<uint32_t> w;
    for (size_t i = 0; i + 1 < v.size(); i += 2) w.push_back(((uint32_t)v[i] << 16) | (uint32_t)v[i + 1]);
    return w;
}

}  // namespace

TEST_CASE("brownian: numpy SeedSequence words, spawn keys and pool size 24") {
    SafeTensors st(kGolden);
    for (int i = 0; i < 6; i++) {
        std::string p = "seedseq/" + std::to_string(i);
        CAPTURE(p);
        CHECK(SeedSequence(words(st, p + "/entropy"), words(st, p + "/spawn"), 24).generate_state(8) ==
              words(st, p + "/state"));
    }
    CHECK(SeedSequence::words(0) == std::vector<uint32_t>{0});
    CHECK(SeedSequence::words((1ull << 32) + 7) == std::vector<uint32_t>{7, 1});
}

TEST_CASE("brownian: Python's round(x, 6)") {
    CHECK(python_round(0.0291675329208374, 6) == 0.029168);
    CHECK(python_round(14.614642143249512, 6) == 14.614642);
    CHECK(python_round(0.5, 6) == 0.5);
    CHECK(python_round(2.0000005, 6) == 2.000001);  // 2.0000005 is stored a little above the tie
}

TEST_CASE("brownian: the noise sampler equals the webui's (torchsde BrownianTree, per-image seed)") {
    SafeTensors st(kGolden);
    const float sigma_min = 0.029167533f, sigma_max = 14.614642f;
    for (const char* rng : {"cpu", "philox"}) {
        for (const char* seed : {"42", "3141592653"}) {
            std::string p = std::string("tree/") + rng + "/" + seed;
            CAPTURE(p);
            std::vector<float> q = golden(st, p + "/queries"), want = golden(st, p + "/noise");
            const size_t n = 256, queries = q.size() / 2;
            REQUIRE(want.size() == queries * n);
            BrownianTreeNoiseSampler ns(sigma_min, sigma_max, {std::stoull(seed)}, parse_rng(rng), (int64_t)n);
            double max_err = 0;
            int exact = 0;
            for (size_t k = 0; k < queries; k++) {
                std::vector<float> got(n);
                ns.noise(q[2 * k], q[2 * k + 1], got.data());
                for (size_t j = 0; j < n; j++) {
                    double e = std::fabs((double)got[j] - want[k * n + j]);
                    max_err = std::max(max_err, e);
                    exact += got[j] == want[k * n + j];
                }
            }
            MESSAGE(p << ": max abs error " << max_err << ", " << exact << " of " << queries * n << " bit-exact");
            // Same float32 operations in the same order on the same normals: bit for bit.
            CHECK(max_err == 0);
        }
    }
}

TEST_CASE("brownian: increments add up, and re-asking gives the same noise in any order") {
    BrownianTree a(0.03, 14.6, 7, RngKind::philox, 16), b(0.03, 14.6, 7, RngKind::philox, 16);
    std::vector<float> w1 = a.increment(0.1, 0.7), w2 = a.increment(0.7, 3.0), whole = a.increment(0.1, 3.0);
    for (size_t j = 0; j < 16; j++) CHECK(std::fabs(w1[j] + w2[j] - whole[j]) < 1e-5);
    std::vector<float> again = b.increment(0.1, 3.0);  // a fresh tree asked in another order
    CHECK(again == whole);
    CHECK(a.increment(2.0, 2.0) == std::vector<float>(16, 0.0f));
}
