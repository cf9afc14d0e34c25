// clip.h — the CLIP text encoder SD 1.x conditions on (ViT-L/14's text tower, HF CLIPTextModel layout).
//
// 77 token ids → (77, width) hidden states: token + position embeddings, pre-LN transformer layers (causal
// self-attention, quick-GELU MLP), final layer norm. Weights are bound by their checkpoint names below
// "cond_stage_model.transformer.text_model." and stay views into the mapped file, which must outlive the model.
// The configuration is read off the tensor shapes (vocabulary, positions, width, layer count, MLP width); only
// the head count is not in the weights: it defaults to width / 64 (ViT-L: 12) and can be given.
// Left out: the pooled output and text projection (SD 1.x uses neither), attention masks other than causal
// (SD feeds all 77 positions, padding included), OpenCLIP's layout (SD 2.x), and `position_ids` (always 0..76).
#pragma once
#include <string>
#include <vector>

#include "models/weights.h"
#include "tensor.h"

namespace sd {

struct ClipConfig {
    int64_t vocab = 0;      // 49408
    int64_t positions = 0;  // 77: the context length, start and end tokens included
    int64_t width = 0;      // 768
    int64_t layers = 0;     // 12
    int64_t heads = 0;      // 12
    int64_t mlp = 0;        // 3072
    float eps = 1e-5f;      // every layer norm
};

// x = x + out_proj(attention(q, k, v of layer_norm1(x)));  x = x + fc2(quick_gelu(fc1(layer_norm2(x)))).
struct ClipLayer {
    Norm layer_norm1;       // (C)
    Linear q, k, v;         // (C, C), (C)     self_attn.q_proj, k_proj, v_proj
    Linear out;             // (C, C), (C)     self_attn.out_proj
    Norm layer_norm2;       // (C)
    Linear fc1;             // (F, C), (F)     mlp.fc1
    Linear fc2;             // (C, F), (C)     mlp.fc2
};

struct ClipTextModel {
    ClipConfig cfg;
    Tensor token_embedding;           // (V, C), stored dtype: only 77 rows are read per call
    Tensor position_embedding;        // (P, C), f32
    std::vector<ClipLayer> layers;
    Norm final_layer_norm;            // (C)
};

// Binds the text model under `prefix` (a diffusers text_encoder file: "text_model."). heads = 0: width / 64.
// Throws naming any missing or misshaped tensor, or a head count that does not divide the width.
ClipTextModel load_clip_text(const SafeTensors& st,
                             const std::string& prefix = "cond_stage_model.transformer.text_model.", int heads = 0,
                             const LowRankTable* low_rank = nullptr);  // run-time LoRAs (models/ops.h)

// ids: cfg.positions token ids (one tokenizer chunk: start, ≤75 ids, end, end padding) → (positions, width).
// clip_skip N ≥ 1 (the webui's "CLIP skip"): the output of the N-th layer from the end, through the final layer
// norm; 1 is the last layer, 2 SD 1.x anime models' hidden_states[-2]. The result is allocated in `arena` where
// its top was on entry; everything else the pass used is released again. Throws on an id outside the vocabulary
// or clip_skip outside [1, layers]. token_rows (optional, one pointer per position): a non-null entry replaces
// that position's token embedding by `width` floats (textual-inversion vectors); its id is then not looked up.
// final_norm false: the layer's output as it is (SDXL's CLIP-L reads hidden_states[-2] without the final norm).
Tensor clip_encode(const ClipTextModel& model, const int* ids, int clip_skip, Arena& arena,
                   const float* const* token_rows = nullptr, bool final_norm = true);

}  // namespace sd

#include "models/cost.h"
