// vae.cpp — loading and running the SD 1.x KL-f8 autoencoder (ldm's taming-style Encoder/Decoder).
//
// Compute: the 3×3 convs between feature maps, nearly all of the ~2.5 TFLOP of a 512² decode, run as Winograd
// F(2×2, 3×3) (4/9 of the multiply-adds, conv2d_winograd), each upsample-then-conv as four 2×2 phase convs of
// the small map, each by Winograd F(2×2, 2×2) (1/4, conv2d_upsample2x), the RGB output conv directly
// (conv2d_small_cout).
// Memory: at 512×512 the decoder's top level holds 128-channel 512² maps (134 MB each in f32), so the pass
// keeps only what it must. The running activation x always sits at the arena position the pass started from
// (`base`): each stage allocates its output above, then settle() releases everything above base and moves the
// output down there. Same-width res blocks and attention add into x in place, and conv1 writes over the norm1
// output it reads; a width-changing block takes its 1×1 shortcut first and then normalises x in place, and
// where the width shrinks conv1 writes over x too; the upsampled map is never formed. A decode at 512² thus
// peaks at three 128-channel 512² maps, 384 MiB (the 256→128 block: x of 256 channels and the shortcut), plus
// the band scratch of a Winograd conv (~26 MiB). vae_decode_arena_bytes() counts that from the shapes, and the
// pass reserves it on entry: an arena that grew stage by stage would keep every block it added.
// Left out: posterior sampling. Tiling, for images whose peak here would not fit, is vae_tiled.cpp.
#include "models/vae.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "models/ops.h"

namespace sd {

namespace {

constexpr int64_t kGroups = 32;  // ldm Normalize(): GroupNorm(num_groups=32, eps=1e-6) — not torch's 1e-5
constexpr float kEps = 1e-6f;

// ---- loading ----------------------------------------------------------------------------------------------

VaeResBlock load_res_block(const WeightLoader& w, const std::string& p, int64_t cin, int64_t cout) {
    VaeResBlock b;
    b.norm1_w = w.vec(p + "norm1.weight", {cin});
    b.norm1_b = w.vec(p + "norm1.bias", {cin});
    b.conv1_w = w.mat(p + "conv1.weight", {cout, cin, 3, 3});
    b.conv1_b = w.vec(p + "conv1.bias", {cout});
    b.norm2_w = w.vec(p + "norm2.weight", {cout});
    b.norm2_b = w.vec(p + "norm2.bias", {cout});
    b.conv2_w = w.mat(p + "conv2.weight", {cout, cout, 3, 3});
    b.conv2_b = w.vec(p + "conv2.bias", {cout});
    if (cin != cout) {
        b.skip_w = w.mat(p + "nin_shortcut.weight", {cout, cin, 1, 1});
        b.skip_b = w.vec(p + "nin_shortcut.bias", {cout});
    }
    return b;
}

// ldm stores q/k/v/proj_out as 1×1 convs (C, C, 1, 1); some converted files store Linear weights (C, C).
Tensor load_attn_matrix(const WeightLoader& w, const std::string& name, int64_t C) {
    if (w.shape(name).size() == 2) return w.mat(name, {C, C});
    return w.mat(name, {C, C, 1, 1}).reshape({C, C});
}

VaeAttn load_attn(const WeightLoader& w, const std::string& p, int64_t C) {
    VaeAttn t;
    t.norm_w = w.vec(p + "norm.weight", {C});
    t.norm_b = w.vec(p + "norm.bias", {C});
    t.q_w = load_attn_matrix(w, p + "q.weight", C);
    t.q_b = w.vec(p + "q.bias", {C});
    t.k_w = load_attn_matrix(w, p + "k.weight", C);
    t.k_b = w.vec(p + "k.bias", {C});
    t.v_w = load_attn_matrix(w, p + "v.weight", C);
    t.v_b = w.vec(p + "v.bias", {C});
    t.proj_w = load_attn_matrix(w, p + "proj_out.weight", C);
    t.proj_b = w.vec(p + "proj_out.bias", {C});
    return t;
}

VaeMid load_mid(const WeightLoader& w, const std::string& p, int64_t C) {
    VaeMid m;
    m.block_1 = load_res_block(w, p + "block_1.", C, C);
    m.attn_1 = load_attn(w, p + "attn_1.", C);
    m.block_2 = load_res_block(w, p + "block_2.", C, C);
    return m;
}

// Everything the code needs to know is in the decoder's shapes: level i's width is the output width of its
// first res block; the decoder has num_res_blocks + 1 blocks per level.
VaeConfig infer_config(const WeightLoader& w) {
    VaeConfig c;
    std::vector<int64_t> conv_in = w.shape("decoder.conv_in.weight");   // (Wlast, z, 3, 3)
    std::vector<int64_t> conv_out = w.shape("decoder.conv_out.weight");  // (3, W0, 3, 3)
    if (conv_in.size() != 4 || conv_out.size() != 4)
        throw std::runtime_error(w.file().path() + ": VAE tensor '" + w.prefix() +
                                 "decoder.conv_in.weight' or 'decoder.conv_out.weight' is not 4-D");
    c.z_channels = conv_in[1];
    c.image_channels = conv_out[0];
    const int64_t levels = w.count_indexed("decoder.up."), blocks = w.count_indexed("decoder.up.0.block.");
    for (int64_t i = 0; i < levels; i++)  // throws naming the tensor if a level lacks it
        c.widths.push_back(w.shape("decoder.up." + std::to_string(i) + ".block.0.conv1.weight").at(0));
    if (c.widths.empty() || blocks < 2)
        throw std::runtime_error(w.file().path() + ": no VAE decoder levels under '" + w.prefix() +
                                 "decoder.up.N.block.M.' (need at least one level with two blocks)");
    c.num_res_blocks = blocks - 1;
    return c;
}

VaeEncoder load_encoder(const WeightLoader& w, const VaeConfig& c) {
    const std::vector<int64_t>& W = c.widths;
    const size_t L = W.size();
    VaeEncoder e;
    e.conv_in_w = w.mat("encoder.conv_in.weight", {W[0], c.image_channels, 3, 3});
    e.conv_in_b = w.vec("encoder.conv_in.bias", {W[0]});
    for (size_t i = 0; i < L; i++) {
        std::string p = "encoder.down." + std::to_string(i) + ".";
        VaeLevel lv;
        for (int64_t j = 0; j < c.num_res_blocks; j++) {
            int64_t cin = j == 0 ? W[i ? i - 1 : 0] : W[i];
            lv.blocks.push_back(load_res_block(w, p + "block." + std::to_string(j) + ".", cin, W[i]));
        }
        if (i + 1 < L) {
            lv.resample_w = w.mat(p + "downsample.conv.weight", {W[i], W[i], 3, 3});
            lv.resample_b = w.vec(p + "downsample.conv.bias", {W[i]});
        }
        e.down.push_back(std::move(lv));
    }
    e.mid = load_mid(w, "encoder.mid.", W[L - 1]);
    e.norm_out_w = w.vec("encoder.norm_out.weight", {W[L - 1]});
    e.norm_out_b = w.vec("encoder.norm_out.bias", {W[L - 1]});
    e.conv_out_w = w.mat("encoder.conv_out.weight", {2 * c.z_channels, W[L - 1], 3, 3});
    e.conv_out_b = w.vec("encoder.conv_out.bias", {2 * c.z_channels});
    return e;
}

VaeDecoder load_decoder(const WeightLoader& w, const VaeConfig& c) {
    const std::vector<int64_t>& W = c.widths;
    const size_t L = W.size();
    VaeDecoder d;
    d.conv_in_w = w.mat("decoder.conv_in.weight", {W[L - 1], c.z_channels, 3, 3});
    d.conv_in_b = w.vec("decoder.conv_in.bias", {W[L - 1]});
    d.mid = load_mid(w, "decoder.mid.", W[L - 1]);
    for (size_t i = 0; i < L; i++) {
        std::string p = "decoder.up." + std::to_string(i) + ".";
        VaeLevel lv;
        for (int64_t j = 0; j <= c.num_res_blocks; j++) {
            int64_t cin = j == 0 ? W[i + 1 < L ? i + 1 : L - 1] : W[i];
            lv.blocks.push_back(load_res_block(w, p + "block." + std::to_string(j) + ".", cin, W[i]));
        }
        if (i > 0) {
            lv.resample_w = w.mat(p + "upsample.conv.weight", {W[i], W[i], 3, 3});
            lv.resample_b = w.vec(p + "upsample.conv.bias", {W[i]});
        }
        d.up.push_back(std::move(lv));
    }
    d.norm_out_w = w.vec("decoder.norm_out.weight", {W[0]});
    d.norm_out_b = w.vec("decoder.norm_out.bias", {W[0]});
    d.conv_out_w = w.mat("decoder.conv_out.weight", {c.image_channels, W[0], 3, 3});
    d.conv_out_b = w.vec("decoder.conv_out.bias", {c.image_channels});
    return d;
}

// ---- forward helpers ----------------------------------------------------------------------------------------

// Releases everything above `base` and moves t (allocated above base) down to start there, so the next stage
// finds its input at the bottom and all of the previous stage's temporaries given back. memmove: the two
// ranges may overlap (the new place is never above the old one).
Tensor settle(Arena& a, Arena::Mark base, const Tensor& t) {
    a.release(base);
    Tensor r = a.alloc(t.dims());
    if (r.data != t.data) std::memmove(r.data, t.data, t.nbytes());
    return r;
}

// x (N, C, H, W) = SiLU(GroupNorm(x)), in place.
void norm_silu_inplace(Tensor& x, const Tensor& gamma, const Tensor& beta) {
    int64_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
    group_norm(x.f32(), x.f32(), gamma.f32(), beta.f32(), N, C, HW, kGroups, kEps, /*silu=*/true);
}

// How a 3×3 conv runs: to a handful of output channels (the image) directly (conv2d_small_cout), between
// feature maps by Winograd (conv2d_winograd), from a handful of input channels (the latent) by conv2d, where the
// transformed products would be too thin to pay.
enum class ConvPath { Small, Winograd, Gemm };
ConvPath conv_path(int64_t cin, int64_t cout) {
    return cout <= 4 ? ConvPath::Small : cin >= 8 ? ConvPath::Winograd : ConvPath::Gemm;
}

// out (N, Cout, H, W) = or += conv3x3(x) + b (pad 1). out may be x itself (Cout <= Cin, not accumulating, on
// the Winograd path, which allows that).
void conv3x3(Arena& a, Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b, bool accumulate = false) {
    const int64_t N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3], Cout = w.shape[0];
    assert(w.shape[1] == Cin && w.shape[2] == 3 && out.shape[1] == Cout && out.shape[2] == H);
    const ConvPath path = conv_path(Cin, Cout);
    assert(out.data != x.data || path == ConvPath::Winograd);
    if (path == ConvPath::Small && !accumulate) {
        conv2d_small_cout(out.f32(), x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout);
    } else if (path == ConvPath::Winograd) {
        Arena::Mark m = a.mark();
        Tensor scratch = a.alloc({(int64_t)conv2d_winograd_scratch(Cin, H, W, Cout)});
        conv2d_winograd(out.f32(), x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout, scratch.f32(), accumulate);
        a.release(m);
    } else {
        conv2d(out.f32(), x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout, 3, 1, 1, accumulate);
    }
}

// x (N, Cin, H, W) → conv3x3(x) + b (N, Cout, H, W), a new map.
Tensor conv3x3(Arena& a, const Tensor& x, const Tensor& w, const Tensor& b) {
    Tensor y = a.alloc({x.shape[0], w.shape[0], x.shape[2], x.shape[3]});
    conv3x3(a, y, x, w, b);
    return y;
}

// x (N, C, H, W) → conv3x3(upsample_nearest2x(x)) + b (N, Cout, 2H, 2W), as ldm's Upsample, with 1/4 of the
// multiply-adds and without the upsampled map (conv2d_upsample2x).
Tensor upsample_conv(Arena& a, const Tensor& x, const Tensor& w, const Tensor& b) {
    const int64_t N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3], Cout = w.shape[0];
    assert(w.shape[1] == Cin && w.shape[2] == 3);
    Tensor y = a.alloc({N, Cout, 2 * H, 2 * W});
    Arena::Mark m = a.mark();
    Tensor scratch = a.alloc({(int64_t)conv2d_upsample2x_scratch(Cin, H, W, Cout)});
    conv2d_upsample2x(y.f32(), x.f32(), w.data, w.dtype, b.f32(), N, Cin, H, W, Cout, scratch.f32());
    a.release(m);
    return y;
}

// x (N, Cin, H, W), the arena's top allocation → (N, Cout, H, W). Consumes x (its memory is reused).
Tensor res_block(const VaeResBlock& b, Tensor x, Arena& a) {
    const int64_t N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3], Cout = b.conv1_w.shape[0];
    if (!b.skip_w.data) {  // same width: x += conv2(silu(norm2(conv1(silu(norm1(x)))))), in place
        Arena::Mark m = a.mark();
        Tensor h = group_norm(a, x, b.norm1_w, b.norm1_b, /*silu=*/true, kGroups, kEps);  // (N, C, H, W)
        conv3x3(a, h, h, b.conv1_w, b.conv1_b);  // conv1 over its own input
        norm_silu_inplace(h, b.norm2_w, b.norm2_b);
        conv3x3(a, x, h, b.conv2_w, b.conv2_b, /*accumulate=*/true);
        a.release(m);
        return x;
    }
    // Width changes: take the 1×1 shortcut first; x is then not needed again and is normalised in place, and
    // where the width shrinks (the decoder) conv1 writes its result over x instead of into a map of its own.
    Tensor out = conv2d(a, x, b.skip_w, b.skip_b);  // (N, Cout, H, W)
    Arena::Mark m = a.mark();
    norm_silu_inplace(x, b.norm1_w, b.norm1_b);
    Tensor h = Cout <= Cin ? Tensor::view_of(x.data, {N, Cout, H, W}) : a.alloc({N, Cout, H, W});
    conv3x3(a, h, x, b.conv1_w, b.conv1_b);
    norm_silu_inplace(h, b.norm2_w, b.norm2_b);
    conv3x3(a, out, h, b.conv2_w, b.conv2_b, /*accumulate=*/true);
    a.release(m);
    return out;
}

// x (N, C, H, W) += proj_out(softmax(q kᵀ / sqrt(C)) v), q/k/v = 1×1 convs of norm(x): one head, the H·W
// positions as tokens. Computed in token layout (N, HW, C), where the 1×1 convs are Linear layers. In place.
Tensor attn_block(const VaeAttn& p, Tensor x, Arena& a) {
    int64_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
    Arena::Mark m = a.mark();
    Tensor h = group_norm(a, x, p.norm_w, p.norm_b, /*silu=*/false, kGroups, kEps);  // (N, C, H, W)
    Tensor tokens = a.alloc({N, HW, C});
    for (int64_t n = 0; n < N; n++) transpose(tokens.f32() + n * HW * C, h.f32() + n * C * HW, C, HW);
    Tensor q = linear(a, tokens, p.q_w, p.q_b);  // (N, HW, C)
    Tensor k = linear(a, tokens, p.k_w, p.k_b);  // (N, HW, C)
    Tensor v = linear(a, tokens, p.v_w, p.v_b);  // (N, HW, C)
    Tensor o = a.alloc({N, HW, C});
    attention(o.f32(), C, q.f32(), C, k.f32(), C, v.f32(), C, N, HW, HW, /*heads=*/1, C,
              1.0f / std::sqrt((float)C), /*causal=*/false);
    Tensor proj = linear(a, o, p.proj_w, p.proj_b);  // (N, HW, C)
    for (int64_t n = 0; n < N; n++) transpose(h.f32() + n * C * HW, proj.f32() + n * HW * C, HW, C);
    add(x.f32(), x.f32(), h.f32(), x.numel());
    a.release(m);
    return x;
}

// x (N, C, H, W) → (N, C, H+1, W+1): zeros appended on the right and at the bottom, as ldm's Downsample does
// (F.pad(x, (0, 1, 0, 1))) before its unpadded stride-2 conv; the conv kernel pads symmetrically only.
Tensor pad_right_bottom(Arena& a, const Tensor& x) {
    int64_t NC = x.shape[0] * x.shape[1], H = x.shape[2], W = x.shape[3];
    Tensor y = a.alloc({x.shape[0], x.shape[1], H + 1, W + 1});
    float* dst = y.f32();
    const float* src = x.f32();
    for (int64_t c = 0; c < NC; c++) {
        for (int64_t i = 0; i < H; i++, dst += W + 1, src += W) {
            std::memcpy(dst, src, W * sizeof(float));
            dst[W] = 0.0f;
        }
        std::memset(dst, 0, (W + 1) * sizeof(float));
        dst += W + 1;
    }
    return y;
}

Tensor mid_forward(const VaeMid& m, Tensor x, Arena& a) {
    x = res_block(m.block_1, x, a);
    x = attn_block(m.attn_1, x, a);
    return res_block(m.block_2, x, a);
}

// Grows the arena, if need be, by one block that holds `bytes` from its current top, then gives it back: the
// pass that follows allocates from it without the arena adding a block per stage (all of which it keeps).
void reserve(Arena& a, size_t bytes) {
    Arena::Mark m = a.mark();
    a.bytes(bytes);
    a.release(m);
}

// ---- memory accounting: what each stage of the forwards above holds at once ---------------------------------

struct PeakMeter {
    int64_t B;
    size_t peak = 0;
    size_t map(int64_t C, int64_t h, int64_t w) const { return floats(B * C * h * w); }
    static size_t floats(int64_t n) { return ((size_t)n * 4 + 63) & ~size_t(63); }
    void stage(size_t live) { peak = live > peak ? live : peak; }
    size_t conv3x3_scratch(int64_t cin, int64_t c, int64_t h, int64_t w) const {
        return conv_path(cin, c) == ConvPath::Winograd ? floats(conv2d_winograd_scratch(cin, h, w, c)) : 0;
    }
    // res_block: same width: x and the norm1 output (conv1 writes over it), plus a conv's scratch; else x and the
    // shortcut output, conv1's output unless it writes over x (narrowing), plus a conv's scratch.
    void res_block(int64_t cin, int64_t c, int64_t h, int64_t w) {
        size_t scratch = std::max(conv3x3_scratch(cin, c, h, w), conv3x3_scratch(c, c, h, w));
        if (cin == c) stage(2 * map(c, h, w) + scratch);
        else stage(map(cin, h, w) + map(c, h, w) + (c < cin ? 0 : map(c, h, w)) + scratch);
    }
    // mid: its res blocks, and attention's x, norm output, tokens, q, k, v, attention output, projection.
    void mid(int64_t C, int64_t h, int64_t w) {
        res_block(C, C, h, w);
        stage(8 * map(C, h, w));
    }
};

void check_input(const Tensor& t, int64_t channels, const char* what) {
    if (t.dtype != DType::F32 || t.ndim != 4 || t.shape[1] != channels)
        throw std::runtime_error(std::string(what) + ": expected an F32 (B, " + std::to_string(channels) +
                                 ", H, W) tensor, got " + dtype_name(t.dtype) + " " + t.shape_str());
}

// ---- FLOP counting ------------------------------------------------------------------------------------------

// 2 × multiply-adds of a conv or linear weight applied at `positions` output positions: 2·Cout·Cin·k²·positions.
double weight_flops(const Tensor& w, double positions) { return w.data ? 2.0 * (double)w.numel() * positions : 0.0; }

double res_block_flops(const VaeResBlock& b, double positions) {
    return weight_flops(b.conv1_w, positions) + weight_flops(b.conv2_w, positions) + weight_flops(b.skip_w, positions);
}

double mid_flops(const VaeMid& m, double B, double HW) {
    const VaeAttn& t = m.attn_1;
    double C = (double)t.q_w.shape[0];
    double attn = weight_flops(t.q_w, B * HW) + weight_flops(t.k_w, B * HW) + weight_flops(t.v_w, B * HW) +
                  weight_flops(t.proj_w, B * HW) + B * 4.0 * HW * HW * C;  // QKᵀ and AV
    return res_block_flops(m.block_1, B * HW) + attn + res_block_flops(m.block_2, B * HW);
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------------------------

size_t vae_decode_arena_bytes(const Vae& vae, int64_t B, int64_t h, int64_t w) {
    const std::vector<int64_t>& W = vae.cfg.widths;
    const int64_t z = vae.cfg.z_channels;
    PeakMeter m{B};
    m.stage(2 * m.map(z, h, w));                          // scaled z, post_quant_conv output
    m.stage(m.map(z, h, w) + m.map(W.back(), h, w) + m.conv3x3_scratch(z, W.back(), h, w));  // conv_in
    m.mid(W.back(), h, w);
    int64_t cin = W.back();
    for (size_t i = W.size(); i-- > 0;) {
        for (int64_t j = 0; j <= vae.cfg.num_res_blocks; j++, cin = W[i]) m.res_block(cin, W[i], h, w);
        if (i > 0) {  // x, the upsampling conv's output and its scratch
            m.stage(m.map(W[i], h, w) + m.map(W[i], 2 * h, 2 * w) +
                    m.floats(conv2d_upsample2x_scratch(W[i], h, w, W[i])));
            h *= 2, w *= 2;
        }
    }
    m.stage(m.map(W[0], h, w) + m.map(vae.cfg.image_channels, h, w) +  // conv_out
            m.conv3x3_scratch(W[0], vae.cfg.image_channels, h, w));
    return m.peak;
}

size_t vae_encode_arena_bytes(const Vae& vae, int64_t B, int64_t H, int64_t W_) {
    const std::vector<int64_t>& W = vae.cfg.widths;
    const int64_t z = vae.cfg.z_channels;
    PeakMeter m{B};
    int64_t h = H, w = W_, cin = W[0];
    m.stage(m.map(W[0], h, w) + m.conv3x3_scratch(vae.cfg.image_channels, W[0], h, w));  // conv_in; image: caller's
    for (size_t i = 0; i < W.size(); i++) {
        for (int64_t j = 0; j < vae.cfg.num_res_blocks; j++, cin = W[i]) m.res_block(cin, W[i], h, w);
        if (i + 1 < W.size()) {  // x and its padded copy, then that and the stride-2 conv output
            m.stage(m.map(W[i], h, w) + m.map(W[i], h + 1, w + 1));
            m.stage(m.map(W[i], h + 1, w + 1) + m.map(W[i], h / 2, w / 2));
            h /= 2, w /= 2;
        }
    }
    m.mid(W.back(), h, w);
    m.stage(m.map(W.back(), h, w) + m.map(2 * z, h, w) + m.conv3x3_scratch(W.back(), 2 * z, h, w));  // conv_out
    m.stage(m.map(2 * z, h, w) + m.map(z, h, w));         // the mean half of quant_conv
    return m.peak;
}

Vae load_vae(const SafeTensors& st, const std::string& prefix) {
    std::string p = prefix;
    if (p.empty() && st.has("first_stage_model.decoder.conv_in.weight")) p = "first_stage_model.";
    WeightLoader w(st, p);
    Vae vae;
    vae.cfg = infer_config(w);
    const int64_t z = vae.cfg.z_channels;
    vae.has_encoder = w.has("encoder.conv_in.weight");
    if (vae.has_encoder) {
        vae.encoder = load_encoder(w, vae.cfg);
        vae.quant_conv_w = w.mat("quant_conv.weight", {2 * z, 2 * z, 1, 1});
        vae.quant_conv_b = w.vec("quant_conv.bias", {2 * z});
    }
    vae.post_quant_conv_w = w.mat("post_quant_conv.weight", {z, z, 1, 1});
    vae.post_quant_conv_b = w.vec("post_quant_conv.bias", {z});
    vae.decoder = load_decoder(w, vae.cfg);
    return vae;
}

Tensor vae_decode(const Vae& vae, const Tensor& z, Arena& a) {
    check_input(z, vae.cfg.z_channels, "vae_decode");
    const VaeDecoder& d = vae.decoder;
    reserve(a, vae_decode_arena_bytes(vae, z.shape[0], z.shape[2], z.shape[3]));
    Arena::Mark base = a.mark();  // the running activation x always starts here
    Tensor x = a.alloc(z.dims());  // (B, z, h, w): back from UNet space to the VAE's own latent scale
    const float* zp = z.f32();
    float* xp = x.f32();
    for (int64_t i = 0; i < z.numel(); i++) xp[i] = zp[i] / kVaeScale;
    x = settle(a, base, conv2d(a, x, vae.post_quant_conv_w, vae.post_quant_conv_b));  // (B, z, h, w)
    x = settle(a, base, conv3x3(a, x, d.conv_in_w, d.conv_in_b));                     // (B, Wlast, h, w)
    x = mid_forward(d.mid, x, a);
    for (size_t i = d.up.size(); i-- > 0;) {  // the deepest level first
        for (const VaeResBlock& b : d.up[i].blocks) x = settle(a, base, res_block(b, x, a));  // (B, W[i], ., .)
        if (d.up[i].resample_w.data)  // (B, W[i], 2·, 2·)
            x = settle(a, base, upsample_conv(a, x, d.up[i].resample_w, d.up[i].resample_b));
    }
    norm_silu_inplace(x, d.norm_out_w, d.norm_out_b);
    return settle(a, base, conv3x3(a, x, d.conv_out_w, d.conv_out_b));  // (B, 3, 8h, 8w)
}

Tensor vae_encode(const Vae& vae, const Tensor& img, Arena& a) {
    if (!vae.has_encoder) throw std::runtime_error("vae_encode: this VAE has no encoder weights");
    check_input(img, vae.cfg.image_channels, "vae_encode");
    const int64_t factor = int64_t(1) << (vae.cfg.widths.size() - 1);
    if (img.shape[2] % factor || img.shape[3] % factor)
        throw std::runtime_error("vae_encode: image size " + std::to_string(img.shape[3]) + "x" +
                                 std::to_string(img.shape[2]) + " is not a multiple of " + std::to_string(factor));
    const VaeEncoder& e = vae.encoder;
    const int64_t z = vae.cfg.z_channels;
    reserve(a, vae_encode_arena_bytes(vae, img.shape[0], img.shape[2], img.shape[3]));
    Arena::Mark base = a.mark();  // the running activation x always starts here
    Tensor x = conv3x3(a, img, e.conv_in_w, e.conv_in_b);  // (B, W0, H, W)
    for (const VaeLevel& lv : e.down) {
        for (const VaeResBlock& b : lv.blocks) x = settle(a, base, res_block(b, x, a));
        if (lv.resample_w.data) {
            x = settle(a, base, pad_right_bottom(a, x));  // (B, C, H+1, W+1)
            x = settle(a, base, conv2d(a, x, lv.resample_w, lv.resample_b, /*stride=*/2, /*pad=*/0));
        }
    }
    x = mid_forward(e.mid, x, a);
    norm_silu_inplace(x, e.norm_out_w, e.norm_out_b);
    x = settle(a, base, conv3x3(a, x, e.conv_out_w, e.conv_out_b));  // (B, 2z, h, w): mean, log-variance
    // Only the mean is wanted: the first z output channels of quant_conv, i.e. the first z rows of its weight.
    Tensor mean_w = Tensor::view_of(vae.quant_conv_w.data, {z, 2 * z, 1, 1}, vae.quant_conv_w.dtype);
    Tensor mean_b = Tensor::view_of(vae.quant_conv_b.data, {z}, DType::F32);
    x = settle(a, base, conv2d(a, x, mean_w, mean_b));  // (B, z, h, w)
    float* xp = x.f32();
    for (int64_t i = 0; i < x.numel(); i++) xp[i] *= kVaeScale;  // into UNet space
    return x;
}

double vae_decode_flops(const Vae& vae, int64_t B, int64_t h, int64_t w) {
    const VaeDecoder& d = vae.decoder;
    double pos = (double)(B * h * w);  // output positions at the current resolution
    double f = weight_flops(vae.post_quant_conv_w, pos) + weight_flops(d.conv_in_w, pos);
    f += mid_flops(d.mid, (double)B, (double)(h * w));
    for (size_t i = d.up.size(); i-- > 0;) {
        for (const VaeResBlock& b : d.up[i].blocks) f += res_block_flops(b, pos);
        if (d.up[i].resample_w.data) {
            pos *= 4;
            f += weight_flops(d.up[i].resample_w, pos);
        }
    }
    return f + weight_flops(d.conv_out_w, pos);
}

double vae_encode_flops(const Vae& vae, int64_t B, int64_t H, int64_t W) {
    if (!vae.has_encoder) return 0.0;
    const VaeEncoder& e = vae.encoder;
    double pos = (double)(B * H * W);
    double f = weight_flops(e.conv_in_w, pos);
    int64_t h = H, w = W;
    for (const VaeLevel& lv : e.down) {
        for (const VaeResBlock& b : lv.blocks) f += res_block_flops(b, pos);
        if (lv.resample_w.data) {
            h /= 2, w /= 2;
            pos = (double)(B * h * w);
            f += weight_flops(lv.resample_w, pos);
        }
    }
    f += mid_flops(e.mid, (double)B, (double)(h * w));
    return f + weight_flops(e.conv_out_w, pos) + weight_flops(vae.quant_conv_w, pos) / 2;  // mean half only
}

}  // namespace sd
