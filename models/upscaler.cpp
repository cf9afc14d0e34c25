// upscaler.cpp — detecting, binding and running RRDBNet and SRVGGNetCompact (see upscaler.h).
//
// Detection follows spandrel (architectures/ESRGAN and Compact, which the webui v1.10.1 loads upscalers with):
// the block count from the largest body index, the network's scale from the number of upsample convs, the
// pixel-unshuffle factor from in_nc = out_nc·4 or ·16, the Compact scale and out_nc from the last conv's width.
// Memory: the running activation always sits where the pass started in the arena; a dense block's
// torch.cat((x, x1, x2, x3), 1) is one (nf + 4gc)-channel map each conv writes its slice of, so nothing is copied.
#include "models/upscaler.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "models/weights.h"

namespace sd {

namespace {

// ---- key conventions --------------------------------------------------------------------------------------

enum class Layout { old_esrgan, basicsr, bsrgan };

// The module path of each RRDBNet layer in one convention (the BasicSR names are the ones used in code).
struct EsrganKeys {
    Layout layout;
    int64_t blocks;
    int n_up;

    std::string first() const { return layout == Layout::old_esrgan ? "model.0" : "conv_first"; }
    std::string dense(int64_t b, int rdb, int conv) const {  // rdb, conv 1-based, as in the files
        const std::string B = std::to_string(b), r = std::to_string(rdb), c = std::to_string(conv);
        if (layout == Layout::old_esrgan) return "model.1.sub." + B + ".RDB" + r + ".conv" + c + ".0";
        if (layout == Layout::bsrgan) return "RRDB_trunk." + B + ".RDB" + r + ".conv" + c;
        return "body." + B + ".rdb" + r + ".conv" + c;
    }
    std::string body() const {
        if (layout == Layout::old_esrgan) return "model.1.sub." + std::to_string(blocks);
        return layout == Layout::bsrgan ? "trunk_conv" : "conv_body";
    }
    std::string up(int i) const {  // i = 0 .. n_up-1; the old Sequential is [Upsample, Conv, LeakyReLU] per stage
        if (layout == Layout::old_esrgan) return "model." + std::to_string(3 * (i + 1));
        return (layout == Layout::bsrgan ? "upconv" : "conv_up") + std::to_string(i + 1);
    }
    std::string hr() const {
        if (layout == Layout::old_esrgan) return "model." + std::to_string(3 * n_up + 2);
        return layout == Layout::bsrgan ? "HRconv" : "conv_hr";
    }
    std::string last() const {
        return layout == Layout::old_esrgan ? "model." + std::to_string(3 * n_up + 4) : "conv_last";
    }
};

const char* layout_name(Layout l) {
    return l == Layout::old_esrgan ? "old ESRGAN" : l == Layout::bsrgan ? "BSRGAN" : "BasicSR";
}

bool is_rank4(const SafeTensors& st, const std::string& name) {
    const TensorInfo* t = st.find(name);
    return t && t->shape.size() == 4;
}

// Which RRDBNet convention the file uses, or false (spandrel's ESRGANArch detect conditions).
bool detect_esrgan(const SafeTensors& st, Layout* layout) {
    if (st.has("model.0.weight") && st.has("model.1.sub.0.RDB1.conv1.0.weight")) *layout = Layout::old_esrgan;
    else if (st.has("conv_first.weight") && st.has("body.0.rdb1.conv1.weight")) *layout = Layout::basicsr;
    else if (st.has("conv_first.weight") && st.has("RRDB_trunk.0.RDB1.conv1.weight")) *layout = Layout::bsrgan;
    else return false;
    return true;
}

bool detect_compact(const SafeTensors& st) {
    const TensorInfo* b1 = st.find("body.1.weight");
    return is_rank4(st, "body.0.weight") && b1 && b1->shape.size() == 1;
}

// ---- loading ----------------------------------------------------------------------------------------------

RRDBNet::DenseBlock bind_dense(Binder& w, const EsrganKeys& k, int64_t b, int rdb, int64_t nf, int64_t gc) {
    RRDBNet::DenseBlock d;
    for (int i = 0; i < 4; i++) d.conv[i] = w.conv(k.dense(b, rdb, i + 1), gc, nf + i * gc, 3);
    d.conv[4] = w.conv(k.dense(b, rdb, 5), nf, nf + 4 * gc, 3);
    return d;
}

void load_esrgan(Upscaler& u, Layout layout) {
    const SafeTensors& st = *u.file;
    WeightLoader file(st, "");
    if (st.has("model.1.sub.0.RDB1.conv1x1.weight"))
        throw std::runtime_error(st.path() + ": ESRGAN+ models (conv1x1 in the dense blocks) are not supported");
    EsrganKeys k{layout, 0, 0};
    // Block count: 1 + the largest trunk index (the old layout's conv_body is the entry after the last block).
    if (layout == Layout::old_esrgan) k.blocks = file.count_indexed("model.1.sub.") - 1;
    else k.blocks = file.count_indexed(layout == Layout::bsrgan ? "RRDB_trunk." : "body.");
    if (layout == Layout::old_esrgan) {
        // model: conv, shortcut, [upsample, conv, lrelu] × n_up, conv, lrelu, conv — spandrel's _get_scale.
        const int64_t seq_len = file.count_indexed("model.");
        if (seq_len < 5 || (seq_len - 5) % 3 != 0)
            throw std::runtime_error(st.path() + ": the ESRGAN layers model.0 .. model." + std::to_string(seq_len - 1) +
                                     " do not form [conv, trunk, (upsample, conv, act)×n, conv, act, conv]");
        k.n_up = (int)((seq_len - 5) / 3);
    } else {
        while (st.has(k.up(k.n_up) + ".weight")) k.n_up++;
    }
    if (k.n_up > 3) throw std::runtime_error(st.path() + ": an RRDBNet with more than 3 upsample stages (8x) is not supported");

    RRDBNet& m = u.rrdb;
    const std::vector<int64_t> first = file.shape(k.first() + ".weight");  // (nf, in_nc, 3, 3)
    const std::vector<int64_t> last = file.shape(k.last() + ".weight");    // (out_nc, nf, 3, 3)
    if (first.size() != 4 || last.size() != 4)
        throw std::runtime_error(st.path() + ": conv_first and conv_last of an RRDBNet must be 4-D conv weights");
    m.nf = first[0];
    m.gc = file.shape(k.dense(0, 1, 1) + ".weight")[0];
    const int64_t in_nc = first[1], out_nc = last[0];
    // Real-ESRGAN x2plus / x1: the image is pixel-unshuffled into in_nc = out_nc·shuffle² channels.
    m.shuffle = in_nc == out_nc * 4 ? 2 : in_nc == out_nc * 16 ? 4 : 1;
    const int net_scale = 1 << k.n_up;
    if (net_scale < m.shuffle)
        throw std::runtime_error(st.path() + ": an RRDBNet that shrinks its image (scale " + std::to_string(net_scale) +
                                 ", unshuffle " + std::to_string(m.shuffle) + ") is not supported");
    u.scale = net_scale / m.shuffle;
    u.in_channels = in_nc / (m.shuffle * m.shuffle);
    u.out_channels = out_nc;
    u.layout = layout_name(layout);

    Binder w(file);
    m.conv_first = w.conv(k.first(), m.nf, in_nc, 3);
    m.body.resize(k.blocks);
    for (int64_t b = 0; b < k.blocks; b++)
        for (int r = 0; r < 3; r++) m.body[b].rdb[r] = bind_dense(w, k, b, r + 1, m.nf, m.gc);
    m.conv_body = w.conv(k.body(), m.nf, m.nf, 3);
    for (int i = 0; i < k.n_up; i++) m.conv_up.push_back(w.conv(k.up(i), m.nf, m.nf, 3));
    m.conv_hr = w.conv(k.hr(), m.nf, m.nf, 3);
    m.conv_last = w.conv(k.last(), out_nc, m.nf, 3);
    w.refuse_unused(std::string("RRDBNet (") + layout_name(layout) + " keys)");
}

void load_compact(Upscaler& u) {
    const SafeTensors& st = *u.file;
    WeightLoader file(st, "");
    // body: conv, prelu, (conv, prelu) × num_conv, conv: 2·num_conv + 3 entries.
    const int64_t highest = file.count_indexed("body.") - 1;
    if (highest < 2 || highest % 2 != 0)
        throw std::runtime_error(st.path() + ": the SRVGGNetCompact layers body.0 .. body." + std::to_string(highest) +
                                 " do not form [conv, prelu, (conv, prelu)×n, conv]");
    const int64_t num_conv = (highest - 2) / 2;
    SRVGGNetCompact& m = u.compact;
    const std::vector<int64_t> first = file.shape("body.0.weight");  // (nf, in_nc, 3, 3)
    m.nf = first[0];
    const int64_t in_nc = first[1];
    // out·scale² channels before the pixel shuffle: spandrel's get_scale_and_output_channels.
    const int64_t shuffled = file.shape("body." + std::to_string(highest) + ".weight")[0];
    int64_t out_nc = 0, scale = 0;
    for (int64_t c : {in_nc, (int64_t)3, (int64_t)4, (int64_t)1}) {
        const int64_t s = c > 0 && shuffled % c == 0 ? (int64_t)std::llround(std::sqrt((double)(shuffled / c))) : 0;
        if (s > 0 && s * s * c == shuffled) { out_nc = c; scale = s; break; }
    }
    if (!scale || scale > 8)
        throw std::runtime_error(st.path() + ": the last conv's " + std::to_string(shuffled) +
                                 " channels are not out_channels·scale² for 1, 3 or 4 channels and a scale up to 8");
    u.scale = (int)scale;
    u.in_channels = in_nc;
    u.out_channels = out_nc;
    u.layout = "SRVGGNetCompact";

    Binder w(file);
    for (int64_t i = 0; i <= num_conv; i++) {
        m.conv.push_back(w.conv("body." + std::to_string(2 * i), m.nf, i == 0 ? in_nc : m.nf, 3));
        m.prelu.push_back(w.vec("body." + std::to_string(2 * i + 1) + ".weight", {m.nf}));
    }
    m.conv_last = w.conv("body." + std::to_string(highest), shuffled, m.nf, 3);
    w.refuse_unused("SRVGGNetCompact");
}

// ---- forward ----------------------------------------------------------------------------------------------

void leaky_relu_(Tensor& x) {  // nn.LeakyReLU(0.2), in place
    float* p = x.f32();
    for (int64_t i = 0, n = x.numel(); i < n; i++) p[i] = p[i] >= 0.0f ? p[i] : 0.2f * p[i];
}

void prelu_(Tensor& x, const Tensor& slope) {  // nn.PReLU(C): x (1, C, H, W), slope (C)
    const int64_t C = x.shape[1], HW = x.shape[2] * x.shape[3];
    float* p = x.f32();
    for (int64_t c = 0; c < C; c++) {
        const float a = slope.f32()[c];
        for (float* q = p + c * HW; q < p + (c + 1) * HW; q++) *q = *q >= 0.0f ? *q : a * *q;
    }
}

void add_scaled_(Tensor& x, const Tensor& y, float s) {  // x += s·y: the 0.2 residual scaling
    assert(x.numel() == y.numel());
    float* p = x.f32();
    const float* q = y.f32();
    for (int64_t i = 0, n = x.numel(); i < n; i++) p[i] += s * q[i];
}

// Channels [c0, c0 + n) of one image x (1, C, H, W): a view of the same memory (contiguous for one image).
Tensor channels(const Tensor& x, int64_t c0, int64_t n) {
    assert(x.shape[0] == 1 && c0 + n <= x.shape[1]);
    const int64_t HW = x.shape[2] * x.shape[3];
    return Tensor::view_of(const_cast<float*>(x.f32()) + c0 * HW, {1, n, x.shape[2], x.shape[3]});
}

// x (1, nf, H, W) ← x + 0.2·conv5(x ‖ x1 ‖ x2 ‖ x3 ‖ x4), xi = lrelu(conv_i(x ‖ x1 ‖ .. ‖ x_{i-1})).
void dense_block_(const RRDBNet::DenseBlock& b, Tensor& x, int64_t gc, Arena& a) {
    ArenaScope s(a);
    const int64_t nf = x.shape[1];
    Tensor cat = a.alloc({1, nf + 4 * gc, x.shape[2], x.shape[3]});  // x | x1 | x2 | x3 | x4
    std::memcpy(cat.data, x.data, x.nbytes());
    for (int i = 0; i < 4; i++) {
        Tensor xi = channels(cat, nf + i * gc, gc);                 // (1, gc, H, W)
        conv_into(a, xi, channels(cat, 0, nf + i * gc), b.conv[i]);
        leaky_relu_(xi);
    }
    add_scaled_(x, conv(a, cat, b.conv[4]), 0.2f);
}

// x (1, nf, H, W) ← x + 0.2·rdb3(rdb2(rdb1(x))).
void rrdb_(const RRDBNet::RRDB& b, Tensor& x, int64_t gc, Arena& a) {
    ArenaScope s(a);
    Tensor h = copy(a, x);
    for (const RRDBNet::DenseBlock& d : b.rdb) dense_block_(d, h, gc, a);
    add_scaled_(x, h, 0.2f);
}

// x (1, C, H, W) → reflect-padded on the bottom and right to multiples of m (F.pad(..., mode="reflect")).
Tensor reflect_pad_to_multiple(Arena& a, const Tensor& x, int m) {
    const int64_t C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const int64_t Hp = (H + m - 1) / m * m, Wp = (W + m - 1) / m * m;
    if (Hp == H && Wp == W) return x;
    auto reflect = [](int64_t i, int64_t n) { return i < n ? i : n > 1 ? 2 * (n - 1) - i : 0; };
    Tensor y = a.alloc({1, C, Hp, Wp});
    for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < Hp; i++)
            for (int64_t j = 0; j < Wp; j++)
                y.f32()[(c * Hp + i) * Wp + j] = x.f32()[(c * H + reflect(i, H)) * W + reflect(j, W)];
    return y;
}

// torch.pixel_unshuffle: x (1, C, r·h, r·w) → (1, C·r², h, w), out[c·r² + i·r + j, y, x] = in[c, y·r + i, x·r + j].
Tensor pixel_unshuffle(Arena& a, const Tensor& x, int r) {
    const int64_t C = x.shape[1], h = x.shape[2] / r, w = x.shape[3] / r, W = x.shape[3];
    Tensor y = a.alloc({1, C * r * r, h, w});
    float* o = y.f32();
    for (int64_t c = 0; c < C; c++)
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++, o += h * w)
                for (int64_t yy = 0; yy < h; yy++)
                    for (int64_t xx = 0; xx < w; xx++) o[yy * w + xx] = x.f32()[(c * h * r + yy * r + i) * W + xx * r + j];
    return y;
}

Tensor rrdbnet_forward(const RRDBNet& m, const Tensor& x, int64_t out_h, int64_t out_w, Arena& a) {
    ArenaScope s(a);  // the running activation fea always starts where s does
    Tensor in = m.shuffle > 1 ? pixel_unshuffle(a, reflect_pad_to_multiple(a, x, m.shuffle), m.shuffle) : x;
    Tensor fea = s.keep(conv(a, in, m.conv_first));  // (1, nf, h, w)
    {
        ArenaScope t(a);
        Tensor trunk = copy(a, fea);
        for (const RRDBNet::RRDB& b : m.body) rrdb_(b, trunk, m.gc, a);
        add_(fea, conv(a, trunk, m.conv_body));       // the long skip over the whole trunk
    }
    for (const Conv& up : m.conv_up) {
        fea = s.keep(upsample_conv(a, fea, up));       // (1, nf, 2·, 2·): nearest 2×, conv
        leaky_relu_(fea);
    }
    fea = s.keep(conv(a, fea, m.conv_hr));
    leaky_relu_(fea);
    Tensor out = conv(a, fea, m.conv_last);            // (1, out, scale·h, scale·w)
    if (out.shape[2] == out_h && out.shape[3] == out_w) return s.keep(out);
    // Unshuffled input padded to a multiple: crop back to scale × the input's size (spandrel's forward).
    Tensor crop = a.alloc({1, out.shape[1], out_h, out_w});
    for (int64_t c = 0; c < out.shape[1]; c++)
        for (int64_t i = 0; i < out_h; i++)
            std::memcpy(crop.f32() + (c * out_h + i) * out_w, out.f32() + (c * out.shape[2] + i) * out.shape[3],
                        out_w * sizeof(float));
    return s.keep(crop);
}

Tensor compact_forward(const SRVGGNetCompact& m, const Tensor& x, int r, Arena& a) {
    ArenaScope s(a);
    Tensor h = x;
    for (size_t i = 0; i < m.conv.size(); i++) {
        h = s.keep(conv(a, h, m.conv[i]));  // (1, nf, H, W)
        prelu_(h, m.prelu[i]);
    }
    Tensor last = conv(a, h, m.conv_last);   // (1, out·r², H, W)
    const int64_t C = last.shape[1] / (r * r), H = x.shape[2], W = x.shape[3], Cx = x.shape[1];
    Tensor out = a.alloc({1, C, H * r, W * r});
    // nn.PixelShuffle(r): out[c, y·r + i, x·r + j] = last[c·r² + i·r + j, y, x]; plus the input upsampled
    // nearest (F.interpolate(x, scale_factor=r)), channel c of the input for output c (out == in channels).
    float* o = out.f32();
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H * r; y++)
            for (int64_t xx = 0; xx < W * r; xx++) {
                const int64_t i = y % r, j = xx % r, sy = y / r, sx = xx / r;
                const float base = x.f32()[((c % Cx) * H + sy) * W + sx];
                o[(c * H * r + y) * W * r + xx] = last.f32()[((c * r * r + i * r + j) * H + sy) * W + sx] + base;
            }
    return s.keep(out);
}

bool looks_pickled(const std::string& path) {
    const size_t dot = path.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
    if (ext == ".pth" || ext == ".pt" || ext == ".ckpt" || ext == ".bin") return true;
    std::ifstream f(path, std::ios::binary);
    char head[4] = {};
    f.read(head, 4);
    // A zip (torch.save since 1.6) or a raw pickle stream (protocol 2+ starts with 0x80).
    return f.gcount() == 4 && (std::memcmp(head, "PK\x03\x04", 4) == 0 || (unsigned char)head[0] == 0x80);
}

}  // namespace

// ---- public -----------------------------------------------------------------------------------------------------

Upscaler load_upscaler(const std::string& path) {
    if (looks_pickled(path) && std::ifstream(path).good())
        throw std::runtime_error(path + " is a PyTorch pickle file, which sd never loads (unpickling can run code): "
                                 "convert it to .safetensors first");
    return load_upscaler(std::make_shared<const SafeTensors>(path));
}

Upscaler load_upscaler(std::shared_ptr<const SafeTensors> file) {
    Upscaler u;
    u.file = std::move(file);
    Layout layout;
    if (detect_esrgan(*u.file, &layout)) {
        u.arch = UpscalerArch::esrgan;
        load_esrgan(u, layout);
    } else if (detect_compact(*u.file)) {
        u.arch = UpscalerArch::compact;
        load_compact(u);
    } else {
        throw std::runtime_error(u.file->path() + " is not an ESRGAN (RRDBNet) or Real-ESRGAN Compact (SRVGGNet) upscaler");
    }
    if (u.in_channels != 3 || u.out_channels != 3)
        throw std::runtime_error(u.file->path() + ": only RGB upscalers are supported (this one maps " +
                                 std::to_string(u.in_channels) + " to " + std::to_string(u.out_channels) + " channels)");
    return u;
}

std::string describe_upscaler(const SafeTensors& st) {
    Layout layout;
    if (!detect_esrgan(st, &layout) && !detect_compact(st)) return "";
    // Describing a real file needs no forward pass, only the binding; the shared_ptr does not own `st`.
    Upscaler u;
    try {
        u = load_upscaler(std::shared_ptr<const SafeTensors>(&st, [](const SafeTensors*) {}));
    } catch (const std::exception& e) {
        return std::string("an upscaler this program cannot run: ") + e.what();
    }
    std::string s;
    if (u.arch == UpscalerArch::esrgan) {
        s = "ESRGAN (RRDBNet, " + u.layout + " keys) " + std::to_string(u.scale) + "x, " +
            std::to_string(u.rrdb.body.size()) + " blocks, " + std::to_string(u.rrdb.nf) + " features, growth " +
            std::to_string(u.rrdb.gc);
        if (u.rrdb.shuffle > 1) s += ", pixel-unshuffle " + std::to_string(u.rrdb.shuffle);
    } else {
        s = "Real-ESRGAN Compact (SRVGGNetCompact) " + std::to_string(u.scale) + "x, " +
            std::to_string(u.compact.conv.size() - 1) + " convs, " + std::to_string(u.compact.nf) + " features";
    }
    return s;
}

Tensor upscaler_forward(const Upscaler& u, const Tensor& x, Arena& a) {
    check_input(x, u.in_channels, "upscaler_forward");
    if (x.shape[0] != 1) throw std::runtime_error("upscaler_forward: one image at a time (got a batch of " +
                                                  std::to_string(x.shape[0]) + ")");
    if (u.arch == UpscalerArch::compact) return compact_forward(u.compact, x, u.scale, a);
    return rrdbnet_forward(u.rrdb, x, x.shape[2] * u.scale, x.shape[3] * u.scale, a);
}

double upscaler_macs_per_pixel(const Upscaler& u) {
    auto conv = [](const Conv& c) { return (double)c.w.numel(); };  // per output pixel: Cout·Cin·k²
    if (u.arch == UpscalerArch::compact) {
        double m = conv(u.compact.conv_last);
        for (const Conv& c : u.compact.conv) m += conv(c);
        return m;
    }
    const RRDBNet& n = u.rrdb;
    double low = conv(n.conv_first) + conv(n.conv_body);  // at the network's input resolution
    for (const RRDBNet::RRDB& b : n.body)
        for (const RRDBNet::DenseBlock& d : b.rdb)
            for (const Conv& c : d.conv) low += conv(c);
    double high = 0, area = 1;
    for (const Conv& c : n.conv_up) { area *= 4; high += area * conv(c); }
    high += area * (conv(n.conv_hr) + conv(n.conv_last));
    return (low + high) / (n.shuffle * n.shuffle);  // per pixel of the image fed in
}

}  // namespace sd
