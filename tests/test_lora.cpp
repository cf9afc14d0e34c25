// LoRA: the name table against every kohya layer name of SD 1.5 and SDXL base (tools/lora_keys.py walks the
// checkpoints' own tensor lists the other way round, ldm → diffusers), the file reader's refusals, and the
// scale = alpha / rank convention. The merged weights against PyTorch are in test_lora_golden.cpp.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
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

// ---- tags, names, hashes and refusals ------------------------------------------------------------------------------

#include <sys/stat.h>

#include "pipeline/loras.h"
#include "pipeline/txt2img.h"

namespace {

std::vector<LoraTag> tags_of(const std::string& prompt) {
    std::vector<ExtraNetworkTag> t;
    strip_extra_networks(prompt, &t);
    return lora_tags(t);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A LoRA file in a scratch folder from named f32 tensors.
std::string write_lora(const std::string& dir, const std::string& name,
                       const std::vector<std::pair<std::string, std::vector<int64_t>>>& parts,
                       const std::map<std::string, std::string>& meta = {}) {
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& [n, shape] : parts) {
        Tensor x = Tensor::zeros(shape);
        for (int64_t i = 0; i < x.numel(); i++) x.f32()[i] = 0.01f * (float)(i % 7);
        t.push_back({n, x});
    }
    mkdir(dir.c_str(), 0755);
    const std::string path = dir + "/" + name + ".safetensors";
    write_safetensors(path, t, meta);
    return path;
}

}  // namespace

TEST_CASE("lora: <lora:NAME:TE:UNET> tags read as the webui's ExtraNetworkLora") {
    std::vector<LoraTag> t = tags_of("a <lora:a> b <lora:b:0.6> <lora:c:0.5:1.5> <lyco:d:unet=0.25:te=2> <hypernet:x:1>");
    REQUIRE(t.size() == 4);
    CHECK((t[0].name == "a" && t[0].te == 1 && t[0].unet == 1));
    CHECK((t[1].name == "b" && t[1].te == 0.6f && t[1].unet == 0.6f));   // one number: both
    CHECK((t[2].name == "c" && t[2].te == 0.5f && t[2].unet == 1.5f));   // the first is the text encoder's
    CHECK((t[3].name == "d" && t[3].te == 2 && t[3].unet == 0.25f));     // by name
    CHECK(has(error_of([] { tags_of("<lora:a:strong>"); }), "'strong'"));
}

TEST_CASE("lora: dyn= takes the first ranks of a kohya LoRA, scaled by alpha over the full rank") {
    // extra_networks_lora.py: <lora:NAME:TE:UNET:DYN> or dyn=, int(); lyco_helpers.rebuild_conventional slices
    // up[:, :dyn] and down[:dyn] (a Python slice: past the rank is all of it, negative counts from the end), and
    // calc_scale still divides alpha by lora_down's rows.
    std::vector<LoraTag> t = tags_of("<lora:a:1:0.5:2> <lora:b:dyn=3> <lora:c:0.7>");
    CHECK((t[0].dyn == 2 && t[1].dyn == 3 && t[2].dyn == kAllRanks && t[1].te == 1));
    CHECK(has(error_of([] { tags_of("<lora:a:1:1:2.5>"); }), "not a whole number"));
    LoraLayer l;
    l.key = "lora_te_text_model_encoder_layers_0_mlp_fc1";
    Tensor up = Tensor::zeros({5, 4}), down = Tensor::zeros({4, 6}), alpha = Tensor::zeros({1});
    for (int64_t i = 0; i < up.numel(); i++) up.f32()[i] = 0.1f * (float)(i % 5) - 0.2f;
    for (int64_t i = 0; i < down.numel(); i++) down.f32()[i] = 0.05f * (float)(i % 7) - 0.1f;
    alpha.f32()[0] = 2;
    l.w = {{"lora_up.weight", up}, {"lora_down.weight", down}, {"alpha", alpha}};
    auto want = [&](int64_t k) {
        std::vector<float> d(30, 0.0f);
        for (int64_t i = 0; i < 5; i++)
            for (int64_t j = 0; j < 6; j++)
                for (int64_t r = 0; r < k; r++) d[i * 6 + j] += up.f32()[i * 4 + r] * down.f32()[r * 6 + j] * 0.5f;
        return d;
    };
    for (auto [dyn, ranks] : std::vector<std::pair<int64_t, int64_t>>{{kAllRanks, 4}, {2, 2}, {0, 0}, {9, 4}, {-1, 3}}) {
        Tensor d = lora_delta(l, {5, 6}, "t", dyn);
        std::vector<float> w = want(ranks);
        float err = 0;
        for (int i = 0; i < 30; i++) err = std::max(err, std::fabs(d.f32()[i] - w[i]));
        CHECK_MESSAGE(err < 1e-6f, "dyn " << dyn);
    }
}

TEST_CASE("lora: names, close matches, hashes") {
    CHECK(default_lora_dir("models/x.safetensors") == "models/loras");
    CHECK(default_lora_dir("x.safetensors") == "loras");
    CHECK(find_lora("tests/data/lora", "lokr") == "tests/data/lora/lokr.safetensors");
    std::string e = error_of([] { find_lora("tests/data/lora", "kohya_locn"); });
    CHECK(has(e, "no LoRA named 'kohya_locn'"));
    CHECK(has(e, "close: kohya_locon"));
    CHECK(has(error_of([] { find_lora("tests/data/no_such_folder", "x"); }), "does not exist"));
    // The "addnet" hash: SHA-256 of what follows the header (computed with hashlib by hand), first 12 digits;
    // ':' and ',' leave the name as the webui's remove_symbols does.
    CHECK(webui_lora_hashes(tags_of("<lora:kohya_locon:0.8> <lora:peft> <lora:kohya_locon:1>"), "tests/data/lora") ==
          "kohya_locon: ef229601016b, peft: cabefc73ef26");
}

TEST_CASE("lora: a LoRA answers to its ss_output_name alias, as networks.py's available_network_aliases") {
    const std::string dir = "/tmp/sd_test_lora_alias_" + std::to_string(getpid());
    const std::string q = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
    const std::vector<std::pair<std::string, std::vector<int64_t>>> parts = {{q + ".lora_down.weight", {4, 32}},
                                                                              {q + ".lora_up.weight", {32, 4}}};
    write_lora(dir, "a", parts, {{"ss_output_name", "style_v2"}});
    write_lora(dir, "b", parts, {{"ss_output_name", "dup"}});
    write_lora(dir, "c", parts, {{"ss_output_name", "dup"}});
    write_lora(dir, "d", parts, {{"ss_output_name", "a"}});     // another file's name: the name wins
    write_lora(dir, "e", parts, {{"ss_output_name", "None"}});  // "none" is never an alias
    write_lora(dir + "/sub", "a", parts);                       // the same name further down the walk: it wins
    CHECK(find_lora(dir, "style_v2") == dir + "/a.safetensors");
    CHECK(find_lora(dir, "a") == dir + "/sub/a.safetensors");
    CHECK(find_lora(dir, "d") == dir + "/d.safetensors");
    CHECK(has(error_of([&] { find_lora(dir, "dup"); }), "alias (ss_output_name) of more than one file"));
    CHECK(has(error_of([&] { find_lora(dir, "None"); }), "no LoRA named 'None'"));
    // the infotext names a LoRA as the prompt does (mentioned_name), alias or not
    CHECK(webui_lora_hashes(tags_of("<lora:style_v2:1>"), dir).compare(0, 10, "style_v2: ") == 0);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

TEST_CASE("lora: tags in the negative prompt are text, as in the webui (only the prompt's are parsed)") {
    // processing.py parse_extra_network_prompts parses self.prompts only; the negative prompts go to
    // get_learned_conditioning as written, <lora:...> and all, and nothing is activated for them.
    Model m = load_model("tests/data/tiny_sd.safetensors");
    GenerateParams p;
    p.prompt = "a cat";
    p.sampler = SamplerKind::euler;
    p.steps = 1;
    p.width = p.height = 64;
    p.seed = 3;
    p.lora_dir = "tests/data/lora";
    Arena arena;
    p.negative_prompt = "blurry <lora:no_such_lora:oops>";
    CHECK_NOTHROW(check_prompts(p.prompt, p.negative_prompt, 1));
    Tensor with_tag = sample_latent(m, p, arena);
    CHECK(m.loras.empty());
    p.negative_prompt = "blurry";
    Tensor without = sample_latent(m, p, arena);
    CHECK(std::memcmp(with_tag.f32(), without.f32(), with_tag.nbytes()) != 0);  // the tag's words are conditioning
    Tensor a = encode_prompt(m, "blurry <lora:no_such_lora:oops>", 1, arena);
    Tensor b = encode_prompt(m, "blurry", 1, arena);
    CHECK(std::memcmp(a.f32(), b.f32(), a.nbytes()) != 0);
}

TEST_CASE("lora: refusals name the file, the layer and the problem") {
    const std::string dir = "/tmp/sd_test_lora_" + std::to_string(getpid());
    SafeTensors ckpt("tests/data/tiny_sd.safetensors");
    auto merge = [&](const std::string& path, std::vector<std::string>* w = nullptr) {
        LoraFile f = read_lora(path);
        return merge_loras(ckpt, "SD 1.x", {{"x", &f, 1, 1}}, w);
    };
    const std::string q = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
    // rank mismatch
    std::string p = write_lora(dir, "rank", {{q + ".lora_down.weight", {4, 32}}, {q + ".lora_up.weight", {32, 8}}});
    CHECK(has(error_of([&] { merge(p); }), "rank mismatch"));
    // a layer shape that is not the model's
    p = write_lora(dir, "shape", {{q + ".lora_down.weight", {4, 64}}, {q + ".lora_up.weight", {32, 4}}});
    CHECK(has(error_of([&] { merge(p); }), "another model"));
    // some layers match nothing: a warning with the count; none: an error
    p = write_lora(dir, "partial", {{q + ".lora_down.weight", {4, 32}}, {q + ".lora_up.weight", {32, 4}},
                                    {"lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight", {4, 32}},
                                    {"lora_unet_down_blocks_7_attentions_0_proj_in.lora_up.weight", {32, 4}}});
    std::vector<std::string> w;
    CHECK(merge(p, &w).size() == 1);
    REQUIRE(w.size() == 1);
    CHECK(has(w[0], "1 of 2 layers match no layer"));
    p = write_lora(dir, "none", {{"lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight", {4, 32}},
                                 {"lora_unet_down_blocks_7_attentions_0_proj_in.lora_up.weight", {32, 4}}});
    CHECK(has(error_of([&] { merge(p); }), "none of its 1 layers"));
    // another family, by metadata and by names
    p = write_lora(dir, "xl", {{q + ".lora_down.weight", {4, 32}}, {q + ".lora_up.weight", {32, 4}}},
                   {{"ss_base_model_version", "sdxl_base_v1-0"}});
    CHECK(has(error_of([&] { merge(p); }), "is for SDXL, but the model is SD 1.x"));
    p = write_lora(dir, "te2", {{"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", {4, 32}},
                                {"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", {32, 4}}});
    CHECK(has(error_of([&] { merge(p); }), "is for SDXL"));
    // module kinds we do not apply, parts we do not know, pickles, files without layers
    p = write_lora(dir, "dora", {{q + ".lora_down.weight", {4, 32}}, {q + ".lora_up.weight", {32, 4}},
                                 {q + ".dora_scale", {32, 1}}});
    CHECK(has(error_of([&] { read_lora(p); }), "DoRA"));
    p = write_lora(dir, "odd", {{q + ".lora_sideways.weight", {4, 32}}});
    CHECK(has(error_of([&] { read_lora(p); }), "not a LoRA, LoHa or LoKr part"));
    CHECK(has(error_of([&] { read_lora(dir + "/old.pt"); }), "only .safetensors"));
    CHECK(has(error_of([&] { read_lora("tests/data/tiny_sd.safetensors"); }), "has no LoRA layers"));
    p = write_lora(dir, "half", {{q + ".lora_down.weight", {4, 32}}});
    CHECK(has(error_of([&] { merge(p); }), "no lora_up"));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

#include "app/infotext.h"
#include "app/generation_infotext.h"

TEST_CASE("lora: the infotext keeps the tags in the prompt and carries Lora hashes as the webui writes them") {
    GenerateParams p;
    p.prompt = "a cat <lora:kohya_locon:0.8> <lora:peft:1:0.5>";
    p.lora_dir = "tests/data/lora";
    const std::string text = format_infotext(generation_infotext(p, "Euler", "Automatic"));
    CHECK(text.compare(0, p.prompt.size() + 1, p.prompt + "\n") == 0);
    CHECK(text.find(", Lora hashes: \"kohya_locon: ef229601016b, peft: cabefc73ef26\"") != std::string::npos);
}
