// taesd.cpp — loading and running TAESD (madebyollin/taesd): plain 64-channel conv stacks, no norms, no attention.
//
// Memory follows the VAE's scheme: the running activation always sits where the pass started in the arena
// (settle() moves each stage's output down there), and identity-skip blocks add into it in place, so a
// decode to 512² peaks at three 64-channel 512² maps (200 MB).
#include "models/taesd.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "models/ops.h"
#include "models/weights.h"

namespace sd {

namespace {

// ---- loading ----------------------------------------------------------------------------------------------

TaesdBlock load_block(const WeightLoader& w, int index, int64_t cin, int64_t c) {
    std::string p = std::to_string(index) + ".";
    TaesdBlock b;
    b.conv0_w = w.mat(p + "conv.0.weight", {c, cin, 3, 3});
    b.conv0_b = w.vec(p + "conv.0.bias", {c});
    b.conv1_w = w.mat(p + "conv.2.weight", {c, c, 3, 3});
    b.conv1_b = w.vec(p + "conv.2.bias", {c});
    b.conv2_w = w.mat(p + "conv.4.weight", {c, c, 3, 3});
    b.conv2_b = w.vec(p + "conv.4.bias", {c});
    if (cin != c) b.skip_w = w.mat(p + "skip.weight", {c, cin, 1, 1});
    return b;
}

std::shared_ptr<const SafeTensors> open_weights(const std::string& path, EmbeddedFile builtin, const char* label) {
    if (!path.empty()) return std::make_shared<const SafeTensors>(path);
    return std::make_shared<const SafeTensors>(SafeTensors::from_memory(builtin.data, builtin.size, label));
}

void require(const SafeTensors& st, const char* name, const char* what) {
    if (!st.has(name))
        throw std::runtime_error(st.path() + ": not a TAESD " + what + " (no tensor '" + name + "')");
}

// ---- forward helpers ----------------------------------------------------------------------------------------

// Releases everything above `base` and moves t (allocated above base) down to start there; memmove because
// the ranges may overlap. (The same helper as in vae.cpp.)
Tensor settle(Arena& a, Arena::Mark base, const Tensor& t) {
    a.release(base);
    Tensor r = a.alloc(t.dims());
    if (r.data != t.data) std::memmove(r.data, t.data, t.nbytes());
    return r;
}

void relu_inplace(Tensor& x) {
    float* p = x.f32();
    for (int64_t i = 0, n = x.numel(); i < n; i++) p[i] = p[i] > 0.0f ? p[i] : 0.0f;
}

// x (N, C, H, W), the arena's top allocation → relu(conv(x) + skip(x)). Consumes x (in place if identity skip).
Tensor block(const TaesdBlock& b, Tensor x, Arena& a) {
    Tensor out = x;
    if (b.skip_w.data) out = conv2d(a, x, b.skip_w, Tensor());  // (N, C, H, W), 1×1 without bias
    Arena::Mark m = a.mark();
    Tensor h = conv2d(a, x, b.conv0_w, b.conv0_b);  // (N, C, H, W)
    relu_inplace(h);
    Tensor h2 = conv2d(a, h, b.conv1_w, b.conv1_b);  // (N, C, H, W)
    relu_inplace(h2);
    conv2d(out.f32(), h2.f32(), b.conv2_w.data, b.conv2_w.dtype, b.conv2_b.f32(), h2.shape[0], h2.shape[1],
           h2.shape[2], h2.shape[3], b.conv2_w.shape[0], 3, /*stride=*/1, /*pad=*/1, /*accumulate=*/true);
    a.release(m);
    relu_inplace(out);
    return out;
}

Tensor upsample2x(Arena& a, const Tensor& x) {
    Tensor y = a.alloc({x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]});
    upsample_nearest2x(y.f32(), x.f32(), x.shape[0] * x.shape[1], x.shape[2], x.shape[3]);
    return y;
}

void check_input(const Tensor& t, int64_t channels, const char* what) {
    if (t.dtype != DType::F32 || t.ndim != 4 || t.shape[1] != channels)
        throw std::runtime_error(std::string(what) + ": expected an F32 (B, " + std::to_string(channels) +
                                 ", H, W) tensor, got " + dtype_name(t.dtype) + " " + t.shape_str());
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------------------------

Taesd load_taesd_decoder(const std::string& path) {
    Taesd t;
    t.file = open_weights(path, taesd_embedded_decoder(), "built-in taesd_decoder.safetensors");
    t.is_decoder = true;
    require(*t.file, "1.weight", "decoder");
    WeightLoader w(*t.file, "");
    const int64_t C = w.shape("1.weight")[0], latent = w.shape("1.weight")[1];  // 64, 4
    const int kBlocks[3][3] = {{3, 4, 5}, {8, 9, 10}, {13, 14, 15}};
    const int kUpConv[3] = {7, 12, 17};  // after the Upsample at 6 / 11 / 16
    TaesdDecoder& d = t.decoder;
    d.conv_in_w = w.mat("1.weight", {C, latent, 3, 3});
    d.conv_in_b = w.vec("1.bias", {C});
    for (int s = 0; s < 3; s++) {
        for (int j = 0; j < 3; j++) d.stages[s].blocks[j] = load_block(w, kBlocks[s][j], C, C);
        d.stages[s].up_w = w.mat(std::to_string(kUpConv[s]) + ".weight", {C, C, 3, 3});
    }
    d.block_out = load_block(w, 18, C, C);
    d.conv_out_w = w.mat("19.weight", {3, C, 3, 3});
    d.conv_out_b = w.vec("19.bias", {3});
    return t;
}

Taesd load_taesd_encoder(const std::string& path) {
    Taesd t;
    t.file = open_weights(path, taesd_embedded_encoder(), "built-in taesd_encoder.safetensors");
    t.is_decoder = false;
    require(*t.file, "0.weight", "encoder");
    WeightLoader w(*t.file, "");
    const int64_t C = w.shape("0.weight")[0], latent = w.shape("14.weight")[0];  // 64, 4
    const int kDownConv[3] = {2, 6, 10};
    const int kBlocks[3][3] = {{3, 4, 5}, {7, 8, 9}, {11, 12, 13}};
    TaesdEncoder& e = t.encoder;
    e.conv_in_w = w.mat("0.weight", {C, 3, 3, 3});
    e.conv_in_b = w.vec("0.bias", {C});
    e.block_in = load_block(w, 1, C, C);
    for (int s = 0; s < 3; s++) {
        e.stages[s].down_w = w.mat(std::to_string(kDownConv[s]) + ".weight", {C, C, 3, 3});
        for (int j = 0; j < 3; j++) e.stages[s].blocks[j] = load_block(w, kBlocks[s][j], C, C);
    }
    e.conv_out_w = w.mat("14.weight", {latent, C, 3, 3});
    e.conv_out_b = w.vec("14.bias", {latent});
    return t;
}

Tensor taesd_decode(const Taesd& t, const Tensor& z, Arena& a) {
    if (!t.is_decoder) throw std::runtime_error("taesd_decode: these TAESD weights are an encoder");
    const TaesdDecoder& d = t.decoder;
    check_input(z, d.conv_in_w.shape[1], "taesd_decode");
    Arena::Mark base = a.mark();  // the running activation x always starts here
    Tensor x = a.alloc(z.dims());  // (B, 4, h, w) = tanh(z / 3) · 3: a soft clamp to ±3
    const float* zp = z.f32();
    float* xp = x.f32();
    for (int64_t i = 0; i < z.numel(); i++) xp[i] = std::tanh(zp[i] / 3.0f) * 3.0f;
    x = settle(a, base, conv2d(a, x, d.conv_in_w, d.conv_in_b));  // (B, 64, h, w)
    relu_inplace(x);
    for (const TaesdDecoder::Stage& s : d.stages) {
        for (const TaesdBlock& b : s.blocks) x = settle(a, base, block(b, x, a));
        x = settle(a, base, upsample2x(a, x));                   // (B, 64, 2·, 2·)
        x = settle(a, base, conv2d(a, x, s.up_w, Tensor()));     // no bias
    }
    x = settle(a, base, block(d.block_out, x, a));
    return settle(a, base, conv2d(a, x, d.conv_out_w, d.conv_out_b));  // (B, 3, 8h, 8w)
}

Tensor taesd_encode(const Taesd& t, const Tensor& img, Arena& a) {
    if (t.is_decoder) throw std::runtime_error("taesd_encode: these TAESD weights are a decoder");
    const TaesdEncoder& e = t.encoder;
    check_input(img, 3, "taesd_encode");
    if (img.shape[2] % 8 || img.shape[3] % 8)
        throw std::runtime_error("taesd_encode: image size " + std::to_string(img.shape[3]) + "x" +
                                 std::to_string(img.shape[2]) + " is not a multiple of 8");
    Arena::Mark base = a.mark();  // the running activation x always starts here
    Tensor x = conv2d(a, img, e.conv_in_w, e.conv_in_b);  // (B, 64, H, W)
    x = settle(a, base, block(e.block_in, x, a));
    for (const TaesdEncoder::Stage& s : e.stages) {
        x = settle(a, base, conv2d(a, x, s.down_w, Tensor(), /*stride=*/2, /*pad=*/1));  // (B, 64, ·/2, ·/2)
        for (const TaesdBlock& b : s.blocks) x = settle(a, base, block(b, x, a));
    }
    return settle(a, base, conv2d(a, x, e.conv_out_w, e.conv_out_b));  // (B, 4, H/8, W/8)
}

}  // namespace sd
