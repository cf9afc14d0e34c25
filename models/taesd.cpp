// taesd.cpp — loading and running TAESD (madebyollin/taesd): plain 64-channel conv stacks, no norms, no attention.
//
// Memory follows the VAE's scheme: the running activation always sits where the pass started in the arena
// (s.keep() moves each stage's output down there), and identity-skip blocks add into it in place, so a
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

TaesdBlock bind_block(Binder& w, int index, int64_t cin, int64_t c) {
    const std::string p = std::to_string(index) + ".";
    TaesdBlock b;
    b.conv0 = w.conv(p + "conv.0", c, cin, 3);
    b.conv1 = w.conv(p + "conv.2", c, c, 3);
    b.conv2 = w.conv(p + "conv.4", c, c, 3);
    if (cin != c) b.skip = w.conv(p + "skip", c, cin, 1, /*bias=*/false);
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

// ---- forward ----------------------------------------------------------------------------------------------

void relu_(Tensor& x) {
    float* p = x.f32();
    for (int64_t i = 0, n = x.numel(); i < n; i++) p[i] = p[i] > 0.0f ? p[i] : 0.0f;
}

// x (N, C, H, W), the arena's top allocation → relu(conv(x) + skip(x)). Consumes x (in place if identity skip).
Tensor block(const TaesdBlock& b, Tensor x, Arena& a) {
    Tensor out = b.skip.w.data ? conv(a, x, b.skip) : x;  // (N, C, H, W), 1×1 without bias
    ArenaScope s(a);
    Tensor h = conv(a, x, b.conv0);   // (N, C, H, W)
    relu_(h);
    h = conv(a, h, b.conv1);          // (N, C, H, W)
    relu_(h);
    conv_into(a, out, h, b.conv2, /*accumulate=*/true);  // out = skip(x) + conv2(h)
    relu_(out);
    return out;
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------------------------

Taesd load_taesd_decoder(const std::string& path, bool xl) {
    Taesd t;
    t.file = xl ? open_weights(path, taesdxl_embedded_decoder(), "built-in taesdxl_decoder.safetensors")
                : open_weights(path, taesd_embedded_decoder(), "built-in taesd_decoder.safetensors");
    t.is_decoder = true;
    require(*t.file, "1.weight", "decoder");
    WeightLoader file(*t.file, "");
    Binder w(file);
    const int64_t C = file.shape("1.weight")[0], latent = file.shape("1.weight")[1];  // 64, 4
    const int kBlocks[3][3] = {{3, 4, 5}, {8, 9, 10}, {13, 14, 15}};
    const int kUpConv[3] = {7, 12, 17};  // after the Upsample at 6 / 11 / 16
    TaesdDecoder& d = t.decoder;
    d.conv_in = w.conv("1", C, latent, 3);
    for (int s = 0; s < 3; s++) {
        for (int j = 0; j < 3; j++) d.stages[s].blocks[j] = bind_block(w, kBlocks[s][j], C, C);
        d.stages[s].up = w.conv(std::to_string(kUpConv[s]), C, C, 3, /*bias=*/false);
    }
    d.block_out = bind_block(w, 18, C, C);
    d.conv_out = w.conv("19", 3, C, 3);
    return t;
}

Taesd load_taesd_encoder(const std::string& path, bool xl) {
    Taesd t;
    t.file = xl ? open_weights(path, taesdxl_embedded_encoder(), "built-in taesdxl_encoder.safetensors")
                : open_weights(path, taesd_embedded_encoder(), "built-in taesd_encoder.safetensors");
    t.is_decoder = false;
    require(*t.file, "0.weight", "encoder");
    WeightLoader file(*t.file, "");
    Binder w(file);
    const int64_t C = file.shape("0.weight")[0], latent = file.shape("14.weight")[0];  // 64, 4
    const int kDownConv[3] = {2, 6, 10};
    const int kBlocks[3][3] = {{3, 4, 5}, {7, 8, 9}, {11, 12, 13}};
    TaesdEncoder& e = t.encoder;
    e.conv_in = w.conv("0", C, 3, 3);
    e.block_in = bind_block(w, 1, C, C);
    for (int s = 0; s < 3; s++) {
        e.stages[s].down = w.conv(std::to_string(kDownConv[s]), C, C, 3, /*bias=*/false);
        for (int j = 0; j < 3; j++) e.stages[s].blocks[j] = bind_block(w, kBlocks[s][j], C, C);
    }
    e.conv_out = w.conv("14", latent, C, 3);
    return t;
}

Tensor taesd_decode(const Taesd& t, const Tensor& z, Arena& a) {
    if (!t.is_decoder) throw std::runtime_error("taesd_decode: these TAESD weights are an encoder");
    const TaesdDecoder& d = t.decoder;
    check_input(z, d.conv_in.w.shape[1], "taesd_decode");
    ArenaScope s(a);  // the running activation x always starts where s does
    Tensor x = a.alloc(z.dims());  // (B, 4, h, w) = tanh(z / 3) · 3: a soft clamp to ±3
    const float* zp = z.f32();
    float* xp = x.f32();
    for (int64_t i = 0; i < z.numel(); i++) xp[i] = std::tanh(zp[i] / 3.0f) * 3.0f;
    x = s.keep(conv(a, x, d.conv_in));  // (B, 64, h, w)
    relu_(x);
    for (const TaesdDecoder::Stage& st : d.stages) {
        for (const TaesdBlock& b : st.blocks) x = s.keep(block(b, x, a));
        x = s.keep(upsample_conv(a, x, st.up));  // (B, 64, 2·, 2·), no bias
    }
    x = s.keep(block(d.block_out, x, a));
    return s.keep(conv(a, x, d.conv_out));  // (B, 3, 8h, 8w)
}

Tensor taesd_encode(const Taesd& t, const Tensor& img, Arena& a) {
    if (t.is_decoder) throw std::runtime_error("taesd_encode: these TAESD weights are a decoder");
    const TaesdEncoder& e = t.encoder;
    check_input(img, 3, "taesd_encode");
    // any size: each stride-2 conv (padding 1) rounds an odd side up, so the latent is ceil(H/8) × ceil(W/8)
    ArenaScope s(a);  // the running activation x always starts where s does
    Tensor x = conv(a, img, e.conv_in);  // (B, 64, H, W)
    x = s.keep(block(e.block_in, x, a));
    for (const TaesdEncoder::Stage& st : e.stages) {
        x = s.keep(conv(a, x, st.down, /*stride=*/2, /*pad=*/1));  // (B, 64, ·/2, ·/2)
        for (const TaesdBlock& b : st.blocks) x = s.keep(block(b, x, a));
    }
    return s.keep(conv(a, x, e.conv_out));  // (B, 4, ⌈H/8⌉, ⌈W/8⌉)
}

}  // namespace sd
