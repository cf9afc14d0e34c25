// prompt_parser.cpp — the webui's prompt syntax (see prompt_parser.h). The text stays bytes; UTF-8 is decoded only
// where Python's Unicode character classes (\s, \w) decide something, so odd bytes pass through unchanged.
#include "pipeline/prompt_parser.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>

#include "tokenizer/unicode_tables.h"

namespace sd {
namespace {

// ---- characters ---------------------------------------------------------------------------------------------------

constexpr uint32_t kBadByte = 0xFFFFFFFF;  // a byte that does not start valid UTF-8: no class

// The code point at s[i] and its length in bytes (kBadByte, 1 for invalid UTF-8).
uint32_t code_point_at(const std::string& s, size_t i, size_t* len) {
    const unsigned char* p = (const unsigned char*)s.data() + i;
    const size_t left = s.size() - i;
    *len = 1;
    if (p[0] < 0x80) return p[0];
    int n = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 && p[0] < 0xE0 ? 2 : 0;
    if (n == 0 || (size_t)n > left) return kBadByte;
    uint32_t c = p[0] & (0x7F >> n);
    for (int k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) return kBadByte;
        c = (c << 6) | (p[k] & 0x3F);
    }
    if ((n == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return kBadByte;
    *len = n;
    return c;
}

// The code point ending just before s[i] (kBadByte when none decodes there).
uint32_t code_point_before(const std::string& s, size_t i) {
    for (size_t back = 1; back <= 4 && back <= i; back++) {
        size_t len;
        uint32_t c = code_point_at(s, i - back, &len);
        if (c != kBadByte && len == back) return c;
        if ((((unsigned char)s[i - back]) & 0xC0) != 0x80) break;  // a lead byte that did not decode to here
    }
    return kBadByte;
}

// Python re's \s for str: str.isspace().
bool is_space_cp(uint32_t c) { return c != kBadByte && unicode::in_ranges(unicode::kPySpace, unicode::kPySpace_count, c); }
// Python re's \w for str: alphanumeric (letters and numbers) or '_'.
bool is_word_cp(uint32_t c) {
    if (c == kBadByte) return false;
    if (c < 0x80) return std::isalnum((int)c) || c == '_';
    return unicode::in_ranges(unicode::kLetter, unicode::kLetter_count, c) || unicode::in_ranges(unicode::kNumber, unicode::kNumber_count, c);
}

// The start of the code point that ends just before s[i] (i > 0).
size_t prev_start(const std::string& s, size_t i) {
    size_t back = 1;
    while (back < 4 && back < i && ((unsigned char)s[i - back] & 0xC0) == 0x80) back++;
    size_t len;
    return code_point_at(s, i - back, &len) != kBadByte && len == back ? i - back : i - 1;
}

// The start of the run of \s characters that ends at s[i], not before `floor`.
size_t skip_spaces_back(const std::string& s, size_t i, size_t floor = 0) {
    while (i > floor && is_space_cp(code_point_before(s, i))) i = prev_start(s, i);
    return i;
}

// The end of the run of \s characters starting at s[i].
size_t skip_spaces(const std::string& s, size_t i) {
    while (i < s.size()) {
        size_t len;
        if (!is_space_cp(code_point_at(s, i, &len))) break;
        i += len;
    }
    return i;
}

// Whether `word` (ASCII letters) stands at s[i] with a \b on both sides.
bool word_at(const std::string& s, size_t i, const char* word) {
    size_t n = std::strlen(word);
    if (s.compare(i, n, word) != 0) return false;
    if (i > 0 && is_word_cp(code_point_before(s, i))) return false;
    size_t len;
    return i + n == s.size() || !is_word_cp(code_point_at(s, i + n, &len));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

#include "pipeline/prompt_digits.inc"  // kDecimal: Python re's \d

// The value of the decimal digit of any script at s[i] (Python re's \d: "１", "٣", "7"), its bytes in *len; -1 if
// none is there.
int decimal_at(const std::string& s, size_t i, size_t* len) {
    const uint32_t c = code_point_at(s, i, len);
    const size_t n = sizeof(kDecimal) / sizeof(kDecimal[0]);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (c < kDecimal[mid].first) hi = mid;
        else if (c > kDecimal[mid].last) lo = mid + 1;
        else return (int)((c - kDecimal[mid].first) % 10);
    }
    return -1;
}

// Whether a decimal digit ends just before s[i]; *start: where it begins.
bool decimal_before(const std::string& s, size_t i, size_t* start) {
    if (i == 0) return false;
    size_t k = prev_start(s, i), len;
    if (decimal_at(s, k, &len) < 0 || k + len != i) return false;
    *start = k;
    return true;
}

// Python's float() of a text the webui's regexes matched; false when float() would raise. Like float(), it reads
// a decimal digit of any script as its ASCII digit ("１.５" is 1.5).
bool python_float(const std::string& t, double* out) {
    std::string ascii;
    size_t digits = 0, dots = 0;
    for (size_t k = 0; k < t.size();) {
        size_t len = 1;
        const int d = decimal_at(t, k, &len);
        if (d >= 0) {
            ascii += (char)('0' + d), digits++, k += len;
            continue;
        }
        const char c = t[k++];
        if (c == '.') dots++;
        else if (c != 'e' && c != 'E' && c != '+' && c != '-') return false;
        ascii += c;
    }
    if (digits == 0 || dots > 1) return false;
    char* end = nullptr;
    *out = std::strtod(ascii.c_str(), &end);
    return end == ascii.c_str() + ascii.size();
}

// ---- emphasis: parse_prompt_attention ------------------------------------------------------------------------------

// A bracket of the webui's round or square stack: the one below it, its multiplier (known when it closes), the
// order in which it closed (-1: never).
struct Bracket {
    int below;
    double mult;
    long closed_at;
};

// re.split(re_break, text) as the webui appends it: parts at 1.0 with ["BREAK", -1] between them.
// re_break is \s*\bBREAK\b\s*: a break takes the whitespace on both sides of the word with it.
template <class Add>
void split_breaks(const std::string& text, Add add) {
    size_t part_start = 0, i = 0;
    while (true) {
        size_t k = text.find("BREAK", i);
        while (k != std::string::npos && !word_at(text, k, "BREAK")) k = text.find("BREAK", k + 1);
        if (k == std::string::npos) break;
        // The match starts where the whitespace run before the word starts (not before the last match's end).
        size_t start = skip_spaces_back(text, k, part_start);
        add(text.substr(part_start, start - part_start), 1.0);
        add("BREAK", -1.0);
        part_start = i = skip_spaces(text, k + 5);
    }
    add(text.substr(part_start), 1.0);
}

}  // namespace

std::vector<WeightedText> parse_prompt_attention(const std::string& text) {
    struct Entry {
        WeightedText t;
        int round_top, square_top;  // the stacks' tops when it was appended: exactly the brackets that weigh it
    };
    std::vector<Entry> res;
    std::vector<Bracket> round, square;      // every bracket ever opened, by kind
    std::vector<int> round_open, square_open;  // the webui's two stacks (indices into the above)
    long closes = 0;
    auto add = [&](std::string s, double w) {
        res.push_back({{std::move(s), w}, round_open.empty() ? -1 : round_open.back(),
                       square_open.empty() ? -1 : square_open.back()});
    };
    auto add_text = [&](const std::string& s) { split_breaks(s, [&](std::string p, double w) { add(std::move(p), w); }); };
    auto close = [&](std::vector<Bracket>& kind, std::vector<int>& open, double mult) {
        kind[open.back()].mult = mult;
        kind[open.back()].closed_at = closes++;
        open.pop_back();
    };

    // re_attention's alternatives, first match wins at each position.
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
        const char c = text[i];
        if (c == '\\') {  // \( \) \[ \] \\ give the character; a lone backslash gives nothing
            if (i + 1 < n && std::strchr("()[]\\", text[i + 1]) && text[i + 1] != '\0') {
                add(std::string(1, text[i + 1]), 1.0);
                i += 2;
            } else {
                add("", 1.0);
                i += 1;
            }
        } else if (c == '(') {
            round.push_back({round_open.empty() ? -1 : round_open.back(), 1.1, -1});
            round_open.push_back((int)round.size() - 1);
            i++;
        } else if (c == '[') {
            square.push_back({square_open.empty() ? -1 : square_open.back(), 1 / 1.1, -1});
            square_open.push_back((int)square.size() - 1);
            i++;
        } else if (c == ':') {
            // :\s*([+-]?[.\d]+)\s*\)
            size_t j = skip_spaces(text, i + 1), w0 = j;
            if (j < n && (text[j] == '+' || text[j] == '-')) j++;
            size_t d0 = j;
            size_t len = 1;
            while (j < n && (text[j] == '.' || decimal_at(text, j, &len) >= 0)) j += text[j] == '.' ? 1 : len;
            size_t w1 = j;
            j = skip_spaces(text, j);
            if (w1 > d0 && j < n && text[j] == ')') {
                const std::string token = text.substr(i, j + 1 - i), weight = text.substr(w0, w1 - w0);
                if (!round_open.empty()) {
                    double w;
                    if (!python_float(weight, &w))
                        throw std::runtime_error("the emphasis weight '" + weight + "' in the prompt is not a number");
                    close(round, round_open, w);
                } else {
                    add_text(token);
                }
                i = j + 1;
            } else {
                add_text(":");
                i++;
            }
        } else if (c == ')' && !round_open.empty()) {
            close(round, round_open, 1.1);
            i++;
        } else if (c == ']' && !square_open.empty()) {
            close(square, square_open, 1 / 1.1);
            i++;
        } else if (c == ')' || c == ']') {
            add_text(std::string(1, c));
            i++;
        } else {  // [^\\()\[\]:]+
            size_t j = i;
            while (j < n && !std::strchr("\\()[]:", text[j])) j++;
            if (j == i) j++;  // a NUL byte: strchr finds the terminator; take it as text
            add_text(text.substr(i, j - i));
            i = j;
        }
    }

    // Each entry is multiplied by the brackets open when it was appended, in the webui's order: those that closed,
    // in closing order, then the unclosed round ones bottom-up, then the unclosed square ones bottom-up.
    // The exact order costs runs × depth: up to a million multiplications (a thousand runs a thousand deep, far
    // beyond any real prompt) it is used.
    constexpr size_t kExactBudget = 1u << 20;
    size_t work = 0;
    for (const Entry& e : res) {
        for (int b = e.round_top; b >= 0 && work < kExactBudget; b = round[b].below) work++;
        for (int b = e.square_top; b >= 0 && work < kExactBudget; b = square[b].below) work++;
        if (work >= kExactBudget) break;
    }
    if (work < kExactBudget) {
        std::vector<int> rs, ss;
        for (Entry& e : res) {
            rs.clear();
            ss.clear();
            for (int b = e.round_top; b >= 0; b = round[b].below) rs.push_back(b);   // top first
            for (int b = e.square_top; b >= 0; b = square[b].below) ss.push_back(b);
            size_t ri = 0, si = 0;
            double w = e.t.weight;
            while (ri < rs.size() || si < ss.size()) {  // the closed ones, merged by closing order
                long rt = ri < rs.size() ? round[rs[ri]].closed_at : -1;
                long st = si < ss.size() ? square[ss[si]].closed_at : -1;
                if (rt < 0 && st < 0) break;
                if (st < 0 || (rt >= 0 && rt < st)) w *= round[rs[ri++]].mult;
                else w *= square[ss[si++]].mult;
            }
            for (size_t k = rs.size(); k > ri; k--) w *= round[rs[k - 1]].mult;   // unclosed, bottom-up
            for (size_t k = ss.size(); k > si; k--) w *= square[ss[k - 1]].mult;
            e.t.weight = w;
        }
    } else {
        // Tens of thousands of nested brackets over tens of thousands of runs: the webui's own loop is quadratic
        // here. Each entry gets the product of its brackets' multipliers along the stack instead (same factors,
        // another order: the doubles may differ in the last bits, below float32's resolution that CLIP sees).
        std::vector<double> round_prod(round.size()), square_prod(square.size());
        for (size_t b = 0; b < round.size(); b++)
            round_prod[b] = (round[b].below < 0 ? 1.0 : round_prod[round[b].below]) * round[b].mult;
        for (size_t b = 0; b < square.size(); b++)
            square_prod[b] = (square[b].below < 0 ? 1.0 : square_prod[square[b].below]) * square[b].mult;
        for (Entry& e : res)
            e.t.weight *= (e.round_top < 0 ? 1.0 : round_prod[e.round_top]) *
                          (e.square_top < 0 ? 1.0 : square_prod[e.square_top]);
    }

    std::vector<WeightedText> out;
    if (res.empty()) out.push_back({"", 1.0});
    for (Entry& e : res) {  // merge runs of identical weights
        if (!out.empty() && out.back().weight == e.t.weight) out.back().text += e.t.text;
        else out.push_back(std::move(e.t));
    }
    return out;
}

// ---- scheduling: the lark grammar of get_learned_conditioning_prompt_schedules ---------------------------------------
//
//   start: (prompt | /[][():]/+)*
//   prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
//   emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
//   scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
//   alternate: "[" prompt ("|" [prompt])+ "]"
//   plain: /([^\\\[\]():|]|\\.)+/
// lark's Earley parser matches each terminal greedily (its "dynamic" lexer takes the regex's match, never a
// shorter one); a stray bracket or colon at the top level is a token of its own (the `+` repeats the terminal),
// and where a bracket can open a construct or stand alone, the construct is chosen. Inside a construct nothing
// is ambiguous.
namespace {

struct Seq;
struct Node {
    enum Kind { text, scheduled, alternate } kind = text;
    std::string str;                           // text: literal output (brackets of emphasis included)
    std::vector<std::unique_ptr<Seq>> parts;   // scheduled: {before or null, after}; alternate: options (null: "")
    long when = 0;                             // scheduled: the step after which `after` is used
    std::string number;                        // scheduled: the NUMBER token
};
struct Seq {
    std::vector<Node> nodes;
};

class ScheduleParser {
public:
    ScheduleParser(const std::string& s, int steps) : s_(s), n_(s.size()), steps_(steps), failed_(s.size()) {}

    // The whole prompt; false when the grammar refuses it.
    bool parse_start(Seq* out) {
        size_t i = 0;
        while (i < n_) {
            const char c = s_[i];
            if (c == '[' || c == '(') {
                depth_ = 0;
                size_t j = i;
                Seq construct;
                if (parse_construct(&j, &construct)) {
                    for (Node& node : construct.nodes) out->nodes.push_back(std::move(node));
                    i = j;
                    continue;
                }
            }
            if (std::strchr("[]():", c) && c != '\0') {  // a stray bracket or colon: one /[][():]/ token
                add_text(out, std::string(1, c));
                i++;
                continue;
            }
            size_t j = i;
            if (!parse_plain(&j)) return false;  // '|' or a backslash with nothing after it
            add_text(out, s_.substr(i, j - i));
            i = j;
        }
        return true;
    }

    long number_to_step(const std::string& t) const {
        double v = std::strtod(t.c_str(), nullptr);
        if (t.find('.') != std::string::npos) v = v * steps_;
        if (!std::isfinite(v))
            throw std::runtime_error("the prompt-editing step '" + t + "' is too large to be a step number");
        double tv = std::trunc(v);  // int(): toward zero; then min(steps, ...)
        if (tv >= steps_) return steps_;
        return tv < -1e9 ? -1000000000L : (long)tv;
    }

private:
    const std::string& s_;
    const size_t n_;
    const int steps_;
    int depth_ = 0;
    // A construct that failed at a position fails there in any context: remembered, so that unbalanced input
    // like "(a(a(a..." costs linear, not quadratic, time.
    std::vector<char> failed_;
    static constexpr int kMaxDepth = 1000;  // deeper nesting crashes the webui (Python's recursion limit)

    static void add_text(Seq* seq, std::string t) {
        if (!seq->nodes.empty() && seq->nodes.back().kind == Node::text) seq->nodes.back().str += t;
        else {
            Node node;
            node.str = std::move(t);
            seq->nodes.push_back(std::move(node));
        }
    }

    // plain: one or more of: a character other than \ [ ] ( ) : |, or a backslash and any character but '\n'.
    bool parse_plain(size_t* i) {
        size_t j = *i;
        while (j < n_) {
            char c = s_[j];
            if (c == '\\') {
                if (j + 1 >= n_ || s_[j + 1] == '\n') break;
                j += 2;
            } else if (c != '\0' && std::strchr("[]():|", c)) {
                break;
            } else {
                j++;
            }
        }
        if (j == *i) return false;
        *i = j;
        return true;
    }

    // prompt (inside a construct): stops at ] ) : | or the end; false if a bracket there opens nothing valid.
    bool parse_prompt(size_t* i, Seq* out) {
        while (*i < n_) {
            char c = s_[*i];
            if (c == '[' || c == '(') {
                if (!parse_construct(i, out)) return false;
            } else if (c != '\0' && std::strchr("]):|", c)) {
                return true;
            } else {
                size_t j = *i;
                if (!parse_plain(&j)) return false;  // a trailing backslash
                add_text(out, s_.substr(*i, j - *i));
                *i = j;
            }
        }
        return true;
    }

    // lark's SIGNED_NUMBER at s[i], as its regex matches (first alternative that matches, each greedy):
    // [+-]? ( INT (e|E) [+-]? INT  |  (INT "." INT? | "." INT) ((e|E) [+-]? INT)?  |  INT )
    size_t match_number(size_t i) const {
        size_t j = i;
        if (j < n_ && (s_[j] == '+' || s_[j] == '-')) j++;
        auto digits = [&](size_t k) { while (k < n_ && is_digit(s_[k])) k++; return k; };
        auto exponent = [&](size_t k) -> size_t {  // (e|E) [+-]? INT at k; k when absent
            if (k < n_ && (s_[k] == 'e' || s_[k] == 'E')) {
                size_t m = k + 1;
                if (m < n_ && (s_[m] == '+' || s_[m] == '-')) m++;
                size_t e = digits(m);
                if (e > m) return e;
            }
            return k;
        };
        size_t d = digits(j);
        if (d > j) {
            size_t e = exponent(d);
            if (e > d) return e;                    // INT _EXP
            if (d < n_ && s_[d] == '.') return exponent(digits(d + 1));  // INT "." INT? _EXP?
            return d;                               // INT
        }
        if (j < n_ && s_[j] == '.') {
            size_t f = digits(j + 1);
            if (f > j + 1) return exponent(f);      // "." INT _EXP?
        }
        return i;
    }

    // [WHITESPACE] NUMBER [WHITESPACE] "]" at *i; the number's text into *number.
    bool parse_when(size_t* i, std::string* number) {
        size_t j = skip_spaces(s_, *i);
        size_t e = match_number(j);
        if (e == j) return false;
        *number = s_.substr(j, e - j);
        e = skip_spaces(s_, e);
        if (e >= n_ || s_[e] != ']') return false;
        *i = e + 1;
        return true;
    }

    // emphasized | scheduled | alternate at s[*i] ('[' or '('), appended to out; false (nothing changed) if none.
    bool parse_construct(size_t* i, Seq* out) {
        if (failed_[*i] || depth_ >= kMaxDepth) return false;
        depth_++;
        bool ok = parse_construct_at(i, out);
        depth_--;
        if (!ok) failed_[*i] = 1;
        return ok;
    }

    bool parse_construct_at(size_t* i, Seq* out) {
        const char open = s_[*i];
        size_t j = *i + 1;
        auto first = std::make_unique<Seq>();
        if (!parse_prompt(&j, first.get()) || j >= n_) return false;
        const char c = s_[j];
        if (open == '(') {
            Seq result;
            add_text(&result, "(");
            append(&result, std::move(*first));
            if (c == ':') {
                Seq second;
                size_t k = j + 1;
                if (!parse_prompt(&k, &second) || k >= n_ || s_[k] != ')') return false;
                add_text(&result, ":");
                append(&result, std::move(second));
                j = k;
            } else if (c != ')') {
                return false;
            }
            add_text(&result, ")");
            append(out, std::move(result));
            *i = j + 1;
            return true;
        }
        if (c == ']') {  // [prompt]
            Seq result;
            add_text(&result, "[");
            append(&result, std::move(*first));
            add_text(&result, "]");
            append(out, std::move(result));
            *i = j + 1;
            return true;
        }
        if (c == '|') {  // [a|b|...]
            Node node;
            node.kind = Node::alternate;
            node.parts.push_back(std::move(first));
            while (j < n_ && s_[j] == '|') {
                auto option = std::make_unique<Seq>();
                j++;
                if (!parse_prompt(&j, option.get())) return false;
                node.parts.push_back(std::move(option));
            }
            if (j >= n_ || s_[j] != ']') return false;
            out->nodes.push_back(std::move(node));
            *i = j + 1;
            return true;
        }
        if (c != ':') return false;
        Node node;
        node.kind = Node::scheduled;
        size_t k = j + 1;
        if (parse_when(&k, &node.number)) {  // [to:when]
            node.parts.push_back(nullptr);
            node.parts.push_back(std::move(first));
        } else {  // [from:to:when]
            auto second = std::make_unique<Seq>();
            k = j + 1;
            if (!parse_prompt(&k, second.get()) || k >= n_ || s_[k] != ':') return false;
            k++;
            if (!parse_when(&k, &node.number)) return false;
            node.parts.push_back(std::move(first));
            node.parts.push_back(std::move(second));
        }
        node.when = number_to_step(node.number);
        out->nodes.push_back(std::move(node));
        *i = k;
        return true;
    }

    static void append(Seq* out, Seq&& in) {
        for (Node& node : in.nodes) {
            if (node.kind == Node::text) add_text(out, std::move(node.str));
            else out->nodes.push_back(std::move(node));
        }
    }
};

// CollectSteps: every scheduled step in [1, steps], all steps when anything alternates. Iterative (deep input).
void collect_steps(const Seq& root, int steps, std::set<int>* out) {
    std::vector<const Seq*> todo{&root};
    bool alternates = false;
    while (!todo.empty()) {
        const Seq* s = todo.back();
        todo.pop_back();
        for (const Node& node : s->nodes) {
            if (node.kind == Node::scheduled && node.when >= 1) out->insert((int)node.when);
            if (node.kind == Node::alternate) alternates = true;
            for (const auto& p : node.parts)
                if (p) todo.push_back(p.get());
        }
    }
    if (alternates)
        for (int t = 1; t <= steps; t++) out->insert(t);
}

// AtStep: the text at step t.
void text_at_step(const Seq& seq, int t, std::string* out) {
    // An explicit stack of (sequence, next node) so that 100k nested brackets do not exhaust the call stack.
    std::vector<std::pair<const Seq*, size_t>> stack{{&seq, 0}};
    while (!stack.empty()) {
        auto& [s, k] = stack.back();
        if (k == s->nodes.size()) {
            stack.pop_back();
            continue;
        }
        const Node& node = s->nodes[k++];
        const Seq* next = nullptr;
        if (node.kind == Node::text) *out += node.str;
        else if (node.kind == Node::scheduled) next = t <= node.when ? node.parts[0].get() : node.parts[1].get();
        else next = node.parts[(size_t)(t - 1) % node.parts.size()].get();
        if (next) stack.push_back({next, 0});
    }
}

}  // namespace

std::vector<ScheduledText> prompt_schedule(const std::string& prompt, int steps) {
    if (steps < 1) throw std::runtime_error("the prompt schedule needs at least one step");
    ScheduleParser parser(prompt, steps);
    Seq tree;
    if (!parser.parse_start(&tree)) return {{steps, prompt}};
    std::set<int> at{steps};
    collect_steps(tree, steps, &at);
    std::vector<ScheduledText> out;
    for (int t : at) {
        ScheduledText e{t, ""};
        text_at_step(tree, t, &e.text);
        out.push_back(std::move(e));
    }
    return out;
}

// ---- AND ----------------------------------------------------------------------------------------------------------

std::vector<SubPrompt> split_and(const std::string& prompt) {
    // re_AND = \bAND\b splits; re_weight = ^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$ reads each part:
    // the shortest text after which only whitespace, or `: number` and whitespace, is left.
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t k = prompt.find("AND"); k != std::string::npos; k = prompt.find("AND", k + 1)) {
        if (!word_at(prompt, k, "AND")) continue;
        parts.push_back(prompt.substr(start, k - start));
        start = k + 3;
        k += 2;
    }
    parts.push_back(prompt.substr(start));

    std::vector<SubPrompt> out;
    for (const std::string& p : parts) {
        // Scan from the end: trailing whitespace, then optionally a number, ':' with whitespace around it.
        size_t end = skip_spaces_back(p, p.size());
        SubPrompt sp{p.substr(0, end), 1.0};
        // number: [-+]?(\d+\.?|\d*\.\d+) ending at `end`
        // the start of the run of \d (any script) ending at i
        auto digits_back = [&](size_t i) {
            size_t st;
            while (decimal_before(p, i, &st)) i = st;
            return i;
        };
        size_t k = digits_back(end);
        size_t int_digits = end - k;
        size_t num_start = k;
        bool ok = false;
        if (int_digits > 0 && k > 0 && p[k - 1] == '.') {  // \d*\.\d+
            num_start = digits_back(k - 1);
            ok = true;
        } else if (int_digits > 0) {  // \d+
            ok = true;
        } else if (end > 0 && p[end - 1] == '.') {  // \d+\.
            size_t m = digits_back(end - 1);
            if (m < end - 1) { num_start = m; ok = true; }
        }
        if (ok) {
            size_t sign = num_start;
            if (sign > 0 && (p[sign - 1] == '-' || p[sign - 1] == '+')) sign--;
            // \s*:\s* before the number; the text then drops its own trailing whitespace (the lazy group stops
            // where \s*: can start).
            size_t m = skip_spaces_back(p, sign);
            if (m > 0 && p[m - 1] == ':') {
                size_t t = skip_spaces_back(p, m - 1);
                double w;
                if (python_float(p.substr(sign, end - sign), &w)) sp = {p.substr(0, t), w};
            }
        }
        out.push_back(std::move(sp));
    }
    return out;
}

// ---- extra networks ------------------------------------------------------------------------------------------------

std::string strip_extra_networks(const std::string& prompt, std::vector<ExtraNetworkTag>* found) {
    // re_extra_net = <(\w+):([^>]+)>, every match removed, its args split at ':'.
    std::string out;
    size_t i = 0;
    while (i < prompt.size()) {
        if (prompt[i] == '<') {
            size_t j = i + 1;
            while (j < prompt.size()) {
                size_t len;
                if (!is_word_cp(code_point_at(prompt, j, &len))) break;
                j += len;
            }
            if (j > i + 1 && j < prompt.size() && prompt[j] == ':') {
                size_t close = prompt.find('>', j + 1);
                if (close != std::string::npos && close > j + 1) {
                    ExtraNetworkTag tag;
                    tag.kind = prompt.substr(i + 1, j - i - 1);
                    std::string args = prompt.substr(j + 1, close - j - 1);
                    size_t a = 0;
                    for (size_t b; (b = args.find(':', a)) != std::string::npos; a = b + 1)
                        tag.args.push_back(args.substr(a, b - a));
                    tag.args.push_back(args.substr(a));
                    if (found) found->push_back(std::move(tag));
                    i = close + 1;
                    continue;
                }
            }
        }
        out += prompt[i++];
    }
    return out;
}

}  // namespace sd
