// checkpoint.cpp — model family detection and the `sd info` summary (see checkpoint.h).
//
// Detection goes from the most specific signature to the least: adapters (LoRA, ControlNet) first, since
// their keys embed UNet names; then the unsupported transformer families (SD3, Flux); then the ldm
// single-file layouts told apart by their text encoders and UNet shapes; then component files.
#include "models/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace sd {

namespace {

bool starts(const std::string& s, const char* prefix) { return s.compare(0, std::strlen(prefix), prefix) == 0; }
bool ends(const std::string& s, const char* suffix) {
    size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// Top-level buffers of ldm's LatentDiffusion (the DDPM noise schedule); the sampler computes its own.
const char* const kDDPMBuffers[] = {
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "logvar", "lvlb_weights",
};

// Training leftovers that inference never reads: which kind, or null.
const char* ignored_kind(const std::string& name) {
    if (starts(name, "model_ema.")) return "model_ema.*";
    if (starts(name, "optimizer") || starts(name, "lr_scheduler")) return "optimizer state";
    if (starts(name, "loss.")) return "VAE training loss (loss.*)";
    for (const char* b : kDDPMBuffers)
        if (name == b) return "DDPM schedule buffers";
    return nullptr;
}

bool is_float(const std::string& dtype) { return dtype[0] == 'F' || dtype == "BF16" || dtype == "C64"; }

int64_t numel(const TensorInfo& t) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;  // cannot overflow: the reader checked shape × dtype size fits the file
    return n;
}

void add(ComponentStats& c, const TensorInfo& t) {
    c.tensors++;
    c.params += is_float(t.dtype) ? numel(t) : 0;
    c.bytes += t.end - t.begin;
}

std::string with_commas(int64_t v) {
    std::string digits = std::to_string(v < 0 ? -v : v), out;
    for (size_t i = 0; i < digits.size(); i++) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return (v < 0 ? "-" : "") + out;
}

std::string human_bytes(uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", (double)b / (1ull << 20));
    else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", (double)b / 1024);
    else std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)b);
    return buf;
}

// What the header's keys show, gathered in one pass.
struct Signs {
    bool ldm_unet = false;       // model.diffusion_model.*
    bool hf_clip = false;        // cond_stage_model.transformer.*   (SD 1.x, Hugging Face CLIPTextModel)
    bool hf_clip_text_model = false;  // ... .transformer.text_model.* (the current transformers layout)
    bool open_clip = false;      // cond_stage_model.model.*         (SD 2.x, OpenCLIP)
    bool conditioner = false;    // conditioner.embedders.*          (SDXL)
    bool xl_clip_l = false;      // conditioner.embedders.0.transformer.* (SDXL base has CLIP-L, the refiner not)
    bool label_emb = false;      // model.diffusion_model.label_emb.* (SDXL's size/crop conditioning)
    bool first_stage = false;    // first_stage_model.*
    bool joint_blocks = false, double_blocks = false, single_transformer_blocks = false;
    bool lora = false, controlnet = false, embedding = false;
    bool diffusers_unet = false, add_embedding = false, diffusers_text = false;
    bool vae_encoder = false, vae_decoder = false, vae_diffusers_layout = false;
    bool tiny_diffusers = false;  // encoder.layers.* + decoder.layers.*: diffusers AutoencoderTiny
    bool all_numbered = true;     // every key starts with a digit: an nn.Sequential, as TAESD's files
    const TensorInfo* to_k = nullptr;     // a cross-attention key projection: (C, context)
    const TensorInfo* proj_in = nullptr;  // a spatial transformer's input projection
};

Signs scan(const SafeTensors& st) {
    Signs s;
    for (const TensorInfo& t : st.tensors()) {
        const std::string& n = t.name;
        if (n.empty() || n[0] < '0' || n[0] > '9') s.all_numbered = false;
        if (starts(n, "model.diffusion_model.")) s.ldm_unet = true;
        if (starts(n, "cond_stage_model.transformer.")) s.hf_clip = true;
        if (starts(n, "cond_stage_model.transformer.text_model.")) s.hf_clip_text_model = true;
        if (starts(n, "cond_stage_model.model.")) s.open_clip = true;
        if (starts(n, "conditioner.embedders.")) s.conditioner = true;
        if (starts(n, "conditioner.embedders.0.transformer.")) s.xl_clip_l = true;
        if (starts(n, "model.diffusion_model.label_emb.")) s.label_emb = true;
        if (starts(n, "first_stage_model.")) s.first_stage = true;
        if (starts(n, "model.diffusion_model.joint_blocks.") || starts(n, "joint_blocks.")) s.joint_blocks = true;
        if (starts(n, "model.diffusion_model.double_blocks.") || starts(n, "double_blocks.")) s.double_blocks = true;
        if (starts(n, "single_transformer_blocks.")) s.single_transformer_blocks = true;
        if (contains(n, "lora_down") || contains(n, "lora_up") || contains(n, ".lora_A.") ||
            contains(n, ".lora_B.") || starts(n, "lora_unet_") || starts(n, "lora_te"))
            s.lora = true;
        if (starts(n, "control_model.") || contains(n, "controlnet_cond_embedding.") || contains(n, "input_hint_block."))
            s.controlnet = true;
        if (n == "emb_params" || starts(n, "string_to_param")) s.embedding = true;
        if (starts(n, "down_blocks.")) s.diffusers_unet = true;
        if (starts(n, "add_embedding.")) s.add_embedding = true;
        if (starts(n, "text_model.encoder.layers.")) s.diffusers_text = true;
        if (n == "encoder.conv_in.weight") s.vae_encoder = true;
        if (n == "decoder.conv_in.weight") s.vae_decoder = true;
        if (starts(n, "encoder.down_blocks.")) s.vae_diffusers_layout = true;
        if (starts(n, "encoder.layers.") || starts(n, "decoder.layers.")) s.tiny_diffusers = true;
        bool in_unet = starts(n, "model.diffusion_model.") || starts(n, "down_blocks.") ||
                       starts(n, "mid_block.") || starts(n, "up_blocks.");
        if (in_unet && !s.to_k && ends(n, ".attn2.to_k.weight") && t.shape.size() == 2) s.to_k = &t;
        if (in_unet && !s.proj_in && ends(n, ".proj_in.weight")) s.proj_in = &t;
    }
    if (st.tensors().empty()) s.all_numbered = false;
    return s;
}

// Which SD generation a UNet's cross-attention width points to, for component files.
const char* generation_of_context(int64_t ctx) {
    return ctx == 768 ? "SD 1.x-like" : ctx == 1024 ? "SD 2.x-like" : ctx == 2048 ? "SDXL-like" : "unknown generation";
}

enum Bucket { kUNet, kText, kVAE, kOther };

// The component a key counts toward, given the family (component files count whole).
Bucket bucket_of(const std::string& n, ModelFamily f) {
    switch (f) {
    case ModelFamily::DiffusersUNet: return kUNet;
    case ModelFamily::DiffusersTextEncoder: return kText;
    case ModelFamily::VAE:
    case ModelFamily::TAESD: return kVAE;
    default: break;
    }
    if (starts(n, "model.diffusion_model.")) return kUNet;
    if (starts(n, "cond_stage_model.") || starts(n, "conditioner.") || starts(n, "text_encoders.")) return kText;
    if (starts(n, "first_stage_model.")) return kVAE;
    return kOther;
}

const TensorInfo* find_shape(const SafeTensors& st, const char* name, size_t rank) {
    const TensorInfo* t = st.find(name);
    return t && t->shape.size() == rank ? t : nullptr;
}

void classify(CheckpointInfo& info, const Signs& s, const SafeTensors& st) {
    using F = ModelFamily;
    auto note = [&](const std::string& n) { info.notes.push_back(n); };
    bool ldm = s.ldm_unet || s.hf_clip || s.open_clip || s.conditioner;

    if (s.lora) { info.family = F::LoRA; info.what = "a LoRA file, not a checkpoint"; return; }
    if (s.controlnet) { info.family = F::ControlNet; info.what = "a ControlNet model, not a checkpoint"; return; }
    if (s.double_blocks || s.single_transformer_blocks) {
        info.family = F::Flux;
        info.what = "a Flux checkpoint";
        return;
    }
    if (s.joint_blocks) { info.family = F::SD3; info.what = "an SD3 checkpoint"; return; }

    if (ldm) {
        bool conv_proj = info.proj_in_rank == 4, linear_proj = info.proj_in_rank == 2;
        if (s.conditioner || s.label_emb || info.context_dim == 2048) {
            info.family = F::SDXL;
            bool refiner = (s.conditioner && !s.xl_clip_l) || info.context_dim == 1280;
            info.what = refiner ? "an SDXL refiner checkpoint" : "an SDXL checkpoint";
        } else if (s.open_clip || (!s.hf_clip && (linear_proj || info.context_dim == 1024))) {
            info.family = F::SD2;
            info.what = "an SD 2.x checkpoint";
            note("SD 2.x models are epsilon- or v-prediction; the weights do not say which (see 'prediction')");
        } else if (s.hf_clip || conv_proj || info.context_dim == 768) {
            info.family = F::SD1;
            info.what = "an SD 1.x checkpoint";
            if (info.context_dim && info.context_dim != 768)
                note("context width " + std::to_string(info.context_dim) + " (SD 1.x has 768): a small test model?");
            if (info.model_channels && info.model_channels != 320)
                note("model channels " + std::to_string(info.model_channels) + " (SD 1.x has 320)");
            if (linear_proj) note("linear proj_in (SD 1.x uses 1x1 convolutions)");
            if (s.hf_clip && !s.hf_clip_text_model)
                note("text encoder in the old transformers layout (cond_stage_model.transformer.* without text_model.)");
        } else {
            info.what = "not a Stable Diffusion checkpoint (ldm-style keys, but no recognisable UNet or text encoder)";
            return;
        }
        int64_t in = info.unet_in_channels;
        if (in == 9) note("inpainting UNet (9 input channels)");
        else if (in == 8) note("instruct-pix2pix-style UNet (8 input channels)");
        else if (in == 5 && info.family == F::SD2) note("depth-conditioned UNet (5 input channels)");
        else if (in && in != 4) note("UNet with " + std::to_string(in) + " input channels");
        return;
    }

    if (s.diffusers_unet && st.has("conv_in.weight")) {
        info.family = F::DiffusersUNet;
        const char* gen = s.add_embedding ? "SDXL-like" : generation_of_context(info.context_dim);
        info.what = std::string("a diffusers UNet component file (") + gen +
                    (info.context_dim ? ", context " + std::to_string(info.context_dim) : std::string()) +
                    "), not a single-file checkpoint";
        return;
    }
    if (s.diffusers_text) {
        info.family = F::DiffusersTextEncoder;
        info.what = "a diffusers text encoder component file (CLIP" +
                    (info.text_widths.empty() ? std::string() : ", width " + std::to_string(info.text_widths[0])) +
                    "), not a single-file checkpoint";
        return;
    }
    if (s.vae_encoder && s.vae_decoder) {
        info.family = F::VAE;
        info.what = s.vae_diffusers_layout ? "a standalone VAE file (diffusers layout), not a full checkpoint"
                                           : "a standalone VAE file (ldm layout), not a full checkpoint";
        return;
    }
    if (s.first_stage) {  // only first_stage_model.*: a VAE extracted with its checkpoint prefix
        info.family = F::VAE;
        info.what = "a standalone VAE file (first_stage_model.* only), not a full checkpoint";
        return;
    }
    if (s.tiny_diffusers) {
        info.family = F::TAESD;
        info.what = "a TAESD tiny autoencoder file (diffusers AutoencoderTiny layout)";
        return;
    }
    if (s.all_numbered) {
        // Encoder: 0.weight takes the RGB image (64, 3, 3, 3). Decoder: 0 is a clamp, 1.weight takes latents.
        const TensorInfo* enc = find_shape(st, "0.weight", 4);
        const TensorInfo* dec = find_shape(st, "1.weight", 4);
        if (enc && enc->shape[1] == 3) {
            info.family = F::TAESD;
            info.what = "a TAESD tiny autoencoder encoder file (" + std::to_string(enc->shape[0]) + " channels)";
            return;
        }
        if (dec && !st.has("0.weight")) {
            info.family = F::TAESD;
            info.what = "a TAESD tiny autoencoder decoder file (" + std::to_string(dec->shape[1]) + " latent channels)";
            return;
        }
    }
    if (s.embedding) {
        info.family = F::Embedding;
        info.what = "a textual-inversion embedding, not a checkpoint";
        return;
    }
    info.family = F::Unknown;
    info.what = "not a Stable Diffusion checkpoint";
}

}  // namespace

const char* family_name(ModelFamily f) {
    switch (f) {
    case ModelFamily::SD1: return "SD 1.x";
    case ModelFamily::SD2: return "SD 2.x";
    case ModelFamily::SDXL: return "SDXL";
    case ModelFamily::SD3: return "SD3";
    case ModelFamily::Flux: return "Flux";
    case ModelFamily::DiffusersUNet: return "diffusers UNet";
    case ModelFamily::DiffusersTextEncoder: return "diffusers text encoder";
    case ModelFamily::VAE: return "VAE";
    case ModelFamily::TAESD: return "TAESD";
    case ModelFamily::LoRA: return "LoRA";
    case ModelFamily::ControlNet: return "ControlNet";
    case ModelFamily::Embedding: return "textual-inversion embedding";
    case ModelFamily::Unknown: return "unknown";
    }
    return "unknown";
}

CheckpointInfo inspect_checkpoint(const SafeTensors& st) {
    CheckpointInfo info;
    info.path = st.path();
    info.file_size = st.file_size();
    info.tensor_count = (int64_t)st.tensors().size();
    info.metadata = st.metadata();

    Signs s = scan(st);
    if (s.to_k) info.context_dim = s.to_k->shape[1];
    if (s.proj_in) info.proj_in_rank = (int)s.proj_in->shape.size();
    const TensorInfo* conv_in = find_shape(st, "model.diffusion_model.input_blocks.0.0.weight", 4);
    if (!conv_in && s.diffusers_unet) conv_in = find_shape(st, "conv_in.weight", 4);
    if (conv_in) {
        info.model_channels = conv_in->shape[0];
        info.unet_in_channels = conv_in->shape[1];
    }
    for (const TensorInfo& t : st.tensors())
        if (ends(t.name, "token_embedding.weight") && t.shape.size() == 2) info.text_widths.push_back(t.shape[1]);
    for (const char* name : {"first_stage_model.post_quant_conv.weight", "post_quant_conv.weight"})
        if (const TensorInfo* t = find_shape(st, name, 4)) info.vae_latent_channels = t->shape[0];

    classify(info, s, st);

    for (const TensorInfo& t : st.tensors()) {
        add(info.dtypes[t.dtype], t);
        if (const char* kind = ignored_kind(t.name)) {
            add(info.ignored, t);
            info.ignored_kinds[kind]++;
            continue;
        }
        switch (bucket_of(t.name, info.family)) {
        case kUNet: add(info.unet, t); break;
        case kText: add(info.text_encoder, t); break;
        case kVAE: add(info.vae, t); break;
        case kOther:
            add(info.other, t);
            if (info.other_examples.size() < 5) info.other_examples.push_back(t.name);
            break;
        }
    }
    return info;
}

std::string format_info(const CheckpointInfo& info) {
    std::string out = info.path + ": " + info.what + "\n";
    auto line = [&](const char* label, const std::string& text) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "  %-14s", label);
        out += buf + text + "\n";
    };
    line("file", with_commas((int64_t)info.file_size) + " bytes (" + human_bytes(info.file_size) + "), " +
                     std::to_string(info.tensor_count) + " tensors");

    auto component = [&](const char* label, const ComponentStats& c, const std::string& detail) {
        if (!c.tensors) return;
        char buf[96];
        std::snprintf(buf, sizeof buf, "%15s params %5lld %-7s %11s", with_commas(c.params).c_str(),
                      (long long)c.tensors, c.tensors == 1 ? "tensor" : "tensors", human_bytes(c.bytes).c_str());
        line(label, buf + (detail.empty() ? "" : "  " + detail));
    };
    bool single_file = info.family == ModelFamily::SD1 || info.family == ModelFamily::SD2 ||
                       info.family == ModelFamily::SDXL || info.family == ModelFamily::SD3;
    std::string unet = single_file ? "model.diffusion_model.*" : "";
    if (info.unet_in_channels) unet += (unet.empty() ? "" : ", ") + std::string("in ") + std::to_string(info.unet_in_channels) +
                                       ", channels " + std::to_string(info.model_channels);
    if (info.context_dim) unet += ", context " + std::to_string(info.context_dim);
    if (info.proj_in_rank) unet += info.proj_in_rank == 4 ? ", proj_in conv" : ", proj_in linear";
    std::string text = single_file ? (info.family == ModelFamily::SDXL ? "conditioner.*" : "cond_stage_model.*") : "";
    for (size_t i = 0; i < info.text_widths.size(); i++)
        text += (i ? ", " : (text.empty() ? "width " : ", width ")) + std::to_string(info.text_widths[i]);
    std::string vae = single_file ? "first_stage_model.*" : "";
    if (info.vae_latent_channels)
        vae += (vae.empty() ? "" : ", ") + std::string("latent channels ") + std::to_string(info.vae_latent_channels);
    component(info.family == ModelFamily::SD3 || info.family == ModelFamily::Flux ? "diffusion" : "UNet", info.unet, unet);
    component("text encoder", info.text_encoder, text);
    component("VAE", info.vae, vae);
    std::string examples;
    for (const std::string& n : info.other_examples) examples += (examples.empty() ? "e.g. " : ", ") + n;
    component("other", info.other, examples);
    if (info.ignored.tensors) {
        std::string kinds;
        for (auto& kv : info.ignored_kinds) kinds += (kinds.empty() ? "" : ", ") + std::to_string(kv.second) + " " + kv.first;
        line("ignored", std::to_string(info.ignored.tensors) + (info.ignored.tensors == 1 ? " tensor (" : " tensors (") + human_bytes(info.ignored.bytes) + "): " + kinds);
    }
    std::string dtypes;
    for (auto& kv : info.dtypes)
        dtypes += (dtypes.empty() ? "" : ", ") + kv.first + " " + std::to_string(kv.second.tensors) +
                  (kv.second.tensors == 1 ? " tensor (" : " tensors (") + human_bytes(kv.second.bytes) + ")";
    line("dtypes", dtypes.empty() ? "none" : dtypes);
    int shown = 0;
    for (auto& kv : info.metadata) {
        std::string v = kv.second;
        for (char& c : v) if ((unsigned char)c < 0x20) c = ' ';
        if (v.size() > 60) v = v.substr(0, 57) + "...";
        if (shown == 8) { line("", "... " + std::to_string(info.metadata.size() - 8) + " more metadata entries"); break; }
        line(shown++ ? "" : "metadata", kv.first + " = " + v);
    }
    for (const std::string& n : info.notes) line("note", n);
    try {
        require_sd1(info);
        line("runs in sd", "yes");
    } catch (const std::runtime_error& e) {
        std::string why = e.what();
        size_t semi = why.find("; ");
        line("runs in sd", "no" + (semi == std::string::npos ? std::string() : " —" + why.substr(semi + 1)));
    }
    return out;
}

void require_sd1(const CheckpointInfo& info, bool need_vae) {
    const bool xl = info.family == ModelFamily::SDXL;
    if (info.family != ModelFamily::SD1 && info.family != ModelFamily::SD2 && !xl) {
        bool component = info.family == ModelFamily::DiffusersUNet || info.family == ModelFamily::DiffusersTextEncoder;
        throw std::runtime_error(info.path + " is " + info.what + "; sd currently runs " +
                                 (component ? "single-file SD 1.x, 2.x and SDXL checkpoints only"
                                            : "SD 1.x, 2.x and SDXL models only"));
    }
    // The refiner has only the bigG encoder and an aesthetic-score vector (2560 wide); sd runs the base layout.
    if (xl && info.text_widths.size() != 2)
        throw std::runtime_error(info.path + " is " + info.what +
                                 "; sd runs SDXL base models (two text encoders), not the refiner");
    const char* fam = info.family == ModelFamily::SD1 ? "SD 1.x" : xl ? "SDXL" : "SD 2.x";
    // 9 input channels: an SD 1.x/2.x inpainting UNet (pipeline/img2img.h feeds it the mask and the masked image)
    if (info.unet_in_channels && info.unet_in_channels != 4 && (info.unet_in_channels != 9 || xl)) {
        std::string kind = info.unet_in_channels == 9 ? "inpainting" : info.unet_in_channels == 8 ? "instruct-pix2pix"
                         : info.unet_in_channels == 5 ? "depth" : "";
        throw std::runtime_error(info.path + " is an " + fam + " " + (kind.empty() ? "" : kind + " ") +
                                 "checkpoint (UNet with " + std::to_string(info.unet_in_channels) +
                                 " input channels); sd currently runs SD 1.x, 2.x and SDXL text-to-image models and SD 1.x/2.x "
                                 "inpainting models only");
    }
    std::string missing;
    if (!info.has_unet()) missing = "UNet (model.diffusion_model.*)";
    else if (!info.has_text_encoder()) missing = xl ? "text encoders (conditioner.embedders.*)" : "text encoder (cond_stage_model.*)";
    else if (need_vae && !info.has_vae()) missing = "VAE (first_stage_model.*)";
    if (!missing.empty())
        throw std::runtime_error(info.path + " is an " + fam + " checkpoint without its " + missing +
                                 "; sd needs the UNet, text encoder and VAE in one file");
}

}  // namespace sd
