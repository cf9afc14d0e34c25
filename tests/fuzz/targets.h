// targets.h — the bodies of the fuzz targets, shared by the libFuzzer mains (tests/fuzz/fuzz_*.cpp, built
// by `make fuzz` with clang) and by tests/test_fuzz_regress.cpp, which replays every committed corpus and
// regression file through the same functions in `make test` (no clang needed there).
//
// Contract of a parser fed hostile bytes: it accepts the input, or refuses it with a std::exception. Anything
// else is a finding: a crash or sanitizer report, an exception of another type, a hang, a huge allocation,
// or (checked here) an accepted result that breaks its own promises — a tensor span outside the input, a
// chunk layout that is not start + ids + end padding, a PNG text round trip that loses bytes. Such a broken
// promise throws Finding, which is deliberately not a std::exception so no parser catch swallows it.
// Left out: anything that needs files or threads (SafeTensors' mmap path, read_image_rgb) — the in-memory
// entry points run the same validation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/checkpoint.h"
#include "app/image_io.h"
#include "app/options.h"
#include "json.h"
#include "safetensors.h"
#include "tokenizer/clip_tokenizer.h"

namespace sd::fuzz {

// What a target did with one input; the libFuzzer mains ignore it, the regression test checks seeds
// named ok-* (must be accepted) and bad-* (must be refused).
enum Verdict : int { kAccepted = 0, kRefused = 1 };

// A broken promise of an accepted input (not a std::exception, on purpose).
struct Finding {
    std::string what;
};

inline void expect(bool ok, const std::string& what) {
    if (!ok) throw Finding{what};
}

// ---- safetensors: SafeTensors::from_memory, then everything an accepted file offers ----------------------------
inline int fuzz_one_safetensors(const uint8_t* data, size_t size) {
    try {
        SafeTensors st = SafeTensors::from_memory(data, size, "fuzz");
        expect(st.file_size() == size, "file_size() differs from the input size");
        const uint8_t* region_end = data + size;
        volatile uint8_t sink = 0;
        for (const auto& kv : st.metadata()) sink = sink ^ (uint8_t)kv.first.size() ^ (uint8_t)kv.second.size();
        for (const TensorInfo& t : st.tensors()) {
            expect(st.find(t.name) == &t, "find() does not return the listed tensor " + t.name);
            expect(t.begin <= t.end, "tensor span ends before it begins: " + t.name);
            const uint8_t* p = static_cast<const uint8_t*>(st.data(t));
            expect(p >= data + 8 && p <= region_end && t.end - t.begin <= (uint64_t)(region_end - p),
                   "tensor span lies outside the input: " + t.name);
            for (uint64_t k = 0; k < t.end - t.begin; k++) sink = sink ^ p[k];  // ASan checks every byte
            try {
                Tensor view = st.get(t.name);
                expect(t.usable() && t.shape.size() <= 4, "get() accepted an unusable tensor " + t.name);
                expect(view.data == p, "get() views other bytes than data() for " + t.name);
                expect(view.nbytes() == t.end - t.begin, "get()'s view size differs from the span of " + t.name);
                Tensor same = st.get(t.name, t.shape);
                expect(same.data == view.data, "get(name, shape) differs from get(name) for " + t.name);
            } catch (const std::exception&) {
                expect(!t.usable() || t.shape.size() > 4, "get() refused a usable tensor " + t.name);
            }
        }
        try {
            (void)st.get("\x01no such tensor");
            throw Finding{"get() of an absent name did not throw"};
        } catch (const std::exception&) {
        }
        // Checkpoint detection reads only shapes and names: it must cope with whatever the header allowed.
        std::string text = format_info(inspect_checkpoint(st));
        expect(!text.empty(), "format_info() gave nothing");
        return kAccepted;
    } catch (const std::exception&) {
        return kRefused;
    }
}

// ---- JSON: parse, then serialise the tree with json_quote and parse that again: same tree --------------------------
inline void json_write(const JsonValue& v, std::string& out) {
    switch (v.kind) {
    case JsonValue::Null: out += "null"; break;
    case JsonValue::Bool: out += v.boolean ? "true" : "false"; break;
    case JsonValue::Number: out += v.text; break;
    case JsonValue::String: out += json_quote(v.text); break;
    case JsonValue::Array:
        out += '[';
        for (size_t i = 0; i < v.items.size(); i++) {
            if (i) out += ',';
            json_write(v.items[i], out);
        }
        out += ']';
        break;
    case JsonValue::Object:
        out += '{';
        for (size_t i = 0; i < v.items.size(); i++) {
            if (i) out += ',';
            out += json_quote(v.keys[i]);
            out += ':';
            json_write(v.items[i], out);
        }
        out += '}';
        break;
    }
}

inline bool json_same(const JsonValue& a, const JsonValue& b) {
    if (a.kind != b.kind || a.boolean != b.boolean || a.text != b.text || a.keys != b.keys ||
        a.items.size() != b.items.size())
        return false;
    if (a.kind == JsonValue::Number && !(a.number == b.number || (a.number != a.number && b.number != b.number)))
        return false;
    for (size_t i = 0; i < a.items.size(); i++)
        if (!json_same(a.items[i], b.items[i])) return false;
    return true;
}

inline void json_check(const JsonValue& v, int depth) {
    expect(depth <= 64, "accepted nesting deeper than the limit");
    if (v.kind == JsonValue::Object) {
        expect(v.keys.size() == v.items.size(), "object with different numbers of keys and values");
        for (size_t i = 0; i < v.keys.size(); i++)
            expect(v.get(v.keys[i]) == &v.items[i], "get() misses key " + json_quote(v.keys[i]) + " (duplicate?)");
    } else {
        expect(v.keys.empty(), "a non-object has keys");
        expect(v.get("") == nullptr, "get() on a non-object found something");
    }
    if (v.kind == JsonValue::Number) {
        uint64_t u = 0;
        if (v.as_uint64(&u)) expect(std::to_string(u) == v.text, "as_uint64 misread " + v.text);
    }
    for (const JsonValue& item : v.items) json_check(item, depth + 1);
}

inline int fuzz_one_json(const uint8_t* data, size_t size) {
    JsonValue v;
    try {
        v = parse_json(reinterpret_cast<const char*>(data), size);
    } catch (const std::exception&) {
        // Tighter limits must refuse at least what the default ones do.
        JsonLimits tight;
        tight.max_depth = 2;
        tight.max_values = 8;
        try {
            (void)parse_json(reinterpret_cast<const char*>(data), size, tight);
        } catch (const std::exception&) {
            return kRefused;
        }
        throw Finding{"accepted with tighter limits (depth 2, 8 values) but refused with the default ones"};
    }
    json_check(v, 0);
    std::string again;
    json_write(v, again);
    JsonValue w;
    try {
        w = parse_json(again);
    } catch (const std::exception& e) {
        throw Finding{std::string("re-serialised value does not parse: ") + e.what() + " in " + again};
    }
    expect(json_same(v, w), "re-serialised value parses differently: " + again);
    return kAccepted;
}

// ---- CLIP tokenizer: any bytes are accepted, ids are in the vocabulary, chunks are start + ids + end padding --------
inline int fuzz_one_tokenizer(const uint8_t* data, size_t size) {
    const ClipTokenizer& tok = ClipTokenizer::get();
    std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<int> ids;
    std::vector<std::vector<int>> chunks;
    try {
        ids = tok.encode(text);
        chunks = tok.encode_chunks(text);
    } catch (const std::exception& e) {
        throw Finding{std::string("the tokenizer refused its input (it promises to accept any bytes): ") + e.what()};
    }
    for (int id : ids) expect(id >= 0 && id < ClipTokenizer::kVocabSize, "id outside the vocabulary");
    const size_t per = ClipTokenizer::kChunkTokens;
    expect(chunks.size() == (ids.empty() ? 1 : (ids.size() + per - 1) / per), "wrong number of chunks");
    for (size_t c = 0; c < chunks.size(); c++) {
        const std::vector<int>& chunk = chunks[c];
        expect(chunk.size() == (size_t)ClipTokenizer::kContext, "chunk is not 77 tokens");
        expect(chunk[0] == ClipTokenizer::kStart, "chunk does not begin with the start token");
        for (size_t k = 0; k + 1 < chunk.size(); k++) {
            size_t at = c * per + k;
            int want = at < ids.size() && k < per ? ids[at] : ClipTokenizer::kEnd;
            expect(chunk[k + 1] == want, "chunk " + std::to_string(c) + " position " + std::to_string(k + 1) +
                                             " is not the id or the end padding");
        }
    }
    try {
        std::string back = tok.decode(ids);
        for (int id : ids) (void)tok.token(id);
        (void)back;
    } catch (const std::exception& e) {
        throw Finding{std::string("decode/token refused ids that encode produced: ") + e.what()};
    }
    return kAccepted;
}

// ---- parse_args: the input split on NUL bytes is argv[1..] ------------------------------------------------------------
inline int fuzz_one_args(const uint8_t* data, size_t size) {
    std::vector<std::string> words;
    if (size) {
        words.emplace_back();
        for (size_t i = 0; i < size; i++) {
            if (data[i] == 0) words.emplace_back();
            else words.back() += (char)data[i];
        }
    }
    std::vector<const char*> argv = {"sd"};
    for (const std::string& w : words) argv.push_back(w.c_str());
    argv.push_back(nullptr);  // as a real argv: argv[argc] is null
    Options o;
    try {
        o = parse_args((int)argv.size() - 1, argv.data());
    } catch (const std::exception&) {
        return kRefused;
    }
    // An accepted command line holds only values the rest of the program can use as they are.
    expect(o.steps >= 1 && o.steps <= 1000, "steps out of range");
    expect(o.cfg_scale == o.cfg_scale && o.cfg_scale >= -100 && o.cfg_scale <= 100, "cfg scale out of range or NaN");
    expect(o.width >= 64 && o.width <= 8192 && o.height >= 64 && o.height <= 8192, "size out of range");
    expect(!o.random_seed || o.seed == 0, "a random seed that also has a value");
    expect(o.clip_skip >= 1 && o.clip_skip <= 12, "clip skip out of range");
    expect(o.threads >= 0 && o.threads <= 1024, "threads out of range");
    expect(o.batch_count >= 1 && o.bench_runs >= 1, "counts below 1");
    expect(o.rng == "philox" || o.rng == "cpu", "unknown rng accepted");
    expect(!o.output.empty(), "empty output file name accepted");
    expect(o.precision.empty() || o.precision == "fp32" || o.precision == "bf16", "unknown precision accepted");
    if (o.command == "generate" || o.command == "bench")
        expect(o.width % 64 == 0 && o.height % 64 == 0 && o.args.empty(), "generate/bench accepted a bad size or argument");
    if (o.command == "info" || o.command == "tokenize") expect(o.args.size() == 1, "info/tokenize without one argument");
    return kAccepted;
}

// ---- read_png_text: then write the text back with encode_png and read it again: the same pairs ------------------
// Random mutations almost never keep a chunk's CRC right, so each input is also tried with every CRC repaired
// (walking the chunks as a reader would); that lets the fuzzer reach the tEXt/iTXt parsing behind the check.
inline uint32_t png_crc32(const uint8_t* p, size_t n) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

inline std::vector<uint8_t> png_with_crcs_repaired(std::vector<uint8_t> png) {
    for (size_t pos = 8; png.size() >= 12 && pos <= png.size() - 12;) {
        size_t len = (size_t)png[pos] << 24 | (size_t)png[pos + 1] << 16 | (size_t)png[pos + 2] << 8 | png[pos + 3];
        if (len > png.size() - pos - 12) break;
        uint32_t crc = png_crc32(&png[pos + 4], len + 4);
        for (int k = 0; k < 4; k++) png[pos + 8 + len + k] = (uint8_t)(crc >> (24 - 8 * k));
        pos += 12 + len;
    }
    return png;
}

inline int png_text_round_trip(const std::vector<uint8_t>& png) {
    std::vector<std::pair<std::string, std::string>> text;
    try {
        text = read_png_text(png);
    } catch (const std::exception&) {
        return kRefused;
    }
    for (const auto& kv : text) expect(kv.first.find('\0') == std::string::npos, "a key holds a NUL byte");
    Image pixel;
    pixel.width = pixel.height = 1;
    pixel.channels = 3;
    pixel.pixels = {1, 2, 3};
    std::vector<std::pair<std::string, std::string>> again;
    try {
        again = read_png_text(encode_png(pixel, text));
    } catch (const std::exception& e) {
        throw Finding{std::string("our own PNG with the text read back is refused: ") + e.what()};
    }
    expect(again == text, "text chunks change in a write/read round trip");
    return kAccepted;
}

inline int fuzz_one_png_text(const uint8_t* data, size_t size) {
    std::vector<uint8_t> png(data, data + size);
    int verdict = png_text_round_trip(png);
    (void)png_text_round_trip(png_with_crcs_repaired(png));
    return verdict;
}

// ---- image: decode_image (stb_image's PNG, JPEG, BMP, GIF, ... decoders, as every image sd reads goes) -----------
// Fuzzed under a 4-megapixel cap so each input stays fast; the real caps (kMaxImageSide, kMaxImagePixels) are
// the same comparisons, and the bad-*-claims-* seeds check them in `make test`.
constexpr int64_t kFuzzImagePixels = int64_t(1) << 22;
inline int fuzz_one_image(const uint8_t* data, size_t size) {
    Image img;
    try {
        img = decode_image(data, size, "fuzz", kFuzzImagePixels);
    } catch (const std::exception&) {
        return kRefused;
    }
    expect(img.width >= 1 && img.height >= 1 && (int64_t)img.width * img.height <= kFuzzImagePixels,
           "an accepted image is empty or over the pixel cap");
    expect(img.channels == 3 || img.channels == 4, "an accepted image is neither RGB nor RGBA");
    expect(img.pixels.size() == (size_t)img.width * img.height * img.channels, "pixel buffer size differs from W*H*C");
    // What was decoded survives our PNG writer and the decoder again, byte for byte.
    if ((int64_t)img.width * img.height <= (1 << 16)) {
        const std::vector<uint8_t> png = encode_png(img, {});
        Image back = decode_image(png.data(), png.size(), "round trip");
        expect(back.width == img.width && back.height == img.height && back.channels == img.channels &&
                   back.pixels == img.pixels,
               "a decoded image does not survive encode_png + decode_image");
    }
    return kAccepted;
}

// For the libFuzzer mains: a Finding is reported and aborts, so libFuzzer saves the input as a crash.
inline int run_for_libfuzzer(int (*target)(const uint8_t*, size_t), const uint8_t* data, size_t size) {
    try {
        (void)target(data, size);
    } catch (const Finding& f) {
        std::fprintf(stderr, "FINDING: %s\n", f.what.c_str());
        std::abort();
    }
    return 0;
}

}  // namespace sd::fuzz

#include "tests/fuzz/targets_server.h"  // http, api: the `sd serve` targets
