// lora_target.h — the LoRA loader fuzz target (tests/fuzz/README.md): a hostile .safetensors LoRA through
// read_lora (grouping, part names), lora_family, the name table against a small SD 1.x/SDXL/OpenCLIP tensor list,
// and lora_delta for every layer against a linear, a 1×1 and a 3×3 target.
// Promises: nothing but std::exception escapes; an accepted layer's update has exactly the target's shape; no
// product larger than the target is ever computed (huge claimed ranks are refused before the allocation).
#pragma once
#include <memory>
#include <stdexcept>
#include <string>

#include "models/lora.h"
#include "tests/fuzz/targets.h"

namespace sd {
namespace fuzz {

inline int fuzz_one_lora(const uint8_t* data, size_t size) {
    std::unique_ptr<SafeTensors> st;
    try {
        st = std::make_unique<SafeTensors>(SafeTensors::from_memory(data, size, "fuzz"));
    } catch (const std::exception&) {
        return kRefused;
    }
    int verdict = kAccepted;  // refused: read_lora refused the file
    try {
        LoraFile f = read_lora(std::move(st));
        (void)lora_family(f);
        static const std::vector<TensorInfo> ckpt = {
            {"model.diffusion_model.input_blocks.1.1.proj_in.weight", "F16", {32, 32, 1, 1}},
            {"model.diffusion_model.input_blocks.4.0.in_layers.2.weight", "F16", {64, 32, 3, 3}},
            {"cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", "F16", {32, 32}},
            {"conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight", "F16", {96, 32}}};
        LoraIndex index(ckpt);
        for (const LoraLayer& l : f.layers) {
            LoraTarget t;
            if (index.resolve(l.key, &t)) expect(t.rows == 0 || t.rows == 32, "a q/k/v slice of the wrong size");
            for (const std::vector<int64_t>& shape : {std::vector<int64_t>{32, 32}, std::vector<int64_t>{32, 32, 1, 1},
                                                      std::vector<int64_t>{64, 32, 3, 3}}) {
                try {
                    Tensor d = lora_delta(l, shape, "fuzz");
                    expect(d.dims() == shape, "an update of another shape than the target's");
                } catch (const std::runtime_error&) {  // a layer for another shape: expected, not a verdict
                }
            }
        }
    } catch (const std::runtime_error&) {
        verdict = kRefused;
    }
    return verdict;
}

}  // namespace fuzz
}  // namespace sd
