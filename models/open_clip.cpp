// open_clip.cpp — loading and running the OpenCLIP text tower (see open_clip.h). The forward mirrors
// open_clip's TextTransformer as ldm's FrozenOpenCLIPEmbedder.encode_with_transformer runs it.
#include "models/open_clip.h"

#include <cmath>
#include <stdexcept>

#include "models/ops.h"

namespace sd {

OpenClipTextModel load_open_clip_text(const SafeTensors& st, const std::string& prefix, int heads) {
    WeightLoader w(st, prefix);
    OpenClipTextModel m;
    ClipConfig& c = m.cfg;
    std::vector<int64_t> tok = w.shape("token_embedding.weight");
    std::vector<int64_t> pos = w.shape("positional_embedding");
    if (tok.size() != 2 || pos.size() != 2)
        throw std::runtime_error(st.path() + ": '" + prefix + "token_embedding.weight' and '" + prefix +
                                 "positional_embedding' must be matrices");
    c.vocab = tok[0];
    c.width = tok[1];
    c.positions = pos[0];
    c.layers = w.count_indexed("transformer.resblocks.");
    if (c.layers == 0) throw std::runtime_error(st.path() + ": no '" + prefix + "transformer.resblocks.0.*' tensors");
    c.mlp = w.shape("transformer.resblocks.0.mlp.c_fc.weight").at(0);
    c.heads = heads > 0 ? heads : c.width / 64;
    if (c.heads <= 0 || c.width % c.heads != 0)
        throw std::runtime_error(st.path() + ": OpenCLIP width " + std::to_string(c.width) +
                                 " does not split into " + std::to_string(c.heads) + " attention heads");
    const int64_t V = c.vocab, P = c.positions, C = c.width, F = c.mlp;

    m.token_embedding = w.mat("token_embedding.weight", {V, C});
    m.positional_embedding = w.vec("positional_embedding", {P, C});
    for (int64_t i = 0; i < c.layers; i++) {
        std::string p = "transformer.resblocks." + std::to_string(i) + ".";
        OpenClipLayer l;
        l.ln1_w = w.vec(p + "ln_1.weight", {C});
        l.ln1_b = w.vec(p + "ln_1.bias", {C});
        l.qkv_w = w.mat(p + "attn.in_proj_weight", {3 * C, C});
        l.qkv_b = w.vec(p + "attn.in_proj_bias", {3 * C});
        l.out_w = w.mat(p + "attn.out_proj.weight", {C, C});
        l.out_b = w.vec(p + "attn.out_proj.bias", {C});
        l.ln2_w = w.vec(p + "ln_2.weight", {C});
        l.ln2_b = w.vec(p + "ln_2.bias", {C});
        l.fc_w = w.mat(p + "mlp.c_fc.weight", {F, C});
        l.fc_b = w.vec(p + "mlp.c_fc.bias", {F});
        l.proj_w = w.mat(p + "mlp.c_proj.weight", {C, F});
        l.proj_b = w.vec(p + "mlp.c_proj.bias", {C});
        m.layers.push_back(l);
    }
    m.ln_final_w = w.vec("ln_final.weight", {C});
    m.ln_final_b = w.vec("ln_final.bias", {C});
    return m;
}

namespace {

// x (T, C) += out_proj(causal multi-head attention over ln_1(x)); q, k, v come from one (T, 3C) product.
void attention_block(const OpenClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    Arena::Mark m = a.mark();
    const int64_t T = x.shape[0], C = c.width, D = C / c.heads;
    Tensor h = layer_norm(a, x, l.ln1_w, l.ln1_b, c.eps);  // (T, C)
    Tensor qkv = linear(a, h, l.qkv_w, l.qkv_b);            // (T, 3C): q in [0, C), k in [C, 2C), v in [2C, 3C)
    Tensor o = a.alloc({T, C});
    const float* q = qkv.f32();
    attention(o.f32(), C, q, 3 * C, q + C, 3 * C, q + 2 * C, 3 * C, 1, T, T, c.heads, D,
              1.0f / std::sqrt((float)D), /*causal=*/true);
    gemm(x.f32(), C, o.f32(), C, l.out_w.data, l.out_w.dtype, C, l.out_b.f32(), T, C, C, Act::None,
         /*accumulate=*/true);
    a.release(m);
}

// x (T, C) += c_proj(gelu(c_fc(ln_2(x)))), GELU with erf (torch.nn.GELU()).
void mlp_block(const OpenClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    Arena::Mark m = a.mark();
    const int64_t T = x.shape[0], C = c.width, F = c.mlp;
    Tensor h = layer_norm(a, x, l.ln2_w, l.ln2_b, c.eps);  // (T, C)
    Tensor f = linear(a, h, l.fc_w, l.fc_b, Act::GELU);    // (T, F)
    gemm(x.f32(), C, f.f32(), F, l.proj_w.data, l.proj_w.dtype, F, l.proj_b.f32(), T, C, F, Act::None,
         /*accumulate=*/true);
    a.release(m);
}

}  // namespace

void open_clip_pad_ids(int* ids, int64_t n, int end_id, int pad_id) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] == end_id) {
            for (int64_t j = i + 1; j < n; j++) ids[j] = pad_id;
            return;
        }
}

Tensor open_clip_encode(const OpenClipTextModel& model, const int* ids, int skip, Arena& a) {
    const ClipConfig& c = model.cfg;
    const int64_t T = c.positions, C = c.width;
    if (skip < 1 || skip > c.layers)
        throw std::runtime_error("text encoder layer " + std::to_string(skip) + " from the end is outside [1, " +
                                 std::to_string(c.layers) + "] for this " + std::to_string(c.layers) +
                                 "-layer OpenCLIP text encoder");
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c.vocab)
            throw std::runtime_error("token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                     " is outside the text encoder's vocabulary [0, " + std::to_string(c.vocab) + ")");

    Tensor out = a.alloc({T, C});  // (T, C): the result, below everything released at the end
    Arena::Mark m = a.mark();
    Tensor x = a.alloc({T, C});    // (T, C): the residual stream
    const size_t row_bytes = (size_t)C * dtype_size(model.token_embedding.dtype);
    for (int64_t t = 0; t < T; t++) {
        const char* row = static_cast<const char*>(model.token_embedding.data) + (size_t)ids[t] * row_bytes;
        convert_to_f32(x.f32() + t * C, row, model.token_embedding.dtype, C);
    }
    add(x.f32(), x.f32(), model.positional_embedding.f32(), T * C);

    // ldm's text_transformer_forward breaks at resblock index layers - layer_idx (layer_idx = skip - 1).
    const int64_t run = c.layers - (skip - 1);
    for (int64_t i = 0; i < run; i++) {
        attention_block(model.layers[i], c, x, a);
        mlp_block(model.layers[i], c, x, a);
    }
    layer_norm(out.f32(), x.f32(), model.ln_final_w.f32(), model.ln_final_b.f32(), T, C, c.eps);
    a.release(m);
    return out;
}

double open_clip_encode_flops(const ClipConfig& c, int64_t run) {
    const double T = (double)c.positions, C = (double)c.width, F = (double)c.mlp;
    double per_layer = 2 * T * C * C * 4 + 2 * T * C * F * 2 + 2 * T * T * C * 2;
    return per_layer * (double)run;
}

}  // namespace sd
