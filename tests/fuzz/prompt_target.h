// prompt_target.h — the prompt-syntax fuzz target (tests/fuzz/README.md): emphasis, schedules, AND, extra-network
// tags and chunking on arbitrary bytes. The first byte picks the step count (1..150), the rest is the prompt.
// Promises: nothing but std::runtime_error escapes (only for a weight or step number Python refuses);
// emphasis runs are merged (no two neighbours of equal weight); a schedule ends at the step count and
// increases; every chunk is start + 75 + end; linear time (libFuzzer's -timeout catches a blow-up).
#pragma once
#include <stdexcept>
#include <string>

#include "pipeline/conditioning.h"
#include "pipeline/prompt_parser.h"
#include "tests/fuzz/targets.h"
#include "tokenizer/clip_tokenizer.h"

namespace sd {
namespace fuzz {

inline int fuzz_one_prompt(const uint8_t* data, size_t size) {
    if (size == 0) return kAccepted;
    const int steps = 1 + data[0] % 150;
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    int verdict = kAccepted;  // refused: a weight or step number the webui's Python refuses too
    try {
        std::vector<WeightedText> runs = parse_prompt_attention(text);
        expect(!runs.empty(), "parse_prompt_attention returned nothing");
        for (size_t i = 1; i < runs.size(); i++)
            expect(!(runs[i].weight == runs[i - 1].weight), "two neighbouring runs have the same weight");
    } catch (const std::runtime_error&) {
        verdict = kRefused;
    }
    try {
        std::vector<ScheduledText> s = prompt_schedule(text, steps);
        expect(!s.empty() && s.back().end_at_step == steps, "the schedule does not end at the step count");
        for (size_t i = 0; i < s.size(); i++) {
            expect(s[i].end_at_step >= 1, "a schedule entry before step 1");
            expect(i == 0 || s[i].end_at_step > s[i - 1].end_at_step, "schedule steps do not increase");
            expect(s[i].text.size() <= text.size(), "a scheduled text is longer than the prompt");
        }
    } catch (const std::runtime_error&) {
        verdict = kRefused;
    }
    std::vector<ExtraNetworkTag> tags;
    const std::string stripped = strip_extra_networks(text, &tags);
    expect(stripped.size() <= text.size(), "stripping tags made the prompt longer");
    std::vector<SubPrompt> parts = split_and(stripped);
    expect(!parts.empty(), "split_and returned nothing");
    if (text.size() <= 2048) {  // the tokenizer's own target covers long inputs
        try {
            for (const PromptChunk& c : tokenize_prompt(text)) {
                expect(c.tokens.size() == 77 && c.weights.size() == 77, "a chunk is not 77 tokens");
                expect(c.tokens[0] == ClipTokenizer::kStart && c.tokens[76] == ClipTokenizer::kEnd,
                       "a chunk is not framed by start and end");
            }
        } catch (const std::runtime_error&) {
        }
    }
    return verdict;
}

}  // namespace fuzz
}  // namespace sd
