// clip_tokenizer.cpp — CLIP's text → token ids, step by step as simple_tokenizer.py (MIT) does it, minus ftfy.
//
//   bytes ─UTF-8 decode─▶ code points ─html unescape ×2, strip─▶ ─whitespace collapse, strip─▶ ─lower()─▶
//   ─split (CLIP's pattern)─▶ pieces ─UTF-8 bytes, byte-level BPE─▶ ids
//
// Every step reproduces the Python one it mirrors, character classes included (tokenizer/unicode_tables.cpp is
// generated from the regex module and str methods CLIP runs on); tests/test_tokenizer.cpp checks hundreds of
// prompts against tools/tokenizer_reference.py. Left out: see clip_tokenizer.h.
#include "tokenizer/clip_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "tokenizer/unicode_tables.h"

// ---- the merges, linked in ------------------------------------------------------------------------------------
// The path is relative to the repository root, where make runs the compiler; the Makefile lists merges.txt as a
// prerequisite of this object since -MMD cannot see an .incbin. ELF (Linux) and Mach-O (macOS) spellings.
#if defined(__APPLE__)
#define SD_CLIP_SYM(name) "_" #name
#define SD_CLIP_SECTION ".const_data\n"
#define SD_CLIP_SECTION_END ".text\n"
#else
#define SD_CLIP_SYM(name) #name
#define SD_CLIP_SECTION ".pushsection .rodata\n"
#define SD_CLIP_SECTION_END ".popsection\n"
#endif
__asm__(SD_CLIP_SECTION ".balign 16\n"
        ".globl " SD_CLIP_SYM(sd_clip_merges_start) "\n" SD_CLIP_SYM(sd_clip_merges_start) ":\n"
        ".incbin \"tokenizer/merges.txt\"\n"
        ".globl " SD_CLIP_SYM(sd_clip_merges_end) "\n" SD_CLIP_SYM(sd_clip_merges_end) ":\n"
        SD_CLIP_SECTION_END);
extern "C" const char sd_clip_merges_start[], sd_clip_merges_end[];

namespace sd {
namespace {

using Text = std::u32string;  // code points
constexpr char32_t kReplacement = 0xFFFD;
constexpr int kMerges = ClipTokenizer::kVocabSize - 512 - 2;  // 48,894

// ---- character classes (binary search in the generated range tables) -----------------------------------------
#define SD_CLASS(fn, table) \
    bool fn(char32_t c) { return unicode::in_ranges(unicode::table, unicode::table##_count, c); }
SD_CLASS(is_letter, kLetter)                // regex \p{L}
SD_CLASS(is_number, kNumber)                // regex \p{N}
SD_CLASS(is_regex_space, kRegexSpace)       // regex \s
SD_CLASS(is_py_space, kPySpace)             // str.isspace()
SD_CLASS(is_cased, kCased)
SD_CLASS(is_case_ignorable, kCaseIgnorable)
#undef SD_CLASS

// str.lower() of one code point whose lowercase is one code point.
char32_t lower_simple(char32_t c) {
    size_t lo = 0, hi = unicode::kLower_count;  // the last run starting at or before c
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (unicode::kLower[mid].first <= c) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return c;
    const unicode::CaseRun& r = unicode::kLower[lo - 1];
    if (c <= r.last && (c - r.first) % r.step == 0) return (char32_t)((int64_t)c + r.delta);
    return c;
}

// ---- UTF-8 ------------------------------------------------------------------------------------------------------
// Python's bytes.decode("utf-8", errors="replace"): each maximal ill-formed subpart (a lead byte and the
// continuation bytes valid after it, or one stray byte) becomes one U+FFFD (Unicode 3.9, table 3-7).
Text decode_utf8(const std::string& s) {
    Text out;
    out.reserve(s.size());
    size_t i = 0, n = s.size();
    while (i < n) {
        unsigned b0 = (unsigned char)s[i];
        if (b0 < 0x80) { out += (char32_t)b0; i++; continue; }
        int need;
        char32_t cp;
        unsigned lo = 0x80, hi = 0xBF;  // the valid range of the next byte
        if (b0 >= 0xC2 && b0 <= 0xDF) { need = 1; cp = b0 & 0x1F; }
        else if (b0 >= 0xE0 && b0 <= 0xEF) { need = 2; cp = b0 & 0x0F; if (b0 == 0xE0) lo = 0xA0; if (b0 == 0xED) hi = 0x9F; }
        else if (b0 >= 0xF0 && b0 <= 0xF4) { need = 3; cp = b0 & 0x07; if (b0 == 0xF0) lo = 0x90; if (b0 == 0xF4) hi = 0x8F; }
        else { out += kReplacement; i++; continue; }
        size_t j = i + 1;
        int got = 0;
        while (got < need && j < n) {
            unsigned b = (unsigned char)s[j];
            if (b < lo || b > hi) break;
            cp = (cp << 6) | (b & 0x3F);
            j++, got++;
            lo = 0x80, hi = 0xBF;
        }
        out += got == need ? cp : kReplacement;
        i = j;
    }
    return out;
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += (char)c;
    } else if (c < 0x800) {
        out += (char)(0xC0 | (c >> 6));
        out += (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += (char)(0xE0 | (c >> 12));
        out += (char)(0x80 | ((c >> 6) & 0x3F));
        out += (char)(0x80 | (c & 0x3F));
    } else {
        out += (char)(0xF0 | (c >> 18));
        out += (char)(0x80 | ((c >> 12) & 0x3F));
        out += (char)(0x80 | ((c >> 6) & 0x3F));
        out += (char)(0x80 | (c & 0x3F));
    }
}

// ---- html.unescape ----------------------------------------------------------------------------------------------
// Python's rule: a reference is &#digits;? | &#x hex;? | & then 1–32 characters other than \t \n \f space < & # ;
// and an optional ';'. Named: the whole name (with its ';') if known, else the longest known prefix of at least
// two characters among the names valid without ';', the rest kept; else the text stays.
const unicode::Entity* find_entity(const Text& s, size_t begin, size_t len) {
    std::string name;
    for (size_t k = 0; k < len; k++) {
        if (s[begin + k] >= 0x80) return nullptr;  // every entity name is ASCII
        name += (char)s[begin + k];
    }
    size_t lo = 0, hi = unicode::kEntity_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = std::strcmp(unicode::kEntity[mid].name, name.c_str());
        if (cmp == 0) return &unicode::kEntity[mid];
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return nullptr;
}

void append_numeric_reference(Text& out, uint64_t value) {
    for (size_t k = 0; k < unicode::kCharRefReplace_count; k++)
        if (unicode::kCharRefReplace[k].from == value) { out += (char32_t)unicode::kCharRefReplace[k].to; return; }
    if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) { out += kReplacement; return; }
    if (unicode::in_ranges(unicode::kCharRefDrop, unicode::kCharRefDrop_count, (char32_t)value)) return;
    out += (char32_t)value;
}

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
int hex_value(char32_t c) {
    if (is_digit(c)) return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

Text html_unescape(const Text& s) {
    Text out;
    out.reserve(s.size());
    size_t i = 0, n = s.size();
    while (i < n) {
        if (s[i] != '&') { out += s[i++]; continue; }
        size_t j = i + 1;
        if (j < n && s[j] == '#') {
            bool hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X') && j + 2 < n && hex_value(s[j + 2]) >= 0;
            bool dec = j + 1 < n && is_digit(s[j + 1]);
            if (!hex && !dec) { out += s[i++]; continue; }  // "&#" not followed by digits is text
            size_t k = hex ? j + 2 : j + 1;
            uint64_t value = 0;  // saturates above the Unicode range: any such value gives U+FFFD
            for (; k < n && (hex ? hex_value(s[k]) >= 0 : is_digit(s[k])); k++) {
                value = value * (hex ? 16 : 10) + (uint64_t)(hex ? hex_value(s[k]) : (int)(s[k] - '0'));
                if (value > 0x110000) value = 0x110000;
            }
            if (k < n && s[k] == ';') k++;
            append_numeric_reference(out, value);
            i = k;
            continue;
        }
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' && s[k] != '<' &&
               s[k] != '&' && s[k] != '#' && s[k] != ';')
            k++;
        if (k == j) { out += s[i++]; continue; }
        size_t name_len = k - j;
        bool semicolon = k < n && s[k] == ';';
        size_t end = k + (semicolon ? 1 : 0);
        const unicode::Entity* e = find_entity(s, j, name_len);
        if (e && (semicolon || e->bare)) {
            out += (char32_t)e->code_point;
        } else {
            // Longest prefix of "name[;]" (shorter than all of it, at least 2) that is a name valid without ';'.
            size_t x = semicolon ? name_len : name_len - 1;
            for (; x >= 2; x--) {
                e = find_entity(s, j, x);
                if (e && e->bare) break;
            }
            if (x >= 2) {
                out += (char32_t)e->code_point;
                out.append(s, j + x, end - (j + x));
            } else {
                out.append(s, i, end - i);
            }
        }
        i = end;
    }
    return out;
}

// ---- whitespace and case ------------------------------------------------------------------------------------------
Text strip(const Text& s) {  // str.strip()
    size_t b = 0, e = s.size();
    while (b < e && is_py_space(s[b])) b++;
    while (e > b && is_py_space(s[e - 1])) e--;
    return s.substr(b, e - b);
}

Text collapse_whitespace(const Text& s) {  // regex.sub(r"\s+", " ", s)
    Text out;
    out.reserve(s.size());
    bool in_run = false;
    for (char32_t c : s) {
        if (!is_regex_space(c)) out += c;
        else if (!in_run) out += ' ';
        in_run = is_regex_space(c);
    }
    return out;
}

// str.lower(): per code point, except İ → "i̇" and Σ, which becomes ς at the end of a word (Final_Sigma:
// preceded by a cased letter and not followed by one, case-ignorable characters skipped on both sides).
bool final_sigma(const Text& s, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !is_cased(s[j - 1])) return false;
    for (j = i + 1; j < s.size() && is_case_ignorable(s[j]); j++) {}
    return j == s.size() || !is_cased(s[j]);
}

Text lower(const Text& s) {
    Text out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == 0x130) out += U"i\u0307";
        else if (s[i] == 0x3A3) out += final_sigma(s, i) ? U'\u03C2' : U'\u03C3';
        else out += lower_simple(s[i]);
    }
    return out;
}

// ---- CLIP's pre-tokenization ----------------------------------------------------------------------------------------
// The regex <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (IGNORECASE)
// as findall runs it: left to right, at each position the first alternative that matches, each one greedy;
// whitespace between matches is skipped. After lower() the only character IGNORECASE still matters for is ſ
// (U+017F), which folds to s.
bool literal_at(const Text& s, size_t i, const char* literal) {
    for (size_t k = 0; literal[k]; k++) {
        if (i + k >= s.size()) return false;
        char32_t c = s[i + k];
        if (c != (char32_t)literal[k] && !(literal[k] == 's' && c == 0x17F)) return false;
    }
    return true;
}

struct Piece { size_t begin, end; };

std::vector<Piece> split(const Text& s) {
    static const char* const kLiterals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m",
                                            "'ll", "'d"};
    std::vector<Piece> pieces;
    size_t i = 0, n = s.size();
    while (i < n) {
        size_t end = i;
        for (const char* lit : kLiterals)
            if (literal_at(s, i, lit)) { end = i + std::strlen(lit); break; }
        if (end == i) {
            if (is_letter(s[i])) {
                while (end < n && is_letter(s[end])) end++;
            } else if (is_number(s[i])) {
                end = i + 1;
            } else if (is_regex_space(s[i])) {
                i++;
                continue;
            } else {
                while (end < n && !is_regex_space(s[end]) && !is_letter(s[end]) && !is_number(s[end])) end++;
            }
        }
        pieces.push_back({i, end});
        i = end;
    }
    return pieces;
}

uint64_t pair_key(int left, int right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

}  // namespace

// ---- the vocabulary and byte-level BPE ----------------------------------------------------------------------------
struct ClipTokenizer::Impl {
    // Bytes are BPE symbols; each is spelled as one code point: printable Latin-1 bytes as themselves, the others
    // (controls, space, 0x7F-0xA0, 0xAD) as U+0100, U+0101, ... in byte order. Ids: the printable ones first.
    int byte_id[256];                          // byte → id of its symbol; + 256 for the same with "</w>"
    unsigned char symbol_byte[0x144];          // symbol code point → byte (decode)
    std::vector<std::string> vocab;            // id → spelling, e.g. "photo</w>"
    struct Merge { int rank, id; };
    std::unordered_map<uint64_t, Merge> merges;  // (left id, right id) → rank, id of the joined token

    mutable std::mutex cache_mutex;
    mutable std::unordered_map<std::string, std::vector<int>> cache;  // piece bytes → ids

    Impl() {
        int next = 0, extra = 0;
        char32_t symbol[256];
        auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
        for (int b = 0; b < 256; b++)
            if (printable(b)) symbol[b] = (char32_t)b, byte_id[b] = next++;
        for (int b = 0; b < 256; b++)
            if (!printable(b)) symbol[b] = (char32_t)(256 + extra++), byte_id[b] = next++;
        vocab.resize(kVocabSize);
        for (int b = 0; b < 256; b++) {
            symbol_byte[symbol[b]] = (unsigned char)b;
            std::string spelling;
            append_utf8(spelling, symbol[b]);
            vocab[byte_id[b]] = spelling;
            vocab[byte_id[b] + 256] = spelling + "</w>";
        }

        // tokenizer/merges.txt: one "left right" pair per line, in rank order.
        std::vector<std::pair<std::string_view, std::string_view>> pairs;  // views of the embedded text
        pairs.reserve(kMerges);
        std::string_view text(sd_clip_merges_start, (size_t)(sd_clip_merges_end - sd_clip_merges_start));
        while (!text.empty()) {
            size_t eol = text.find('\n');
            std::string_view line = text.substr(0, eol);
            text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
            size_t sp = line.find(' ');
            if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size())
                throw std::runtime_error("embedded tokenizer/merges.txt: line " + std::to_string(pairs.size() + 1) +
                                         " is not a pair of tokens");
            pairs.emplace_back(line.substr(0, sp), line.substr(sp + 1));
        }
        if ((int)pairs.size() != kMerges)
            throw std::runtime_error("embedded tokenizer/merges.txt has " + std::to_string(pairs.size()) +
                                     " merges, CLIP's vocabulary needs " + std::to_string(kMerges));
        for (int r = 0; r < kMerges; r++) vocab[512 + r].append(pairs[r].first).append(pairs[r].second);
        vocab[kStart] = "<|startoftext|>";
        vocab[kEnd] = "<|endoftext|>";

        std::unordered_map<std::string_view, int> id_of;  // views of `vocab`, which no longer changes
        id_of.reserve(kVocabSize);
        for (int id = 0; id < kVocabSize; id++) id_of.emplace(vocab[id], id);
        if ((int)id_of.size() != kVocabSize)
            throw std::runtime_error("embedded tokenizer/merges.txt spells a vocabulary entry twice");
        merges.reserve(kMerges);
        for (int r = 0; r < kMerges; r++) {
            auto left = id_of.find(pairs[r].first), right = id_of.find(pairs[r].second);
            if (left == id_of.end() || right == id_of.end()) continue;  // could never apply
            merges[pair_key(left->second, right->second)] = Merge{r, 512 + r};  // a repeated pair: the last rank
        }
    }

    const Merge* find_merge(int left, int right) const {
        auto it = merges.find(pair_key(left, right));
        return it == merges.end() ? nullptr : &it->second;
    }

    // One piece: its bytes as symbols ("</w>" on the last), then CLIP's loop: take the lowest-ranked adjacent pair,
    // merge all its occurrences in one left-to-right non-overlapping scan, repeat until no adjacent pair is a merge.
    // Rescanning the word per merge is quadratic in its length (a 128,000-letter word took 5.5 s), so the symbols
    // are a linked list and the adjacent pairs sit in a min-heap of (rank, position of the left symbol), processed
    // in rounds: a round pops every entry of the lowest rank r, which come out left to right, and merges those that
    // still hold the pair of rank r. Entries go stale when a neighbour merges; they are checked, not removed.
    // Why one round is exactly CLIP's scan: a merge of (A, B) makes a symbol AB spelled longer than A and than B,
    // so every pair it creates contains AB and differs from (A, B) — no pair of rank r appears during the round, and
    // the only occurrence a merge removes is one overlapping it on the right, the one CLIP's scan skips too. The
    // pairs created go into the heap and compete from the next round on, even with ranks below r, as they would in
    // CLIP's next search for the lowest rank. (With CLIP's list they never rank below r — each line's tokens are
    // made by earlier lines — so the rounds only matter for a list without that order; they cost nothing.) A pair
    // never comes back at a position (its spelling only grows), so a stale entry never turns valid again.
    // O(n log n) in the word's bytes.
    std::vector<int> bpe(const std::string& piece) const {
        {
            std::lock_guard<std::mutex> lock(cache_mutex);
            auto hit = cache.find(piece);
            if (hit != cache.end()) return hit->second;
        }
        if (piece.empty()) return {};  // split() makes no empty pieces
        const int n = (int)piece.size();
        std::vector<int> symbol(n), next(n), prev(n);  // by byte position; -1: merged away / no neighbour
        for (int k = 0; k < n; k++) symbol[k] = byte_id[(unsigned char)piece[k]], prev[k] = k - 1, next[k] = k + 1;
        symbol[n - 1] += 256;
        next[n - 1] = -1;

        std::vector<uint64_t> heap;  // rank << 32 | left position, smallest on top
        auto key = [](int rank, int pos) { return (uint64_t)(uint32_t)rank << 32 | (uint32_t)pos; };
        auto push = [&](int pos) {
            if (next[pos] < 0) return;
            if (const Merge* m = find_merge(symbol[pos], symbol[next[pos]])) {
                heap.push_back(key(m->rank, pos));
                std::push_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
            }
        };
        for (int k = 0; k + 1 < n; k++) push(k);

        std::vector<int> round;  // left positions of this round's pair, ascending
        while (!heap.empty()) {
            const int rank = (int)(heap.front() >> 32);
            round.clear();
            while (!heap.empty() && (int)(heap.front() >> 32) == rank) {
                round.push_back((int)(uint32_t)heap.front());
                std::pop_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
                heap.pop_back();
            }
            for (int pos : round) {
                if (symbol[pos] < 0 || next[pos] < 0) continue;  // merged into its left neighbour, or now last
                const Merge* m = find_merge(symbol[pos], symbol[next[pos]]);
                if (!m || m->rank != rank) continue;  // stale: a neighbour changed since the entry was pushed
                const int right = next[pos];
                symbol[pos] = m->id;
                symbol[right] = -1;
                next[pos] = next[right];
                if (next[pos] >= 0) prev[next[pos]] = pos;
                if (prev[pos] >= 0) push(prev[pos]);
                push(pos);
            }
        }
        std::vector<int> word;  // position 0 is never merged away: merges keep the left position
        for (int k = 0; k >= 0; k = next[k]) word.push_back(symbol[k]);
        std::lock_guard<std::mutex> lock(cache_mutex);
        if (cache.size() > 100000) cache.clear();  // prompts are short; this only bounds adversarial input
        cache.emplace(piece, word);
        return word;
    }
};

ClipTokenizer::ClipTokenizer() : impl_(new Impl) {}
ClipTokenizer::~ClipTokenizer() = default;

const ClipTokenizer& ClipTokenizer::get() {
    static const ClipTokenizer tokenizer;
    return tokenizer;
}

std::vector<int> ClipTokenizer::encode(const std::string& text) const {
    Text t = decode_utf8(text);
    t = strip(html_unescape(html_unescape(t)));  // CLIP's basic_clean, without ftfy
    t = strip(collapse_whitespace(t));           // whitespace_clean
    t = lower(t);
    std::vector<int> ids;
    for (const Piece& p : split(t)) {
        std::string bytes;
        for (size_t k = p.begin; k < p.end; k++) append_utf8(bytes, t[k]);
        if (bytes == impl_->vocab[kStart]) ids.push_back(kStart);
        else if (bytes == impl_->vocab[kEnd]) ids.push_back(kEnd);
        else for (int id : impl_->bpe(bytes)) ids.push_back(id);
    }
    return ids;
}

std::vector<std::vector<int>> ClipTokenizer::encode_chunks(const std::string& text) const {
    std::vector<int> ids = encode(text);
    std::vector<std::vector<int>> chunks;
    for (size_t begin = 0; begin < ids.size() || chunks.empty(); begin += kChunkTokens) {
        size_t end = std::min(ids.size(), begin + kChunkTokens);
        std::vector<int> chunk(kContext, kEnd);  // (77,): start, up to 75 ids, end, end padding
        chunk[0] = kStart;
        std::copy(ids.begin() + begin, ids.begin() + end, chunk.begin() + 1);
        chunks.push_back(chunk);
    }
    return chunks;
}

const std::string& ClipTokenizer::token(int id) const {
    if (id < 0 || id >= kVocabSize)
        throw std::runtime_error("token id " + std::to_string(id) + " is outside CLIP's vocabulary [0, 49408)");
    return impl_->vocab[id];
}

std::string ClipTokenizer::decode(const std::vector<int>& ids) const {
    std::string spelled;
    for (int id : ids)
        if (id != kStart && id != kEnd) spelled += token(id);
    std::string bytes;  // each spelled code point is one byte's symbol ("</w>" included: printable ASCII)
    for (char32_t c : decode_utf8(spelled)) bytes += (char)impl_->symbol_byte[c];
    std::string out;
    for (size_t k = 0; k < bytes.size();) {
        if (bytes.compare(k, 4, "</w>") == 0) out += ' ', k += 4;
        else out += bytes[k++];
    }
    return out;
}

}  // namespace sd
