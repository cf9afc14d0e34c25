// sdxl.h — SDXL's conditioning beyond the cross-attention text: the vector its UNet's label_emb reads, as the
// webui (modules/sd_models_xl.py, get_learned_conditioning) and sgm's GeneralConditioner build it.
//
// Podell et al. 2023 ("SDXL", §2.2 "Micro-Conditioning"): the model is told the original image size, the crop's
// top-left corner and the target size, each number as a 256-wide sinusoidal embedding (the timestep embedding's
// formula, cos first), concatenated after the pooled text output: y = [pooled (1280) | original (h, w) |
// crop (top, left) | target (h, w)] = 1280 + 6 · 256 = 2816 floats. The webui passes original = target = the
// image's (height, width) and crop (0, 0) (its "sdxl_crop_top/left" options, default 0).
// A negative prompt whose texts are all empty gets zeros for the whole text part, the pooled output included
// (force_zero_embeddings=['txt']); the size embeddings stay. The SDXL refiner's aesthetic score is left out.
#pragma once
#include <string>

#include "pipeline/conditioning.h"
#include "tensor.h"

namespace sd {

constexpr int64_t kSdxlSizeEmbedding = 256;                      // ConcatTimestepEmbedderND outdim
constexpr int64_t kSdxlSizeDims = 6 * kSdxlSizeEmbedding;        // original (h, w), crop (top, left), target (h, w)
constexpr float kSdxlVaeScale = 0.13025f;                        // sd_xl_base.yaml scale_factor

// out[0, 1536): the embeddings of height, width, crop_top, crop_left, height, width (256 floats each).
void sdxl_size_embedding(float* out, int height, int width, int crop_top = 0, int crop_left = 0);

// y (1, P + 1536) = [pooled (1, P) | sdxl_size_embedding(height, width, 0, 0)].
Tensor sdxl_vector(const Tensor& pooled, int height, int width);

// sd_models_xl.get_learned_conditioning's rule: a negative prompt all of whose scheduled texts are empty.
bool sdxl_zero_negative(const std::string& negative_prompt, int total_steps);

// Fills s.vectors from s.pooled for an image of width × height; zero_text: the conds and pooled outputs become zeros
// first (the empty negative prompt).
void sdxl_finish_conditioning(CondSchedule& s, int width, int height, bool zero_text);

}  // namespace sd
