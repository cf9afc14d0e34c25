// json.h — a small strict JSON parser (RFC 8259) for safetensors headers and model config files.
//
// Strict on purpose, because its input is untrusted: no comments, no trailing commas, no NaN/Infinity,
// only the four JSON whitespace characters, raw strings must be valid UTF-8 without control characters,
// \uXXXX escapes (surrogate pairs included) decode to UTF-8, duplicate object keys are an error, and
// nesting is limited (64 levels by default) so hostile input cannot overflow the stack. Every error
// throws std::runtime_error("JSON error at byte N: ..."), N counted from the start of the text.
// JsonWriter builds compact JSON text (the HTTP API's responses). Left out: streaming, big-number arithmetic
// — a number keeps its literal text, so integers beyond 2^53 can still be read exactly with as_uint64().
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sd {

enum class JsonKind : uint8_t { null, boolean, number, string, array, object };

struct JsonValue {
    JsonKind kind = JsonKind::null;
    bool boolean = false;
    double number = 0;              // Number: the value as the nearest double
    std::string text;               // String: decoded UTF-8 (may hold NUL from \u0000); Number: the literal
    std::vector<std::string> keys;  // Object: member names, in order of appearance
    std::vector<JsonValue> items;   // Array: the elements; Object: the member values (items[i] belongs to keys[i])
    size_t offset = 0;              // byte where this value starts in the text, for error messages

    // The member named `key`, or null (also null when this is not an object). Linear: objects are small.
    const JsonValue* get(const std::string& key) const;
    // True and *out set when this is a Number written as a plain non-negative integer (no sign, fraction
    // or exponent) that fits in 64 bits; the conversion is exact, unlike `number`.
    bool as_uint64(uint64_t* out) const;
    static const char* kind_name(JsonKind k);  // "null", "boolean", "number", "string", "array", "object"
};

// Bounds on what a hostile text can make the parser do. max_depth keeps the recursion off the end of the
// stack; max_values bounds memory (~100 bytes per value: "[0,0,0,..." turns 2 input bytes into one value).
struct JsonLimits {
    int max_depth = 64;
    size_t max_values = SIZE_MAX;
};

// Parses exactly one JSON value surrounded by optional whitespace; throws on anything else.
JsonValue parse_json(const char* text, size_t size, JsonLimits limits = {});
inline JsonValue parse_json(const std::string& s, JsonLimits limits = {}) {
    return parse_json(s.data(), s.size(), limits);
}

// `s` as a JSON string literal with quotes: ", \ and control characters escaped, other bytes as they are.
std::string json_quote(const std::string& s);

// Python's repr() of a float, as json.dumps writes it: the shortest text that reads back to the same double,
// always with a '.' or exponent ("7.0", "0.1", "1e+20"). NaN and infinities have no JSON form: "null".
std::string json_float(double v);

// Compact JSON text built in order: w.object().key("a").value(1).key("b").array().value("x").end().end().
// Commas are placed by the writer; nesting mistakes are the caller's bugs (asserted).
class JsonWriter {
public:
    JsonWriter& object();
    JsonWriter& array();
    JsonWriter& end();                            // closes the innermost object or array
    JsonWriter& key(const std::string& k);        // inside an object, before each value
    JsonWriter& value(const std::string& s);
    JsonWriter& value(const char* s) { return value(std::string(s)); }
    JsonWriter& value(bool b);
    JsonWriter& value(int v) { return value((int64_t)v); }
    JsonWriter& value(int64_t v);
    JsonWriter& value(uint64_t v);
    JsonWriter& value(double v);                  // as json_float
    JsonWriter& null();
    JsonWriter& raw(const std::string& json);     // already-valid JSON text, e.g. from write_json()
    const std::string& str() const { return out_; }

private:
    void before_value();
    std::string out_;
    std::vector<char> stack_;  // '{' or '[' per open level
    bool need_comma_ = false, after_key_ = false;
};

// A parsed value written back as compact JSON (numbers keep their literal text).
std::string write_json(const JsonValue& v);

}  // namespace sd
