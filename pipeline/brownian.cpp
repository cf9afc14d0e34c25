// brownian.cpp — numpy's SeedSequence, torchsde's halfway BrownianTree, k-diffusion's noise sampler over it.
// Sources (read, re-written): numpy/random/bit_generator.pyx (SeedSequence, hashmix, mix), torchsde 0.2.6
// _brownian/brownian_interval.py and derived.py (BrownianInterval, BrownianTree), k_diffusion/sampling.py
// (BatchedBrownianTree, BrownianTreeNoiseSampler), webui modules/sd_samplers_common.py (replace_torchsde_browinan,
// create_noise_sampler) and modules/devices.py randn_local.
#include "pipeline/brownian.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace sd {

namespace {

const uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
const uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
    value ^= hash_const;
    hash_const *= kMultA;
    value *= hash_const;
    value ^= value >> 16;
    return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
    uint32_t r = kMixMultL * x - kMixMultR * y;
    return r ^ (r >> 16);
}

}  // namespace

std::vector<uint32_t> SeedSequence::words(uint64_t v) {
    std::vector<uint32_t> w;
    if (v == 0) w.push_back(0);
    for (; v > 0; v >>= 32) w.push_back((uint32_t)(v & 0xffffffffu));
    return w;
}

SeedSequence::SeedSequence(const std::vector<uint32_t>& entropy, const std::vector<uint32_t>& spawn_key, int pool_size)
    : pool_((size_t)pool_size, 0) {
    // get_assembled_entropy: with a spawn key, the run entropy is zero-padded to the pool size first
    std::vector<uint32_t> e = entropy;
    if (!spawn_key.empty() && e.size() < pool_.size()) e.resize(pool_.size(), 0);
    e.insert(e.end(), spawn_key.begin(), spawn_key.end());
    // mix_entropy
    uint32_t hc = kInitA;
    for (size_t i = 0; i < pool_.size(); i++) pool_[i] = hashmix(i < e.size() ? e[i] : 0, hc);
    for (size_t src = 0; src < pool_.size(); src++)
        for (size_t dst = 0; dst < pool_.size(); dst++)
            if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hc));
    for (size_t src = pool_.size(); src < e.size(); src++)
        for (size_t dst = 0; dst < pool_.size(); dst++) pool_[dst] = mix(pool_[dst], hashmix(e[src], hc));
}

std::vector<uint32_t> SeedSequence::generate_state(int n_words) const {
    std::vector<uint32_t> out((size_t)n_words);
    uint32_t hc = kInitB;
    for (size_t i = 0; i < out.size(); i++) {
        uint32_t v = pool_[i % pool_.size()];
        v ^= hc;
        hc *= kMultB;
        v *= hc;
        out[i] = v ^ (v >> 16);
    }
    return out;
}

double python_round(double x, int ndigits) {
    // CPython rounds the exact binary value to ndigits decimals (half-even) and reads it back; so does printf.
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.*f", ndigits, x);
    return std::strtod(buf, nullptr);
}

// ---------------------------------------------------------------------------------------------------------
BrownianTree::BrownianTree(double t0, double t1, uint64_t entropy, RngKind rng, int64_t size)
    : entropy_(entropy), rng_(rng), size_(size) {
    if (!(t0 < t1)) throw std::logic_error("BrownianTree: needs t0 < t1");
    Node top;
    top.start = round6(t0);
    top.end = round6(t1);
    nodes_.push_back(top);
    // BrownianInterval.__init__: W over the whole interval from the first of three seeds (the second would draw
    // the space-time Levy area H, which nothing uses; its draw has no effect on other draws).
    uint32_t w_seed = SeedSequence(SeedSequence::words(entropy), {}, 24).generate_state(3)[0];
    top_w_ = randn(w_seed);
    const float scale = (float)std::sqrt(t1 - t0);  // unrounded ends, as torchsde
    for (float& v : top_w_) v *= scale;
}

std::vector<float> BrownianTree::randn(uint32_t seed) const { return make_rng(rng_, seed)->randn(size_); }

void BrownianTree::split_exact(int n, double midway) {
    Node& node = nodes_[(size_t)n];
    node.mid = round6(midway);
    if (node.parent >= 0) {
        const Node& p = nodes_[(size_t)node.parent];
        node.key = 2 * p.key + (node.is_left ? 0 : 1);
        node.depth = p.depth + 1;
    }
    std::vector<uint32_t> spawn = SeedSequence::words(node.key), d = SeedSequence::words((uint64_t)node.depth);
    spawn.insert(spawn.end(), d.begin(), d.end());
    node.w_seed = SeedSequence(SeedSequence::words(entropy_), spawn, 24).generate_state(4)[0];
    Node left, right;
    left.start = node.start;
    left.end = round6(midway);
    right.start = round6(midway);
    right.end = node.end;
    left.parent = right.parent = n;
    left.is_left = true;
    const int li = (int)nodes_.size();
    nodes_.push_back(left);  // invalidates `node`
    nodes_.push_back(right);
    nodes_[(size_t)n].left = li;
    nodes_[(size_t)n].right = li + 1;
}

// _Interval._split with halfway_tree: split at the (rounded) middle, then split the half holding `target`
// until `target` is a split point.
void BrownianTree::split(int n, double target) {
    for (;;) {
        split_exact(n, 0.5 * (nodes_[(size_t)n].end + nodes_[(size_t)n].start));
        const Node& node = nodes_[(size_t)n];
        if (target > node.mid) n = node.right;
        else if (target < node.mid) n = node.left;
        else return;
    }
}

// _Interval._loc_inner: the nodes covering [ta, tb], left to right, splitting leaves as needed.
void BrownianTree::locate(int n, double ta, double tb, std::vector<int>& out) {
    if (ta == nodes_[(size_t)n].start && tb == nodes_[(size_t)n].end) {
        out.push_back(n);
        return;
    }
    if (nodes_[(size_t)n].left < 0) split(n, ta == nodes_[(size_t)n].start ? tb : ta);
    const Node& node = nodes_[(size_t)n];
    const int l = node.left, r = node.right;
    const double m = node.mid;
    if (tb <= m) return locate(l, ta, tb, out);
    if (ta >= m) return locate(r, ta, tb, out);
    locate(l, ta, m, out);
    locate(r, m, tb, out);
}

// _increment_and_space_time_levy_area without H: a child's increment from its parent's (a Brownian bridge).
const std::vector<float>& BrownianTree::node_w(int n) {
    if (n == 0) return top_w_;
    auto hit = cache_.find(n);
    if (hit != cache_.end()) return hit->second;
    const Node node = nodes_[(size_t)n];
    const Node p = nodes_[(size_t)node.parent];
    std::vector<float> w = node_w(node.parent);  // a copy: the cache may evict it below
    const double h_reciprocal = 1 / (p.end - p.start), left_diff = p.mid - p.start, right_diff = p.end - p.mid;
    const float f_left = (float)left_diff, f_hrec = (float)h_reciprocal;
    const float f_sd = (float)std::sqrt(left_diff * right_diff * h_reciprocal);
    std::vector<float> noise = randn(p.w_seed);
    for (size_t j = 0; j < w.size(); j++) {
        float mean = w[j] * f_left;
        mean = mean * f_hrec;
        float s = noise[j] * f_sd;
        float left_w = mean + s;
        w[j] = node.is_left ? left_w : w[j] - left_w;
    }
    if (cache_order_.size() >= 64) {
        cache_.erase(cache_order_.front());
        cache_order_.erase(cache_order_.begin());
    }
    cache_order_.push_back(n);
    return cache_[n] = std::move(w);
}

std::vector<float> BrownianTree::increment(double ta, double tb) {
    const double start = nodes_[0].start, end = nodes_[0].end;
    ta = std::min(std::max(ta, start), end);  // BrownianInterval.__call__ clamps (with a warning)
    tb = std::min(std::max(tb, start), end);
    if (ta > tb) throw std::logic_error("BrownianTree: query times must satisfy ta <= tb");
    ta = round6(ta);
    tb = round6(tb);
    if (ta == tb) return std::vector<float>((size_t)size_, 0.0f);
    std::vector<int> pieces;
    locate(0, ta, tb, pieces);
    std::vector<float> w = node_w(pieces[0]);
    for (size_t k = 1; k < pieces.size(); k++) {
        const std::vector<float>& wi = node_w(pieces[k]);
        for (size_t j = 0; j < w.size(); j++) w[j] += wi[j];
    }
    return w;
}

// ---------------------------------------------------------------------------------------------------------
BrownianTreeNoiseSampler::BrownianTreeNoiseSampler(float sigma_min, float sigma_max, const std::vector<uint64_t>& seeds,
                                                   RngKind rng, int64_t size_per_image)
    : size_(size_per_image) {
    for (uint64_t seed : seeds) trees_.emplace_back(sigma_min, sigma_max, seed, rng, size_per_image);
}

void BrownianTreeNoiseSampler::noise(float sigma, float sigma_next, float* out) {
    // BatchedBrownianTree.__call__: the tree is asked for (low, high); going down in sigma flips the sign
    const float lo = std::min(sigma, sigma_next), hi = std::max(sigma, sigma_next);
    const float sign = sigma < sigma_next ? 1.0f : -1.0f;
    const float scale = std::sqrt(std::fabs(sigma_next - sigma));  // float32, as (t1 - t0).abs().sqrt()
    for (size_t i = 0; i < trees_.size(); i++) {
        std::vector<float> w = trees_[i].increment(lo, hi);
        for (int64_t j = 0; j < size_; j++) out[(int64_t)i * size_ + j] = w[(size_t)j] * sign / scale;
    }
}

}  // namespace sd
