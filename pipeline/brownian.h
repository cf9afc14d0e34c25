// brownian.h — the noise the webui's SDE samplers (DPM++ SDE, 2M SDE, 3M SDE) add: increments of one fixed
// Brownian motion W(sigma) per image, sampled on a binary tree so that any interval can be asked for in any order
// and W stays consistent (k-diffusion BrownianTreeNoiseSampler over torchsde's BrownianTree).
//
// Reproduced exactly as the webui runs it (torchsde 0.2.6, k-diffusion ab527a9a, webui 1.10.1):
// - torchsde.BrownianTree(t0 = sigma_min, t1 = sigma_max, entropy = the image's seed) is a BrownianInterval with
//   a "halfway" tree: every node [s, e] splits at round(0.5 (s + e), 6) (tol 1e-6), recursively until the asked
//   point is a split point; an interval query is the sum of the canonical nodes covering it, left to right.
// - The top node's increment is sqrt(t1 - t0) * randn(seed_W); a child's is the Brownian bridge sample
//   left = (mid - s) / (e - s) * W + sqrt((mid - s)(e - mid) / (e - s)) * randn(parent's seed), right = W - left.
// - Seeds come from numpy's SeedSequence(entropy, spawn_key = (key, depth), pool_size = 24).generate_state(4)[0],
//   key = 2 * parent key + (0 left, 1 right). The webui replaces torchsde's randn with its randn_local(seed,
//   shape): a fresh generator of the selected source (NV/GPU: Philox, CPU: torch's CPU generator) per draw.
// - All tensor arithmetic is float32 (python scalars rounded to float32), as torch does it.
// Left out: torchsde's LRU cache (a speed device: values do not depend on it), Levy areas (unused here).
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "pipeline/rng.h"

namespace sd {

// numpy.random.SeedSequence: hashes entropy words (+ spawn key words) into a pool, and draws words from it.
class SeedSequence {
public:
    SeedSequence(const std::vector<uint32_t>& entropy, const std::vector<uint32_t>& spawn_key, int pool_size = 4);
    std::vector<uint32_t> generate_state(int n_words) const;
    // A non-negative integer as numpy sees it: 32-bit words, least significant first (0 -> {0}).
    static std::vector<uint32_t> words(uint64_t v);
private:
    std::vector<uint32_t> pool_;
};

// Python's round(x, ndigits) for a double: the nearest decimal with that many digits, read back as a double.
double python_round(double x, int ndigits);

// One torchsde BrownianTree (halfway tree, tol 1e-6, pool_size 24) over [t0, t1] of `size` float32 elements.
class BrownianTree {
public:
    BrownianTree(double t0, double t1, uint64_t entropy, RngKind rng, int64_t size);
    // W(tb) - W(ta) for t0 <= ta <= tb <= t1 (clamped to the tree's rounded ends, as torchsde does).
    std::vector<float> increment(double ta, double tb);
    int nodes() const { return (int)nodes_.size(); }
private:
    struct Node {
        double start, end, mid = 0;
        int parent = -1, left = -1, right = -1;
        bool is_left = false;
        uint64_t key = 0;
        int depth = 0;
        uint32_t w_seed = 0;
    };
    uint64_t entropy_;
    RngKind rng_;
    int64_t size_;
    std::vector<Node> nodes_;
    std::vector<float> top_w_;
    std::map<int, std::vector<float>> cache_;  // recent node increments (bounded)
    std::vector<int> cache_order_;

    double round6(double x) const { return python_round(x, 6); }
    void split_exact(int n, double midway);
    void split(int n, double target);
    void locate(int n, double ta, double tb, std::vector<int>& out);
    const std::vector<float>& node_w(int n);
    std::vector<float> randn(uint32_t seed) const;
};

// k-diffusion BrownianTreeNoiseSampler with one tree per image (BatchedBrownianTree, seeded with the webui's
// per-image seeds): noise(sigma, sigma_next) = (W(sigma_next) - W(sigma)) / sqrt(|sigma_next - sigma|), a
// standard normal latent for each image, image i filling out[i * size ...].
class BrownianTreeNoiseSampler {
public:
    // sigma_min, sigma_max: the smallest positive and the largest of the sampler's sigmas (float32 values).
    BrownianTreeNoiseSampler(float sigma_min, float sigma_max, const std::vector<uint64_t>& seeds, RngKind rng,
                             int64_t size_per_image);
    void noise(float sigma, float sigma_next, float* out);
private:
    std::vector<BrownianTree> trees_;
    int64_t size_;
};

}  // namespace sd
