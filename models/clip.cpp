// clip.cpp — loading and running the CLIP text encoder (see clip.h). The forward mirrors HF's CLIPTextModel:
// embeddings, then per layer a pre-LN causal self-attention block and a quick-GELU MLP block, each added to the
// residual stream, then final_layer_norm of the layer the caller's clip skip picks.
#include "models/clip.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/ops.h"

namespace sd {

ClipTextModel load_clip_text(const SafeTensors& st, const std::string& prefix, int heads) {
    WeightLoader w(st, prefix);
    ClipTextModel m;
    ClipConfig& c = m.cfg;
    std::vector<int64_t> tok = w.shape("embeddings.token_embedding.weight");
    std::vector<int64_t> pos = w.shape("embeddings.position_embedding.weight");
    if (tok.size() != 2 || pos.size() != 2)
        throw std::runtime_error(st.path() + ": '" + prefix + "embeddings.*_embedding.weight' must be matrices");
    c.vocab = tok[0];
    c.width = tok[1];
    c.positions = pos[0];
    c.layers = w.count_indexed("encoder.layers.");
    if (c.layers == 0) throw std::runtime_error(st.path() + ": no '" + prefix + "encoder.layers.0.*' tensors");
    c.mlp = w.shape("encoder.layers.0.mlp.fc1.weight").at(0);
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
        l.ln1_w = w.vec(p + "layer_norm1.weight", {C});
        l.ln1_b = w.vec(p + "layer_norm1.bias", {C});
        l.q_w = w.mat(p + "self_attn.q_proj.weight", {C, C});
        l.q_b = w.vec(p + "self_attn.q_proj.bias", {C});
        l.k_w = w.mat(p + "self_attn.k_proj.weight", {C, C});
        l.k_b = w.vec(p + "self_attn.k_proj.bias", {C});
        l.v_w = w.mat(p + "self_attn.v_proj.weight", {C, C});
        l.v_b = w.vec(p + "self_attn.v_proj.bias", {C});
        l.out_w = w.mat(p + "self_attn.out_proj.weight", {C, C});
        l.out_b = w.vec(p + "self_attn.out_proj.bias", {C});
        l.ln2_w = w.vec(p + "layer_norm2.weight", {C});
        l.ln2_b = w.vec(p + "layer_norm2.bias", {C});
        l.fc1_w = w.mat(p + "mlp.fc1.weight", {F, C});
        l.fc1_b = w.vec(p + "mlp.fc1.bias", {F});
        l.fc2_w = w.mat(p + "mlp.fc2.weight", {C, F});
        l.fc2_b = w.vec(p + "mlp.fc2.bias", {C});
        m.layers.push_back(l);
    }
    m.final_ln_w = w.vec("final_layer_norm.weight", {C});
    m.final_ln_b = w.vec("final_layer_norm.bias", {C});
    return m;
}

namespace {

// x (T, C) += out_proj(causal multi-head attention over layer_norm1(x)).
void attention_block(const ClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    Arena::Mark m = a.mark();
    const int64_t T = x.shape[0], C = c.width, D = C / c.heads;
    Tensor h = layer_norm(a, x, l.ln1_w, l.ln1_b, c.eps);  // (T, C)
    Tensor q = linear(a, h, l.q_w, l.q_b);                  // (T, C): head i in columns [i·D, (i+1)·D)
    Tensor k = linear(a, h, l.k_w, l.k_b);
    Tensor v = linear(a, h, l.v_w, l.v_b);
    Tensor o = a.alloc({T, C});
    attention(o.f32(), C, q.f32(), C, k.f32(), C, v.f32(), C, 1, T, T, c.heads, D, 1.0f / std::sqrt((float)D),
              /*causal=*/true);
    gemm(x.f32(), C, o.f32(), C, l.out_w.data, l.out_w.dtype, C, l.out_b.f32(), T, C, C, Act::None,
         /*accumulate=*/true);
    a.release(m);
}

// x (T, C) += fc2(quick_gelu(fc1(layer_norm2(x)))).
void mlp_block(const ClipLayer& l, const ClipConfig& c, Tensor& x, Arena& a) {
    Arena::Mark m = a.mark();
    const int64_t T = x.shape[0], C = c.width, F = c.mlp;
    Tensor h = layer_norm(a, x, l.ln2_w, l.ln2_b, c.eps);        // (T, C)
    Tensor f = linear(a, h, l.fc1_w, l.fc1_b, Act::QuickGELU);   // (T, F)
    gemm(x.f32(), C, f.f32(), F, l.fc2_w.data, l.fc2_w.dtype, F, l.fc2_b.f32(), T, C, F, Act::None,
         /*accumulate=*/true);
    a.release(m);
}

}  // namespace

Tensor clip_encode(const ClipTextModel& model, const int* ids, int clip_skip, Arena& a, const float* const* token_rows) {
    const ClipConfig& c = model.cfg;
    const int64_t T = c.positions, C = c.width;
    if (clip_skip < 1 || clip_skip > c.layers)
        throw std::runtime_error("clip skip " + std::to_string(clip_skip) + " is outside [1, " +
                                 std::to_string(c.layers) + "] for this " + std::to_string(c.layers) +
                                 "-layer text encoder");
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c.vocab)
            throw std::runtime_error("token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                     " is outside the text encoder's vocabulary [0, " + std::to_string(c.vocab) + ")");

    Tensor out = a.alloc({T, C});  // (T, C): the result, below everything released at the end
    Arena::Mark m = a.mark();

    // Embeddings: the token's row (converted from its stored dtype) plus its position's.
    Tensor x = a.alloc({T, C});  // (T, C): the residual stream
    const size_t row_bytes = (size_t)C * dtype_size(model.token_embedding.dtype);
    for (int64_t t = 0; t < T; t++) {
        if (token_rows && token_rows[t]) {
            std::copy(token_rows[t], token_rows[t] + C, x.f32() + t * C);
            continue;
        }
        const char* row = static_cast<const char*>(model.token_embedding.data) + (size_t)ids[t] * row_bytes;
        convert_to_f32(x.f32() + t * C, row, model.token_embedding.dtype, C);
    }
    add(x.f32(), x.f32(), model.position_embedding.f32(), T * C);

    // clip skip N: stop after layer L - N (counting from 1), i.e. hidden_states[-N].
    const int64_t run = c.layers - (clip_skip - 1);
    for (int64_t i = 0; i < run; i++) {
        attention_block(model.layers[i], c, x, a);
        mlp_block(model.layers[i], c, x, a);
    }
    layer_norm(out.f32(), x.f32(), model.final_ln_w.f32(), model.final_ln_b.f32(), T, C, c.eps);
    a.release(m);
    return out;
}

double clip_encode_flops(const ClipConfig& c) {
    const double T = (double)c.positions, C = (double)c.width, F = (double)c.mlp;
    double per_layer = 2 * T * C * C * 4       // q, k, v, out projections
                       + 2 * T * C * F * 2     // fc1, fc2
                       + 2 * T * T * C * 2;    // QKᵀ and AV (causal masking not subtracted)
    return per_layer * (double)c.layers;
}

}  // namespace sd
