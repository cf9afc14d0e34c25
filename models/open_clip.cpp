// open_clip.cpp — loading and running the OpenCLIP text tower (see open_clip.h). The forward mirrors
// open_clip's TextTransformer as ldm's FrozenOpenCLIPEmbedder.encode_with_transformer runs it.
#include "models/open_clip.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/ops.h"
#include "models/weights.h"

namespace sd {

OpenClipTextModel load_open_clip_text(const SafeTensors& st, const std::string& prefix, int heads,
                                      const LowRankTable* low_rank) {
    WeightLoader file(st, prefix, low_rank);
    Binder w(file);
    OpenClipTextModel m;
    ClipConfig& c = m.cfg;
    std::vector<int64_t> tok = file.shape("token_embedding.weight");
    std::vector<int64_t> pos = file.shape("positional_embedding");
    if (tok.size() != 2 || pos.size() != 2)
        throw std::runtime_error(st.path() + ": '" + prefix + "token_embedding.weight' and '" + prefix +
                                 "positional_embedding' must be matrices");
    c.vocab = tok[0];
    c.width = tok[1];
    c.positions = pos[0];
    c.layers = file.count_indexed("transformer.resblocks.");
    if (c.layers == 0) throw std::runtime_error(st.path() + ": no '" + prefix + "transformer.resblocks.0.*' tensors");
    c.mlp = file.shape("transformer.resblocks.0.mlp.c_fc.weight").at(0);
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
        l.ln_1 = w.norm(p + "ln_1", C);
        l.in_proj = {w.mat(p + "attn.in_proj_weight", {3 * C, C}), w.vec(p + "attn.in_proj_bias", {3 * C}),
                     file.low_rank(p + "attn.in_proj_weight")};
        l.out_proj = w.linear(p + "attn.out_proj", C, C);
        l.ln_2 = w.norm(p + "ln_2", C);
        l.c_fc = w.linear(p + "mlp.c_fc", F, C);
        l.c_proj = w.linear(p + "mlp.c_proj", C, F);
        m.layers.push_back(l);
    }
    m.ln_final = w.norm("ln_final", C);
    if (file.has("text_projection")) {
        std::vector<int64_t> proj = file.shape("text_projection");
        if (proj.size() != 2 || proj[0] != C)
            throw std::runtime_error(st.path() + ": '" + prefix + "text_projection' should be (" + std::to_string(C) +
                                     ", P)");
        m.text_projection = w.mat("text_projection", {C, proj[1]});
    }
    return m;
}

namespace {

// x (T, C) += out_proj(causal multi-head attention over ln_1(x)); q, k, v come from one (T, 3C) product.
void attention_block(const OpenClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    ArenaScope s(a);
    Tensor h = layer_norm(a, x, l.ln_1, c.eps);  // (T, C)
    Tensor qkv = linear(a, h, l.in_proj);        // (T, 3C): q | k | v
    linear_add(x, attention_qkv(a, qkv, c.heads, /*causal=*/true), l.out_proj);
}

// x (T, C) += c_proj(gelu(c_fc(ln_2(x)))), GELU with erf (torch.nn.GELU()).
void mlp_block(const OpenClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    ArenaScope s(a);
    Tensor h = layer_norm(a, x, l.ln_2, c.eps);       // (T, C)
    Tensor f = linear(a, h, l.c_fc, Act::gelu);       // (T, F)
    linear_add(x, f, l.c_proj);
}

}  // namespace

void open_clip_pad_ids(int* ids, int64_t n, int end_id, int pad_id) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] == end_id) {
            for (int64_t j = i + 1; j < n; j++) ids[j] = pad_id;
            return;
        }
}

namespace {

// The embeddings of ids (or the given rows) plus the positional embeddings, into x (T, C).
void embed(const OpenClipTextModel& model, const int* ids, const float* const* token_rows, Tensor& x) {
    embed_tokens(x, model.token_embedding, ids, token_rows);
    add_(x, model.positional_embedding);  // x += positional embeddings
}

}  // namespace

Tensor open_clip_encode_xl(const OpenClipTextModel& model, const int* ids, Arena& a, float* pooled,
                           const float* const* token_rows) {
    const ClipConfig& c = model.cfg;
    const int64_t T = c.positions, C = c.width;
    if (!model.text_projection.data)
        throw std::runtime_error("this OpenCLIP text encoder has no text_projection, which SDXL's pooled output needs");
    const int64_t P = model.text_projection.shape[1];
    Tensor out = a.alloc({T, C});  // (T, C): the penultimate hidden states, below everything released at the end
    ArenaScope s(a);
    Tensor x = a.alloc({T, C});    // (T, C): the residual stream
    embed(model, ids, token_rows, x);
    for (int64_t i = 0; i < c.layers; i++) {
        if (i == c.layers - 1) std::copy(x.f32(), x.f32() + T * C, out.f32());  // sgm's outputs["penultimate"]
        attention_block(model.layers[i], c, x, a);
        mlp_block(model.layers[i], c, x, a);
    }
    // pooled = ln_final(x)[eot] @ text_projection; eot = text.argmax(dim=-1), the first largest id.
    int64_t eot = 0;
    for (int64_t t = 1; t < T; t++)
        if (ids[t] > ids[eot]) eot = t;
    Tensor last = layer_norm(a, x, model.ln_final, c.eps);  // (T, C)
    const float* h = last.f32() + eot * C;
    std::vector<float> row((size_t)P);
    std::fill(pooled, pooled + P, 0.0f);
    const size_t row_bytes = (size_t)P * dtype_size(model.text_projection.dtype);
    for (int64_t k = 0; k < C; k++) {  // pooled += h[k] · P[k, :], row by row from the stored dtype
        convert_to_f32(row.data(), static_cast<const char*>(model.text_projection.data) + k * row_bytes,
                       model.text_projection.dtype, P);
        for (int64_t p = 0; p < P; p++) pooled[p] += h[k] * row[p];
    }
    return out;
}

Tensor open_clip_encode(const OpenClipTextModel& model, const int* ids, int skip, Arena& a,
                        const float* const* token_rows) {
    const ClipConfig& c = model.cfg;
    const int64_t T = c.positions, C = c.width;
    if (skip < 1 || skip > c.layers)
        throw std::runtime_error("text encoder layer " + std::to_string(skip) + " from the end is outside [1, " +
                                 std::to_string(c.layers) + "] for this " + std::to_string(c.layers) +
                                 "-layer OpenCLIP text encoder");
    Tensor out = a.alloc({T, C});  // (T, C): the result, below everything released at the end
    ArenaScope s(a);
    Tensor x = a.alloc({T, C});    // (T, C): the residual stream
    embed(model, ids, token_rows, x);

    // ldm's text_transformer_forward breaks at resblock index layers - layer_idx (layer_idx = skip - 1).
    const int64_t run = c.layers - (skip - 1);
    for (int64_t i = 0; i < run; i++) {
        attention_block(model.layers[i], c, x, a);
        mlp_block(model.layers[i], c, x, a);
    }
    layer_norm_into(out, x, model.ln_final, c.eps);
    return out;
}

}  // namespace sd
