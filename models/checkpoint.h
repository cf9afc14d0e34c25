// checkpoint.h — what kind of model a .safetensors file holds, from its key names and a few shapes.
//
// It sits with the networks because their loaders need it first: the family decides which binders run, and the
// key names it reads are theirs. Used by `load_model`, by `sd info MODEL` (a summary: family, parameters per
// component, dtypes, size, ignored extras) and to refuse a wrong model up front with one sentence ("X is an SDXL
// refiner checkpoint; sd runs SDXL base models only") rather than a missing-tensor error deep in a loader.
// Detection reads only the header, so it takes microseconds even for a 7 GB file.
//
// Recognised: SD 1.x / 2.x / XL single-file checkpoints (CompVis/ldm layout), diffusers component files
// (UNet, CLIP text encoder), standalone VAEs (ldm or diffusers layout), TAESD, and — to name them when
// refused — SD3, Flux, LoRA, ControlNet and textual-inversion files. Left out: telling SD 2.x
// epsilon- from v-prediction models (the weights do not say; pipeline/prediction.h runs the webui's probe), and
// UNet/VAE configuration details, which the model loaders infer themselves.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "safetensors.h"

namespace sd {

enum class ModelFamily {
    SD1,                   // ldm single file: model.diffusion_model.* + cond_stage_model.transformer.* (HF CLIP)
    SD2,                   // ldm single file: linear proj_in, OpenCLIP text encoder cond_stage_model.model.*
    SDXL,                  // ldm single file: conditioner.embedders.*, label_emb (base) — refiner too
    SD3,                   // model.diffusion_model.joint_blocks.* — not supported
    Flux,                  // double_blocks.* — not supported
    DiffusersUNet,         // diffusers component: down_blocks.*, no prefix
    DiffusersTextEncoder,  // diffusers component: text_model.encoder.layers.* (HF CLIP)
    VAE,                   // standalone autoencoder: encoder.conv_in + decoder.conv_in, no prefix
    TAESD,                 // tiny autoencoder (madebyollin/taesd): nn.Sequential keys "1.weight", ...
    LoRA,                  // low-rank adapter: *.lora_down.*, *.lora_A.* ...
    ControlNet,            // control_model.* / controlnet_cond_embedding.*
    Embedding,             // textual inversion: emb_params / string_to_param
    Unknown,               // none of the above: not a Stable Diffusion checkpoint
};

// "SD 1.x", "SDXL", "diffusers UNet", ...
const char* family_name(ModelFamily f);

struct ComponentStats {
    int64_t tensors = 0;
    int64_t params = 0;      // elements of floating-point tensors; integer buffers (position_ids) are not parameters
    uint64_t bytes = 0;
};

struct CheckpointInfo {
    std::string path;
    uint64_t file_size = 0;
    int64_t tensor_count = 0;
    ModelFamily family = ModelFamily::Unknown;
    std::string what;                  // a phrase for "PATH is ...": "an SD 1.x checkpoint", "a standalone VAE file"
    std::vector<std::string> notes;    // variants and oddities: "inpainting UNet (9 input channels)", ...

    // Found in the file, 0 when absent. Enough to tell families and variants apart, not a model config.
    int64_t unet_in_channels = 0;      // input_blocks.0.0.weight (C, in, 3, 3): 4 normally, 9 inpainting
    int64_t model_channels = 0;        // 320 for SD 1.x/2.x, 320 (XL) ...
    int64_t context_dim = 0;           // cross-attention key width: 768 SD1, 1024 SD2, 2048 SDXL, 1280 refiner
    int proj_in_rank = 0;              // 4: 1×1 conv (SD1), 2: linear (SD2, SDXL)
    std::vector<int64_t> text_widths;  // hidden width of each text encoder: {768} SD1, {1024} SD2, {768, 1280} SDXL
    int64_t vae_latent_channels = 0;   // from post_quant_conv (z, z, 1, 1)

    // Components by key prefix (for single-file checkpoints; component files count as their one component).
    ComponentStats unet;               // model.diffusion_model.*
    ComponentStats text_encoder;       // cond_stage_model.*, conditioner.*
    ComponentStats vae;                // first_stage_model.*
    ComponentStats other;              // anything else that is not ignored
    ComponentStats ignored;            // training leftovers: model_ema.*, optimizer state, DDPM buffers, VAE loss.*
    std::map<std::string, int64_t> ignored_kinds;  // "DDPM schedule buffers" -> 12, "model_ema.*" -> 2
    std::vector<std::string> other_examples;       // up to 5 names from `other`, to show what they are

    std::map<std::string, ComponentStats> dtypes;  // "F16" -> tensors, elements, bytes
    std::map<std::string, std::string> metadata;

    bool has_unet() const { return unet.tensors > 0; }
    bool has_text_encoder() const { return text_encoder.tensors > 0; }
    bool has_vae() const { return vae.tensors > 0; }
};

// Reads the header only (no tensor data is touched).
CheckpointInfo inspect_checkpoint(const SafeTensors& st);

// The multi-line summary `sd info` prints.
std::string format_info(const CheckpointInfo& info);

// Throws std::runtime_error unless the file is a single-file SD 1.x, 2.x or SDXL base text-to-image checkpoint with its UNet
// and text encoder (and VAE, when need_vae): "PATH is an SDXL refiner checkpoint; sd runs SDXL base models
// only".
void require_sd1(const CheckpointInfo& info, bool need_vae = true);

}  // namespace sd
