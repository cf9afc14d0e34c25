// Checkpoint family detection: tiny synthetic files with only the distinguishing keys (right ranks, small
// sizes) for each family, the per-component counts, and the refusal messages of require_sd1.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/checkpoint.h"

using namespace sd;

namespace {

struct Key { std::string name; std::vector<int64_t> shape; };

std::string checkpoint_scratch() {
    static std::string dir = [] {
        char tmpl[] = "/tmp/sd_test_checkpoint_XXXXXX";
        const char* d = mkdtemp(tmpl);
        REQUIRE(d != nullptr);
        return std::string(d);
    }();
    static struct Cleanup { ~Cleanup() { std::error_code ec; std::filesystem::remove_all(dir, ec); } } cleanup;
    return dir;
}

// Writes the keys as zero F16 tensors with write_safetensors, opens the file and inspects it.
CheckpointInfo inspect_keys(const std::string& file, const std::vector<Key>& keys) {
    std::vector<std::pair<std::string, Tensor>> ts;
    for (const Key& k : keys) ts.push_back({k.name, Tensor::zeros(k.shape, DType::F16)});
    std::string path = checkpoint_scratch() + "/" + file;
    write_safetensors(path, ts, {{"format", "pt"}});
    SafeTensors st(path);
    return inspect_checkpoint(st);
}

std::string refusal(const CheckpointInfo& info, bool need_vae = true) {
    try {
        require_sd1(info, need_vae);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

const std::string U = "model.diffusion_model.";
const std::string TE1 = "cond_stage_model.transformer.text_model.";

// The keys that make an SD 1.x checkpoint recognisable, at 1/10 width.
std::vector<Key> sd1_keys(int64_t in_channels = 4) {
    return {
        {U + "input_blocks.0.0.weight", {32, in_channels, 3, 3}},
        {U + "input_blocks.0.0.bias", {32}},
        {U + "input_blocks.1.1.proj_in.weight", {32, 32, 1, 1}},
        {U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", {32, 768}},
        {TE1 + "embeddings.token_embedding.weight", {10, 768}},
        {TE1 + "final_layer_norm.weight", {768}},
        {"first_stage_model.encoder.conv_in.weight", {8, 3, 3, 3}},
        {"first_stage_model.post_quant_conv.weight", {4, 4, 1, 1}},
    };
}

bool has_note(const CheckpointInfo& info, const char* part) {
    for (const std::string& n : info.notes)
        if (n.find(part) != std::string::npos) return true;
    return false;
}

#define CHECK_HAS(text, part)                              \
    do {                                                   \
        INFO("text: ", text);                              \
        CHECK((text).find(part) != std::string::npos);     \
    } while (0)

}  // namespace

TEST_CASE("checkpoint: SD 1.x is recognised, counted by component, and accepted") {
    std::vector<Key> keys = sd1_keys();
    keys.push_back({"betas", {10}});
    keys.push_back({"alphas_cumprod", {10}});
    keys.push_back({"model_ema.decay", {}});
    keys.push_back({"optimizer.state.0.exp_avg", {3}});
    keys.push_back({"some.unknown.tensor", {2, 2}});
    CheckpointInfo info = inspect_keys("sd1.safetensors", keys);
    CHECK(info.family == ModelFamily::SD1);
    CHECK(info.what == "an SD 1.x checkpoint");
    CHECK(info.context_dim == 768);
    CHECK(info.proj_in_rank == 4);
    CHECK(info.unet_in_channels == 4);
    CHECK(info.model_channels == 32);
    CHECK(info.text_widths == std::vector<int64_t>{768});
    CHECK(info.vae_latent_channels == 4);
    CHECK(info.tensor_count == 13);
    CHECK(info.unet.tensors == 4);
    CHECK(info.unet.params == 32 * 4 * 9 + 32 + 32 * 32 + 32 * 768);
    CHECK(info.unet.bytes == 2 * (uint64_t)info.unet.params);
    CHECK(info.text_encoder.params == 10 * 768 + 768);
    CHECK(info.vae.params == 8 * 27 + 16);
    CHECK(info.ignored.tensors == 4);
    CHECK(info.ignored_kinds["DDPM schedule buffers"] == 2);
    CHECK(info.ignored_kinds["model_ema.*"] == 1);
    CHECK(info.ignored_kinds["optimizer state"] == 1);
    CHECK(info.other.tensors == 1);
    CHECK(info.other_examples == std::vector<std::string>{"some.unknown.tensor"});
    CHECK(info.dtypes.size() == 1);
    CHECK(info.dtypes["F16"].tensors == 13);
    CHECK(info.metadata.at("format") == "pt");
    CHECK(info.notes.size() == 1);  // only that the UNet is narrower than the real one
    CHECK(has_note(info, "model channels 32"));
    CHECK(refusal(info) == "");

    std::string text = format_info(info);
    CHECK_HAS(text, "sd1.safetensors: an SD 1.x checkpoint\n");
    CHECK_HAS(text, "13 tensors");
    CHECK_HAS(text, "26,784 params");  // the UNet, with thousands separators
    CHECK_HAS(text, "context 768, proj_in conv");
    CHECK_HAS(text, "4 tensors (");
    CHECK_HAS(text, "2 DDPM schedule buffers");
    CHECK_HAS(text, "e.g. some.unknown.tensor");
    CHECK_HAS(text, "F16 13 tensors");
    CHECK_HAS(text, "format = pt");
    CHECK_HAS(text, "runs in sd    yes");
}

TEST_CASE("checkpoint: integer buffers are listed but are not parameters") {
    // position_ids is I64 in real SD 1.x files; write_safetensors only writes floats, so build it in memory
    std::string header = "{\"" + TE1 + "embeddings.position_ids\":{\"dtype\":\"I64\",\"shape\":[1,77],"
                         "\"data_offsets\":[0,616]},\"" + TE1 + "embeddings.token_embedding.weight\":"
                         "{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[616,664]}}";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; i++) bytes[i] = (char)(header.size() >> (8 * i));
    bytes += header + std::string(664, '\0');
    SafeTensors st = SafeTensors::from_memory(bytes.data(), bytes.size(), "te.safetensors");
    CheckpointInfo info = inspect_checkpoint(st);
    CHECK(info.family == ModelFamily::SD1);  // a text encoder alone still says which generation it is
    CHECK(info.text_encoder.tensors == 2);
    CHECK(info.text_encoder.params == 12);
    CHECK(info.text_encoder.bytes == 664);
    CHECK(info.dtypes["I64"].tensors == 1);
    CHECK(refusal(info) == "te.safetensors is an SD 1.x checkpoint without its UNet (model.diffusion_model.*); "
                           "sd needs the UNet, text encoder and VAE in one file");
}

TEST_CASE("checkpoint: SD 1.x variants and missing parts are refused with a reason") {
    CheckpointInfo inpaint = inspect_keys("inpaint.safetensors", sd1_keys(9));
    CHECK(inpaint.family == ModelFamily::SD1);
    CHECK(has_note(inpaint, "inpainting UNet (9 input channels)"));
    CHECK(refusal(inpaint).empty());  // inpainting checkpoints run (img2img with a mask)
    CheckpointInfo pix2pix = inspect_keys("ip2p.safetensors", sd1_keys(8));
    CHECK(refusal(pix2pix) == pix2pix.path + " is an SD 1.x instruct-pix2pix checkpoint (UNet with 8 input channels); "
                                             "sd currently runs SD 1.x, 2.x and SDXL text-to-image models and SD 1.x/2.x "
                                             "inpainting models only");

    std::vector<Key> no_vae = sd1_keys();
    no_vae.resize(6);
    CheckpointInfo info = inspect_keys("novae.safetensors", no_vae);
    CHECK(info.family == ModelFamily::SD1);
    CHECK_FALSE(info.has_vae());
    CHECK_HAS(refusal(info), "novae.safetensors is an SD 1.x checkpoint without its VAE (first_stage_model.*)");
    CHECK(refusal(info, /*need_vae=*/false) == "");
}

TEST_CASE("checkpoint: SD 2.x is named and accepted, SDXL named and refused") {
    CheckpointInfo sd2 = inspect_keys("sd2.safetensors", {
        {U + "input_blocks.0.0.weight", {32, 4, 3, 3}},
        {U + "input_blocks.1.1.proj_in.weight", {32, 32}},  // linear in 2.x
        {U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", {32, 1024}},
        {"cond_stage_model.model.token_embedding.weight", {10, 1024}},
        {"cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", {12, 4}},
        {"first_stage_model.encoder.conv_in.weight", {8, 3, 3, 3}},
    });
    CHECK(sd2.family == ModelFamily::SD2);
    CHECK(sd2.context_dim == 1024);
    CHECK(sd2.proj_in_rank == 2);
    CHECK(sd2.text_widths == std::vector<int64_t>{1024});
    CHECK(refusal(sd2) == "");
    CHECK_HAS(format_info(sd2), "runs in sd    yes");

    std::vector<Key> xl = {
        {U + "input_blocks.0.0.weight", {32, 4, 3, 3}},
        {U + "label_emb.0.0.weight", {128, 2816}},
        {U + "input_blocks.4.1.proj_in.weight", {64, 64}},
        {U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", {64, 2048}},
        {"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight", {10, 768}},
        {"conditioner.embedders.1.model.token_embedding.weight", {10, 1280}},
        {"first_stage_model.decoder.conv_in.weight", {8, 4, 3, 3}},
    };
    CheckpointInfo sdxl = inspect_keys("sdxl.safetensors", xl);
    CHECK(sdxl.family == ModelFamily::SDXL);
    CHECK(sdxl.context_dim == 2048);
    CHECK(sdxl.text_widths == std::vector<int64_t>{768, 1280});
    CHECK(sdxl.text_encoder.tensors == 2);  // conditioner.* counts as text encoder
    CHECK(sdxl.unet.tensors == 4);
    CHECK(refusal(sdxl) == "");  // SDXL base runs (its tensors are checked when the model binds them)

    CheckpointInfo refiner = inspect_keys("refiner.safetensors", {
        {U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", {64, 1280}},
        {"conditioner.embedders.0.model.token_embedding.weight", {10, 1280}},
    });
    CHECK(refiner.family == ModelFamily::SDXL);
    CHECK(refiner.what == "an SDXL refiner checkpoint");
    CHECK(refusal(refiner) == refiner.path + " is an SDXL refiner checkpoint; sd runs SDXL base models (two text "
                                             "encoders), not the refiner");
}

TEST_CASE("checkpoint: diffusers component files are told apart from single-file checkpoints") {
    CheckpointInfo unet = inspect_keys("diffusion_pytorch_model.safetensors", {
        {"conv_in.weight", {32, 4, 3, 3}},
        {"time_embedding.linear_1.weight", {128, 32}},
        {"down_blocks.0.resnets.0.conv1.weight", {32, 32, 3, 3}},
        {"down_blocks.0.attentions.0.proj_in.weight", {32, 32, 1, 1}},
        {"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", {32, 768}},
    });
    CHECK(unet.family == ModelFamily::DiffusersUNet);
    CHECK(unet.context_dim == 768);
    CHECK(unet.unet_in_channels == 4);
    CHECK(unet.what == "a diffusers UNet component file (SD 1.x-like, context 768), not a single-file checkpoint");
    CHECK(unet.unet.tensors == 5);  // the whole file is the UNet
    CHECK(refusal(unet) == unet.path + " is a diffusers UNet component file (SD 1.x-like, context 768), not a "
                                       "single-file checkpoint; sd currently runs single-file SD 1.x, 2.x and SDXL checkpoints only");

    CheckpointInfo te = inspect_keys("model.safetensors", {
        {"text_model.embeddings.token_embedding.weight", {10, 768}},
        {"text_model.encoder.layers.0.self_attn.q_proj.weight", {768, 768}},
    });
    CHECK(te.family == ModelFamily::DiffusersTextEncoder);
    CHECK_HAS(te.what, "diffusers text encoder component file (CLIP, width 768)");
    CHECK(te.text_encoder.tensors == 2);
    CHECK_HAS(refusal(te), "not a single-file checkpoint");
}

TEST_CASE("checkpoint: VAE, TAESD and unsupported families are named as such") {
    CheckpointInfo vae = inspect_keys("vae-ft-mse.safetensors", {
        {"encoder.conv_in.weight", {8, 3, 3, 3}},
        {"encoder.down.0.block.0.conv1.weight", {8, 8, 3, 3}},
        {"decoder.conv_in.weight", {8, 4, 3, 3}},
        {"post_quant_conv.weight", {4, 4, 1, 1}},
        {"loss.logvar", {}},
    });
    CHECK(vae.family == ModelFamily::VAE);
    CHECK(vae.what == "a standalone VAE file (ldm layout), not a full checkpoint");
    CHECK(vae.vae.tensors == 4);
    CHECK(vae.vae_latent_channels == 4);
    CHECK(vae.ignored.tensors == 1);
    CHECK(refusal(vae) == vae.path + " is a standalone VAE file (ldm layout), not a full checkpoint; "
                                     "sd currently runs SD 1.x, 2.x and SDXL models only");
    CheckpointInfo dvae = inspect_keys("dvae.safetensors", {
        {"encoder.conv_in.weight", {8, 3, 3, 3}},
        {"encoder.down_blocks.0.resnets.0.conv1.weight", {8, 8, 3, 3}},
        {"decoder.conv_in.weight", {8, 4, 3, 3}},
    });
    CHECK(dvae.family == ModelFamily::VAE);
    CHECK_HAS(dvae.what, "diffusers layout");

    CheckpointInfo tenc = inspect_keys("taesd_encoder.safetensors", {
        {"0.weight", {64, 3, 3, 3}}, {"0.bias", {64}}, {"1.conv.0.weight", {64, 64, 3, 3}}});
    CHECK(tenc.family == ModelFamily::TAESD);
    CHECK_HAS(tenc.what, "TAESD tiny autoencoder encoder");
    CheckpointInfo tdec = inspect_keys("taesd_decoder.safetensors", {
        {"1.weight", {64, 4, 3, 3}}, {"1.bias", {64}}, {"3.conv.0.weight", {64, 64, 3, 3}}});
    CHECK(tdec.family == ModelFamily::TAESD);
    CHECK(tdec.what == "a TAESD tiny autoencoder decoder file (4 latent channels)");
    CHECK(tdec.vae.params == 64 * 36 + 64 + 64 * 64 * 9);

    CheckpointInfo sd3 = inspect_keys("sd3.safetensors", {
        {U + "joint_blocks.0.x_block.attn.qkv.weight", {12, 4}},
        {"text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight", {10, 768}},
    });
    CHECK(sd3.family == ModelFamily::SD3);
    CHECK(refusal(sd3) == sd3.path + " is an SD3 checkpoint; sd currently runs SD 1.x, 2.x and SDXL models only");
    CheckpointInfo flux = inspect_keys("flux.safetensors", {{"double_blocks.0.img_attn.qkv.weight", {12, 4}}});
    CHECK(flux.family == ModelFamily::Flux);
    CHECK_HAS(refusal(flux), "is a Flux checkpoint");
    CheckpointInfo flux_ldm = inspect_keys("flux2.safetensors", {{U + "double_blocks.0.img_attn.qkv.weight", {12, 4}}});
    CHECK(flux_ldm.family == ModelFamily::Flux);

    // LoRA keys embed UNet block names: must not pass for a UNet
    CheckpointInfo lora = inspect_keys("lora.safetensors", {
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", {4, 32}},
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", {32, 4}},
    });
    CHECK(lora.family == ModelFamily::LoRA);
    CheckpointInfo peft = inspect_keys("peft.safetensors", {{"down_blocks.0.attentions.0.proj_in.lora_A.weight", {4, 32}}});
    CHECK(peft.family == ModelFamily::LoRA);
    CheckpointInfo cn = inspect_keys("cn.safetensors", {
        {"control_model.input_hint_block.0.weight", {16, 3, 3, 3}},
        {"control_model.input_blocks.0.0.weight", {32, 4, 3, 3}},
    });
    CHECK(cn.family == ModelFamily::ControlNet);
    CheckpointInfo emb = inspect_keys("emb.safetensors", {{"emb_params", {2, 768}}});
    CHECK(emb.family == ModelFamily::Embedding);
}

TEST_CASE("checkpoint: anything else is not a Stable Diffusion checkpoint") {
    CheckpointInfo other = inspect_keys("resnet.safetensors", {{"fc.weight", {10, 4}}, {"conv1.weight", {8, 3, 7, 7}}});
    CHECK(other.family == ModelFamily::Unknown);
    CHECK(other.what == "not a Stable Diffusion checkpoint");
    CHECK(other.other.tensors == 2);
    CHECK(refusal(other) == other.path + " is not a Stable Diffusion checkpoint; sd currently runs SD 1.x, 2.x and SDXL models only");
    CHECK_HAS(format_info(other), "resnet.safetensors: not a Stable Diffusion checkpoint\n");

    CheckpointInfo empty = inspect_keys("empty.safetensors", {});
    CHECK(empty.family == ModelFamily::Unknown);
    CHECK(empty.tensor_count == 0);
    CHECK_HAS(format_info(empty), "dtypes        none");

    CheckpointInfo numbered_only = inspect_keys("seq.safetensors", {{"0.weight", {4, 4}}});  // rank 2: not TAESD
    CHECK(numbered_only.family == ModelFamily::Unknown);
}

TEST_CASE("checkpoint: real files (the tiny SD test model, the embedded TAESD decoder)") {
    // Both live in the repository, so a missing file is a failure, not a skip.
    {
        SafeTensors st("tests/data/tiny_sd.safetensors");
        CheckpointInfo info = inspect_checkpoint(st);
        CHECK(info.family == ModelFamily::SD1);
        CHECK(info.unet.tensors == 686);   // the real SD 1.5 key set, at tiny widths
        CHECK(info.vae.tensors == 248);
        CHECK(refusal(info) == "");
    }
    {
        SafeTensors st("models/taesd/taesd_decoder.safetensors");  // madebyollin's file, byte for byte
        CheckpointInfo info = inspect_checkpoint(st);
        CHECK(info.family == ModelFamily::TAESD);
        CHECK(info.vae.params == 1222531);  // as the TAESD README says
        CHECK(info.dtypes["BF16"].tensors == 67);
    }
}
