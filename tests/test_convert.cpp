// dtype conversion: half.h against hand-computed values, then convert_to_f32 / convert_from_f32 on every
// ISA and 1..3 threads: exhaustive over all 65536 f16 and bf16 patterns against an independent decoder, and
// round-to-nearest-even (ties, subnormals, overflow, Inf/NaN) against an independent rounding in double.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/kernels.h"

using namespace sd;

namespace {

std::vector<Isa> supported_isas() {
    std::vector<Isa> v;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon})
        if (isa_supported(isa)) v.push_back(isa);
    return v;
}

// IEEE binary16 decoded straight from its definition, in double.
double f16_value(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? std::ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024.0 + m, e - 25);
    return sign ? -v : v;
}

// x rounded to the nearest value with `mant` fraction bits, minimum normal exponent emin and largest
// finite exponent emax (ties to even; past the largest finite value → ±inf), in double.
double round_to_format(float xf, int mant, int emin, int emax) {
    double x = std::fabs((double)xf);
    if (std::isnan(x)) return NAN;
    double r = x;
    if (x != 0 && !std::isinf(x)) {
        int e = std::ilogb(x);
        if (e < emin) e = emin;
        double quantum = std::ldexp(1.0, e - mant);
        r = std::nearbyint(x / quantum) * quantum;  // x / quantum is exact; nearbyint rounds ties to even
        double max_finite = std::ldexp(2.0 - std::ldexp(1.0, -mant), emax);
        // the format's rounding overflows once x reaches max_finite + half a quantum (a tie goes to inf)
        if (r > max_finite) r = INFINITY;
    }
    return std::signbit(xf) ? -r : r;
}

// Floats that exercise rounding: random bit patterns (every class), exact halfway points between
// neighbouring f16 / bf16 values and their f32 neighbours, and the special values.
std::vector<float> rounding_inputs() {
    std::mt19937 rng(7);
    std::vector<float> v;
    for (int i = 0; i < 20000; i++) v.push_back(bits_to_f32(rng()));
    for (int i = 0; i < 20000; i++) {
        uint16_t h = (uint16_t)(rng() & 0x7bfe);  // finite f16, not the largest
        float mid = (float)((f16_value(h) + f16_value((uint16_t)(h + 1))) / 2);  // exact in f32
        if (rng() & 1) mid = -mid;
        for (int d = -1; d <= 1; d++) v.push_back(bits_to_f32(f32_to_bits(mid) + d));
        uint32_t b = (rng() & 0x7f7fffffu) | 0x8000u;  // halfway between two bf16 values
        for (int d = -1; d <= 1; d++) v.push_back(bits_to_f32(b + d));
    }
    for (float f : {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 1e10f, INFINITY, -INFINITY, NAN,
                    5.96046448e-8f, 2.98023224e-8f, 2.98023254e-8f, 1e-45f, 3.4028235e38f, -3.4028235e38f})
        v.push_back(f);
    return v;
}

bool same_or_both_nan(float a, float b) {
    return (std::isnan(a) && std::isnan(b)) || f32_to_bits(a) == f32_to_bits(b);
}

}  // namespace

TEST_CASE("half.h against hand-computed values") {
    CHECK(f16_to_f32(0x3c00) == 1.0f);
    CHECK(f16_to_f32(0xc000) == -2.0f);
    CHECK(f16_to_f32(0x7bff) == 65504.0f);
    CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
    CHECK(f16_to_f32(0x03ff) == std::ldexp(1023.0f, -24));
    CHECK(f16_to_f32(0x0400) == std::ldexp(1.0f, -14));
    CHECK(f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(f16_to_f32(0x7c00) == INFINITY);
    CHECK(f16_to_f32(0xfc00) == -INFINITY);
    CHECK(std::isnan(f16_to_f32(0x7e00)));
    CHECK(f32_to_bits(f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(bf16_to_f32(0x3f80) == 1.0f);
    CHECK(bf16_to_f32(0x4049) == 3.140625f);
    CHECK(bf16_to_f32(0xff80) == -INFINITY);

    CHECK(f32_to_f16(1.0f) == 0x3c00);
    CHECK(f32_to_f16(-2.0f) == 0xc000);
    CHECK(f32_to_f16(0.333333343f) == 0x3555);
    CHECK(f32_to_f16(65504.0f) == 0x7bff);
    CHECK(f32_to_f16(65519.99f) == 0x7bff);
    CHECK(f32_to_f16(65520.0f) == 0x7c00);                  // halfway to 65536: ties to even = inf
    CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);     // half of the smallest subnormal: tie to 0
    CHECK(f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);     // 1.5 × smallest subnormal: tie to even 2
    CHECK(f32_to_f16(std::ldexp(1.0f, -25) * 1.0000001f) == 0x0001);
    CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);           // tie between 1 and 1+2^-10: even
    CHECK(f32_to_f16(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);           // tie, rounds up to even
    CHECK(f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((f32_to_f16(NAN) & 0x7c00) == 0x7c00);
    CHECK((f32_to_f16(NAN) & 0x03ff) != 0);
    CHECK(f32_to_bf16(bits_to_f32(0x3f808000u)) == 0x3f80);  // tie: even
    CHECK(f32_to_bf16(bits_to_f32(0x3f818000u)) == 0x3f82);  // tie: up to even
    CHECK(f32_to_bf16(bits_to_f32(0x3f808001u)) == 0x3f81);
    CHECK(f32_to_bf16(bits_to_f32(0x7f7fffffu)) == 0x7f80);  // largest float rounds to inf
    uint16_t bnan = f32_to_bf16(bits_to_f32(0x7f800001u));   // a NaN with payload only in the low bits
    CHECK(((bnan & 0x7f80) == 0x7f80 && (bnan & 0x7f) != 0));
}

TEST_CASE("half.h f32 -> f16 / bf16 rounds to nearest even (independent rounding in double)") {
    int bad = 0;
    for (float x : rounding_inputs()) {
        double want16 = round_to_format(x, 10, -14, 15), want_b = round_to_format(x, 7, -126, 127);
        double got16 = f16_value(f32_to_f16(x)), got_b = bf16_to_f32(f32_to_bf16(x));
        bool ok16 = std::isnan(want16) ? std::isnan(got16) : got16 == want16 && std::signbit(got16) == std::signbit(want16);
        bool okb = std::isnan(want_b) ? std::isnan(got_b) : got_b == want_b && std::signbit(got_b) == std::signbit(want_b);
        if ((!ok16 || !okb) && bad++ < 5)
            std::printf("x=%a (bits %08x): f16 got %a want %a, bf16 got %a want %a\n", x, f32_to_bits(x), got16,
                        want16, got_b, want_b);
    }
    CHECK(bad == 0);
}

TEST_CASE("convert_to_f32: all 65536 f16 and bf16 patterns, every ISA, 1..3 threads") {
    std::vector<uint16_t> all(65536);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    Isa saved = active_isa();
    for (Isa isa : supported_isas()) {
        set_isa(isa);
        for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            std::vector<float> f(65536), b(65536);
            convert_to_f32(f.data(), all.data(), DType::f16, 65536);
            convert_to_f32(b.data(), all.data(), DType::bf16, 65536);
            int bad = 0;
            for (int i = 0; i < 65536; i++) {
                double want = f16_value((uint16_t)i);
                bool ok = std::isnan(want) ? std::isnan(f[i]) : (double)f[i] == want && std::signbit(f[i]) == std::signbit(want);
                ok = ok && f32_to_bits(b[i]) == (uint32_t)i << 16;
                if (!ok && bad++ < 5) std::printf("pattern %04x: f16 -> %a, bf16 -> %a\n", i, f[i], b[i]);
            }
            CHECK(bad == 0);
            std::vector<float> f32(1001);  // F32 source: a plain copy
            convert_to_f32(f32.data(), f.data() + 15000, DType::f32, 1001);
            CHECK(std::memcmp(f32.data(), f.data() + 15000, 1001 * 4) == 0);
        }
    }
    set_isa(saved);
    set_num_threads(0);
}

TEST_CASE("convert_from_f32: f16 / bf16 round to nearest even, every ISA, 1..3 threads, awkward lengths") {
    std::vector<float> in = rounding_inputs();
    Isa saved = active_isa();
    for (Isa isa : supported_isas()) {
        set_isa(isa);
        for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            CAPTURE(isa_name(isa));
            CAPTURE(threads);
            for (int64_t n : {(int64_t)0, (int64_t)1, (int64_t)3, (int64_t)7, (int64_t)65, (int64_t)77, (int64_t)in.size()}) {
                CAPTURE(n);
                std::vector<uint16_t> h(n + 1, 0xabcd), b(n + 1, 0xabcd);  // last one guards the end
                convert_from_f32(h.data(), DType::f16, in.data(), n);
                convert_from_f32(b.data(), DType::bf16, in.data(), n);
                int bad = 0;
                for (int64_t i = 0; i < n; i++) {
                    // same value as half.h (checked above against the independent rounding); any NaN for NaN
                    bool ok = same_or_both_nan(f16_to_f32(h[i]), f16_to_f32(f32_to_f16(in[i]))) &&
                              same_or_both_nan(bf16_to_f32(b[i]), bf16_to_f32(f32_to_bf16(in[i])));
                    if (!ok && bad++ < 5)
                        std::printf("x=%a: f16 %04x (want %04x), bf16 %04x (want %04x)\n", in[i], h[i],
                                    f32_to_f16(in[i]), b[i], f32_to_bf16(in[i]));
                }
                CHECK(bad == 0);
                CHECK(h[n] == 0xabcd);
                CHECK(b[n] == 0xabcd);
                std::vector<float> f(n + 1, 7.0f);
                convert_from_f32(f.data(), DType::f32, in.data(), n);
                CHECK(std::memcmp(f.data(), in.data(), n * 4) == 0);
                CHECK(f[n] == 7.0f);
            }
        }
    }
    set_isa(saved);
    set_num_threads(0);
}
