// LoRA: the name table against every kohya layer name of SD 1.5 and SDXL base (tools/lora_keys.py walks the
// checkpoints' own tensor lists the other way round, ldm → diffusers), the file reader's refusals, and the
// scale = alpha / rank convention. The merged weights against PyTorch are in test_lora_golden.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "models/lora.h"

using namespace sd;

namespace {

struct KeyList {
    std::vector<TensorInfo> tensors;
    struct Want { std::string key, tensor; int64_t row0, rows; };
    std::vector<Want> want;
};

KeyList read_keys(const std::string& path) {
    std::ifstream f(path);
    REQUIRE(f.good());
    KeyList k;
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream s(line);
        std::string tag;
        s >> tag;
        if (tag == "T") {
            TensorInfo t;
            std::string dims;
            s >> t.name >> dims;
            std::istringstream d(dims);
            for (std::string x; std::getline(d, x, ',');) t.shape.push_back(std::stoll(x));
            k.tensors.push_back(t);
        } else if (tag == "K") {
            KeyList::Want w;
            s >> w.key >> w.tensor >> w.row0 >> w.rows;
            k.want.push_back(w);
        }
    }
    return k;
}

void check_family(const char* path, size_t expected_layers) {
    KeyList k = read_keys(path);
    CHECK(k.want.size() == expected_layers);
    LoraIndex index(k.tensors);
    int wrong = 0;
    for (const auto& w : k.want) {
        LoraTarget t;
        const bool found = index.resolve(w.key, &t);
        const bool ok = found && t.tensor == w.tensor && t.row0 == w.row0 && t.rows == w.rows &&
                        t.text_encoder == (w.key.compare(0, 10, "lora_unet_") != 0);
        if (!ok && wrong++ < 5)
            FAIL_CHECK(w.key << " → " << (found ? t.tensor : "(nothing)") << " rows " << t.row0 << "+" << t.rows
                             << ", expected " << w.tensor << " rows " << w.row0 << "+" << w.rows);
    }
    CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("lora: every kohya layer name of SD 1.5 lands on its checkpoint tensor") {
    // 16 spatial transformers × 12 layers, 22 res blocks' convs/emb/shortcut, 3 down- and 3 upsamplers, 12 CLIP
    // layers × 6: 350 names.
    check_family("tests/data/lora_keys_sd15.txt", 350);
}

TEST_CASE("lora: every kohya and diffusers layer name of SDXL lands on its checkpoint tensor") {
    // UNet in diffusers and sgm names; te1 = CLIP ViT-L (HF names), te2 = OpenCLIP bigG with q/k/v in in_proj.
    check_family("tests/data/lora_keys_sdxl.txt", 1840);
}

TEST_CASE("lora: the table's whole-module rows and text-encoder fallbacks") {
    auto first = [](const std::string& k) {
        std::vector<std::string> c = lora_candidates(k);
        return c.empty() ? std::string() : c[0];
    };
    CHECK(first("lora_unet_conv_in") == "model_diffusion_model_input_blocks_0_0");
    CHECK(first("lora_unet_conv_out") == "model_diffusion_model_out_2");
    CHECK(first("lora_unet_conv_norm_out") == "model_diffusion_model_out_0");
    CHECK(first("lora_unet_time_embedding_linear_1") == "model_diffusion_model_time_embed_0");
    CHECK(first("lora_unet_time_embedding_linear_2") == "model_diffusion_model_time_embed_2");
    CHECK(first("lora_unet_add_embedding_linear_1") == "model_diffusion_model_label_emb_0_0");
    CHECK(first("lora_unet_mid_block_resnets_1_conv_shortcut") == "model_diffusion_model_middle_block_2_skip_connection");
    CHECK(first("lora_te_text_model_encoder_layers_3_mlp_fc1") ==
          "cond_stage_model_transformer_text_model_encoder_layers_3_mlp_fc1");
    // SD 2.x: lora_te_ on the OpenCLIP tower
    std::vector<std::string> c = lora_candidates("lora_te_text_model_encoder_layers_3_mlp_fc2");
    CHECK(std::find(c.begin(), c.end(), "cond_stage_model_model_transformer_resblocks_3_mlp_c_proj") != c.end());
    CHECK(lora_candidates("lora_unet_down_blocks_x_resnets_0_conv1").size() == 1);  // only the sgm-name guess
    CHECK(lora_candidates("lora_te3_text_model_encoder_layers_0_mlp_fc1").empty());
}
