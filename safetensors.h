// safetensors.h — read-only access to a .safetensors file, mapped into memory (never copied).
//
// Format: u64 little-endian header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets"}, ...,
// "__metadata__": {str: str}}, then the data region. Everything is validated on open: header length within
// the file, JSON syntax (our own parser, json.h), known dtypes, shape × dtype size == data span, spans inside
// the data region and not overlapping. Each failure throws std::runtime_error with one sentence naming the
// file and, where there is one, the tensor. F32, F16 and BF16 tensors are usable; other dtypes (I64, U8, ...)
// are listed, and asking for one is an error that names it.
//
// Alignment: the format guarantees none. Files written by the safetensors library (and write_safetensors)
// put the data region at a multiple of 8 and every tensor at a multiple of its element size, but other
// writers may not, so a Tensor from get() can point at an odd address — even an F32 one. Kernels must read
// weights with unaligned loads (memcpy / loadu), never assume 4- or 64-byte alignment of a mapped tensor.
// The views are read-only (the mapping is PROT_READ) and valid while this SafeTensors lives.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor.h"

namespace sd {

struct TensorInfo {
    std::string name;
    std::string dtype;             // as written in the file: "F32", "F16", "BF16", "I64", ...
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;   // byte span within the data region
    bool usable() const { return dtype == "F32" || dtype == "F16" || dtype == "BF16"; }
};

class SafeTensors {
public:
    // Maps and validates the file; throws std::runtime_error("PATH: ...") on any problem.
    explicit SafeTensors(const std::string& path);
    // Validates an in-memory image of a file (tests, fuzzing); `bytes` must outlive this object.
    static SafeTensors from_memory(const void* bytes, size_t size, const std::string& label);
    ~SafeTensors();
    SafeTensors(SafeTensors&&) noexcept;
    SafeTensors& operator=(SafeTensors&&) noexcept;

    const std::string& path() const;
    uint64_t file_size() const;
    const std::map<std::string, std::string>& metadata() const;   // "__metadata__", empty if absent
    const std::vector<TensorInfo>& tensors() const;                // in file order
    const TensorInfo* find(const std::string& name) const;         // null if absent
    bool has(const std::string& name) const { return find(name) != nullptr; }
    // The raw bytes of any tensor (every dtype, e.g. I64 position_ids), t.end - t.begin of them; unaligned.
    const void* data(const TensorInfo& t) const;

    // A view of the tensor's bytes in the mapping, in its stored dtype. Throws if absent, or if its dtype
    // is not F32/F16/BF16, or (second form) if its shape differs from `expected` — naming the tensor,
    // the expected and the found shape.
    Tensor get(const std::string& name) const;
    Tensor get(const std::string& name, std::initializer_list<int64_t> expected) const;
    Tensor get(const std::string& name, const std::vector<int64_t>& expected) const;

    // Tensors get() returns instead of the file's own of the same name (merged LoRA weights: private copies of
    // the touched tensors, while the rest stays mapped). Each must exist in the file with the same shape.
    void set_overrides(std::map<std::string, Tensor> overrides);
    // The file's own tensor, overridden or not (what a new LoRA set merges into).
    Tensor original(const std::string& name) const;

private:
    SafeTensors();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Writes a safetensors file (F32/F16/BF16 tensors, optional metadata) — for tests and tools.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace sd
