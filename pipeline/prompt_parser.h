// prompt_parser.h — the webui's prompt syntax, as its modules/prompt_parser.py and extra_networks.py read it.
//
// A prompt goes through four readings, in the webui's order:
//   1. extra-network tags `<kind:a:b>` are cut out of the text and handed on (strip_extra_networks);
//   2. `AND` splits it into sub-prompts with weights, `a cat AND a dog :1.2` (split_and; positive prompt only);
//   3. each sub-prompt's schedule: prompt editing `[from:to:when]` and alternation `[a|b]` give one plain text
//      per range of steps (prompt_schedule);
//   4. each text's emphasis: `(x)` ×1.1, `[x]` ÷1.1, `(x:w)`, escapes, BREAK (parse_prompt_attention).
// Every function reproduces the webui's result for any input, unbalanced and odd ones included; the weights are
// the same doubles the webui computes (multiplied in its order). Python's \s and \w are Unicode-aware, and so is
// this code (the tokenizer's tables); weights and step numbers take ASCII digits only (the webui's regexes would
// also take other scripts' decimal digits — left out).
#pragma once
#include <string>
#include <vector>

namespace sd {

// One run of text and its emphasis weight. The webui marks BREAK with text "BREAK" and weight -1 (only an exact
// -1 is a break: a BREAK inside brackets gets its weight multiplied and is read as the word).
struct WeightedText {
    std::string text;
    double weight = 1.0;
    bool is_break() const { return weight == -1.0 && text == "BREAK"; }
};

// parse_prompt_attention(): emphasis runs, adjacent runs of equal weight merged, never empty ("" at 1.0).
// Throws std::runtime_error for a weight that Python's float() refuses, e.g. `(a:1.2.3)`, as the webui fails.
// Linear time for any real prompt; beyond a million (run, enclosing bracket) pairs the product is taken in
// another order (a few ulp of double away, see the .cpp) so that 100k brackets stay fast.
std::vector<WeightedText> parse_prompt_attention(const std::string& text);

// One entry of a prompt schedule: `text` is used up to and including step `end_at_step` (the webui's
// [[end_at_step, text], ...]; steps count from 1, the denoiser's call counter is compared with <=).
struct ScheduledText {
    int end_at_step;
    std::string text;
};

// get_learned_conditioning_prompt_schedules([prompt], steps)[0] (no hires pass, the new scheduling): the grammar
// of the webui's lark parser, with its choices where the grammar is ambiguous; a prompt the grammar refuses (a
// `|` outside [..|..], a trailing backslash) is one entry with the prompt unchanged. Throws std::runtime_error
// for a step number Python's int() cannot convert (1e999).
std::vector<ScheduledText> prompt_schedule(const std::string& prompt, int steps);

// A sub-prompt of `a AND b :1.2`, text as the webui keeps it (weight and trailing whitespace cut off).
struct SubPrompt {
    std::string text;
    double weight = 1.0;
};
// get_multicond_prompt_list() for one prompt: split at the word AND, each part's optional `:weight` read off.
std::vector<SubPrompt> split_and(const std::string& prompt);

// An extra-network tag `<lora:name:0.8>`: kind "lora", args {"name", "0.8"}.
struct ExtraNetworkTag {
    std::string kind;
    std::vector<std::string> args;
};
// extra_networks.parse_prompt(): the prompt without its `<kind:args>` tags; the tags in order into *found.
std::string strip_extra_networks(const std::string& prompt, std::vector<ExtraNetworkTag>* found);

}  // namespace sd
