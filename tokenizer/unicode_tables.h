// unicode_tables.h — the character tables CLIP's tokenizer needs (generated into unicode_tables.cpp).
//
// Only what the tokenizer asks: letter / number / whitespace classes, lowercase mapping, the context of
// Greek final sigma, and the HTML named and numeric character references it unescapes. Also read by the prompt
// parser (pipeline/prompt_parser.cpp), which follows Python's whitespace and word classes.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sd {
namespace unicode {

struct CodeRange { uint32_t first, last; };              // inclusive, sorted, disjoint
struct CaseRun { uint32_t first, last, step; int32_t delta; };
struct Entity { const char* name; uint32_t code_point; bool bare; };
struct CharRef { uint32_t from, to; };

extern const CodeRange kLetter[], kNumber[], kRegexSpace[], kPySpace[], kCased[], kCaseIgnorable[], kCharRefDrop[];
extern const size_t kLetter_count, kNumber_count, kRegexSpace_count, kPySpace_count, kCased_count,
    kCaseIgnorable_count, kCharRefDrop_count;
extern const CaseRun kLower[];
extern const size_t kLower_count;
extern const Entity kEntity[];
extern const size_t kEntity_count;
extern const CharRef kCharRefReplace[];
extern const size_t kCharRefReplace_count;

// Whether c lies in one of the n sorted ranges r (binary search).
inline bool in_ranges(const CodeRange* r, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].first) hi = mid;
        else if (c > r[mid].last) lo = mid + 1;
        else return true;
    }
    return false;
}

}  // namespace unicode
}  // namespace sd
