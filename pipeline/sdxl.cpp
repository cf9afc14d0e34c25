// sdxl.cpp — SDXL's vector conditioning (see sdxl.h); sgm's ConcatTimestepEmbedderND and GeneralConditioner.
#include "pipeline/sdxl.h"

#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"
#include "models/ops.h"
#include "pipeline/prompt_parser.h"

namespace sd {

void sdxl_size_embedding(float* out, int height, int width, int crop_top, int crop_left) {
    // The embedder flattens (batch, 2) to one timestep per number and reshapes back: number by number, 256 each.
    const float values[6] = {(float)height, (float)width, (float)crop_top, (float)crop_left, (float)height,
                             (float)width};
    timestep_embedding(out, values, 6, kSdxlSizeEmbedding);
}

Tensor sdxl_vector(const Tensor& pooled, int height, int width) {
    const int64_t P = pooled.numel();
    Tensor y = Tensor::zeros({1, P + kSdxlSizeDims});
    std::memcpy(y.f32(), pooled.f32(), P * sizeof(float));  // the embedders' order: text first, then the sizes
    sdxl_size_embedding(y.f32() + P, height, width);
    return y;
}

bool sdxl_zero_negative(const std::string& negative_prompt, int total_steps) {
    for (const ScheduledText& e : prompt_schedule(negative_prompt, total_steps))
        if (!e.text.empty()) return false;
    return true;
}

void sdxl_finish_conditioning(CondSchedule& s, int width, int height, bool zero_text) {
    s.vectors.clear();
    for (size_t k = 0; k < s.conds.size(); k++) {
        if (zero_text) {
            s.conds[k] = Tensor::zeros(s.conds[k].dims());
            s.pooled.at(k) = Tensor::zeros(s.pooled.at(k).dims());
        }
        s.vectors.push_back(sdxl_vector(s.pooled.at(k), height, width));
    }
}

}  // namespace sd
