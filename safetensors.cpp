// safetensors.cpp — mapping, validating and writing .safetensors files (see safetensors.h).
//
// The whole file is mapped read-only (PROT_READ, MAP_PRIVATE; POSIX, so Linux and macOS) and never copied:
// opening a 2 GB checkpoint costs one header parse, and pages are read as the kernels first touch them.
// The header is untrusted input: every number is range-checked before it is used, sizes are computed with
// overflow-checked 64-bit arithmetic, and nothing is read outside [0, file size).
#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "json.h"

namespace sd {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // real headers are ~150 KB; refuse to parse more than this
// A tensor entry is ~7 JSON values (SD 1.5: 1145 tensors, ~8000 values). 2M values allow ~250k tensors and
// bound the parse of a hostile header ("[0,0,0,...": 2 bytes per value) to ~0.3 GB and well under a second.
constexpr size_t kMaxHeaderValues = 2000000;

// Every dtype the safetensors format defines, with its size in bits (F4/F6 pack below one byte).
struct DTypeBits { const char* name; uint32_t bits; };
constexpr DTypeBits kDTypes[] = {
    {"F64", 64}, {"F32", 32}, {"F16", 16}, {"BF16", 16}, {"I64", 64}, {"I32", 32}, {"I16", 16}, {"I8", 8},
    {"U64", 64}, {"U32", 32}, {"U16", 16}, {"U8", 8}, {"BOOL", 8}, {"F8_E4M3", 8}, {"F8_E5M2", 8},
    {"F8_E8M0", 8}, {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"F4", 4}, {"C64", 64},
};

uint32_t dtype_bits(const std::string& name) {
    for (const DTypeBits& d : kDTypes)
        if (name == d.name) return d.bits;
    return 0;
}

std::string shape_string(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
    if (a != 0 && b > UINT64_MAX / a) return true;
    *out = a * b;
    return false;
}

}  // namespace

struct SafeTensors::Impl {
    std::string path;                         // or the label given to from_memory
    const uint8_t* bytes = nullptr;           // the whole file
    uint64_t size = 0;
    void* mapping = nullptr;                  // non-null when we own an mmap of `size` bytes
    const uint8_t* data = nullptr;            // the data region: bytes + 8 + header length
    uint64_t data_size = 0;
    std::map<std::string, std::string> metadata;
    std::vector<TensorInfo> tensors;          // in header order
    std::unordered_map<std::string, size_t> index;
    std::map<std::string, Tensor> overrides;  // set_overrides()

    ~Impl() {
        if (mapping) munmap(mapping, (size_t)size);
    }

    [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(path + ": " + what); }
    [[noreturn]] void fail_tensor(const std::string& name, const std::string& what) const {
        fail("tensor " + json_quote(name) + ": " + what);
    }

    void validate();
    void parse_tensor(const std::string& name, const JsonValue& v);
};

void SafeTensors::Impl::validate() {
    if (size == 0) fail("empty file, not a safetensors file");
    if (size < 8)
        fail("not a safetensors file (" + std::to_string(size) + " bytes, shorter than the 8-byte header length)");
    // The formats people most often mistake for safetensors, named so they know what to look for instead.
    if (bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4)
        fail("a zip archive (a PyTorch .ckpt/.pt checkpoint?), not a safetensors file; get the .safetensors version");
    if (bytes[0] == 0x80 && bytes[1] >= 2 && bytes[1] <= 5)
        fail("a Python pickle (an old PyTorch .ckpt/.pt checkpoint?), not a safetensors file; get the .safetensors version");
    if (std::memcmp(bytes, "GGUF", 4) == 0) fail("a GGUF file, not a safetensors file");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | bytes[i];  // little-endian on any host
    if (header_len > kMaxHeaderBytes)
        fail("header length " + std::to_string(header_len) + " exceeds the " +
             std::to_string(kMaxHeaderBytes >> 20) + " MB limit (not a safetensors file, or corrupt)");
    if (header_len > size - 8)
        fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
             std::to_string(size) + " bytes): truncated, or not a safetensors file");
    data = bytes + 8 + header_len;
    data_size = size - 8 - header_len;

    JsonValue root;
    try {
        root = parse_json((const char*)bytes + 8, (size_t)header_len, JsonLimits{64, kMaxHeaderValues});
    } catch (const std::runtime_error& e) {
        fail(std::string("header ") + e.what() + " (the header starts at byte 8)");
    }
    if (root.kind != JsonValue::Object)
        fail(std::string("header is a JSON ") + JsonValue::kind_name(root.kind) + ", expected an object");

    for (size_t i = 0; i < root.keys.size(); i++) {
        const std::string& name = root.keys[i];
        const JsonValue& v = root.items[i];
        if (name == "__metadata__") {
            if (v.kind != JsonValue::Object) fail("__metadata__ is not an object of strings");
            for (size_t j = 0; j < v.keys.size(); j++) {
                if (v.items[j].kind != JsonValue::String)
                    fail("__metadata__ value for " + json_quote(v.keys[j]) + " is a " +
                         JsonValue::kind_name(v.items[j].kind) + ", expected a string");
                metadata[v.keys[j]] = v.items[j].text;
            }
            continue;
        }
        parse_tensor(name, v);
    }

    // Spans must not overlap: sort by (begin, end) and compare each begin with the furthest end so far.
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const TensorInfo &x = tensors[a], &y = tensors[b];
        return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
    });
    uint64_t reach = 0;
    size_t reach_owner = 0;
    for (size_t k = 0; k < order.size(); k++) {
        const TensorInfo& t = tensors[order[k]];
        if (k > 0 && t.begin < reach)
            fail_tensor(t.name, "data span [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                                    ") overlaps tensor " + json_quote(tensors[reach_owner].name));
        if (t.end > reach || k == 0) { reach = t.end; reach_owner = order[k]; }
    }
}

void SafeTensors::Impl::parse_tensor(const std::string& name, const JsonValue& v) {
    if (name.find('\0') != std::string::npos) fail_tensor(name, "name contains a NUL byte");
    if (v.kind != JsonValue::Object)
        fail_tensor(name, std::string("entry is a JSON ") + JsonValue::kind_name(v.kind) + ", expected an object");
    const JsonValue* dtype = v.get("dtype");
    const JsonValue* shape = v.get("shape");
    const JsonValue* offsets = v.get("data_offsets");
    if (!dtype || dtype->kind != JsonValue::String) fail_tensor(name, "missing or non-string \"dtype\"");
    if (!shape || shape->kind != JsonValue::Array) fail_tensor(name, "missing or non-array \"shape\"");
    if (!offsets || offsets->kind != JsonValue::Array || offsets->items.size() != 2)
        fail_tensor(name, "\"data_offsets\" must be an array of two integers [begin, end]");

    TensorInfo t;
    t.name = name;
    t.dtype = dtype->text;
    uint32_t bits = dtype_bits(t.dtype);
    if (!bits) fail_tensor(name, "unknown dtype " + json_quote(t.dtype));

    uint64_t total_bits = bits;
    for (const JsonValue& d : shape->items) {
        uint64_t n;
        if (!d.as_uint64(&n) || n > (uint64_t)INT64_MAX)
            fail_tensor(name, "shape entry " + (d.kind == JsonValue::Number ? d.text : JsonValue::kind_name(d.kind)) +
                                  " is not a non-negative 64-bit integer");
        t.shape.push_back((int64_t)n);
        if (mul_overflows(total_bits, n, &total_bits))
            fail_tensor(name, "shape " + shape_string(t.shape) + "... × " + t.dtype + " overflows 64 bits");
    }
    if (total_bits % 8) fail_tensor(name, "shape " + shape_string(t.shape) + " of " + t.dtype + " is not a whole number of bytes");
    uint64_t nbytes = total_bits / 8;

    for (int k = 0; k < 2; k++) {
        const JsonValue& o = offsets->items[k];
        uint64_t& dst = k ? t.end : t.begin;
        if (!o.as_uint64(&dst))
            fail_tensor(name, "data offset " + (o.kind == JsonValue::Number ? o.text : JsonValue::kind_name(o.kind)) +
                                  " is not a non-negative 64-bit integer");
    }
    if (t.begin > t.end)
        fail_tensor(name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] end before they begin");
    if (t.end > data_size)
        fail_tensor(name, "data span [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                              ") runs past the end of the data region (" + std::to_string(data_size) +
                              " bytes): file truncated?");
    if (t.end - t.begin != nbytes)
        fail_tensor(name, "shape " + shape_string(t.shape) + " × " + t.dtype + " needs " + std::to_string(nbytes) +
                              " bytes but its data span holds " + std::to_string(t.end - t.begin));

    if (!index.emplace(name, tensors.size()).second) fail_tensor(name, "duplicate tensor name");
    tensors.push_back(std::move(t));
}

SafeTensors::SafeTensors() : impl_(new Impl) {}
SafeTensors::~SafeTensors() = default;
SafeTensors::SafeTensors(SafeTensors&&) noexcept = default;
SafeTensors& SafeTensors::operator=(SafeTensors&&) noexcept = default;

SafeTensors::SafeTensors(const std::string& path) : impl_(new Impl) {
    Impl& m = *impl_;
    m.path = path;
    // stat before open: opening a FIFO for reading would block until someone writes to it
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        int err = errno;
        if (err == ENOENT) m.fail("no such file");
        m.fail(std::string("cannot open: ") + std::strerror(err));
    }
    if (S_ISDIR(st.st_mode)) m.fail("is a directory, not a safetensors file");
    if (!S_ISREG(st.st_mode)) m.fail("not a regular file");
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) m.fail(std::string("cannot open: ") + std::strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {  // the file we opened, not the one we stat'ed
        ::close(fd);
        m.fail("cannot stat, or no longer a regular file");
    }
    m.size = (uint64_t)st.st_size;
    if (m.size >= 8) {  // smaller files are rejected by validate() with a clearer message
        if (m.size > (uint64_t)SIZE_MAX) { ::close(fd); m.fail("file too large to map"); }
        void* p = mmap(nullptr, (size_t)m.size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            ::close(fd);
            m.fail(std::string("cannot map: ") + std::strerror(err));
        }
        m.mapping = p;
        m.bytes = static_cast<const uint8_t*>(p);
    }
    ::close(fd);  // the mapping stays valid after close
    m.validate();
}

SafeTensors SafeTensors::from_memory(const void* bytes, size_t size, const std::string& label) {
    SafeTensors st;
    st.impl_->path = label;
    st.impl_->bytes = static_cast<const uint8_t*>(bytes);
    st.impl_->size = size;
    st.impl_->validate();
    return st;
}

const std::string& SafeTensors::path() const { return impl_->path; }
uint64_t SafeTensors::file_size() const { return impl_->size; }
const std::map<std::string, std::string>& SafeTensors::metadata() const { return impl_->metadata; }
const std::vector<TensorInfo>& SafeTensors::tensors() const { return impl_->tensors; }

const TensorInfo* SafeTensors::find(const std::string& name) const {
    auto it = impl_->index.find(name);
    return it == impl_->index.end() ? nullptr : &impl_->tensors[it->second];
}

const void* SafeTensors::data(const TensorInfo& t) const { return impl_->data + t.begin; }

Tensor SafeTensors::get(const std::string& name) const {
    auto o = impl_->overrides.find(name);
    if (o != impl_->overrides.end()) return o->second;
    return original(name);
}

Tensor SafeTensors::original(const std::string& name) const {
    const TensorInfo* t = find(name);
    if (!t) impl_->fail("no tensor named " + json_quote(name));
    DType dt;
    if (t->dtype == "F32") dt = DType::F32;
    else if (t->dtype == "F16") dt = DType::F16;
    else if (t->dtype == "BF16") dt = DType::BF16;
    else impl_->fail_tensor(name, "has dtype " + t->dtype + "; only F32, F16 and BF16 tensors can be used");
    if (t->shape.size() > 4)
        impl_->fail_tensor(name, "has rank " + std::to_string(t->shape.size()) + " (shape " +
                                     shape_string(t->shape) + "); at most 4 dimensions are supported");
    // The mapping is read-only: writing through the view would fault. The cast only fits Tensor's type.
    return Tensor::view_of(const_cast<void*>(data(*t)), t->shape, dt);
}

Tensor SafeTensors::get(const std::string& name, const std::vector<int64_t>& expected) const {
    const TensorInfo* t = find(name);
    if (t && t->shape != expected)
        impl_->fail_tensor(name, "has shape " + shape_string(t->shape) + ", expected " + shape_string(expected));
    return get(name);
}

void SafeTensors::set_overrides(std::map<std::string, Tensor> overrides) {
    for (const auto& [name, t] : overrides) {
        const TensorInfo* info = find(name);
        if (!info || info->shape != t.dims()) impl_->fail_tensor(name, "cannot be replaced by a tensor of another shape");
    }
    // The mapped pages of a replaced tensor are not read again: give them back (they are clean file pages, so
    // a later read, e.g. another LoRA set merging from the originals, faults them in from the file again).
    if (impl_->mapping) {
        const uintptr_t page = 4096;
        for (const auto& [name, t] : overrides) {
            const TensorInfo* info = find(name);
            uintptr_t b = (uintptr_t)data(*info), e = b + (info->end - info->begin);
            b = (b + page - 1) & ~(page - 1);
            e &= ~(page - 1);
            if (e > b) madvise((void*)b, e - b, MADV_DONTNEED);
        }
    }
    impl_->overrides = std::move(overrides);
}

Tensor SafeTensors::get(const std::string& name, std::initializer_list<int64_t> expected) const {
    return get(name, std::vector<int64_t>(expected));
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    // Data is laid out widest element first (stable otherwise), as the safetensors library does, so every
    // tensor starts aligned to its element size when the header is padded to a multiple of 8.
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return dtype_size(tensors[a].second.dtype) > dtype_size(tensors[b].second.dtype);
    });
    std::vector<uint64_t> begin(tensors.size());
    uint64_t offset = 0;
    for (size_t i : order) {
        begin[i] = offset;
        offset += tensors[i].second.nbytes();
    }

    std::string header = "{";
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        bool first = true;
        for (auto& kv : metadata) {
            header += (first ? "" : ",") + json_quote(kv.first) + ":" + json_quote(kv.second);
            first = false;
        }
        header += "}";
    }
    std::unordered_map<std::string, int> seen;
    for (size_t i = 0; i < tensors.size(); i++) {
        const std::string& name = tensors[i].first;
        const Tensor& t = tensors[i].second;
        if (name == "__metadata__" || !seen.emplace(name, 0).second)
            throw std::runtime_error(path + ": cannot write tensor " + json_quote(name) + " twice (or as __metadata__)");
        header += (header.size() > 1 ? "," : "") + json_quote(name) + ":{\"dtype\":\"" + dtype_name(t.dtype) +
                  "\",\"shape\":" + shape_string(t.dims()) + ",\"data_offsets\":[" + std::to_string(begin[i]) +
                  "," + std::to_string(begin[i] + t.nbytes()) + "]}";
    }
    header += "}";
    while (header.size() % 8) header += ' ';

    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)header.size() >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
    for (size_t k = 0; ok && k < order.size(); k++) {
        const Tensor& t = tensors[order[k]].second;
        ok = t.nbytes() == 0 || std::fwrite(t.data, 1, t.nbytes(), f) == t.nbytes();
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace sd
