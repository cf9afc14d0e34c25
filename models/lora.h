// lora.h — LoRA and LyCORIS add-on weights: reading the files, naming their layers as the checkpoint does,
// and the weight update ΔW each layer adds (the webui's extensions-builtin/Lora at v1.10.1).
//
// A LoRA file holds, per adapted layer, a few small tensors whose product is a low-rank update of that layer's
// weight: W' = W + multiplier · scale · ΔW, scale = alpha / rank (1 without alpha), multiplier the prompt's
// <lora:NAME:TE:UNET> weight for text-encoder or UNet layers. Formats:
//   kohya LoRA / LoCon   lora_up (out, r[,1,1]) · lora_down (r, in[,k,k])   (optional lora_mid: CP decomposition)
//   diffusers / PEFT     lora_B · lora_A, the same product under other names
//   LyCORIS LoHa         (w1_a · w1_b) ⊙ (w2_a · w2_b)                     (optional t1/t2: CP decomposition)
//   LyCORIS LoKr         w1 ⊗ w2, each given whole or as a product a · b   (optional t2)
// Layer names: kohya writes the diffusers module path with '_' for '.', prefixed lora_unet_ / lora_te_ /
// lora_te1_ / lora_te2_; PEFT files the dotted path under unet. / text_encoder. / text_encoder_2.; SDXL kohya
// files already use the sgm UNet's names (lora_unet_input_blocks_...). lora_candidates() is the one table from
// those names to ours. Left out: DoRA, (IA)³, GLoRA, OFT, "full" and norm modules (refused by name), .pt files.
#pragma once
#include <climits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/ops.h"
#include "safetensors.h"
#include "tensor.h"

namespace sd {

// One adapted layer as the file stores it.
struct LoraLayer {
    std::string key;                   // the layer's name in kohya form: lora_unet_down_blocks_0_..._to_q
    std::map<std::string, Tensor> w;   // its parts, views into the file: "lora_down.weight", "hada_w1_a", "alpha"
};

struct LoraFile {
    std::string path;
    std::shared_ptr<SafeTensors> st;   // the mapped file the parts point into (run-time LoRAs share it)
    std::vector<LoraLayer> layers;     // in file order of their first tensor
};

// Maps and groups a .safetensors LoRA; throws one sentence for .pt/.ckpt files, a file with no LoRA layers, or
// parts of an unknown kind.
LoraFile read_lora(const std::string& path);
// The same from an already opened file (tests, fuzzing).
LoraFile read_lora(std::unique_ptr<SafeTensors> st);

// The webui's LoRA hash ("addnet" hash, kohya's train_util): SHA-256 of the bytes after the 8-byte length and the
// JSON header (the webui prefers a file's own sshs_model_hash metadata: pipeline/loras.cpp). The infotext shows its
// first 12 hex digits.
std::string lora_hash(const std::string& path);

// The family a LoRA was trained for, as far as it says: "SDXL", "SD 2.x", "SD 1.x", or "" (unknown). From its
// kohya metadata (ss_base_model_version, ss_v2: the webui's detect_version), else its layer names (te1/te2:
// SDXL) and the width its cross-attention keys read (768 SD 1.x, 1024 SD 2.x, 2048 SDXL).
std::string lora_family(const LoraFile& f);

// The mapping table: a kohya layer name → the checkpoint module names it may mean, '.' written '_' (the form the
// webui compares in), most likely first, e.g. lora_unet_down_blocks_1_resnets_0_conv1 →
// {"model_diffusion_model_input_blocks_4_0_in_layers_2"}. Text encoder names give one candidate per family
// (SD 1.x CLIP, SD 2.x OpenCLIP, SDXL's two), and the checkpoint decides which exists. Empty: not a known name.
std::vector<std::string> lora_candidates(const std::string& kohya_key);

// Where a layer's update goes: a checkpoint tensor, or a block of its rows (q, k or v of an OpenCLIP fused
// in_proj_weight).
struct LoraTarget {
    std::string tensor;          // e.g. model.diffusion_model.input_blocks.1.1.proj_in.weight
    int64_t row0 = 0, rows = 0;  // rows 0: the whole tensor
    bool text_encoder = false;   // scaled by the TE multiplier, else by the UNet one
};

// The checkpoint's weight tensors by their module name in '_' form (the webui's network_layer_mapping).
class LoraIndex {
public:
    explicit LoraIndex(const std::vector<TensorInfo>& tensors);  // a checkpoint's tensors()
    // The target of a kohya layer name, or false if it names no layer of this checkpoint.
    bool resolve(const std::string& kohya_key, LoraTarget* out) const;

private:
    struct Module { std::string tensor; int64_t rows; };
    std::map<std::string, Module> modules_;  // "model_diffusion_model_out_2" → {"model.diffusion_model.out.2.weight", 4}
};

// A LoRA tag without dyn=: every rank is used.
constexpr int64_t kAllRanks = INT64_MIN;

// ΔW of one layer, f32 in the target's shape (rows × the rest of the tensor's dims), scale (alpha / rank, or the
// file's "scale") applied, multiplier not. dyn ≥ 0: a kohya LoRA's product uses only its first dyn ranks (the
// tag's dyn=, DyLoRA; lyco_helpers.rebuild_conventional), scale still alpha / the full rank. Throws naming the
// file and layer for inconsistent ranks or a product whose shape is not the target's.
Tensor lora_delta(const LoraLayer& layer, const std::vector<int64_t>& target_shape, const std::string& label,
                  int64_t dyn = kAllRanks);

// One LoRA as the prompt asks for it.
struct LoraUse {
    std::string name;             // as written in the tag (the infotext's name)
    const LoraFile* file = nullptr;
    float te = 1, unet = 1;       // multipliers for text-encoder and UNet layers
    int64_t dyn = kAllRanks;      // ranks used by kohya LoRA products: [:dyn] (the tag's dyn=)
};

// How LoRAs reach the weights. Merge: W' = W + Σ multiplier·ΔW into private copies of the touched tensors, once
// per prompt (what the webui does). Runtime: the weights stay as mapped and each layer adds
// multiplier·scale·(x·down)·up as it runs (models/ops.h LowRank): only kohya LoRA / PEFT products on linear
// layers and 1×1 convs can; 3×3 LoCon, lora_mid (CP), LoHa and LoKr are merged in either mode.
enum class LoraApply { Merge, Runtime };
// "merge" | "runtime"; throws naming the valid values.
LoraApply parse_lora_apply(const std::string& s);

struct LoraWeights {
    std::map<std::string, Tensor> merged;  // checkpoint tensor → its private copy W + Σ multiplier·ΔW, stored dtype
    LowRankTable low_rank;                 // checkpoint tensor → the updates its layer adds at run time
};

// The LoRAs prepared for the checkpoint: every touched tensor either merged (in its stored dtype, as the webui
// merges into the loaded weights) or given run-time updates; untouched tensors stay mapped. `warnings` gets one
// line per LoRA with layers that match nothing in the checkpoint. Throws if a LoRA was made for another family
// than `model_family` ("SD 1.x", "SD 2.x", "SDXL"), or none of its layers match.
LoraWeights prepare_loras(const SafeTensors& ckpt, const std::string& model_family, const std::vector<LoraUse>& uses,
                          LoraApply apply, std::vector<std::string>* warnings);
// prepare_loras(..., LoraApply::Merge).merged.
std::map<std::string, Tensor> merge_loras(const SafeTensors& ckpt, const std::string& model_family,
                                          const std::vector<LoraUse>& uses, std::vector<std::string>* warnings);

}  // namespace sd
