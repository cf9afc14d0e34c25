// test_prompt.cpp — the webui's prompt syntax: emphasis runs and weights, schedules, AND parts and 77-token chunks
// for every prompt of tests/data/prompt_golden.json (written by tools/prompt_reference.py, which follows the
// webui's prompt_parser.py / sd_hijack_clip.py and was compared with the webui's own prompt_parser.py), plus the
// cases a golden file cannot hold: extra-network tags, bad weights, 100k brackets in linear time.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <unistd.h>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"
#include "pipeline/conditioning.h"
#include "pipeline/prompt_parser.h"

using namespace sd;

namespace {

const JsonValue& golden() {
    static const JsonValue g = [] {
        std::ifstream f("tests/data/prompt_golden.json", std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        JsonLimits lim;
        lim.max_depth = 16;
        return parse_json(ss.str(), lim);
    }();
    return g;
}

std::string chunk_text(const PromptChunk& c) {
    std::string s;
    for (size_t i = 0; i < c.tokens.size(); i++) {
        char b[64];
        float w = (float)c.weights[i];
        for (int prec = 1; prec <= 9; prec++) {
            std::snprintf(b, sizeof b, "%.*g", prec, (double)w);
            if ((float)std::strtod(b, nullptr) == w) break;
        }
        s += (i ? " " : "") + std::to_string(c.tokens[i]) + ":" + b;
    }
    return s;
}

}  // namespace

TEST_CASE("prompt syntax: emphasis, AND, schedules and chunks equal the reference's for every golden prompt") {
    const JsonValue& g = golden();
    REQUIRE(g.kind == JsonValue::Array);
    REQUIRE(g.items.size() > 300);
    size_t chunk_cases = 0, schedules = 0, varying = 0;
    for (const JsonValue& c : g.items) {
        const std::string prompt = c.get("prompt")->text;
        INFO("prompt: '" << prompt << "'");
        const JsonValue* att = c.get("attention");
        if (att->kind == JsonValue::Null) {
            CHECK_THROWS_AS(parse_prompt_attention(prompt), std::runtime_error);
        } else {
            std::vector<WeightedText> runs = parse_prompt_attention(prompt);
            REQUIRE(runs.size() == att->items.size());
            for (size_t i = 0; i < runs.size(); i++) {
                CHECK(runs[i].text == att->items[i].items[0].text);
                CHECK(runs[i].weight == att->items[i].items[1].number);  // the same double
            }
        }
        std::vector<SubPrompt> parts = split_and(prompt);
        const JsonValue* ands = c.get("and");
        REQUIRE(parts.size() == ands->items.size());
        for (size_t i = 0; i < parts.size(); i++) {
            CHECK(parts[i].text == ands->items[i].items[0].text);
            CHECK(parts[i].weight == ands->items[i].items[1].number);
        }
        // Each steps count has the webui's answers across Python hash seeds: one for almost every prompt, more
        // where lark's ambiguity resolution varies (tools/prompt_reference.py); ours must be one of them.
        const JsonValue* sch = c.get("schedules");
        for (size_t k = 0; sch && k < sch->keys.size(); k++) {
            const int steps = std::stoi(sch->keys[k]);
            std::vector<ScheduledText> s = prompt_schedule(prompt, steps);
            bool found = false;
            for (const JsonValue& want : sch->items[k].items) {
                bool same = want.items.size() == s.size();
                for (size_t i = 0; same && i < s.size(); i++)
                    same = s[i].end_at_step == (int)want.items[i].items[0].number && s[i].text == want.items[i].items[1].text;
                found = found || same;
            }
            CHECK_MESSAGE(found, "schedule over " << steps << " steps differs");
            schedules++;
            if (sch->items[k].items.size() > 1) varying++;
        }
        if (const JsonValue* ch = c.get("chunks")) {
            std::vector<PromptChunk> chunks = tokenize_prompt(prompt);
            REQUIRE(chunks.size() == ch->items.size());
            for (size_t i = 0; i < chunks.size(); i++) CHECK(chunk_text(chunks[i]) == ch->items[i].text);
            chunk_cases++;
        }
    }
    CHECK(chunk_cases > 50);
    CHECK(schedules > 400);
    MESSAGE(schedules << " schedules checked, " << varying << " with answers that vary between webui runs");
}

TEST_CASE("prompt syntax: the chunking cases the issue names") {
    // Commas near the 75 boundary: a chunk full within 20 tokens after a comma moves the rest to the next.
    std::string p;
    for (int i = 0; i < 70; i++) p += "w ";
    p += ", a b c d e f g h";
    std::vector<PromptChunk> c = tokenize_prompt(p);
    REQUIRE(c.size() == 2);
    CHECK(c[0].tokens[71] == 267);                    // the comma ends the first chunk ...
    CHECK(c[0].tokens[72] == 49407);                  // ... padded after it
    CHECK(c[1].tokens[1] == tokenize_prompt("a")[0].tokens[1]);  // "a" opens the second
    // More than 225 tokens: 4 chunks; the empty prompt: one chunk of start + end padding.
    std::string long_prompt;
    for (int i = 0; i < 240; i++) long_prompt += "w ";
    CHECK(tokenize_prompt(long_prompt).size() == 4);
    std::vector<PromptChunk> e = tokenize_prompt("");
    REQUIRE(e.size() == 1);
    CHECK(e[0].tokens == empty_chunk().tokens);
    // BREAK exactly at a chunk boundary: 75 tokens then BREAK gives a full chunk and then a new one (no empty one).
    std::string b;
    for (int i = 0; i < 75; i++) b += "w ";
    CHECK(tokenize_prompt(b + "BREAK x").size() == 2);
    CHECK(tokenize_prompt("x BREAK BREAK y").size() == 3);  // an empty chunk between two BREAKs
}

TEST_CASE("prompt syntax: extra-network tags are cut out and handed on") {
    std::vector<ExtraNetworkTag> tags;
    CHECK(strip_extra_networks("a <lora:film grain:0.8> cat <hypernet:x>", &tags) == "a  cat ");
    REQUIRE(tags.size() == 2);
    CHECK(tags[0].kind == "lora");
    CHECK(tags[0].args == std::vector<std::string>{"film grain", "0.8"});
    CHECK(tags[1].kind == "hypernet");
    CHECK(strip_extra_networks("a <b> <:x> <lora:>", nullptr) == "a <b> <:x> <lora:>");  // not tags
}

TEST_CASE("prompt syntax: bad numbers fail with a sentence, as the webui fails") {
    CHECK_THROWS_WITH_AS(parse_prompt_attention("(a:1.2.3)"), doctest::Contains("not a number"), std::runtime_error);
    CHECK_THROWS_AS(prompt_schedule("[a:1e999]", 20), std::runtime_error);
    CHECK(parse_prompt_attention("a:1.2.3)").size() == 1);  // no round bracket open: plain text
}

TEST_CASE("prompt syntax: 100k brackets, deep or unbalanced, in linear time") {
    const std::vector<std::string> inputs = {
        std::string(100000, '('), std::string(100000, '['),
        std::string(50000, '(') + "a" + std::string(50000, ')'),
        std::string(50000, '[') + "a:1" + std::string(50000, ']'),
        [] { std::string s; for (int i = 0; i < 50000; i++) s += "(a"; return s; }(),
        [] { std::string s; for (int i = 0; i < 50000; i++) s += "[a"; return s; }(),
        [] { std::string s; for (int i = 0; i < 25000; i++) s += "(a["; return s; }(),
        [] { std::string s; for (int i = 0; i < 33000; i++) s += "[a|"; return s; }(),
    };
    for (const std::string& s : inputs) {
        auto t0 = std::chrono::steady_clock::now();
        std::vector<WeightedText> runs = parse_prompt_attention(s);
        std::vector<ScheduledText> sch = prompt_schedule(s, 20);
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        INFO("input starts '" << s.substr(0, 12) << "', " << s.size() << " bytes: " << sec << " s");
        CHECK(!runs.empty());
        CHECK(sch.back().end_at_step == 20);
        CHECK(sec < 5.0);  // quadratic would be ~10^10 steps
    }
    // The deep run still gets the webui's weight: 1.1 multiplied 50000 times overflows to inf, as in Python.
    std::vector<WeightedText> deep = parse_prompt_attention(std::string(500, '(') + "a" + std::string(500, ')'));
    double w = 1;
    for (int i = 0; i < 500; i++) w *= 1.1;
    REQUIRE(deep.size() == 1);
    CHECK(deep[0].weight == w);
}

#include "app/options.h"

#include "sd_command.h"

namespace {
// `cmd` starts with "./sd": run through sd_command.h's binary and runner (the emulator in `make test-aarch64`).
std::string run(std::string cmd) {
    if (cmd.rfind("./sd ", 0) == 0) cmd = sd::test::sd_shell() + cmd.substr(4);
    std::string out;
    if (FILE* f = popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
        pclose(f);
    }
    return out;
}
}  // namespace

TEST_CASE("prompt syntax: sd tokenize --weights and --schedule print what the encoder and the sampler see") {
    std::string w = run("./sd tokenize --weights 'a (b:1.5) [c] ((d)) BREAK e' 2>&1");
    CHECK(w.rfind("49406:1 320:1 321:1.5 322:0.90909094 323:1.21 49407:1 ", 0) == 0);
    CHECK(std::count(w.begin(), w.end(), '\n') == 2);  // two chunks
    CHECK(run("./sd tokenize --schedule --steps 10 'a [b:c:0.5] d' 2>&1") == "5\ta b d\n10\ta c d\n");
    CHECK(run("./sd tokenize --schedule --steps 4 '[x|y]' 2>&1") == "1\tx\n2\ty\n3\tx\n4\ty\n");
}

TEST_CASE("seeds up to 2^64 - 1, as torch and the webui accept") {
    const char* ok[] = {"sd", "-p", "x", "--seed", "18446744073709551615"};
    Options o = parse_args(5, ok);
    CHECK(!o.random_seed);
    CHECK(o.seed == 18446744073709551615ull);
    const char* over[] = {"sd", "-p", "x", "--seed", "18446744073709551616"};
    CHECK_THROWS_AS(parse_args(5, over), UsageError);
    const char* neg[] = {"sd", "-p", "x", "--seed", "-2"};
    CHECK_THROWS_AS(parse_args(5, neg), UsageError);
    const char* rnd[] = {"sd", "-p", "x", "--seed", "-1"};
    CHECK(parse_args(5, rnd).random_seed);
}

#include <filesystem>

#include "sha256.h"
#include "safetensors.h"

TEST_CASE("textual-inversion embeddings: spliced where their name's tokens are, TI hashes, pickles refused") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("sd_emb_" + std::to_string(::getpid()));
    fs::create_directories(dir / "sub");
    Tensor v = Tensor::zeros({2, 32});
    for (int i = 0; i < 64; i++) v.f32()[i] = 0.01f * i;
    write_safetensors((dir / "sub" / "shiny-thing.safetensors").string(), {{"emb_params", v}});
    Tensor wide = Tensor::zeros({1, 768});
    write_safetensors((dir / "other-model.safetensors").string(), {{"emb_params", wide}});  // another width: skipped
    { std::ofstream((dir / "old.pt").string()) << "pickle"; }
    EmbeddingDb db;
    db.load_dir(dir.string(), 32);
    std::vector<PromptChunk> c = tokenize_prompt("a (shiny-thing:1.2) cube", &db);
    REQUIRE(c.size() == 1);
    CHECK(c[0].tokens[1] == 320);                                  // "a"
    CHECK(c[0].tokens[2] == 0);                                    // two vector positions, id 0 as in the webui
    CHECK(c[0].tokens[3] == 0);
    CHECK(c[0].weights[2] == doctest::Approx(1.2));
    REQUIRE(c[0].fixes.size() == 1);
    CHECK(c[0].fixes[0].first == 1);                               // offset before the start token
    CHECK(c[0].fixes[0].second->vectors == 2);
    CHECK(tokenize_prompt("other-model", &db)[0].fixes.empty());
    const std::string hash = sha256_file((dir / "sub" / "shiny-thing.safetensors").string()).substr(0, 12);
    CHECK(webui_ti_hashes("a shiny-thing", "", 20, db) == "shiny-thing: " + hash);
    CHECK(webui_ti_hashes("a shiny-thing", "shiny-thing", 20, db) == "shiny-thing: " + hash + ", shiny-thing: " + hash);
    CHECK_THROWS_WITH_AS(tokenize_prompt("an old cat", &db), doctest::Contains("convert it to .safetensors"),
                         std::runtime_error);
    fs::remove_all(dir);
}

TEST_CASE("prompt syntax: an unknown LoRA or a bad weight is one sentence before anything is loaded") {
    CHECK(run("./sd -m tests/data/tiny_sd.safetensors -p '<lora:grain:0.8> a cat' -W 64 -H 64 --steps 1 "
              "-o /nonexistent-dir/x.png 2>&1; echo rc=$?")
              .find("cannot write") != std::string::npos);  // the output check comes first, as before
    CHECK(run("./sd -m tests/data/tiny_sd.safetensors -p '<lora:grain:0.8> a cat' -W 64 -H 64 --steps 1 "
              "-o /tmp/sd-prompt-test-never-written.png 2>&1; echo rc=$?") ==
          "sd: LoRA 'grain': the LoRA folder tests/data/loras does not exist (put NAME.safetensors in loras/ beside "
          "the model, or pass --lora-dir)\nrc=1\n");
    CHECK(run("./sd -m tests/data/tiny_sd.safetensors -p '<lora:kohya_locn:0.8> a cat' --lora-dir tests/data/lora "
              "-W 64 -H 64 --steps 1 -o /tmp/sd-prompt-test-never-written.png 2>&1; echo rc=$?") ==
          "sd: no LoRA named 'kohya_locn' in tests/data/lora (close: kohya_locon)\nrc=1\n");
    CHECK(run("./sd -m tests/data/tiny_sd.safetensors -p '<lora:peft:one> a cat' --lora-dir tests/data/lora "
              "-W 64 -H 64 --steps 1 -o /tmp/sd-prompt-test-never-written.png 2>&1; echo rc=$?") ==
          "sd: the weight 'one' of <lora:peft:...> in the prompt is not a number\nrc=1\n");
    CHECK(run("./sd -m tests/data/tiny_sd.safetensors -p 'a (cat:1.2.3)' -W 64 -H 64 --steps 1 "
              "-o /tmp/sd-prompt-test-never-written.png 2>&1; echo rc=$?") ==
          "sd: the emphasis weight '1.2.3' in the prompt is not a number\nrc=1\n");
}

#include "pipeline/txt2img.h"

// The webui's SamplerData.total_steps (sd_samplers_common.py): samplers marked "second_order" in
// sd_samplers_kdiffusion.py run prompt schedules over twice the steps; every other sampler over the steps.
TEST_CASE("prompt schedules: the webui's second-order samplers count twice the steps") {
    using sd::SamplerKind;
    for (SamplerKind k : sd::all_samplers()) {
        const bool second_order = k == SamplerKind::heun || k == SamplerKind::dpm2 || k == SamplerKind::dpm2_a ||
                                  k == SamplerKind::dpmpp_2s_a || k == SamplerKind::dpmpp_sde ||
                                  k == SamplerKind::restart;
        CAPTURE(sd::sampler_name(k));
        CHECK(sd::webui_total_steps(k, 20) == (second_order ? 40 : 20));
    }
}
