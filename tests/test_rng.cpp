// RNGs: torch's CPU randn and the webui's Philox port, bit for bit against tests/data/golden_rng.safetensors
// (tools/rng_reference.py: real torch 1.13 for cpu / cpu-generic, an independent numpy Philox for philox),
// plus MT19937 against std::mt19937 and Philox4x32-10 against the Random123 known-answer vectors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "pipeline/rng.h"
#include "safetensors.h"

using namespace sd;

namespace {

const char* kGolden = "tests/data/golden_rng.safetensors";

std::vector<float> golden(const SafeTensors& st, const std::string& name) {
    Tensor t = st.get(name);
    return std::vector<float>(t.f32(), t.f32() + t.numel());
}

int64_t ulp_distance(float a, float b) {
    int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;  // map to a monotonic integer line
    if (ib < 0) ib = INT32_MIN - ib;
    return std::llabs((long long)ia - (long long)ib);
}

// Checks got against want within max_ulps (0 = bit for bit); prints the first mismatch and max-abs error.
void check_values(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                  int64_t max_ulps = 0) {
    REQUIRE_MESSAGE(got.size() == want.size(), what << ": " << got.size() << " values, want " << want.size());
    int64_t bad = 0, first = -1, worst_ulps = 0;
    double max_abs = 0;
    for (size_t i = 0; i < got.size(); i++) {
        int64_t u = ulp_distance(got[i], want[i]);
        worst_ulps = std::max(worst_ulps, u);
        max_abs = std::max(max_abs, (double)std::fabs(got[i] - want[i]));
        if (u > max_ulps) {
            if (first < 0) first = (int64_t)i;
            bad++;
        }
    }
    if (bad) {
        MESSAGE(what << ": " << bad << " of " << got.size() << " values off by more than " << max_ulps
                     << " ulp; max-abs " << max_abs << ", worst " << worst_ulps << " ulp, first at " << first
                     << ": got " << got[(size_t)first] << " want " << want[(size_t)first]);
    }
    CHECK(bad == 0);
}

std::string seed_tag(uint64_t seed) { return "s" + std::to_string(seed); }

// Every golden of one generator and seed (see tools/rng_reference.py for the names).
void check_generator(const SafeTensors& st, RngKind kind, uint64_t seed, int64_t max_ulps) {
    const std::string prefix = std::string(rng_name(kind)) + "/" + seed_tag(seed) + "/";
    struct Shape { const char* name; int64_t n; };
    for (Shape s : {Shape{"randn_7", 7}, {"randn_16", 16}, {"randn_17", 17}, {"randn_33", 33},
                    {"randn_4x8x12", 4 * 8 * 12}, {"randn_1x4x8x8", 4 * 8 * 8}}) {
        auto rng = make_rng(kind, seed);
        check_values(prefix + s.name, rng->randn(s.n), golden(st, prefix + s.name), max_ulps);
    }

    // Successive small calls share the generator's cached Box-Muller value.
    auto rng = make_rng(kind, seed);
    std::vector<float> seq;
    for (int64_t n : {7, 3, 16, 5, 17, 1}) {
        auto v = rng->randn(n);
        seq.insert(seq.end(), v.begin(), v.end());
    }
    check_values(prefix + "seq_small", seq, golden(st, prefix + "seq_small"), max_ulps);

    // A 512x512 latent and two ancestral draws after it, compared at the sampled positions.
    std::vector<float> index = golden(st, "big_index");
    rng = make_rng(kind, seed);
    for (const char* name : {"randn_4x64x64", "seq_big_1", "seq_big_2"}) {
        std::vector<float> big = rng->randn(4 * 64 * 64), picked;
        for (float i : index) picked.push_back(big[(size_t)i]);
        check_values(prefix + name, picked, golden(st, prefix + name), max_ulps);
        if (std::string(name) == "randn_4x64x64") {
            double sumsq = 0;
            for (float v : big) sumsq += (double)v * v;
            double want = golden(st, "big_sumsq/" + std::string(rng_name(kind)) + "/" + seed_tag(seed))[0];
            CHECK_MESSAGE(std::fabs(sumsq - want) <= 1e-6 * want, prefix << "sum of squares " << sumsq << " want " << want);
        }
    }
}

}  // namespace

TEST_CASE("rng: Mt19937 is std::mt19937 seeded with the low 32 bits of the seed") {
    for (uint64_t seed : {uint64_t(0), uint64_t(5489), uint64_t(42), (uint64_t(1) << 32) + 5}) {
        Mt19937 ours(seed);
        std::mt19937 ref((uint32_t)seed);
        int mismatches = 0;
        for (int i = 0; i < 2000; i++) mismatches += ours() != ref();  // crosses three state refills
        CHECK_MESSAGE(mismatches == 0, "seed " << seed);
    }
}

TEST_CASE("rng: Philox4x32-10 known-answer vectors (Random123 kat_vectors)") {
    struct Kat { uint32_t ctr[4], key[2], out[4]; };
    const Kat kats[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (const Kat& k : kats) {
        uint32_t c[4] = {k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]};
        philox4x32_10(c, k.key[0], k.key[1]);
        for (int i = 0; i < 4; i++) CHECK(c[i] == k.out[i]);
    }
}

TEST_CASE("rng: torch CPU randn (x86 AVX2 kernel) bit for bit, seeds 0 42 12345 2^32+5") {
    SafeTensors st(kGolden);
    for (uint64_t seed : {uint64_t(0), uint64_t(42), uint64_t(12345), (uint64_t(1) << 32) + 5}) {
        check_generator(st, RngKind::cpu, seed, 0);
    }
}

TEST_CASE("rng: torch CPU randn, portable kernel (ATEN_CPU_CAPABILITY=default)") {
    // It calls libm's logf/cosf/sinf: bit for bit where the golden's libm (glibc) is ours, a few ulp elsewhere.
#ifdef __GLIBC__
    const int64_t max_ulps = 0;
#else
    const int64_t max_ulps = 8;
#endif
    SafeTensors st(kGolden);
    for (uint64_t seed : {uint64_t(0), uint64_t(42)}) check_generator(st, RngKind::cpu_generic, seed, max_ulps);
}

TEST_CASE("rng: the two torch CPU kernels differ only in the last bits") {
    auto a = make_rng(RngKind::cpu, 7)->randn(4096);
    auto b = make_rng(RngKind::cpu_generic, 7)->randn(4096);
    double max_abs = 0;
    for (size_t i = 0; i < a.size(); i++) max_abs = std::max(max_abs, (double)std::fabs(a[i] - b[i]));
    CHECK(max_abs > 0);      // they are different algorithms (cephes vs libm) ...
    CHECK(max_abs < 1e-5);   // ... for the same numbers
}

TEST_CASE("rng: Philox (webui NV) against an independent numpy Philox, seeds 0 42 12345 2^32+5") {
    // The golden computes Box-Muller with numpy's float64 log/sin, we with libm's; a float32 result can
    // only differ where the float64 values straddle a float32 rounding boundary (odds ~1e-8 per value).
    SafeTensors st(kGolden);
    for (uint64_t seed : {uint64_t(0), uint64_t(42), uint64_t(12345), (uint64_t(1) << 32) + 5}) {
        check_generator(st, RngKind::philox, seed, 0);
    }
}

TEST_CASE("rng: Philox seed 0 gives the values the webui's rng_philox.py documents (torch CUDA randn)") {
    // modules/rng_philox.py docstring: Generator(seed=0).randn(shape=(3, 4)), printed from CUDA torch.randn;
    // the port computes Box-Muller in float64 where CUDA uses float32, hence the 3e-7 allowance.
    const float documented[12] = {-0.92466259f, -0.42534415f, -2.6438457f, 0.14518388f,
                                  -0.12086647f, -0.57972564f, -0.62285122f, -0.32838709f,
                                  -1.07454231f, -0.36314407f, -1.67105067f, 2.26550497f};
    auto v = make_rng(RngKind::philox, 0)->randn(12);
    for (int i = 0; i < 12; i++) CHECK(std::fabs(v[i] - documented[i]) < 3e-7);
}

TEST_CASE("rng: ImageRng gives image i its own generator and re-seeds with the eta noise seed delta") {
    for (RngKind kind : {RngKind::cpu, RngKind::philox}) {
        const int64_t per = 4 * 8 * 8;
        ImageRng batch(kind, {100, 101, 102});
        auto g0 = make_rng(kind, 100), g1 = make_rng(kind, 101), g2 = make_rng(kind, 102);
        for (int call = 0; call < 3; call++) {  // initial noise, then two ancestral draws
            std::vector<float> got = batch.randn(3 * per), want;
            for (auto* g : {g0.get(), g1.get(), g2.get()}) {
                auto v = g->randn(per);
                want.insert(want.end(), v.begin(), v.end());
            }
            check_values(std::string(rng_name(kind)) + " batch call " + std::to_string(call), got, want);
        }

        ImageRng ensd(kind, {100, 101}, 31337);
        auto first = ensd.randn(2 * per);
        auto second = ensd.randn(2 * per);
        std::vector<float> want_first = make_rng(kind, 100)->randn(per), want_second = make_rng(kind, 100 + 31337)->randn(per);
        check_values("ensd first", std::vector<float>(first.begin(), first.begin() + per), want_first);
        check_values("ensd second", std::vector<float>(second.begin(), second.begin() + per), want_second);
        CHECK_THROWS_AS(batch.randn(3 * per + 1), std::logic_error);
    }
}

TEST_CASE("rng: names") {
    CHECK(parse_rng("cpu") == RngKind::cpu);
    CHECK(parse_rng("CPU") == RngKind::cpu);
    CHECK(parse_rng("cpu-generic") == RngKind::cpu_generic);
    CHECK(parse_rng("Philox") == RngKind::philox);
    CHECK(parse_rng("NV") == RngKind::philox);
    for (RngKind k : {RngKind::cpu, RngKind::cpu_generic, RngKind::philox}) CHECK(parse_rng(rng_name(k)) == k);
    try {
        parse_rng("gpu");
        CHECK(false);
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("philox") != std::string::npos);  // the error lists the valid names
    }
}
