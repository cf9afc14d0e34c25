// json.cpp — the strict recursive-descent JSON parser declared in json.h.
// Recursion depth is bounded by max_depth, so the C++ stack never grows with the input's size.
#include "json.h"

#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <unordered_set>

namespace sd {

namespace {

struct Parser {
    const char* begin;
    const char* p;
    const char* end;
    int max_depth;
    size_t max_values;
    size_t values = 0;

    [[noreturn]] void fail(const char* at, const std::string& what) const {
        throw std::runtime_error("JSON error at byte " + std::to_string(at - begin) + ": " + what);
    }
    [[noreturn]] void fail(const std::string& what) const { fail(p, what); }

    // Printable description of the byte at p, for "unexpected ..." messages.
    std::string here() const {
        if (p >= end) return "end of input";
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c < 0x7f) return std::string("'") + (char)c + "'";
        char buf[16];
        std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
        return buf;
    }

    void skip_ws() {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    }

    void literal(const char* word, size_t n) {
        if ((size_t)(end - p) < n || std::char_traits<char>::compare(p, word, n) != 0)
            fail("unexpected " + here());
        p += n;
    }

    JsonValue value(int depth) {
        skip_ws();
        JsonValue v;
        v.offset = (size_t)(p - begin);
        if (p >= end) fail("unexpected end of input, expected a value");
        if (++values > max_values) fail("more than " + std::to_string(max_values) + " values");
        switch (*p) {
        case '{': object(v, depth + 1); break;
        case '[': array(v, depth + 1); break;
        case '"': v.kind = JsonKind::string; v.text = string(); break;
        case 't': literal("true", 4); v.kind = JsonKind::boolean; v.boolean = true; break;
        case 'f': literal("false", 5); v.kind = JsonKind::boolean; v.boolean = false; break;
        case 'n': literal("null", 4); v.kind = JsonKind::null; break;
        default:
            if (*p == '-' || (*p >= '0' && *p <= '9')) number(v);
            else fail("unexpected " + here() + ", expected a value");
        }
        return v;
    }

    void enter(int depth) {
        if (depth > max_depth) fail("nesting deeper than " + std::to_string(max_depth) + " levels");
    }

    void object(JsonValue& v, int depth) {
        enter(depth);
        v.kind = JsonKind::object;
        p++;  // '{'
        skip_ws();
        if (p < end && *p == '}') { p++; return; }
        std::unordered_set<std::string> seen;
        for (;;) {
            skip_ws();
            if (p >= end || *p != '"') fail("unexpected " + here() + ", expected a string key in object");
            const char* key_at = p;
            std::string key = string();
            if (!seen.insert(key).second) fail(key_at, "duplicate key " + json_quote(key));
            skip_ws();
            if (p >= end || *p != ':') fail("unexpected " + here() + ", expected ':' after object key");
            p++;
            v.items.push_back(value(depth));
            v.keys.push_back(std::move(key));
            skip_ws();
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == '}') { p++; return; }
            fail("unexpected " + here() + ", expected ',' or '}' in object");
        }
    }

    void array(JsonValue& v, int depth) {
        enter(depth);
        v.kind = JsonKind::array;
        p++;  // '['
        skip_ws();
        if (p < end && *p == ']') { p++; return; }
        for (;;) {
            v.items.push_back(value(depth));
            skip_ws();
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == ']') { p++; return; }
            fail("unexpected " + here() + ", expected ',' or ']' in array");
        }
    }

    void number(JsonValue& v) {
        // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
        const char* start = p;
        auto digits = [&] {
            const char* d = p;
            while (p < end && *p >= '0' && *p <= '9') p++;
            return p > d;
        };
        if (*p == '-') p++;
        if (p < end && *p == '0') {
            p++;
            if (p < end && *p >= '0' && *p <= '9') fail(start, "number with a leading zero");
        } else if (!digits()) {
            fail("unexpected " + here() + " in number");
        }
        if (p < end && *p == '.') {
            p++;
            if (!digits()) fail("expected a digit after '.' in number");
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < end && (*p == '+' || *p == '-')) p++;
            if (!digits()) fail("expected a digit in the exponent of number");
        }
        v.kind = JsonKind::number;
        v.text.assign(start, p);
        // from_chars is locale-independent (strtod would read "1.5" wrongly under a ',' locale).
        // Out of range: ±inf or 0 is fine for our uses; exact integers go through as_uint64.
        auto r = std::from_chars(start, p, v.number);
        if (r.ec == std::errc::result_out_of_range) v.number = out_of_range(v.text);
    }

    // ±inf or ±0 for a literal beyond double's range, decided by the decimal exponent of its first
    // significant digit (from_chars leaves the value unset in that case).
    static double out_of_range(const std::string& lit) {
        bool neg = lit[0] == '-';
        size_t i = neg ? 1 : 0, e_at = lit.find_first_of("eE");
        long long mag = 0;
        bool seen_point = false, found = false;
        for (; i < lit.size() && i != e_at && !found; i++) {
            if (lit[i] == '.') { seen_point = true; continue; }
            if (lit[i] != '0') found = true;
            else if (seen_point) mag--;
        }
        if (!found) return neg ? -0.0 : 0.0;
        if (!seen_point) {  // first significant digit is in the integer part: count the digits after it
            size_t stop = lit.find_first_of(".eE", i);
            mag += (long long)((stop == std::string::npos ? lit.size() : stop) - i);
        } else {
            mag--;
        }
        if (e_at != std::string::npos) {
            long long e = 0;
            size_t j = e_at + 1;
            bool eneg = lit[j] == '-';
            if (lit[j] == '+' || lit[j] == '-') j++;
            for (; j < lit.size(); j++) e = e < 100000000 ? e * 10 + (lit[j] - '0') : e;
            mag += eneg ? -e : e;
        }
        if (mag > 0) return neg ? -HUGE_VAL : HUGE_VAL;
        return neg ? -0.0 : 0.0;
    }

    unsigned hex4() {
        if (end - p < 4) fail("truncated \\u escape");
        unsigned u = 0;
        for (int i = 0; i < 4; i++) {
            char c = *p;
            unsigned d;
            if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
            else fail("invalid hex digit " + here() + " in \\u escape");
            u = u * 16 + d;
            p++;
        }
        return u;
    }

    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += (char)cp;
        } else if (cp < 0x800) {
            out += (char)(0xc0 | (cp >> 6));
            out += (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += (char)(0xe0 | (cp >> 12));
            out += (char)(0x80 | ((cp >> 6) & 0x3f));
            out += (char)(0x80 | (cp & 0x3f));
        } else {
            out += (char)(0xf0 | (cp >> 18));
            out += (char)(0x80 | ((cp >> 12) & 0x3f));
            out += (char)(0x80 | ((cp >> 6) & 0x3f));
            out += (char)(0x80 | (cp & 0x3f));
        }
    }

    // Length of the valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0 if invalid:
    // no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF (RFC 3629).
    size_t utf8_len() const {
        const unsigned char* s = (const unsigned char*)p;
        size_t avail = (size_t)(end - p);
        unsigned char c = s[0];
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
        if (c >= 0xc2 && c <= 0xdf) n = 2;
        else if (c == 0xe0) { n = 3; lo = 0xa0; }
        else if (c >= 0xe1 && c <= 0xec) n = 3;
        else if (c == 0xed) { n = 3; hi = 0x9f; }
        else if (c >= 0xee && c <= 0xef) n = 3;
        else if (c == 0xf0) { n = 4; lo = 0x90; }
        else if (c >= 0xf1 && c <= 0xf3) n = 4;
        else if (c == 0xf4) { n = 4; hi = 0x8f; }
        else return 0;
        if (avail < n || s[1] < lo || s[1] > hi) return 0;
        for (size_t i = 2; i < n; i++)
            if (s[i] < 0x80 || s[i] > 0xbf) return 0;
        return n;
    }

    std::string string() {
        const char* open = p;
        p++;  // '"'
        std::string out;
        for (;;) {
            if (p >= end) fail(open, "unterminated string");
            unsigned char c = (unsigned char)*p;
            if (c == '"') { p++; return out; }
            if (c < 0x20) fail("control character " + here() + " in string (must be escaped)");
            if (c >= 0x80) {
                size_t n = utf8_len();
                if (!n) fail("invalid UTF-8 " + here() + " in string");
                out.append(p, n);
                p += n;
                continue;
            }
            if (c != '\\') { out += (char)c; p++; continue; }
            const char* esc = p;
            p++;
            if (p >= end) fail(open, "unterminated string");
            char e = *p++;
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                unsigned cp = hex4();
                if (cp >= 0xdc00 && cp <= 0xdfff) fail(esc, "lone low surrogate in \\u escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (end - p < 2 || p[0] != '\\' || p[1] != 'u')
                        fail(esc, "high surrogate in \\u escape not followed by a low surrogate");
                    p += 2;
                    unsigned lo = hex4();
                    if (lo < 0xdc00 || lo > 0xdfff)
                        fail(esc, "high surrogate in \\u escape not followed by a low surrogate");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(out, cp);
                break;
            }
            default:
                p--;
                fail("invalid escape '\\" + here() + "' in string");
            }
        }
    }
};

}  // namespace

const JsonValue* JsonValue::get(const std::string& key) const {
    if (kind != JsonKind::object) return nullptr;
    for (size_t i = 0; i < keys.size(); i++)
        if (keys[i] == key) return &items[i];
    return nullptr;
}

bool JsonValue::as_uint64(uint64_t* out) const {
    if (kind != JsonKind::number || text.empty()) return false;
    uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;  // sign, fraction or exponent
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;  // would overflow
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

const char* JsonValue::kind_name(JsonKind k) {
    switch (k) {
    case JsonKind::null: return "null";
    case JsonKind::boolean: return "boolean";
    case JsonKind::number: return "number";
    case JsonKind::string: return "string";
    case JsonKind::array: return "array";
    case JsonKind::object: return "object";
    }
    return "?";
}

JsonValue parse_json(const char* text, size_t size, JsonLimits limits) {
    Parser ps{text, text, text + size, limits.max_depth, limits.max_values};
    JsonValue v = ps.value(0);
    ps.skip_ws();
    if (ps.p != ps.end) ps.fail("unexpected " + ps.here() + " after the JSON value");
    return v;
}

std::string json_quote(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
        unsigned char c = (unsigned char)ch;
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else out += ch;
    }
    return out + "\"";
}

std::string json_float(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::string s = buf;
    if (s.find_first_of(".e") == std::string::npos) s += ".0";  // Python writes a float as a float
    return s;
}

void JsonWriter::before_value() {
    if (after_key_) { after_key_ = false; return; }
    assert(stack_.empty() || stack_.back() == '[');
    if (need_comma_) out_ += ',';
    need_comma_ = true;
}

JsonWriter& JsonWriter::object() {
    before_value();
    out_ += '{';
    stack_.push_back('{');
    need_comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::array() {
    before_value();
    out_ += '[';
    stack_.push_back('[');
    need_comma_ = false;
    return *this;
}

JsonWriter& JsonWriter::end() {
    assert(!stack_.empty() && !after_key_);
    out_ += stack_.back() == '{' ? '}' : ']';
    stack_.pop_back();
    need_comma_ = true;
    return *this;
}

JsonWriter& JsonWriter::key(const std::string& k) {
    assert(!stack_.empty() && stack_.back() == '{' && !after_key_);
    if (need_comma_) out_ += ',';
    need_comma_ = true;
    out_ += json_quote(k);
    out_ += ':';
    after_key_ = true;
    return *this;
}

JsonWriter& JsonWriter::value(const std::string& s) { before_value(); out_ += json_quote(s); return *this; }
JsonWriter& JsonWriter::value(bool b) { before_value(); out_ += b ? "true" : "false"; return *this; }
JsonWriter& JsonWriter::value(int64_t v) { before_value(); out_ += std::to_string(v); return *this; }
JsonWriter& JsonWriter::value(uint64_t v) { before_value(); out_ += std::to_string(v); return *this; }
JsonWriter& JsonWriter::value(double v) { before_value(); out_ += json_float(v); return *this; }
JsonWriter& JsonWriter::null() { before_value(); out_ += "null"; return *this; }
JsonWriter& JsonWriter::raw(const std::string& json) { before_value(); out_ += json; return *this; }

std::string write_json(const JsonValue& v) {
    switch (v.kind) {
    case JsonKind::null: return "null";
    case JsonKind::boolean: return v.boolean ? "true" : "false";
    case JsonKind::number: return v.text;
    case JsonKind::string: return json_quote(v.text);
    case JsonKind::array: {
        std::string s = "[";
        for (size_t i = 0; i < v.items.size(); i++) s += (i ? "," : "") + write_json(v.items[i]);
        return s + "]";
    }
    case JsonKind::object: {
        std::string s = "{";
        for (size_t i = 0; i < v.items.size(); i++)
            s += (i ? "," : "") + json_quote(v.keys[i]) + ":" + write_json(v.items[i]);
        return s + "}";
    }
    }
    return "null";
}

}  // namespace sd
