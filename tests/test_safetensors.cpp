// safetensors: write→read round trips, and every hostile file from the list is refused with one
// message that names the file, the tensor and the problem. Hostile files are built in memory.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/half.h"
#include "safetensors.h"
#include "skip.h"

using namespace sd;

namespace {

// A file image: u64-LE header length, the header as given, then `data`.
std::string image(const std::string& header, const std::string& data = "") {
    std::string out(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; i++) out[i] = (char)(n >> (8 * i));
    return out + header + data;
}
std::string image_with_length(uint64_t claimed, const std::string& rest) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; i++) out[i] = (char)(claimed >> (8 * i));
    return out + rest;
}

// The message from_memory throws for `bytes`, or "" when it is accepted.
std::string open_error(const std::string& bytes) {
    try {
        SafeTensors::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}
std::string file_error(const std::string& path) {
    try {
        SafeTensors st(path);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}
std::string get_error(const SafeTensors& st, const std::string& name, std::vector<int64_t> expected = {}) {
    try {
        if (expected.empty()) st.get(name);
        else st.get(name, expected);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

// A fresh scratch directory per test binary run.
std::string scratch_dir() {
    static std::string dir = [] {
        char tmpl[] = "/tmp/sd_test_safetensors_XXXXXX";
        const char* d = mkdtemp(tmpl);
        REQUIRE(d != nullptr);
        return std::string(d);
    }();
    static struct Cleanup { ~Cleanup() { std::error_code ec; std::filesystem::remove_all(dir, ec); } } cleanup;
    return dir;
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), (std::streamsize)bytes.size());
}

std::string tensor_json(const std::string& name, const std::string& dtype, const std::string& shape,
                        uint64_t begin, uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(begin) + "," + std::to_string(end) + "]}";
}

#define CHECK_HAS(msg, part)                                         \
    do {                                                             \
        INFO("message: ", msg);                                      \
        CHECK((msg).find(part) != std::string::npos);                \
    } while (0)

}  // namespace

TEST_CASE("safetensors: write then read F32, F16, BF16 and metadata") {
    Tensor a = Tensor::zeros({2, 3}, DType::f32);
    for (int i = 0; i < 6; i++) a.f32()[i] = 0.5f * (float)i - 1.0f;
    Tensor h = Tensor::zeros({3}, DType::f16);
    Tensor b = Tensor::zeros({1, 1, 2, 2}, DType::bf16);
    const float hv[3] = {1.0f, -2.5f, 65504.0f};
    for (int i = 0; i < 3; i++) static_cast<uint16_t*>(h.data)[i] = f32_to_f16(hv[i]);
    for (int i = 0; i < 4; i++) static_cast<uint16_t*>(b.data)[i] = f32_to_bf16(3.0f * (float)i);
    Tensor scalar = Tensor::zeros(std::vector<int64_t>{}, DType::f32);
    scalar.f32()[0] = 42.0f;
    Tensor empty = Tensor::zeros({0, 5}, DType::f16);

    std::string path = scratch_dir() + "/roundtrip.safetensors";
    std::map<std::string, std::string> meta = {{"format", "pt"}, {"quote\"and\\slash", "line\nbreak \xc3\xa9"}};
    // f16 first, so the writer must reorder the data to keep the f32 tensors aligned
    write_safetensors(path, {{"half", h}, {"w.weight", a}, {"b", b}, {"s", scalar}, {"empty", empty}}, meta);

    SafeTensors st(path);
    CHECK(st.path() == path);
    CHECK(st.metadata() == meta);
    REQUIRE(st.tensors().size() == 5);
    CHECK(st.tensors()[0].name == "half");  // header order is the order given
    CHECK(st.tensors()[1].name == "w.weight");

    // header padded with spaces to a multiple of 8, data region ends at the end of the file
    std::ifstream f(path, std::ios::binary);
    uint8_t len_bytes[8];
    f.read((char*)len_bytes, 8);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | len_bytes[i];
    CHECK(header_len % 8 == 0);
    uint64_t data_bytes = 24 + 6 + 8 + 4 + 0;
    CHECK(st.file_size() == 8 + header_len + data_bytes);

    Tensor ra = st.get("w.weight", {2, 3});
    CHECK(ra.dtype == DType::f32);
    CHECK(std::memcmp(ra.data, a.data, 24) == 0);
    Tensor rh = st.get("half");
    CHECK(rh.dtype == DType::f16);
    CHECK(rh.same_shape({3}));
    for (int i = 0; i < 3; i++) CHECK(f16_to_f32(static_cast<const uint16_t*>(rh.data)[i]) == hv[i]);
    Tensor rb = st.get("b", {1, 1, 2, 2});
    CHECK(rb.dtype == DType::bf16);
    CHECK(std::memcmp(rb.data, b.data, 8) == 0);
    Tensor rs = st.get("s");
    CHECK(rs.ndim == 0);
    CHECK(rs.numel() == 1);
    CHECK(rs.f32()[0] == 42.0f);
    CHECK(st.get("empty", {0, 5}).numel() == 0);
    // every tensor aligned to its element size (the mapping itself is page-aligned)
    for (const TensorInfo& t : st.tensors()) {
        INFO("tensor ", t.name);
        size_t elem = t.dtype == "F32" ? 4 : 2;
        CHECK((uintptr_t)st.data(t) % elem == 0);
    }
    CHECK(st.find("nope") == nullptr);
    CHECK(st.has("b"));

    // the same bytes through from_memory give the same view
    std::string bytes = read_all(path);
    SafeTensors mem = SafeTensors::from_memory(bytes.data(), bytes.size(), "copy");
    CHECK(mem.tensors().size() == 5);
    CHECK(std::memcmp(mem.get("w.weight").data, a.data, 24) == 0);
    SafeTensors moved = std::move(mem);
    CHECK(moved.get("half").same_shape({3}));

    CHECK_THROWS_WITH_AS(write_safetensors(scratch_dir() + "/dup.safetensors", {{"x", a}, {"x", a}}),
                         doctest::Contains("\"x\""), std::runtime_error);
}

TEST_CASE("safetensors: get refuses unusable dtypes, wrong shapes and unknown names") {
    // I64 position ids [1, 3], then an F32 [2, 2]
    std::string data(24 + 16, '\0');
    for (int i = 0; i < 3; i++) data[8 * i] = (char)(i + 7);
    std::string bytes = image("{" + tensor_json("ids", "I64", "[1,3]", 0, 24) + "," +
                              tensor_json("w", "F32", "[2,2]", 24, 40) + "}", data);
    SafeTensors st = SafeTensors::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
    REQUIRE(st.tensors().size() == 2);
    const TensorInfo* ids = st.find("ids");
    REQUIRE(ids);
    CHECK(ids->dtype == "I64");
    CHECK_FALSE(ids->usable());
    CHECK(ids->shape == std::vector<int64_t>{1, 3});
    int64_t third;
    std::memcpy(&third, (const char*)st.data(*ids) + 16, 8);
    CHECK(third == 9);  // raw bytes of any dtype stay readable

    std::string e = get_error(st, "ids");
    CHECK_HAS(e, "mem.safetensors");
    CHECK_HAS(e, "\"ids\"");
    CHECK_HAS(e, "I64");
    e = get_error(st, "w", {3, 2});
    CHECK_HAS(e, "\"w\"");
    CHECK_HAS(e, "has shape [2, 2], expected [3, 2]");
    e = get_error(st, "w", {2, 2, 1});
    CHECK_HAS(e, "expected [2, 2, 1]");
    e = get_error(st, "missing.weight");
    CHECK_HAS(e, "mem.safetensors: no tensor named \"missing.weight\"");
    CHECK(get_error(st, "w", {2, 2}) == "");

    // rank above 4 is listed but cannot become a Tensor
    std::string r5 = image("{" + tensor_json("r5", "F32", "[1,1,1,1,2]", 0, 8) + "}", std::string(8, '\0'));
    SafeTensors st5 = SafeTensors::from_memory(r5.data(), r5.size(), "mem.safetensors");
    CHECK_HAS(get_error(st5, "r5"), "rank 5");
}

TEST_CASE("safetensors: F32 tensors at odd offsets are usable (no alignment is guaranteed)") {
    // a U8 [1] first, so the F32 [2] starts at data byte 1; the header length 7 makes it odd in the file too
    float vals[2] = {1.25f, -7.5f};
    std::string data(1, 'x');
    data.append((const char*)vals, 8);
    std::string header = "{" + tensor_json("u", "U8", "[1]", 0, 1) + "," + tensor_json("f", "F32", "[2]", 1, 9) + "}";
    std::string bytes = image(header, data);
    SafeTensors st = SafeTensors::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
    Tensor f = st.get("f", {2});
    float got[2];
    std::memcpy(got, f.data, 8);  // unaligned-safe read, as kernels must do
    CHECK(got[0] == 1.25f);
    CHECK(got[1] == -7.5f);
    CHECK(((uintptr_t)f.data - (uintptr_t)bytes.data()) % 4 != 0);
}

TEST_CASE("safetensors: hostile headers are refused with a message naming the problem") {
    const std::string d16(16, '\0');
    struct Case { const char* what; std::string bytes; std::vector<std::string> parts; };
    std::vector<Case> cases = {
        {"empty", "", {"mem.safetensors: empty file"}},
        {"5 bytes", "abcde", {"mem.safetensors: not a safetensors file", "5 bytes"}},
        {"7 bytes", std::string(7, '\0'), {"not a safetensors file"}},
        {"claims 100 MB header", image_with_length(100ull << 20, "{}"), {"header length 104857600", "runs past the end"}},
        {"claims > 100 MB header", image_with_length((100ull << 20) + 1, "{}"), {"104857601", "exceeds the 100 MB limit"}},
        {"claims 2^63 header", image_with_length(1ull << 63, "{}"), {"9223372036854775808", "exceeds"}},
        {"zero header", image(""), {"header JSON error at byte 0", "unexpected end of input"}},
        {"not JSON", image("{\"a\":}"), {"header JSON error at byte 5"}},
        {"array header", image("[]"), {"header is a JSON array, expected an object"}},
        {"deep nesting", image(std::string(100000, '[')), {"nesting deeper than 64 levels"}},
        {"too many values", image("[" + [] {
             std::string zeros;
             for (int i = 0; i < 2000001; i++) zeros += "0,";
             return zeros;
         }() + "0]"), {"header JSON error", "more than 2000000 values"}},
        {"entry not object", image("{\"t\":[1]}"), {"tensor \"t\"", "entry is a JSON array"}},
        {"no dtype", image("{\"t\":{\"shape\":[],\"data_offsets\":[0,0]}}"), {"\"t\"", "dtype"}},
        {"dtype not string", image("{\"t\":{\"dtype\":4,\"shape\":[],\"data_offsets\":[0,0]}}"), {"\"t\"", "dtype"}},
        {"no shape", image("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}"), {"\"t\"", "shape"}},
        {"no offsets", image("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}"), {"\"t\"", "data_offsets"}},
        {"3 offsets", image("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", d16),
         {"\"t\"", "data_offsets\" must be an array of two"}},
        {"unknown dtype", image("{" + tensor_json("model.x", "F128", "[1]", 0, 16) + "}", d16),
         {"tensor \"model.x\"", "unknown dtype \"F128\""}},
        {"lowercase dtype", image("{" + tensor_json("t", "f32", "[4]", 0, 16) + "}", d16), {"unknown dtype \"f32\""}},
        {"negative dim", image("{" + tensor_json("t", "F32", "[-1]", 0, 16) + "}", d16),
         {"\"t\"", "shape entry -1 is not a non-negative 64-bit integer"}},
        {"float dim", image("{" + tensor_json("t", "F32", "[4.0]", 0, 16) + "}", d16), {"shape entry 4.0"}},
        {"string dim", image("{" + tensor_json("t", "F32", "[\"4\"]", 0, 16) + "}", d16), {"shape entry string"}},
        {"dim above int64", image("{" + tensor_json("t", "U8", "[9223372036854775808]", 0, 16) + "}", d16),
         {"shape entry 9223372036854775808"}},
        // 2^32 · 2^32 elements wrap to 0 in 64 bits: must be an overflow, not a zero-sized tensor
        {"shape product wraps", image("{" + tensor_json("big", "U8", "[4294967296,4294967296]", 0, 0) + "}"),
         {"tensor \"big\"", "overflows 64 bits"}},
        {"shape × size wraps", image("{" + tensor_json("big", "F32", "[4611686018427387904]", 0, 0) + "}"),
         {"overflows"}},
        {"size mismatch", image("{" + tensor_json("w", "F32", "[2,2]", 0, 12) + "}", d16),
         {"tensor \"w\"", "shape [2, 2] × F32 needs 16 bytes but its data span holds 12"}},
        {"span past data", image("{" + tensor_json("w", "F32", "[8]", 0, 32) + "}", d16),
         {"tensor \"w\"", "data span [0, 32) runs past the end of the data region (16 bytes)", "truncated"}},
        {"offset 2^63", image("{" + tensor_json("w", "F32", "[1]", 1ull << 63, (1ull << 63) + 4) + "}", d16),
         {"tensor \"w\"", "9223372036854775808", "runs past the end"}},
        {"offset 2^64", image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18446744073709551616,4]}}", d16),
         {"tensor \"w\"", "data offset 18446744073709551616 is not a non-negative 64-bit integer"}},
        {"negative offset", image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", d16),
         {"data offset -4"}},
        {"end before begin", image("{" + tensor_json("w", "F32", "[1]", 8, 4) + "}", d16), {"end before they begin"}},
        {"overlap", image("{" + tensor_json("a", "F32", "[2]", 0, 8) + "," + tensor_json("b", "F32", "[2]", 4, 12) + "}", d16),
         {"tensor \"b\"", "overlaps tensor \"a\""}},
        {"overlap, listed backwards", image("{" + tensor_json("b", "F32", "[2]", 4, 12) + "," + tensor_json("a", "F32", "[4]", 0, 16) + "}", d16),
         {"tensor \"b\"", "overlaps tensor \"a\""}},
        {"same span twice", image("{" + tensor_json("a", "F32", "[2]", 0, 8) + "," + tensor_json("b", "F32", "[2]", 0, 8) + "}", d16),
         {"overlaps"}},
        {"empty tensor inside another", image("{" + tensor_json("a", "F32", "[4]", 0, 16) + "," + tensor_json("e", "F32", "[0]", 4, 4) + "}", d16),
         {"tensor \"e\"", "overlaps tensor \"a\""}},
        {"duplicate name", image("{" + tensor_json("w", "F32", "[1]", 0, 4) + "," + tensor_json("w", "F32", "[1]", 4, 8) + "}", d16),
         {"duplicate key \"w\""}},
        {"escaped NUL in name", image("{" + tensor_json("a\\u0000b", "F32", "[1]", 0, 4) + "}", d16), {"NUL byte"}},
        {"raw NUL in name", image("{" + tensor_json(std::string("a\0b", 3), "F32", "[1]", 0, 4) + "}", d16),
         {"control character byte 0x00"}},
        {"metadata not object", image("{\"__metadata__\":[]}"), {"__metadata__ is not an object"}},
        {"metadata value not string", image("{\"__metadata__\":{\"steps\":20}}"),
         {"__metadata__ value for \"steps\" is a number, expected a string"}},
        {"sub-byte dtype, odd count", image("{" + tensor_json("q", "F4", "[3]", 0, 2) + "}", d16), {"not a whole number of bytes"}},
    };
    for (const Case& c : cases) {
        std::string e = open_error(c.bytes);
        INFO("case: ", c.what, "\nmessage: ", e);
        CHECK(e.rfind("mem.safetensors: ", 0) == 0);
        for (const std::string& part : c.parts) CHECK(e.find(part) != std::string::npos);
    }
}

// The bound itself, both ways: a span may end exactly where the file ends, and not one byte later (an off-by-one
// there would read past the mapping).
TEST_CASE("safetensors: a tensor may end exactly at the end of the data region, not one byte past it") {
    std::string d16;
    for (int i = 0; i < 16; i++) d16 += (char)(100 + i);
    auto one = [](const std::string& shape, uint64_t begin, uint64_t end) {
        return "{" + tensor_json("w", "U8", shape, begin, end) + "}";
    };
    {
        std::string bytes = image(one("[16]", 0, 16), d16);
        SafeTensors st = SafeTensors::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
        REQUIRE(st.find("w") != nullptr);
        CHECK(st.find("w")->end == 16);
    }
    {
        std::string bytes = image(one("[4]", 12, 16), d16);
        SafeTensors st = SafeTensors::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
        const TensorInfo* t = st.find("w");
        REQUIRE(t != nullptr);
        CHECK(static_cast<const uint8_t*>(st.data(*t))[3] == (uint8_t)115);  // the region's last byte
    }
    CHECK(open_error(image(one("[0]", 16, 16), d16)) == "");  // empty, at the very end
    CHECK(open_error(image(one("[16]", 1, 17), d16)) ==
          "mem.safetensors: tensor \"w\": data span [1, 17) runs past the end of the data region (16 bytes): file truncated?");
    CHECK_HAS(open_error(image(one("[1]", 16, 17), d16)), "data span [16, 17) runs past the end of the data region (16 bytes)");
    CHECK_HAS(open_error(image(one("[17]", 0, 17), d16)), "data span [0, 17) runs past the end of the data region (16 bytes)");
}

TEST_CASE("safetensors: every known dtype is listed, with sizes in bits") {
    struct D { const char* dtype; const char* shape; uint64_t bytes; };
    const D ds[] = {{"F64", "[2]", 16}, {"I64", "[2]", 16}, {"U64", "[2]", 16}, {"C64", "[2]", 16},
                    {"I32", "[4]", 16}, {"U32", "[4]", 16}, {"I16", "[8]", 16}, {"U16", "[8]", 16},
                    {"I8", "[16]", 16}, {"U8", "[16]", 16}, {"BOOL", "[16]", 16}, {"F8_E4M3", "[4,4]", 16},
                    {"F8_E5M2", "[16]", 16}, {"F8_E8M0", "[16]", 16}, {"F6_E2M3", "[4]", 3},
                    {"F6_E3M2", "[4]", 3}, {"F4", "[32]", 16}};
    for (const D& d : ds) {
        std::string bytes = image("{" + tensor_json("t", d.dtype, d.shape, 0, d.bytes) + "}", std::string(16, '\0'));
        INFO("dtype ", d.dtype);
        std::string e = open_error(bytes);
        CHECK(e == "");
        if (!e.empty()) continue;
        SafeTensors st = SafeTensors::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
        CHECK(st.find("t")->dtype == d.dtype);
        CHECK_HAS(get_error(st, "t"), d.dtype);
    }
    // a header exactly as the safetensors library writes it: metadata first, padded with spaces
    std::string bytes = image("{\"__metadata__\":{\"format\":\"pt\"}," + tensor_json("x", "F16", "[2]", 0, 4) + "}   ", "abcd");
    SafeTensors st = SafeTensors::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
    CHECK(st.metadata().at("format") == "pt");
    // extra fields in an entry are ignored, as the reference implementation does
    bytes = image("{\"x\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4],\"note\":1}}", "abcd");
    CHECK(open_error(bytes) == "");
    // gaps between tensors and trailing bytes are harmless
    bytes = image("{" + tensor_json("x", "F16", "[1]", 4, 6) + "}", std::string(32, '\0'));
    CHECK(open_error(bytes) == "");
}

TEST_CASE("safetensors: file problems — missing, directory, empty, short, truncated, unreadable") {
    std::string dir = scratch_dir();
    CHECK(file_error(dir + "/does_not_exist.safetensors") == dir + "/does_not_exist.safetensors: no such file");
    CHECK(file_error(dir) == dir + ": is a directory, not a safetensors file");
    CHECK(file_error("/dev/null") == "/dev/null: not a regular file");
    write_bytes(dir + "/empty.safetensors", "");
    CHECK_HAS(file_error(dir + "/empty.safetensors"), "empty.safetensors: empty file");
    write_bytes(dir + "/short.safetensors", "abc");
    CHECK_HAS(file_error(dir + "/short.safetensors"), "short.safetensors: not a safetensors file");
    write_bytes(dir + "/text.safetensors", "this is a text file, not tensors\n");
    CHECK_HAS(file_error(dir + "/text.safetensors"), "exceeds the 100 MB limit");

    // a valid file cut short in its data, then in its header
    Tensor w = Tensor::zeros({64}, DType::f32);
    std::string path = dir + "/whole.safetensors";
    write_safetensors(path, {{"w", w}});
    std::string whole = read_all(path);
    write_bytes(dir + "/cut.safetensors", whole.substr(0, whole.size() - 10));
    std::string e = file_error(dir + "/cut.safetensors");
    CHECK_HAS(e, "cut.safetensors: tensor \"w\": data span [0, 256) runs past the end of the data region (246 bytes)");
    CHECK_HAS(e, "truncated");
    write_bytes(dir + "/cut2.safetensors", whole.substr(0, 20));
    CHECK_HAS(file_error(dir + "/cut2.safetensors"), "runs past the end of the file (20 bytes)");
    CHECK(file_error(path) == "");

    std::string locked = dir + "/locked.safetensors";
    write_bytes(locked, whole);
    chmod(locked.c_str(), 0);
    if (geteuid() != 0) CHECK_HAS(file_error(locked), "locked.safetensors: cannot open: Permission denied");
    else SKIPPED("running as root, which ignores permissions: the unreadable-file case");
    chmod(locked.c_str(), 0600);
}

TEST_CASE("safetensors: a 1000-tensor header opens in well under a millisecond per tensor") {
    std::vector<std::pair<std::string, Tensor>> ts;
    for (int i = 0; i < 1000; i++)
        ts.push_back({"model.diffusion_model.block." + std::to_string(i) + ".weight", Tensor::zeros({4, 4}, DType::f16)});
    std::string path = scratch_dir() + "/many.safetensors";
    write_safetensors(path, ts);
    auto t0 = std::chrono::steady_clock::now();
    SafeTensors st(path);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("open + validate 1000 tensors: ", ms, " ms");
    CHECK(st.tensors().size() == 1000);
    CHECK(st.find("model.diffusion_model.block.999.weight") == &st.tensors()[999]);
    CHECK(ms < 200);  // generous: a loaded 2-core CI machine; typically ~1 ms
}

TEST_CASE("safetensors: a .ckpt zip, a pickle or a GGUF file is named as such") {
    const unsigned char zip[16] = {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char pickle[16] = {0x80, 2, 'c', 'c', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char gguf[16] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_THROWS_WITH_AS(sd::SafeTensors::from_memory(zip, 16, "m.ckpt"), doctest::Contains("zip archive"), std::runtime_error);
    CHECK_THROWS_WITH_AS(sd::SafeTensors::from_memory(pickle, 16, "m.ckpt"), doctest::Contains("pickle"), std::runtime_error);
    CHECK_THROWS_WITH_AS(sd::SafeTensors::from_memory(gguf, 16, "m.gguf"), doctest::Contains("GGUF"), std::runtime_error);
}
