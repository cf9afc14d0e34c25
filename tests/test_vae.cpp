// test_vae.cpp — the KL-f8 VAE against goldens from the PyTorch reference (tools/reference.py, ref_vae.py) on
// the tiny real-layout checkpoint tests/data/tiny_sd.safetensors: decode, encode, odd sizes, batches, the
// arena discipline, 2-D attention weights, loader errors. The full-size 512² decode is a skipped case.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "compare.h"
#include "full_model.h"
#include "json.h"
#include "kernels/kernels.h"
#include "models/vae.h"
#include "safetensors.h"

using namespace sd;

namespace {

Tensor owned(const Tensor& t) {  // an owned copy of a file-backed F32 tensor
    Tensor c = Tensor::zeros(t.dims());
    std::memcpy(c.data, t.data, t.nbytes());
    return c;
}

// The goldens are float64 computations from the same F16 weights, stored as F32. Ours runs in f32: each conv
// sums up to 900 products with unit roundoff 6e-8, through ~30 convs, 13 group norms and one softmax.
// Measured (scalar, AVX2, AVX-512 alike): max-abs 4e-6 on decoded values up to 2.6 (1.9e-7 on encoded means up
// to 0.12), NMSE ~3e-12. Bounds: max-abs 2e-5 of the golden's largest magnitude (5-10× the measured) and NMSE
// 1e-10 (40×). These are tight on purpose: with random weights a GroupNorm eps of 1e-5 instead of ldm's 1e-6
// changes the decode by only 2e-4 max-abs (NMSE 5e-9), which they catch; structural mistakes (a swapped
// level, symmetric instead of right/bottom padding before the stride-2 conv) are far larger.
constexpr double kRelAtol = 2e-5, kMaxNmse = 1e-10;

void check_close(const char* what, const Tensor& got, const Tensor& want) {
    REQUIRE_MESSAGE(got.dims() == want.dims(), what << ": shape " << got.shape_str() << " vs " << want.shape_str());
    test::Diff d = test::compare(got, want, test::scale_tol(kRelAtol, kMaxNmse));
    MESSAGE(d.summary(what));
    CHECK_MESSAGE(d.ok, d.summary(what));
}

// All "first_stage_model." tensors without the prefix, attention q/k/v/proj_out as 2-D (C, C) matrices, minus
// `drop` — a standalone VAE file in the layout some converters write.
void write_standalone_vae(const SafeTensors& st, const std::string& path, const std::string& drop = "") {
    const std::string prefix = "first_stage_model.";
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorInfo& info : st.tensors()) {
        if (info.name.compare(0, prefix.size(), prefix) != 0) continue;
        std::string name = info.name.substr(prefix.size());
        if (name == drop) continue;
        Tensor t = st.get(info.name);
        if (name.find("attn_1.") != std::string::npos && t.ndim == 4) t = t.reshape({t.shape[0], t.shape[1]});
        tensors.emplace_back(name, t);
    }
    write_safetensors(path, tensors);
}

}  // namespace

TEST_CASE("vae: configuration is read off the tensor shapes") {
    SafeTensors st("tests/data/tiny_sd.safetensors");
    Vae vae = load_vae(st);
    // tools/reference.py records the tiny VAE's ldm config in the file's metadata.
    JsonValue cfg = parse_json(st.metadata().at("vae_config"));
    const int64_t ch = (int64_t)cfg.get("ch")->number;
    const JsonValue& mult = *cfg.get("ch_mult");
    REQUIRE(vae.cfg.widths.size() == mult.items.size());
    for (size_t i = 0; i < mult.items.size(); i++) CHECK(vae.cfg.widths[i] == ch * (int64_t)mult.items[i].number);
    CHECK(vae.cfg.num_res_blocks == (int64_t)cfg.get("num_res_blocks")->number);
    CHECK(vae.cfg.z_channels == (int64_t)cfg.get("z_channels")->number);
    CHECK(vae.cfg.image_channels == 3);
    CHECK(vae.has_encoder);
}

TEST_CASE("vae: decode and encode match the PyTorch golden") {
    SafeTensors st("tests/data/tiny_sd.safetensors");
    SafeTensors golden("tests/data/golden_vae.safetensors");
    Vae vae = load_vae(st);
    Arena arena;

    Tensor z = owned(golden.get("z"));
    Tensor img = vae_decode(vae, z, arena);  // (1, 4, 8, 8) → (1, 3, 64, 64)
    check_close("vae decode", img, owned(golden.get("decoded")));
    // The arena holds no more than vae_decode_arena_bytes() (it reserves that much up front, so a fresh arena
    // has one block and its peak is the true high-water mark), and that in turn is the scheme's analytic peak,
    // in full-resolution maps of one channel: the upsampling conv into the top level (W1/4 in, W1 out, its
    // scratch), the narrowing W1 → W0 block (x, the shortcut; conv1 writes over x; a Winograd conv's scratch) or
    // a same-width top block (x, the norm1 output that conv1 overwrites, the scratch), plus a little for the
    // small maps and 64-byte alignment.
    const int64_t W0 = vae.cfg.widths[0], W1 = vae.cfg.widths.size() > 1 ? vae.cfg.widths[1] : W0;
    const size_t full = 64 * 64 * 4;
    const size_t up = (size_t)(W1 / 4 + W1) * full + 4 * conv2d_upsample2x_scratch(W1, 32, 32, W1);
    const size_t narrow = (size_t)(W1 + W0) * full + 4 * conv2d_winograd_scratch(W1, 64, 64, W0);
    const size_t same = (size_t)(2 * W0) * full + 4 * conv2d_winograd_scratch(W0, 64, 64, W0);
    const size_t peak_bound = std::max({up, narrow, same}) + (64 << 10);
    const size_t accounted = vae_decode_arena_bytes(vae, 1, 8, 8);
    MESSAGE("vae decode 64x64: arena peak " << arena.peak() << " B, accounted " << accounted << ", bound " << peak_bound);
    CHECK(arena.peak() <= accounted);
    CHECK(accounted <= peak_bound);
    // Everything but the result was given back: the next allocation follows it directly.
    CHECK(arena.alloc({1}).data == (char*)img.data + ((img.nbytes() + 63) & ~size_t(63)));
    arena.reset();

    Arena arena2;  // fresh, so its peak is this pass's alone
    Tensor mean = vae_encode(vae, owned(golden.get("image")), arena2);  // (1, 3, 32, 32) → (1, 4, 4, 4)
    check_close("vae encode", mean, owned(golden.get("encoded_mean")));
    CHECK(arena2.peak() <= vae_encode_arena_bytes(vae, 1, 32, 32));

    // A non-square latent, and the same latent twice in a batch of two (each must equal the single result).
    Tensor zb = owned(golden.get("z_b"));  // (1, 4, 4, 6)
    Tensor want_b = owned(golden.get("decoded_b"));
    check_close("vae decode 4x6", vae_decode(vae, zb, arena), want_b);
    arena.reset();
    Tensor z2 = Tensor::zeros({2, 4, 4, 6});
    std::memcpy(z2.f32(), zb.f32(), zb.nbytes());
    std::memcpy(z2.f32() + zb.numel(), zb.f32(), zb.nbytes());
    Tensor img2 = vae_decode(vae, z2, arena);
    REQUIRE(img2.same_shape({2, 3, 32, 48}));
    for (int n = 0; n < 2; n++)
        check_close("vae decode batch of 2", Tensor::view_of(img2.f32() + n * want_b.numel(), want_b.dims()), want_b);
}

TEST_CASE("vae: a standalone file with 2-D attention weights decodes the same; missing tensors are named") {
    SafeTensors st("tests/data/tiny_sd.safetensors");
    SafeTensors golden("tests/data/golden_vae.safetensors");
    const std::string path = "/tmp/sd_test_vae_" + std::to_string(getpid()) + ".safetensors";
    Tensor z = owned(golden.get("z"));
    Arena arena;
    {
        Vae vae = load_vae(st);
        Tensor want = owned(vae_decode(vae, z, arena));
        arena.reset();
        write_standalone_vae(st, path);
        SafeTensors st2(path);
        Vae vae2 = load_vae(st2);
        CHECK(vae2.decoder.mid.attn_1.q.w.ndim == 2);
        Tensor got = vae_decode(vae2, z, arena);
        CHECK(std::memcmp(got.data, want.data, want.nbytes()) == 0);  // same bytes in, same bits out
    }
    write_standalone_vae(st, path, "decoder.mid.attn_1.v.bias");
    SafeTensors st3(path);
    CHECK_THROWS_WITH_AS(load_vae(st3), doctest::Contains("decoder.mid.attn_1.v.bias"), std::runtime_error);
    std::remove(path.c_str());

    Vae vae = load_vae(st);
    CHECK_THROWS_AS(vae_decode(vae, Tensor::zeros({1, 3, 8, 8}), arena), std::runtime_error);     // 3 channels
    CHECK_THROWS_AS(vae_encode(vae, Tensor::zeros({1, 3, 4, 32}), arena), std::runtime_error);    // 4 < 8
    // other sides floor as ldm's padded stride-2 downsampling does (the latent resize mode encodes any size)
    CHECK(vae_encode(vae, Tensor::zeros({1, 3, 36, 39}), arena).same_shape({1, vae.cfg.z_channels, 4, 4}));
}

// The decode's FLOPs counted again from the ldm config alone (a second, independent walk of the architecture;
// the same walk in Python gives 2514.518933504 GFLOP for the real VAE at a 64×64 latent, checked below).
double ldm_decode_flops(int64_t ch, const std::vector<int64_t>& mult, int64_t nrb, int64_t z, int64_t h, int64_t w) {
    const size_t L = mult.size();
    double pos = (double)(h * w), C = (double)(ch * mult[L - 1]);
    double f = 2.0 * z * z * pos + 2.0 * C * z * 9 * pos;                       // post_quant_conv, conv_in
    f += 4 * (2.0 * C * C * 9 * pos) + 4 * (2.0 * C * C * pos) + 4.0 * pos * pos * C;  // mid: 4 convs, attention
    double cin = C;
    for (size_t i = L; i-- > 0;) {
        double c = (double)(ch * mult[i]);
        for (int64_t j = 0; j <= nrb; j++, cin = c)
            f += 2.0 * c * cin * 9 * pos + 2.0 * c * c * 9 * pos + (cin != c ? 2.0 * c * cin * pos : 0.0);
        if (i > 0) pos *= 4, f += 2.0 * c * c * 9 * pos;                            // upsample conv
    }
    return f + 2.0 * 3 * cin * 9 * pos;                                            // conv_out
}

TEST_CASE("vae: FLOP count of a decode") {
    SafeTensors st("tests/data/tiny_sd.safetensors");
    Vae vae = load_vae(st);
    JsonValue cfg = parse_json(st.metadata().at("vae_config"));
    std::vector<int64_t> mult;
    for (const JsonValue& m : cfg.get("ch_mult")->items) mult.push_back((int64_t)m.number);
    const int64_t ch = (int64_t)cfg.get("ch")->number, nrb = (int64_t)cfg.get("num_res_blocks")->number;
    CHECK(vae_decode_flops(vae, 1, 8, 8) == doctest::Approx(ldm_decode_flops(ch, mult, nrb, 4, 8, 8)).epsilon(1e-12));
    CHECK(vae_decode_flops(vae, 1, 4, 6) == doctest::Approx(ldm_decode_flops(ch, mult, nrb, 4, 4, 6)).epsilon(1e-12));
    CHECK(vae_decode_flops(vae, 3, 8, 8) == doctest::Approx(3 * vae_decode_flops(vae, 1, 8, 8)).epsilon(1e-12));
    CHECK(ldm_decode_flops(128, {1, 2, 4, 4}, 2, 4, 64, 64) == doctest::Approx(2514.518933504e9).epsilon(1e-12));
}

// The real SD 1.x VAE at 512×512 (a 64×64 latent): time, arena peak, GFLOP/s. Skipped by default (tens of
// seconds, needs the 2 GB checkpoint of tests/full_model.h): build/run_tests -tc="*full-size*" --no-skip.
TEST_CASE("vae: full-size 512x512 decode with the real weights" * doctest::skip()) {
    const std::string path = test::full_size_model();
    SafeTensors st(path);
    Vae vae = load_vae(st);
    CHECK(vae.cfg.widths == std::vector<int64_t>{128, 256, 512, 512});
    Tensor z = Tensor::zeros({1, 4, 64, 64});
    uint32_t seed = 1;
    for (int64_t i = 0; i < z.numel(); i++) {  // a smooth-ish latent of UNet-space scale (std ~1)
        seed = seed * 1664525u + 1013904223u;
        z.f32()[i] = (float)((seed >> 8) * (1.0 / 16777216.0) * 3.4 - 1.7);
    }
    Arena arena;
    auto t0 = std::chrono::steady_clock::now();
    Tensor img = vae_decode(vae, z, arena);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double gflop = vae_decode_flops(vae, 1, 64, 64) / 1e9;
    double lo = 1e30, hi = -1e30;
    for (int64_t i = 0; i < img.numel(); i++) lo = std::min(lo, (double)img.f32()[i]), hi = std::max(hi, (double)img.f32()[i]);
    MESSAGE("vae decode 512x512: " << secs << " s, " << gflop << " GFLOP, " << gflop / secs << " GFLOP/s, arena peak "
            << arena.peak() / 1048576.0 << " MiB, output range [" << lo << ", " << hi << "]");
    CHECK(gflop == doctest::Approx(2514.518933504).epsilon(1e-12));
    CHECK(img.same_shape({1, 3, 512, 512}));
    CHECK(std::isfinite(lo));
    CHECK(std::isfinite(hi));
    // The scheme's peak: the 256 → 128 block at 512² holds x (256 channels) and the shortcut (128): three
    // 128-channel 512² maps, 384 MiB, plus the Winograd conv's band scratch (~26 MiB).
    const size_t maps = (size_t)3 * 128 * 512 * 512 * 4;
    CHECK(vae_decode_arena_bytes(vae, 1, 64, 64) >= maps);
    CHECK(vae_decode_arena_bytes(vae, 1, 64, 64) <= maps + (32u << 20));
    CHECK(arena.peak() <= vae_decode_arena_bytes(vae, 1, 64, 64));
}
