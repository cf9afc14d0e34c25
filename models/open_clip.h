// open_clip.h — the OpenCLIP ViT-H/14 text tower SD 2.x conditions on, as ldm's FrozenOpenCLIPEmbedder stores it.
//
// 77 token ids → (77, width) hidden states: token + positional embeddings, pre-LN transformer layers (causal
// self-attention with q, k, v fused in one in_proj, exact-erf GELU MLP), ln_final. Weights are bound by their
// checkpoint names below "cond_stage_model.model." and stay views into the mapped file.
// SD 2.x reads the penultimate layer: ldm runs the first layers - 1 resblocks (layer_idx 1) and applies ln_final
// to that, and the webui keeps it whatever its "CLIP skip" setting says. Padding after the end token is id 0
// (open_clip_pad_ids), not the end token as for SD 1.x.
// SDXL's second encoder is the same tower at ViT-bigG/14 size (32 layers, width 1280, 20 heads) under
// "conditioner.embedders.1.model.", read as sgm's FrozenOpenCLIPEmbedder2 (layer "penultimate", legacy False):
// the penultimate layer's output WITHOUT ln_final, and the pooled output: ln_final of the last layer at the end
// token, times text_projection (open_clip_encode_xl).
// Left out: logit_scale, the vision tower.
#pragma once
#include <string>
#include <vector>

#include "models/clip.h"
#include "models/weights.h"
#include "tensor.h"

namespace sd {

// x = x + out_proj(attention(in_proj(ln_1(x))));  x = x + c_proj(gelu(c_fc(ln_2(x)))).
struct OpenClipLayer {
    Norm ln_1;              // (C)
    Linear in_proj;         // (3C, C), (3C)   attn.in_proj_*: rows q | k | v
    Linear out_proj;        // (C, C), (C)     attn.out_proj
    Norm ln_2;              // (C)
    Linear c_fc;            // (F, C), (F)     mlp.c_fc
    Linear c_proj;          // (C, F), (C)     mlp.c_proj
};

struct OpenClipTextModel {
    ClipConfig cfg;                   // ViT-H/14: vocab 49408, 77 positions, width 1024, 24 layers, 16 heads, mlp 4096
    Tensor token_embedding;           // (V, C), stored dtype: only 77 rows are read per call
    Tensor positional_embedding;      // (P, C), f32
    std::vector<OpenClipLayer> layers;
    Norm ln_final;                    // (C)
    Tensor text_projection;           // (C, P), stored dtype, used as x @ P; empty when the file has none
};

// Binds the tower under `prefix`. heads = 0: width / 64 (ViT-H: 16). Throws naming any missing or misshaped tensor.
OpenClipTextModel load_open_clip_text(const SafeTensors& st, const std::string& prefix = "cond_stage_model.model.",
                                      int heads = 0, const LowRankTable* low_rank = nullptr);  // run-time LoRAs

// ids: cfg.positions ids → (positions, width): ln_final of the output of layer (layers - skip + 1), counting from
// 1; skip 1 is the last layer, 2 the penultimate one SD 2.x uses. The result is allocated in `arena` where its top
// was on entry. Throws on an id outside the vocabulary or skip outside [1, layers].
// token_rows (optional, one pointer per position): a non-null entry replaces that position's token embedding by
// `width` floats (textual-inversion vectors), as clip_encode's.
Tensor open_clip_encode(const OpenClipTextModel& model, const int* ids, int skip, Arena& arena,
                        const float* const* token_rows = nullptr);

// SDXL (sgm FrozenOpenCLIPEmbedder2.encode_with_transformer, legacy False): ids (already padded with 0 after the
// end token) → (positions, width) = the input of the last resblock, no ln_final; and pooled (P floats) =
// ln_final(last layer output)[argmax(ids)] @ text_projection, i.e. at the first end token (the largest id).
// Throws when the model has no text_projection.
Tensor open_clip_encode_xl(const OpenClipTextModel& model, const int* ids, Arena& arena, float* pooled,
                           const float* const* token_rows = nullptr);

// The webui's OpenCLIP padding (sd_hijack_clip process_tokens): every id after the first end token (49407) of a
// chunk becomes the pad id 0.
void open_clip_pad_ids(int* ids, int64_t n, int end_id = 49407, int pad_id = 0);

}  // namespace sd
