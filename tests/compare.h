// compare.h — the tests' one compare helper: got (f32) against a reference (f32 or f64) under a tolerance, giving
// max-abs, max-rel, NMSE, the reference's scale and the first element out of tolerance, as numbers and as one
// printable line for doctest's MESSAGE / INFO. Also the random weights the conv tests draw. It asserts nothing
// itself, so a failing CHECK points at the test's line; shapes are the caller's to REQUIRE first.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/half.h"
#include "tensor.h"

namespace sd::test {

// An element passes when |got - want| <= atol + of_scale·scale + rtol·m, where scale is the reference's largest
// magnitude and m is |want| (or the caller's per-element magnitude, e.g. Σ|terms| of a dot product); the whole
// passes when every element does and NMSE = Σ(got - want)² / Σ want² <= max_nmse.
struct Tol {
    double atol = 0, of_scale = 0, rtol = 0, max_nmse = HUGE_VAL;
};
inline Tol abs_tol(double atol, double max_nmse = HUGE_VAL) { return {atol, 0, 0, max_nmse}; }
// Relative to the output's scale: an f32 network's error is set by the magnitudes it sums, not by each
// element's own size.
inline Tol scale_tol(double of_scale, double max_nmse = HUGE_VAL) { return {0, of_scale, 0, max_nmse}; }
inline Tol rel_tol(double rtol, double atol = 0) { return {atol, 0, rtol, HUGE_VAL}; }

struct Diff {
    double max_abs = 0;  // max |got - want|
    double max_rel = 0;  // max |got - want| / max(m, 1e-3·scale): near-zero references do not dominate
    double nmse = 0;     // Σ(got - want)² / Σ want²
    double scale = 0;    // max |want|
    int64_t first_bad = -1;  // first element out of tolerance (NaN included), -1 if none
    double got_bad = 0, want_bad = 0;  // the values there
    bool ok = true;  // every element within tolerance and NMSE within bound

    // "what: max-abs 4e-06, max-rel 2e-05, NMSE 3e-12, scale 2.6, first bad -1" (+ the values when one is bad).
    std::string summary(const std::string& what) const {
        char line[320];
        int len = std::snprintf(line, sizeof line,
                                "%s: max-abs %.3g, max-rel %.3g, NMSE %.3g, scale %.3g, first bad %lld", what.c_str(),
                                max_abs, max_rel, nmse, scale, (long long)first_bad);
        if (first_bad >= 0 && len > 0 && (size_t)len < sizeof line)
            std::snprintf(line + len, sizeof line - len, " (got %.9g, want %.9g)", got_bad, want_bad);
        return line;
    }
};

// got[0..n) against want[0..n); mag (optional, n values) replaces |want| as each element's rtol reference.
template <class Ref>
Diff compare(const float* got, const Ref* want, int64_t n, const Tol& tol, const double* mag = nullptr) {
    Diff d;
    for (int64_t i = 0; i < n; i++) d.scale = std::fmax(d.scale, std::fabs((double)want[i]));
    const double slack = tol.atol + tol.of_scale * d.scale;
    double err2 = 0, ref2 = 0;
    for (int64_t i = 0; i < n; i++) {
        const double w = (double)want[i], m = mag ? mag[i] : std::fabs(w);
        const double e = std::fabs((double)got[i] - w);
        if (!(e <= slack + tol.rtol * m) && d.first_bad < 0) {  // the negation also catches NaN
            d.first_bad = i;
            d.got_bad = got[i];
            d.want_bad = w;
        }
        d.max_abs = std::fmax(d.max_abs, e);
        d.max_rel = std::fmax(d.max_rel, e / std::fmax(std::fmax(m, 1e-3 * d.scale), 1e-30));
        err2 += e * e;
        ref2 += w * w;
    }
    d.nmse = ref2 > 0 ? err2 / ref2 : err2;
    d.ok = d.first_bad < 0 && d.nmse <= tol.max_nmse;  // a NaN NMSE fails too
    return d;
}

// Tensors of F32 with the same element count (REQUIRE the shapes before calling).
inline Diff compare(const Tensor& got, const Tensor& want, const Tol& tol) {
    if (got.numel() != want.numel()) {
        Diff d;
        d.ok = false;
        d.first_bad = 0;
        return d;
    }
    return compare(got.f32(), want.f32(), got.numel(), tol);
}

// n standard-normal weights stored in `dt` (raw bytes), and their exact f32 values after that rounding.
inline void random_weights(std::mt19937& rng, int64_t n, DType dt, std::vector<uint8_t>& raw,
                           std::vector<float>& exact) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    raw.assign(n * dtype_size(dt), 0);
    exact.resize(n);
    for (int64_t i = 0; i < n; i++) {
        float x = nd(rng);
        if (dt == DType::f32) { std::memcpy(&raw[i * 4], &x, 4); exact[i] = x; continue; }
        uint16_t h = dt == DType::f16 ? f32_to_f16(x) : f32_to_bf16(x);
        std::memcpy(&raw[i * 2], &h, 2);
        exact[i] = dt == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
}

}  // namespace sd::test
