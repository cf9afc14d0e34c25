// clip.cpp — loading and running the CLIP text encoder (see clip.h). The forward mirrors HF's CLIPTextModel:
// embeddings, then per layer a pre-LN causal self-attention block and a quick-GELU MLP block, each added to the
// residual stream, then final_layer_norm of the layer the caller's clip skip picks.
#include "models/clip.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/ops.h"
#include "models/weights.h"

namespace sd {

ClipTextModel load_clip_text(const SafeTensors& st, const std::string& prefix, int heads, const LowRankTable* low_rank) {
    WeightLoader file(st, prefix, low_rank);
    Binder w(file);
    ClipTextModel m;
    ClipConfig& c = m.cfg;
    std::vector<int64_t> tok = file.shape("embeddings.token_embedding.weight");
    std::vector<int64_t> pos = file.shape("embeddings.position_embedding.weight");
    if (tok.size() != 2 || pos.size() != 2)
        throw std::runtime_error(st.path() + ": '" + prefix + "embeddings.*_embedding.weight' must be matrices");
    c.vocab = tok[0];
    c.width = tok[1];
    c.positions = pos[0];
    c.layers = file.count_indexed("encoder.layers.");
    if (c.layers == 0) throw std::runtime_error(st.path() + ": no '" + prefix + "encoder.layers.0.*' tensors");
    c.mlp = file.shape("encoder.layers.0.mlp.fc1.weight").at(0);
    c.heads = heads > 0 ? heads : c.width / 64;
    if (c.heads <= 0 || c.width % c.heads != 0)
        throw std::runtime_error(st.path() + ": CLIP width " + std::to_string(c.width) + " does not split into " +
                                 std::to_string(c.heads) + " attention heads; give the head count");
    const int64_t V = c.vocab, P = c.positions, C = c.width, F = c.mlp;

    m.token_embedding = w.mat("embeddings.token_embedding.weight", {V, C});
    m.position_embedding = w.vec("embeddings.position_embedding.weight", {P, C});
    for (int64_t i = 0; i < c.layers; i++) {
        std::string p = "encoder.layers." + std::to_string(i) + ".";
        ClipLayer l;
        l.layer_norm1 = w.norm(p + "layer_norm1", C);
        l.q = w.linear(p + "self_attn.q_proj", C, C);
        l.k = w.linear(p + "self_attn.k_proj", C, C);
        l.v = w.linear(p + "self_attn.v_proj", C, C);
        l.out = w.linear(p + "self_attn.out_proj", C, C);
        l.layer_norm2 = w.norm(p + "layer_norm2", C);
        l.fc1 = w.linear(p + "mlp.fc1", F, C);
        l.fc2 = w.linear(p + "mlp.fc2", C, F);
        m.layers.push_back(l);
    }
    m.final_layer_norm = w.norm("final_layer_norm", C);
    return m;
}

namespace {

// x (T, C) += out_proj(causal multi-head attention over layer_norm1(x)).
void attention_block(const ClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    ArenaScope s(a);
    Tensor h = layer_norm(a, x, l.layer_norm1, c.eps);  // (T, C)
    Tensor q = linear(a, h, l.q);                       // (T, C): head i in columns [i·D, (i+1)·D)
    Tensor k = linear(a, h, l.k);
    Tensor v = linear(a, h, l.v);
    linear_add(x, attention(a, q, k, v, c.heads, /*causal=*/true), l.out);
}

// x (T, C) += fc2(quick_gelu(fc1(layer_norm2(x)))).
void mlp_block(const ClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    ArenaScope s(a);
    Tensor h = layer_norm(a, x, l.layer_norm2, c.eps);      // (T, C)
    Tensor f = linear(a, h, l.fc1, Act::quick_gelu);         // (T, F)
    linear_add(x, f, l.fc2);
}

}  // namespace

Tensor clip_encode(const ClipTextModel& model, const int* ids, int clip_skip, Arena& a, const float* const* token_rows,
                   bool final_norm) {
    const ClipConfig& c = model.cfg;
    const int64_t T = c.positions, C = c.width;
    if (clip_skip < 1 || clip_skip > c.layers)
        throw std::runtime_error("clip skip " + std::to_string(clip_skip) + " is outside [1, " +
                                 std::to_string(c.layers) + "] for this " + std::to_string(c.layers) +
                                 "-layer text encoder");

    Tensor out = a.alloc({T, C});  // (T, C): the result, below everything released at the end
    ArenaScope s(a);

    // Embeddings: the token's row (converted from its stored dtype) plus its position's.
    Tensor x = a.alloc({T, C});  // (T, C): the residual stream
    embed_tokens(x, model.token_embedding, ids, token_rows);
    add_(x, model.position_embedding);  // x += position embeddings (P = T rows)

    // clip skip N: stop after layer L - N (counting from 1), i.e. hidden_states[-N].
    const int64_t run = c.layers - (clip_skip - 1);
    for (int64_t i = 0; i < run; i++) {
        attention_block(model.layers[i], c, x, a);
        mlp_block(model.layers[i], c, x, a);
    }
    if (final_norm) layer_norm_into(out, x, model.final_layer_norm, c.eps);
    else std::copy(x.f32(), x.f32() + T * C, out.f32());
    return out;
}

}  // namespace sd
