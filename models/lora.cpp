// lora.cpp — LoRA / LyCORIS files: grouping, the name table, ΔW per format, merging (see lora.h).
#include "models/lora.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include "sha256.h"
#include "kernels/kernels.h"
#include "models/weights.h"

namespace sd {

namespace {

bool starts(const std::string& s, const char* p) { return s.compare(0, std::strlen(p), p) == 0; }
bool ends(const std::string& s, const std::string& p) {
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
std::string underscored(std::string s) {
    for (char& c : s)
        if (c == '.') c = '_';
    return s;
}

// ---- reading -------------------------------------------------------------------------------------------------------

// The parts a layer may have, as kohya and LyCORIS name them.
const std::set<std::string> kParts = {
    "lora_up.weight", "lora_down.weight", "lora_mid.weight", "alpha",     "scale",
    "hada_w1_a",      "hada_w1_b",        "hada_w2_a",       "hada_w2_b", "hada_t1",
    "hada_t2",        "lokr_w1",          "lokr_w1_a",       "lokr_w1_b", "lokr_w2",
    "lokr_w2_a",      "lokr_w2_b",        "lokr_t2"};
// Parts of module kinds the webui knows and we do not apply: refused by name rather than half applied.
const std::map<std::string, std::string> kUnsupported = {
    {"dora_scale", "DoRA"},      {"diff", "full-weight (\"diff\")"}, {"diff_b", "full-weight (\"diff\")"},
    {"w_norm", "norm"},          {"b_norm", "norm"},                  {"weight", "(IA)^3"},
    {"on_input", "(IA)^3"},      {"a1.weight", "GLoRA"},              {"oft_blocks", "OFT"},
    {"oft_diag", "OFT"},         {"bias", "bias-update"}};

// A tensor name → (layer name in kohya form, part name), or false if it is not a layer part (bundled
// embeddings...). Diffusers / PEFT names ("unet.down_blocks.0. ... .to_q.lora_A.weight") are rewritten to the
// kohya form ("lora_unet_down_blocks_0_..._to_q", "lora_down.weight"), as the webui's lora_A → lora_down.
bool split_key(const std::string& name, std::string* layer, std::string* part) {
    static const std::pair<const char*, const char*> peft_parts[] = {
        {".lora_A.weight", "lora_down.weight"}, {".lora_B.weight", "lora_up.weight"},
        {".lora.down.weight", "lora_down.weight"}, {".lora.up.weight", "lora_up.weight"},
        {".lora_down.weight", "lora_down.weight"}, {".lora_up.weight", "lora_up.weight"}, {".alpha", "alpha"}};
    static const std::pair<const char*, const char*> peft_prefixes[] = {
        {"unet.", "lora_unet_"}, {"text_encoder_2.", "lora_te2_"}, {"text_encoder.", "lora_te_"},
        {"text_model.", "lora_te_text_model."}};
    if (!starts(name, "lora_") && !starts(name, "bundle_emb")) {
        for (const auto& pp : peft_parts) {
            if (!ends(name, pp.first)) continue;
            std::string module = name.substr(0, name.size() - std::strlen(pp.first));
            std::string head = "lora_unet_";  // bare diffusers UNet names (down_blocks.0...)
            for (const auto& pre : peft_prefixes)
                if (starts(module, pre.first)) {
                    module = module.substr(std::strlen(pre.first));
                    head = pre.second;
                    break;
                }
            *layer = underscored(head + module);
            *part = pp.second;
            return true;
        }
    }
    const size_t dot = name.find('.');
    if (dot == std::string::npos) return false;
    *layer = name.substr(0, dot);
    *part = name.substr(dot + 1);
    return starts(*layer, "lora_") || starts(*layer, "lycoris_");
}

}  // namespace

LoraFile read_lora(std::unique_ptr<SafeTensors> st) {
    LoraFile f;
    f.path = st->path();
    std::map<std::string, size_t> at;
    for (const TensorInfo& t : st->tensors()) {
        std::string layer, part;
        if (!split_key(t.name, &layer, &part)) continue;
        if (starts(layer, "lycoris_")) layer = "lora_unet_" + layer.substr(8);  // LyCORIS' own UNet prefix
        auto bad = kUnsupported.find(part);
        if (bad != kUnsupported.end())
            throw std::runtime_error(f.path + ": layer " + layer + " is a " + bad->second +
                                     " module, which is not supported (LoRA, LoCon, LoHa and LoKr are)");
        if (!kParts.count(part))
            throw std::runtime_error(f.path + ": tensor '" + t.name + "' is not a LoRA, LoHa or LoKr part");
        auto it = at.find(layer);
        if (it == at.end()) {
            it = at.emplace(layer, f.layers.size()).first;
            f.layers.push_back({layer, {}});
        }
        f.layers[it->second].w[part] = st->get(t.name);  // throws naming a non-float part
    }
    if (f.layers.empty())
        throw std::runtime_error(f.path + " has no LoRA layers (no lora_up/lora_down, lora_A/lora_B, hada_ or lokr_ "
                                          "tensors)");
    f.st = std::move(st);
    return f;
}

LoraFile read_lora(const std::string& path) {
    const size_t dot = path.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
    if (ext == ".pt" || ext == ".ckpt" || ext == ".pth" || ext == ".bin")
        throw std::runtime_error(path + " is a pickled PyTorch file; only .safetensors LoRAs can be read (convert it "
                                        "with a safetensors converter first)");
    return read_lora(std::make_unique<SafeTensors>(path));
}

std::string lora_hash(const std::string& path) {
    FILE* fp = std::fopen(path.c_str(), "rb");
    if (!fp) throw std::runtime_error(path + ": cannot be read");
    uint8_t len[8];
    if (std::fread(len, 1, 8, fp) != 8) {
        std::fclose(fp);
        throw std::runtime_error(path + ": too short for a safetensors file");
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | len[i];
    if (std::fseek(fp, (long)n, SEEK_CUR) != 0) {
        std::fclose(fp);
        throw std::runtime_error(path + ": cannot be read");
    }
    Sha256 h;
    std::vector<uint8_t> buf(1 << 20);
    size_t got;
    while ((got = std::fread(buf.data(), 1, buf.size(), fp)) > 0) h.update(buf.data(), got);
    std::fclose(fp);
    return h.hex();
}

std::string lora_family(const LoraFile& f) {
    const auto& md = f.st->metadata();
    auto meta = [&](const char* k) { auto it = md.find(k); return it == md.end() ? std::string() : it->second; };
    const std::string base = meta("ss_base_model_version");
    if (starts(base, "sdxl")) return "SDXL";
    if (starts(base, "sd_v2") || meta("ss_v2") == "True") return "SD 2.x";
    if (starts(base, "sd_v1")) return "SD 1.x";
    for (const LoraLayer& l : f.layers)
        if (starts(l.key, "lora_te1_") || starts(l.key, "lora_te2_") || starts(l.key, "lora_unet_input_blocks_") ||
            starts(l.key, "lora_unet_label_emb") || starts(l.key, "lora_unet_add_embedding"))
            return "SDXL";
    for (const LoraLayer& l : f.layers) {  // the width the cross-attention keys (or the text encoder) read
        const bool kv = l.key.find("attn2_to_k") != std::string::npos;
        const bool te = starts(l.key, "lora_te_") && ends(l.key, "q_proj");
        if (!kv && !te) continue;
        auto it = l.w.find("lora_down.weight");
        if (it == l.w.end()) it = l.w.find("hada_w1_b");
        if (it == l.w.end() || it->second.ndim < 2) continue;
        const int64_t width = it->second.shape[1];
        if (width == 768) return "SD 1.x";
        if (width == 1024) return "SD 2.x";
        if (width == 2048 && kv) return "SDXL";
    }
    return "";
}

// ---- the name table ------------------------------------------------------------------------------------------------

namespace {

// A cursor over a '_'-joined name: eat("down_blocks_"), num(&i) ...
struct Cursor {
    const std::string& s;
    size_t i = 0;
    bool eat(const char* p) {
        if (s.compare(i, std::strlen(p), p) != 0) return false;
        i += std::strlen(p);
        return true;
    }
    bool num(int* v) {
        size_t j = i;
        int n = 0;
        while (j < s.size() && j - i < 4 && s[j] >= '0' && s[j] <= '9') n = n * 10 + (s[j++] - '0');
        if (j == i) return false;
        *v = n;
        i = j;
        return true;
    }
    std::string rest() const { return s.substr(i); }
};

// A diffusers ResnetBlock2D layer → ldm's ResBlock layer.
std::string resnet_layer(const std::string& s) {
    static const std::pair<const char*, const char*> table[] = {
        {"conv1", "in_layers_2"},   {"conv2", "out_layers_3"},          {"norm1", "in_layers_0"},
        {"norm2", "out_layers_0"},  {"time_emb_proj", "emb_layers_1"}, {"conv_shortcut", "skip_connection"}};
    for (const auto& t : table)
        if (s == t.first) return t.second;
    return s;
}

// diffusers UNet2DConditionModel block (the kohya name after lora_unet_) → the ldm/sgm UNetModel module, both
// '_'-joined. The ldm UNet numbers its input blocks 1 + 3·level + j (two res blocks then a downsampler per level),
// output blocks 3·level + j (three res blocks per level, the upsampler inside the third):
//   diffusers                              ldm / sgm
//   conv_in                                input_blocks_0_0
//   time_embedding_linear_1 / _2           time_embed_0 / time_embed_2
//   add_embedding_linear_1 / _2 (SDXL)     label_emb_0_0 / label_emb_0_2
//   down_blocks_I_resnets_J_<res>          input_blocks_(1+3I+J)_0_<res'>
//   down_blocks_I_attentions_J_<attn>      input_blocks_(1+3I+J)_1_<attn>
//   down_blocks_I_downsamplers_0_conv      input_blocks_(3+3I)_0_op
//   mid_block_resnets_J_<res>              middle_block_(2J)_<res'>
//   mid_block_attentions_0_<attn>          middle_block_1_<attn>
//   up_blocks_I_resnets_J_<res>            output_blocks_(3I+J)_0_<res'>
//   up_blocks_I_attentions_J_<attn>        output_blocks_(3I+J)_1_<attn>
//   up_blocks_I_upsamplers_0_conv          output_blocks_(3I+2)_2_conv, or _1_conv where the level has no attention
//   conv_norm_out / conv_out               out_0 / out_2
//   <res>: conv1 norm1 time_emb_proj norm2 conv2 conv_shortcut → in_layers_2 in_layers_0 emb_layers_1
//          out_layers_0 out_layers_3 skip_connection;  <attn> (proj_in, transformer_blocks_0_attn1_to_q, ...) as is.
std::vector<std::string> unet_block(const std::string& d) {
    static const std::pair<const char*, const char*> whole[] = {
        {"conv_in", "input_blocks_0_0"},          {"conv_out", "out_2"},
        {"conv_norm_out", "out_0"},               {"time_embedding_linear_1", "time_embed_0"},
        {"time_embedding_linear_2", "time_embed_2"}, {"add_embedding_linear_1", "label_emb_0_0"},
        {"add_embedding_linear_2", "label_emb_0_2"}};
    for (const auto& w : whole)
        if (d == w.first) return {w.second};
    Cursor c{d};
    int I = 0, J = 0;
    auto block = [&](const char* blocks, int index, bool attn) {
        return std::string(blocks) + std::to_string(index) + (attn ? "_1_" + c.rest() : "_0_" + resnet_layer(c.rest()));
    };
    if (c.eat("down_blocks_") && c.num(&I) && c.eat("_")) {
        if (c.eat("downsamplers_0_conv") && c.rest().empty()) return {"input_blocks_" + std::to_string(3 + 3 * I) + "_0_op"};
        const bool attn = c.eat("attentions_");
        if ((attn || c.eat("resnets_")) && c.num(&J) && c.eat("_")) return {block("input_blocks_", 1 + 3 * I + J, attn)};
        return {};
    }
    c.i = 0;
    if (c.eat("mid_block_")) {
        const bool attn = c.eat("attentions_");
        if ((attn || c.eat("resnets_")) && c.num(&J) && c.eat("_"))
            return {attn ? "middle_block_1_" + c.rest() : "middle_block_" + std::to_string(2 * J) + "_" + resnet_layer(c.rest())};
        return {};
    }
    c.i = 0;
    if (c.eat("up_blocks_") && c.num(&I) && c.eat("_")) {
        if (c.eat("upsamplers_0_conv") && c.rest().empty()) {
            const std::string b = "output_blocks_" + std::to_string(3 * I + 2);
            return {b + "_2_conv", b + "_1_conv"};
        }
        const bool attn = c.eat("attentions_");
        if ((attn || c.eat("resnets_")) && c.num(&J) && c.eat("_")) return {block("output_blocks_", 3 * I + J, attn)};
    }
    return {};
}

// HF CLIP text-encoder layer names (what kohya writes for every text encoder) → open_clip's, for the OpenCLIP
// towers (SD 2.x, SDXL's second): text_model_encoder_layers_N_self_attn_q_proj → transformer_resblocks_N_attn_q_proj
// (q/k/v are then rows of the fused in_proj_weight: LoraIndex), mlp_fc1 / mlp_fc2 → mlp_c_fc / mlp_c_proj.
std::string openclip_layer(const std::string& hf) {
    Cursor c{hf};
    int N = 0;
    if (!(c.eat("text_model_encoder_layers_") && c.num(&N) && c.eat("_"))) return "";
    std::string r = c.rest();
    if (starts(r, "self_attn_")) r = "attn_" + r.substr(10);
    else if (r == "mlp_fc1") r = "mlp_c_fc";
    else if (r == "mlp_fc2") r = "mlp_c_proj";
    return "transformer_resblocks_" + std::to_string(N) + "_" + r;
}

}  // namespace

std::vector<std::string> lora_candidates(const std::string& key) {
    std::vector<std::string> out;
    Cursor c{key};
    if (c.eat("lora_unet_")) {
        for (const std::string& b : unet_block(c.rest())) out.push_back("model_diffusion_model_" + b);
        out.push_back("model_diffusion_model_" + c.rest());  // SDXL kohya files: already the sgm names
        return out;
    }
    // Text encoders: SD 1.x HF CLIP, SD 2.x OpenCLIP, SDXL's CLIP ViT-L (te1) and OpenCLIP bigG (te2).
    const std::string hf_sd1 = "cond_stage_model_transformer_", oc_sd2 = "cond_stage_model_model_",
                      hf_xl = "conditioner_embedders_0_transformer_", oc_xl = "conditioner_embedders_1_model_";
    const bool te = c.eat("lora_te_"), te1 = !te && c.eat("lora_te1_"), te2 = !te && !te1 && c.eat("lora_te2_");
    const std::string r = c.rest(), oc = openclip_layer(r);
    if (te || te1) {
        out.push_back((te ? hf_sd1 : hf_xl) + r);
        out.push_back((te ? hf_xl : hf_sd1) + r);  // te1 names in SD 1.x files, te names in SDXL files
        if (te && !oc.empty()) out.push_back(oc_sd2 + oc);
    } else if (te2 && !oc.empty()) {
        out.push_back(oc_xl + oc);
    }
    return out;
}

LoraIndex::LoraIndex(const std::vector<TensorInfo>& tensors) {
    for (const TensorInfo& t : tensors)
        if (ends(t.name, ".weight") || ends(t.name, ".in_proj_weight"))  // "in_proj_weight" → module "..._in_proj"
            modules_[underscored(t.name.substr(0, t.name.size() - 7))] = {t.name, t.shape.empty() ? 0 : t.shape[0]};
}

bool LoraIndex::resolve(const std::string& key, LoraTarget* out) const {
    for (const std::string& cand : lora_candidates(key)) {
        const bool te = !starts(cand, "model_diffusion_model_");
        auto it = modules_.find(cand);
        if (it != modules_.end()) {
            *out = {it->second.tensor, 0, 0, te};
            return true;
        }
        // q/k/v of an OpenCLIP attention: a third of the rows of its in_proj_weight, in that order.
        static const char* qkv[] = {"_q_proj", "_k_proj", "_v_proj"};
        for (int i = 0; i < 3; i++) {
            if (!ends(cand, qkv[i])) continue;
            auto f = modules_.find(cand.substr(0, cand.size() - 7) + "_in_proj");
            if (f == modules_.end()) continue;
            const int64_t rows = f->second.rows / 3;
            *out = {f->second.tensor, i * rows, rows, te};
            return true;
        }
    }
    return false;
}

// ---- ΔW ------------------------------------------------------------------------------------------------------------

namespace {

// A (rows, numel/rows) f32 copy of a part, the layout the webui's reshape(shape[0], -1) gives.
struct Mat {
    int64_t r = 0, c = 0;
    std::vector<float> v;
};
Mat mat_of(const Tensor& t) {
    Mat m;
    m.r = t.ndim ? t.shape[0] : 1;
    m.c = m.r ? t.numel() / m.r : 0;
    m.v.resize((size_t)t.numel());
    convert_to_f32(m.v.data(), t.data, t.dtype, t.numel());
    return m;
}
float scalar_of(const Tensor& t) {
    float v = 0;
    if (t.numel() >= 1) convert_to_f32(&v, t.data, t.dtype, 1);
    return v;
}

// Throws unless an (r, c) product fits a layer of `numel` elements: checked before it is computed, so a hostile
// file cannot ask for a huge one.
// exact false: at most that many (a Kronecker factor).
void check_fits(int64_t r, int64_t c, int64_t numel, const std::string& what, bool exact = true) {
    if (r < 0 || c < 0 || (r && c > numel / r) || (exact && r * c != numel))
        throw std::runtime_error(what + " gives a " + std::to_string(r) + "x" + std::to_string(c) +
                                 " update for a layer of " + std::to_string(numel) +
                                 " weights; is the LoRA for another model?");
}

Mat matmul(const Mat& a, const Mat& b, int64_t numel, const std::string& what, bool exact = true) {  // (r,k)·(k,c)
    if (a.c != b.r)
        throw std::runtime_error(what + ": the ranks of its factors differ (" + std::to_string(a.c) + " and " +
                                 std::to_string(b.r) + ")");
    check_fits(a.r, b.c, numel, what, exact);
    Mat m;
    m.r = a.r;
    m.c = b.c;
    m.v.assign((size_t)(m.r * m.c), 0.0f);
    if (m.r && m.c && a.c) matmul_nn(m.v.data(), m.c, a.v.data(), a.c, b.v.data(), b.c, m.r, m.c, a.c);
    return m;
}

// LyCORIS' CP rebuild (lyco_helpers.make_weight_cp): t (i, j, k, l), wa (i, out), wb (j, in) → (out, in·k·l).
Mat cp_weight(const Tensor& tt, const Mat& wa, const Mat& wb, int64_t numel, const std::string& what,
              bool exact = true) {
    if (tt.ndim != 4 || tt.shape[0] != wa.r || tt.shape[1] != wb.r)
        throw std::runtime_error(what + ": its CP core " + tt.shape_str() + " does not fit its factors");
    if (tt.shape[2] > numel || tt.shape[3] > numel || wb.c > numel) check_fits(numel + 1, 1, numel, what);
    check_fits(wa.c, wb.c * tt.shape[2] * tt.shape[3], numel, what, exact);
    Mat t = mat_of(tt);
    const int64_t I = tt.shape[0], J = tt.shape[1], KL = tt.shape[2] * tt.shape[3], O = wa.c, N = wb.c;
    Mat m;
    m.r = O;
    m.c = N * KL;
    m.v.assign((size_t)(m.r * m.c), 0.0f);
    for (int64_t i = 0; i < I; i++)
        for (int64_t j = 0; j < J; j++)
            for (int64_t kl = 0; kl < KL; kl++) {
                const float tv = t.v[(size_t)((i * J + j) * KL + kl)];
                if (tv == 0) continue;
                for (int64_t o = 0; o < O; o++) {
                    const float a = tv * wa.v[(size_t)(i * O + o)];
                    float* row = m.v.data() + o * m.c;
                    for (int64_t n = 0; n < N; n++) row[n * KL + kl] += a * wb.v[(size_t)(j * N + n)];
                }
            }
    return m;
}

const Tensor* part(const LoraLayer& l, const char* name) {
    auto it = l.w.find(name);
    return it == l.w.end() ? nullptr : &it->second;
}

}  // namespace

namespace {

// The ranks a kohya product uses: dyn as a Python slice bound ([:dyn]) over r, all of them without dyn.
int64_t used_rank(int64_t r, int64_t dyn) {
    if (dyn == kAllRanks) return r;
    return dyn < 0 ? std::max<int64_t>(0, r + dyn) : std::min(dyn, r);
}

// network.py calc_scale: the file's "scale", else alpha / rank (dim: the rank alpha divides by; 0: none), else 1.
float layer_scale(const LoraLayer& l, int64_t dim) {
    if (const Tensor* s = part(l, "scale")) return scalar_of(*s);
    if (const Tensor* a = part(l, "alpha"); a && dim > 0) return scalar_of(*a) / (float)dim;
    return 1;
}

}  // namespace

Tensor lora_delta(const LoraLayer& l, const std::vector<int64_t>& shape, const std::string& label, int64_t dyn) {
    const std::string what = label + ": layer " + l.key;
    int64_t numel = 1;
    for (int64_t s : shape) numel *= s;
    Mat d;          // ΔW as (out, rest)
    int64_t dim = 0;  // the rank alpha divides by; 0: none
    if (const Tensor* down = part(l, "lora_down.weight")) {
        const Tensor* up = part(l, "lora_up.weight");
        if (!up) throw std::runtime_error(what + " has lora_down but no lora_up");
        Mat U = mat_of(*up), D = mat_of(*down);
        dim = D.r;
        if (const Tensor* mid = part(l, "lora_mid.weight")) {  // CP: einsum('nmkl, in, mj -> ijkl', mid, up, down)
            Mat Ut;  // up (out, n) as wa (n, out)
            Ut.r = U.c; Ut.c = U.r; Ut.v.resize(U.v.size());
            for (int64_t i = 0; i < U.r; i++)
                for (int64_t n = 0; n < U.c; n++) Ut.v[(size_t)(n * U.r + i)] = U.v[(size_t)(i * U.c + n)];
            d = cp_weight(*mid, Ut, D, numel, what);
        } else {
            if (U.c != D.r)
                throw std::runtime_error(what + ": rank mismatch, lora_up " + up->shape_str() + " and lora_down " +
                                         down->shape_str() + " (the rank is lora_down's first dimension)");
            const int64_t k = used_rank(D.r, dyn);
            if (k < D.r) {  // dyn=: up[:, :k] · down[:k]
                Mat u;
                u.r = U.r, u.c = k;
                for (int64_t i = 0; i < U.r; i++) u.v.insert(u.v.end(), U.v.begin() + i * U.c, U.v.begin() + i * U.c + k);
                U = std::move(u);
                D.r = k;
                D.v.resize((size_t)(k * D.c));
            }
            d = matmul(U, D, numel, what);
        }
    } else if (part(l, "lora_up.weight")) {
        throw std::runtime_error(what + " has lora_up but no lora_down");
    } else if (part(l, "hada_w1_a")) {
        const char* need[] = {"hada_w1_b", "hada_w2_a", "hada_w2_b"};
        for (const char* n : need)
            if (!part(l, n)) throw std::runtime_error(what + " is a LoHa layer without " + n);
        Mat w1a = mat_of(*part(l, "hada_w1_a")), w1b = mat_of(*part(l, "hada_w1_b"));
        Mat w2a = mat_of(*part(l, "hada_w2_a")), w2b = mat_of(*part(l, "hada_w2_b"));
        dim = w1b.r;
        Mat a = part(l, "hada_t1") ? cp_weight(*part(l, "hada_t1"), w1a, w1b, numel, what) : matmul(w1a, w1b, numel, what);
        Mat b = part(l, "hada_t2") ? cp_weight(*part(l, "hada_t2"), w2a, w2b, numel, what) : matmul(w2a, w2b, numel, what);
        if (a.r != b.r || a.c != b.c)
            throw std::runtime_error(what + ": its two Hadamard factors differ in shape");
        for (size_t i = 0; i < a.v.size(); i++) a.v[i] *= b.v[i];  // LoHa: (w1a·w1b) ⊙ (w2a·w2b)
        d = std::move(a);
    } else if (part(l, "lokr_w1") || part(l, "lokr_w1_a")) {
        auto factor = [&](int k, const Tensor* t) -> Mat {
            const std::string p = "lokr_w" + std::to_string(k);
            if (const Tensor* whole = part(l, p.c_str())) return mat_of(*whole);
            const Tensor* a = part(l, (p + "_a").c_str());
            const Tensor* b = part(l, (p + "_b").c_str());
            if (!a || !b) throw std::runtime_error(what + " is a LoKr layer without " + p + " (or " + p + "_a and _b)");
            Mat A = mat_of(*a), B = mat_of(*b);
            dim = B.r;
            // each Kronecker factor is at most the layer's size
            return t ? cp_weight(*t, A, B, numel, what, false) : matmul(A, B, numel, what, false);
        };
        Mat w1 = factor(1, nullptr), w2 = factor(2, part(l, "lokr_t2"));
        check_fits(w1.r * w2.r, w1.c * w2.c, numel, what);
        // LoKr: w1 ⊗ w2, w2 flattened to (c, d·k·k): the same as the webui's 4-D kron after its reshape.
        d.r = w1.r * w2.r;
        d.c = w1.c * w2.c;
        d.v.resize((size_t)(d.r * d.c));
        for (int64_t i = 0; i < w1.r; i++)
            for (int64_t p = 0; p < w2.r; p++)
                for (int64_t j = 0; j < w1.c; j++) {
                    const float s = w1.v[(size_t)(i * w1.c + j)];
                    float* dst = d.v.data() + (i * w2.r + p) * d.c + j * w2.c;
                    const float* src = w2.v.data() + p * w2.c;
                    for (int64_t q = 0; q < w2.c; q++) dst[q] = s * src[q];
                }
    } else {
        throw std::runtime_error(what + " has no lora_down/lora_up, hada_ or lokr_ weights");
    }

    if (shape.empty() || d.r != shape[0] || d.r * d.c != numel) {
        std::string s = "[";
        for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
        throw std::runtime_error(what + " gives a " + std::to_string(d.r) + "x" + std::to_string(d.c) +
                                 " update for a layer of shape " + s + "]; is the LoRA for another model?");
    }
    const float scale = layer_scale(l, dim);
    Tensor out = Tensor::zeros(shape);
    for (int64_t i = 0; i < numel; i++) out.f32()[i] = d.v[(size_t)i] * scale;
    return out;
}

// ---- merging -------------------------------------------------------------------------------------------------------

LoraApply parse_lora_apply(const std::string& s) {
    if (s == "merge") return LoraApply::Merge;
    if (s == "runtime") return LoraApply::Runtime;
    throw std::runtime_error("--lora-apply must be merge or runtime, got '" + s + "'");
}

namespace {

// A layer's update as run-time factors, if it is a plain kohya / PEFT product on a linear layer or a 1×1 conv:
// down (rank, in) and up (out, rank) as 2-D views into the mapped file (which they keep mapped), f32 copies
// for a 1×1 conv (a Conv's run-time product reads f32: ops.cpp). False for every other kind, which is merged.
bool runtime_factors(const LoraLayer& l, const std::vector<int64_t>& shape, const LoraTarget& t, float mult,
                     int64_t dyn, const std::shared_ptr<SafeTensors>& file, const std::string& what, LowRank* out) {
    const Tensor* down = part(l, "lora_down.weight");
    const Tensor* up = part(l, "lora_up.weight");
    if (!down || !up || part(l, "lora_mid.weight")) return false;
    const bool conv1x1 = shape.size() == 4 && shape[2] == 1 && shape[3] == 1;
    if (shape.size() != 2 && !conv1x1) return false;
    const int64_t rows = t.rows ? t.rows : shape[0], in = shape[1];
    const int64_t r = down->shape[0];
    if (down->numel() != r * in || up->ndim < 2 || up->shape[0] != rows || up->numel() != rows * up->shape[1])
        return false;  // not this layer's shape: lora_delta says why
    if (up->shape[1] != r)
        throw std::runtime_error(what + ": rank mismatch, lora_up " + up->shape_str() + " and lora_down " +
                                 down->shape_str() + " (the rank is lora_down's first dimension)");
    out->down = down->reshape({r, in});
    out->up = up->reshape({rows, r});
    if (conv1x1) {
        out->down = WeightLoader::to_f32(out->down);
        out->up = WeightLoader::to_f32(out->up);
    } else {
        out->down.storage = file;
        out->up.storage = file;
    }
    out->rank = used_rank(r, dyn);
    out->scale = mult * layer_scale(l, r);
    out->col0 = t.row0;
    return true;
}

}  // namespace

LoraWeights prepare_loras(const SafeTensors& ckpt, const std::string& model_family, const std::vector<LoraUse>& uses,
                          LoraApply apply, std::vector<std::string>* warnings) {
    struct Piece { const LoraLayer* layer; LoraTarget target; float mult; const LoraUse* use; };
    std::map<std::string, std::vector<Piece>> by_tensor;  // touched tensor → its updates, in prompt order
    LoraIndex index(ckpt.tensors());
    for (const LoraUse& u : uses) {
        const std::string fam = lora_family(*u.file);
        if (!fam.empty() && !model_family.empty() && fam != model_family)
            throw std::runtime_error("LoRA '" + u.name + "' (" + u.file->path + ") is for " + fam + ", but the model is " +
                                     model_family);
        int unmatched = 0;
        std::string first;
        for (const LoraLayer& l : u.file->layers) {
            LoraTarget t;
            if (!index.resolve(l.key, &t)) {
                if (!unmatched++) first = l.key;
                continue;
            }
            const float mult = t.text_encoder ? u.te : u.unet;
            if (mult != 0) by_tensor[t.tensor].push_back({&l, t, mult, &u});
        }
        if (unmatched == (int)u.file->layers.size())
            throw std::runtime_error("LoRA '" + u.name + "' (" + u.file->path + "): none of its " +
                                     std::to_string(unmatched) + " layers is a layer of this " +
                                     (model_family.empty() ? std::string("model") : model_family + " model") +
                                     " (first: " + first + ")");
        if (unmatched && warnings)
            warnings->push_back("LoRA '" + u.name + "': " + std::to_string(unmatched) + " of " +
                                std::to_string(u.file->layers.size()) + " layers match no layer of the model (first: " +
                                first + "); they are skipped");
    }
    LoraWeights out;
    for (const auto& [name, pieces] : by_tensor) {
        const Tensor w = ckpt.original(name);  // not an earlier LoRA set's merged copy
        Tensor acc;  // f32 W + Σ multiplier·ΔW of the pieces that are merged; empty while none is
        const int64_t row = w.numel() / w.shape[0];
        for (const Piece& p : pieces) {
            std::vector<int64_t> shape = w.dims();
            if (p.target.rows) shape[0] = p.target.rows;
            const std::string what = "LoRA '" + p.use->name + "'";
            LowRank lr;
            if (apply == LoraApply::Runtime &&
                runtime_factors(*p.layer, shape, p.target, p.mult, p.use->dyn, p.use->file->st,
                                what + ": layer " + p.layer->key, &lr)) {
                out.low_rank[name].push_back(lr);
                continue;
            }
            if (!acc.data) {
                acc = Tensor::zeros(w.dims());
                convert_to_f32(acc.f32(), w.data, w.dtype, w.numel());
            }
            Tensor d = lora_delta(*p.layer, shape, what, p.use->dyn);
            scale_add(acc.f32() + p.target.row0 * row, d.f32(), p.mult, d.numel());
        }
        if (!acc.data) continue;
        if (w.dtype == DType::F32) {
            out.merged[name] = acc;
        } else {  // the stored dtype, as the webui merges into the loaded (half) weights
            Tensor t = Tensor::zeros(w.dims(), w.dtype);
            convert_from_f32(t.data, w.dtype, acc.f32(), acc.numel());
            out.merged[name] = t;
        }
    }
    return out;
}

std::map<std::string, Tensor> merge_loras(const SafeTensors& ckpt, const std::string& model_family,
                                          const std::vector<LoraUse>& uses, std::vector<std::string>* warnings) {
    return prepare_loras(ckpt, model_family, uses, LoraApply::Merge, warnings).merged;
}

}  // namespace sd
