// rng.h — the random number generators a webui user's seed means: torch's CPU generator and the webui's
// Philox port ("NV" source), so the same seed gives the same initial latent and the same ancestral noise.
//
// Conventions (sources cited in rng.cpp):
// - cpu: torch.manual_seed(seed); torch.randn(shape) on CPU. mt19937 seeded with the low 32 bits of the seed
//   (torch truncates: seed 2**32+5 == seed 5). randn(n) for n >= 16 fills n uniforms u = (r & 0xffffff)/2^24
//   and turns them into normals by Box-Muller in blocks of 16 (first 8 as radius, next 8 as angle); a tail
//   (n % 16 != 0) redraws 16 fresh uniforms for the last 16 slots. n < 16 uses double Box-Muller with one
//   cached value in the generator. x86-64 torch builds compute the n >= 16 path with AVX2 cephes-style
//   log/sincos (with FMA); `cpu` reproduces that bit for bit, `cpu_generic` is torch's portable path (ARM,
//   Apple Silicon, ATEN_CPU_CAPABILITY=default: libm logf/cosf/sinf; both agree to ~1e-6).
// - philox: the webui's modules/rng_philox.py, its CPU port of torch's CUDA randn: element i of a call uses
//   Philox4x32-10 with counter (offset, 0, i, 0) and key (seed lo, seed hi); offset counts calls.
// Left out: the webui's variation seeds (subseed) and seed resizing.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sd {

enum class RngKind { cpu, cpu_generic, philox };

// "cpu", "cpu-generic" (or "cpu_generic"), "philox" (or "nv", the webui's name); case-insensitive.
// Throws std::runtime_error listing the valid names.
RngKind parse_rng(const std::string& name);
const char* rng_name(RngKind kind);

// A stream of standard normal float32 values. Each randn call is one torch.randn call of n elements
// (n matters: torch's CPU algorithm depends on it, Philox advances its offset once per call).
class Rng {
public:
    virtual ~Rng() = default;
    virtual void randn(float* out, int64_t n) = 0;
    std::vector<float> randn(int64_t n) {
        std::vector<float> v((size_t)n);
        randn(v.data(), n);
        return v;
    }
};

std::unique_ptr<Rng> make_rng(RngKind kind, uint64_t seed);

// The webui's ImageRNG (modules/rng.py): one generator per image of a batch, seeded seeds[i] (the webui
// uses seed + i), each drawing noise of one image's shape. randn(out, n) splits n evenly across the images,
// image i filling out[i*n/N ...]. The first call is the initial latent; if eta_noise_seed_delta is not 0
// the generators are then re-seeded with seeds[i] + delta for the ancestral noise, as the webui does.
class ImageRng : public Rng {
public:
    ImageRng(RngKind kind, std::vector<uint64_t> seeds, uint64_t eta_noise_seed_delta = 0);
    void randn(float* out, int64_t n) override;
    using Rng::randn;
private:
    RngKind kind_;
    std::vector<uint64_t> seeds_;
    uint64_t ensd_;
    bool first_ = true;
    std::vector<std::unique_ptr<Rng>> gens_;
};

// Building blocks, exposed for tests.
// MT19937 as torch's at::mt19937 seeds it: state[0] = seed & 0xffffffff, then the standard recurrence.
class Mt19937 {
public:
    explicit Mt19937(uint64_t seed);
    uint32_t operator()();
private:
    uint32_t state_[624];
    int next_ = 624;
    void twist();
};

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): 10 rounds on a
// 128-bit counter with a 64-bit key; ctr is updated in place to the output.
void philox4x32_10(uint32_t ctr[4], uint32_t key_lo, uint32_t key_hi);

}  // namespace sd
