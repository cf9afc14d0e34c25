// unicode_tables.h — the character tables CLIP's tokenizer needs (generated into unicode_tables.cpp).
//
// Only what the tokenizer asks: letter / number / whitespace classes, lowercase mapping, the context of
// Greek final sigma, and the HTML named and numeric character references it unescapes. Private to tokenizer/.
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

}  // namespace unicode
}  // namespace sd
