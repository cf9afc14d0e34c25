// test_prompt.cpp — the webui's prompt syntax: emphasis runs and weights, schedules, AND parts and 77-token chunks
// for every prompt of tests/data/prompt_golden.json (written by tools/prompt_reference.py, which follows the
// webui's prompt_parser.py / sd_hijack_clip.py and was compared with the webui's own prompt_parser.py), plus the
// cases a golden file cannot hold: extra-network tags, bad weights, 100k brackets in linear time.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
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
