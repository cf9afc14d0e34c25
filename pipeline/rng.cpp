// rng.cpp — torch's CPU randn and the webui's Philox port, reproduced bit for bit.
//
// Sources (read, not copied):
// - torch CPU: aten/src/ATen/core/MT19937RNGEngine.h (seeding), ATen/CPUGeneratorImpl.cpp (random64 = two
//   32-bit draws, first one high), ATen/core/TransformationHelper.h uniform_real (24 / 53 low bits),
//   ATen/core/DistributionsHelper.h normal_distribution (double Box-Muller, cached sine), and
//   aten/src/ATen/native/cpu/DistributionTemplates.h normal_kernel / normal_fill / normal_fill_16 /
//   normal_fill_16_AVX2 with ATen/native/cpu/avx_mathfun.h log256_ps / sincos256_ps (cephes polynomials).
//   normal_kernel is not registered for AVX-512, so every x86 machine with AVX2 runs the AVX2 version; it is
//   compiled with -mavx2 -mfma and GCC fuses some of its multiply-adds. Which ones was read off the machine
//   code of torch 1.13's libtorch_cpu.so (normal_stub's AVX2 kernel) and is written below as explicit fmaf;
//   the C++ tests check the result against torch bit for bit.
// - philox: AUTOMATIC1111 stable-diffusion-webui modules/rng_philox.py (numpy port of torch's CUDA randn):
//   Philox4x32-10, counter (offset, 0, index, 0), key = the 64-bit seed, Box-Muller on the first two output
//   words in float64 with float32 constants, keeping only the sine value.
#include "pipeline/rng.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <stdexcept>

// Every a*b+c below must round exactly where torch's rounds: fused only where written as fmaf.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sd {

// ---------------------------------------------------------------------------------------------------------
// MT19937 (Matsumoto & Nishimura 1998), seeded as at::mt19937::init_with_uint32.
Mt19937::Mt19937(uint64_t seed) {
    state_[0] = (uint32_t)(seed & 0xffffffffu);  // torch keeps only the low 32 bits of the seed
    for (uint32_t j = 1; j < 624; j++) state_[j] = 1812433253u * (state_[j - 1] ^ (state_[j - 1] >> 30)) + j;
    next_ = 624;
}

void Mt19937::twist() {
    for (int i = 0; i < 624; i++) {
        uint32_t y = (state_[i] & 0x80000000u) | (state_[(i + 1) % 624] & 0x7fffffffu);
        state_[i] = state_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    next_ = 0;
}

uint32_t Mt19937::operator()() {
    if (next_ >= 624) twist();
    uint32_t y = state_[next_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

namespace {

// ---------------------------------------------------------------------------------------------------------
// avx_mathfun.h's log256_ps for one lane, with the multiply-adds GCC fused in torch's build.
// Only called with x in [2^-24, 1], so its clamp to the smallest normal and NaN mask for x <= 0 never act.
float cephes_logf(float x) {
    const float kSqrtHalf = 0.707106781186547524f;
    const float p0 = 7.0376836292E-2f, p1 = -1.1514610310E-1f, p2 = 1.1676998740E-1f,
                p3 = -1.2420140846E-1f, p4 = +1.4249322787E-1f, p5 = -1.6668057665E-1f,
                p6 = +2.0000714765E-1f, p7 = -2.4999993993E-1f, p8 = +3.3333331174E-1f;
    const float q1 = -2.12194440e-4f, q2 = 0.693359375f;

    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    float e = (float)((int32_t)(bits >> 23) - 0x7f);
    bits = (bits & ~0x7f800000u) | 0x3f000000u;  // keep the mantissa, exponent of 0.5: m in [0.5, 1)
    float m;
    std::memcpy(&m, &bits, 4);
    e = e + 1.0f;
    bool below = m < kSqrtHalf;  // then use 2m - 1 and one less in the exponent
    float tmp = below ? m : 0.0f;
    m = m - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    m = tmp + m;

    float eq1 = e * q1;  // computed apart, then added inside the fma below
    float y = p0;
    y = std::fmaf(y, m, p1);
    y = std::fmaf(y, m, p2);
    y = std::fmaf(y, m, p3);
    y = std::fmaf(y, m, p4);
    y = std::fmaf(y, m, p5);
    y = std::fmaf(y, m, p6);
    y = std::fmaf(y, m, p7);
    y = std::fmaf(y, m, p8);
    float z = m * m;
    y = m * y;
    y = std::fmaf(y, z, eq1);
    y = std::fmaf(-z, 0.5f, y);
    m = m + y;
    return std::fmaf(e, q2, m);
}

// avx_mathfun.h's sincos256_ps for one lane, with torch's fused multiply-adds.
void cephes_sincosf(float x, float* s, float* c) {
    const float kFourOverPi = 1.27323954473516f;
    const float dp1 = -0.78515625f, dp2 = -2.4187564849853515625e-4f, dp3 = -3.77489497744594108e-8f;
    const float sp0 = -1.9515295891E-4f, sp1 = 8.3321608736E-3f, sp2 = -1.6666654611E-1f;
    const float cp0 = 2.443315711809948E-005f, cp1 = -1.388731625493765E-003f, cp2 = 4.166664568298827E-002f;

    uint32_t xbits;
    std::memcpy(&xbits, &x, 4);
    uint32_t sign_sin = xbits & 0x80000000u;
    float ax = std::fabs(x);

    int32_t j = (int32_t)(ax * kFourOverPi);  // truncates, like cvttps2dq
    j = (j + 1) & ~1;                          // even octant (cephes)
    float y = (float)j;
    uint32_t swap_sign_sin = (uint32_t)(j & 4) << 29;
    bool cos_poly_is_cos = (j & 2) == 0;  // avx_mathfun's poly_mask
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sign_sin;

    // x - y*pi/4 in three parts (extended-precision reduction)
    ax = std::fmaf(y, dp1, ax);
    ax = std::fmaf(y, dp2, ax);
    ax = std::fmaf(y, dp3, ax);
    float z = ax * ax;

    float yc = std::fmaf(cp0, z, cp1);  // cosine polynomial on [-pi/4, pi/4]
    yc = std::fmaf(yc, z, cp2);
    float half_z = z * 0.5f;
    yc = z * yc;
    yc = std::fmaf(yc, z, -half_z);
    yc = yc + 1.0f;

    float ys = std::fmaf(sp0, z, sp1);  // sine polynomial
    ys = std::fmaf(z, ys, sp2);
    ys = z * ys;
    ys = std::fmaf(ys, ax, ax);

    // The same selection arithmetic as avx_mathfun (and-masks, then adds), so signed zeros match too.
    float ysin2 = cos_poly_is_cos ? ys : 0.0f;
    float ysin1 = cos_poly_is_cos ? 0.0f : yc;
    float sin_v = ysin2 + ysin1;
    float cos_v = (ys - ysin2) + (yc - ysin1);
    uint32_t b;
    std::memcpy(&b, &sin_v, 4);
    b ^= sign_sin;
    std::memcpy(s, &b, 4);
    std::memcpy(&b, &cos_v, 4);
    b ^= sign_cos;
    std::memcpy(c, &b, 4);
}

// normal_fill_16_AVX2 (mean 0, std 1): d[0..8) radius inputs, d[8..16) angle inputs, both uniforms.
void box_muller_16_avx2(float* d) {
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];  // [0, 1) -> (0, 1] for the log
        float theta = two_pi * d[j + 8];
        float radius = std::sqrt(-2.0f * cephes_logf(u1));
        float s, c;
        cephes_sincosf(theta, &s, &c);
        d[j] = radius * c + 0.0f;  // torch's fmadd(n, std=1, mean=0): also turns -0 into +0
        d[j + 8] = radius * s + 0.0f;
    }
}

// normal_fill_16 (the portable version), mean 0, std 1: libm float log/cos/sin.
void box_muller_16_generic(float* d) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = std::sqrt(-2.0f * std::log(u1));
        float theta = (float)(2.0 * 3.14159265358979323846 * (double)u2);  // 2.0f * pi<double> * u2
        d[j] = radius * std::cos(theta) + 0.0f;
        d[j + 8] = radius * std::sin(theta) + 0.0f;
    }
}

class TorchCpuRng : public Rng {
public:
    TorchCpuRng(uint64_t seed, bool avx2) : engine_(seed), avx2_(avx2) {}

    void randn(float* out, int64_t n) override {
        if (n >= 16) {
            normal_fill(out, n);
        } else {
            for (int64_t i = 0; i < n; i++) out[i] = (float)normal_double();
        }
    }

private:
    Mt19937 engine_;
    bool avx2_;
    bool have_cached_ = false;  // CPUGeneratorImpl::next_double_normal_sample_
    double cached_ = 0;

    float uniform_float() { return (float)(engine_() & 0xffffffu) * (1.0f / 16777216.0f); }
    double uniform_double() {
        uint64_t hi = engine_();
        uint64_t lo = engine_();
        uint64_t v = (hi << 32) | lo;
        return (double)(v & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
    }
    // at::normal_distribution<double>: returns r cos(theta) and keeps r sin(theta) for the next call.
    double normal_double() {
        if (have_cached_) {
            have_cached_ = false;
            return cached_;
        }
        double u1 = uniform_double();
        double u2 = uniform_double();
        double r = std::sqrt(-2.0 * std::log(1.0 - u2));  // torch >= 2.1 writes log1p(-u2): same value
        double theta = 2.0 * 3.14159265358979323846 * u1;
        cached_ = r * std::sin(theta);
        have_cached_ = true;
        return r * std::cos(theta);
    }
    void fill_16(float* d) { avx2_ ? box_muller_16_avx2(d) : box_muller_16_generic(d); }
    void normal_fill(float* out, int64_t n) {
        for (int64_t i = 0; i < n; i++) out[i] = uniform_float();
        for (int64_t i = 0; i + 16 <= n; i += 16) fill_16(out + i);
        if (n % 16 != 0) {  // torch redraws the last 16 values, overwriting some finished ones
            float* tail = out + n - 16;
            for (int i = 0; i < 16; i++) tail[i] = uniform_float();
            fill_16(tail);
        }
    }
};

// ---------------------------------------------------------------------------------------------------------
class PhiloxRng : public Rng {
public:
    explicit PhiloxRng(uint64_t seed) : seed_(seed) {}

    void randn(float* out, int64_t n) override {
        // rng_philox.py's constants are float32 arrays; numpy promotes uint32 * float32-array to float64.
        const double inv32 = (double)2.3283064e-10f;
        const double inv32_2pi = (double)(float)(2.3283064e-10 * 6.2831855);
        const double half_inv32 = (double)(2.3283064e-10f / 2.0f);
        const double half_inv32_2pi = (double)((float)(2.3283064e-10 * 6.2831855) / 2.0f);
        for (int64_t i = 0; i < n; i++) {
            uint32_t ctr[4] = {offset_, 0u, (uint32_t)i, 0u};  // more than 2^32 values would spill into ctr[3]
            philox4x32_10(ctr, (uint32_t)seed_, (uint32_t)(seed_ >> 32));
            double u = (double)ctr[0] * inv32 + half_inv32;
            double v = (double)ctr[1] * inv32_2pi + half_inv32_2pi;
            double s = std::sqrt(-2.0 * std::log(u));
            out[i] = (float)(s * std::sin(v));
        }
        offset_++;
    }

private:
    uint64_t seed_;
    uint32_t offset_ = 0;
};

std::string lower(std::string s) {
    for (char& ch : s) ch = (char)std::tolower((unsigned char)ch);
    return s;
}

}  // namespace

void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) {  // key schedule: Weyl sequence
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c[0] = n0, c[1] = n1, c[2] = n2, c[3] = n3;
    }
}

RngKind parse_rng(const std::string& name) {
    std::string s = lower(name);
    if (s == "cpu") return RngKind::cpu;
    if (s == "cpu-generic" || s == "cpu_generic") return RngKind::cpu_generic;
    if (s == "philox" || s == "nv") return RngKind::philox;
    throw std::runtime_error("unknown random number generator '" + name +
                             "' (valid: cpu, cpu-generic, philox or its webui name nv)");
}

const char* rng_name(RngKind kind) {
    switch (kind) {
        case RngKind::cpu: return "cpu";
        case RngKind::cpu_generic: return "cpu-generic";
        case RngKind::philox: return "philox";
    }
    return "?";
}

std::unique_ptr<Rng> make_rng(RngKind kind, uint64_t seed) {
    switch (kind) {
        case RngKind::cpu: return std::make_unique<TorchCpuRng>(seed, true);
        case RngKind::cpu_generic: return std::make_unique<TorchCpuRng>(seed, false);
        case RngKind::philox: return std::make_unique<PhiloxRng>(seed);
    }
    throw std::logic_error("make_rng: bad kind");
}

ImageRng::ImageRng(RngKind kind, std::vector<uint64_t> seeds, uint64_t eta_noise_seed_delta)
    : kind_(kind), seeds_(std::move(seeds)), ensd_(eta_noise_seed_delta) {
    if (seeds_.empty()) throw std::logic_error("ImageRng needs at least one seed");
    for (uint64_t s : seeds_) gens_.push_back(make_rng(kind_, s));
}

void ImageRng::randn(float* out, int64_t n) {
    int64_t images = (int64_t)gens_.size();
    if (n % images != 0) throw std::logic_error("ImageRng::randn: n is not a multiple of the batch size");
    int64_t per = n / images;
    for (int64_t i = 0; i < images; i++) gens_[(size_t)i]->randn(out + i * per, per);
    if (first_ && ensd_ != 0) {  // the webui re-seeds after the initial noise (ImageRNG.first)
        for (size_t i = 0; i < gens_.size(); i++) gens_[i] = make_rng(kind_, seeds_[i] + ensd_);
    }
    first_ = false;
}

}  // namespace sd
