// clip_tokenizer.h — CLIP's byte-level BPE tokenizer (the one SD 1.x, 2.x and SDXL condition on).
//
// Text → ids exactly as OpenAI CLIP's simple_tokenizer does it: HTML unescape (twice), whitespace collapse,
// lowercase, CLIP's pre-tokenization pattern, byte-level BPE with "</w>" word ends. Its 48,894 merges are
// linked into the binary (tokenizer/merges.txt, MIT, see tokenizer/LICENSE). Any bytes are accepted: invalid
// UTF-8 becomes U+FFFD, as Python's decode(errors="replace") does.
// Left out: CLIP's ftfy.fix_text pass (mojibake repair, NFC normalisation) — the text is used as given — and
// the less common HTML5 named entities (the HTML 4 set, &apos; and all the ';'-less names are handled).
// Also left out: the webui's prompt syntax ((emphasis:1.2), [edits]) and its comma back-tracking when it
// splits long prompts; encode_chunks() splits at every 75 tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sd {

class ClipTokenizer {
public:
    static constexpr int kStart = 49406;        // <|startoftext|>
    static constexpr int kEnd = 49407;          // <|endoftext|>, also the padding token
    static constexpr int kVocabSize = 49408;
    static constexpr int kContext = 77;         // positions of the text encoder, start and end included
    static constexpr int kChunkTokens = kContext - 2;

    // The tokenizer built from the embedded merges (once, on first use; thread-safe).
    static const ClipTokenizer& get();

    // The ids of the text, without start/end tokens.
    std::vector<int> encode(const std::string& text) const;
    // The prompt as the webui feeds it to the text encoder: chunks of up to 75 ids, each start + ids + end,
    // padded to 77 with the end token. Always at least one chunk (an empty prompt gives start + 76 × end).
    // The caller encodes each chunk and concatenates the (77, width) outputs.
    std::vector<std::vector<int>> encode_chunks(const std::string& text) const;
    // The text of ids: each token's bytes, "</w>" as a space; start/end tokens are skipped, bad ids throw.
    std::string decode(const std::vector<int>& ids) const;
    // The vocabulary entry of an id in CLIP's byte-symbol spelling, e.g. "photo</w>"; throws on a bad id.
    const std::string& token(int id) const;

    ClipTokenizer(const ClipTokenizer&) = delete;
    ClipTokenizer& operator=(const ClipTokenizer&) = delete;
    ~ClipTokenizer();

private:
    ClipTokenizer();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sd
