// loras.h — LoRAs named in a prompt (`<lora:NAME:WEIGHT>`), found in the LoRA folder and merged into the model,
// as the webui's built-in Lora extension does (extra_networks_lora.py, networks.py).
//
// The merge keeps the checkpoint mapped: only the tensors a LoRA touches get private copies (W + Σ m·ΔW, in their
// stored dtype, models/lora.h), handed to the file as overrides, and the text encoder and UNet are bound again.
// A later prompt with other LoRAs (or none) merges again from the mapped originals, so nothing accumulates.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "models/lora.h"
#include "pipeline/prompt_parser.h"

namespace sd {

struct Model;

// One `<lora:...>` tag as ExtraNetworkLora.activate reads it: <lora:NAME>, <lora:NAME:TE>, <lora:NAME:TE:UNET>
// (the second number is the UNet's, the first the text encoder's; one number is both), or te=/unet= by name.
struct LoraTag {
    std::string name;
    float te = 1, unet = 1;
    int64_t dyn = kAllRanks;  // <lora:NAME:TE:UNET:DYN> or dyn=: a kohya LoRA uses ranks [:dyn] (DyLoRA)
};

// The lora (and lyco) tags among a prompt's extra-network tags; throws for a weight float() refuses.
std::vector<LoraTag> lora_tags(const std::vector<ExtraNetworkTag>& tags);

// NAME.safetensors in dir or a folder below it (the webui lists its Lora folder recursively by file stem).
// Throws naming the folder and the closest names in it when there is none, and for NAME.pt / NAME.ckpt.
std::string find_lora(const std::string& dir, const std::string& name);

// Every LoRA file under dir, recursively, as the webui's Lora page lists them: file stem → path (.safetensors,
// .pt, .ckpt; a repeated stem is the last file in the webui's walk order, as find_lora takes it).
std::map<std::string, std::string> list_lora_files(const std::string& dir);

// The default LoRA folder: loras/ beside the model file.
std::string default_lora_dir(const std::string& model_path);

// Makes the model's weights those of its file plus the tagged LoRAs (none: the file's own), merged or added at
// run time (models/lora.h LoraApply); does nothing when the same set is already applied the same way. Warnings
// (layers that match nothing) go to `warnings`.
void apply_loras(Model& m, const std::vector<LoraTag>& tags, const std::string& dir, LoraApply apply,
                 std::vector<std::string>* warnings);

// The infotext's "Lora hashes" value, `name: hash, ...` (hash: the first 12 hex digits of lora_hash, the name
// as written with ':' and ',' removed), in tag order; empty without LoRAs.
std::string webui_lora_hashes(const std::vector<LoraTag>& tags, const std::string& dir);

}  // namespace sd
