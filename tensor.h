// tensor.h — the engine's one tensor type and the scratch arena activations live in.
//
// A Tensor is a dtype, up to 4 dims (row-major, contiguous) and a pointer. It either owns its memory
// (shared storage, freed with the last copy) or views memory owned elsewhere: a mapped safetensors file
// or an Arena. Deliberately left out: strides, broadcasting, autograd — kernels take explicit sizes.
#pragma once
#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace sd {

enum class DType : uint8_t { f32, f16, bf16 };

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
    return t == DType::f32 ? "F32" : t == DType::f16 ? "F16" : "BF16";
}

struct Tensor {
    DType dtype = DType::f32;
    int ndim = 0;
    int64_t shape[4] = {1, 1, 1, 1};
    void* data = nullptr;
    std::shared_ptr<void> storage;  // set when this tensor (or one it was viewed from) owns the memory

    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < ndim; i++) n *= shape[i];
        return n;
    }
    size_t nbytes() const { return (size_t)numel() * dtype_size(dtype); }
    // dim(-1) is the last dimension, as in PyTorch.
    int64_t dim(int i) const {
        if (i < 0) i += ndim;
        assert(i >= 0 && i < ndim);
        return shape[i];
    }
    float* f32() { assert(dtype == DType::f32); return static_cast<float*>(data); }
    const float* f32() const { assert(dtype == DType::f32); return static_cast<const float*>(data); }

    std::vector<int64_t> dims() const { return std::vector<int64_t>(shape, shape + ndim); }
    std::string shape_str() const {
        std::string s = "[";
        for (int i = 0; i < ndim; i++) s += (i ? ", " : "") + std::to_string(shape[i]);
        return s + "]";
    }
    bool same_shape(std::initializer_list<int64_t> s) const {
        if ((int)s.size() != ndim) return false;
        int i = 0;
        for (int64_t d : s) if (shape[i++] != d) return false;
        return true;
    }

    // A view of the same memory with another shape of equal element count.
    Tensor reshape(std::initializer_list<int64_t> s) const {
        Tensor t = *this;
        set_shape(t, s);
        if (t.numel() != numel()) throw std::logic_error("reshape " + shape_str() + " to " + t.shape_str());
        return t;
    }

    // An owning, zero-filled tensor.
    static Tensor zeros(std::initializer_list<int64_t> s, DType dt = DType::f32) {
        return zeros(std::vector<int64_t>(s), dt);
    }
    static Tensor zeros(const std::vector<int64_t>& s, DType dt = DType::f32) {
        Tensor t;
        t.dtype = dt;
        set_shape(t, s);
        size_t bytes = (t.nbytes() + 63) & ~size_t(63);
        void* p = std::aligned_alloc(64, bytes ? bytes : 64);
        if (!p) throw std::bad_alloc();
        std::memset(p, 0, bytes);
        t.data = p;
        t.storage = std::shared_ptr<void>(p, std::free);
        return t;
    }
    // A non-owning view of memory that outlives the tensor.
    static Tensor view_of(void* p, const std::vector<int64_t>& s, DType dt = DType::f32) {
        Tensor t;
        t.dtype = dt;
        set_shape(t, s);
        t.data = p;
        return t;
    }

    template <class Dims>
    static void set_shape(Tensor& t, const Dims& s) {
        if (s.size() > 4) throw std::logic_error("tensor rank above 4");
        t.ndim = (int)s.size();
        int i = 0;
        for (int64_t d : s) t.shape[i++] = d;
        for (; i < 4; i++) t.shape[i] = 1;
    }
};

// Bump allocator for activations, 64-byte aligned slices, so a forward pass never calls malloc per op.
// It grows by adding blocks when a pass needs more than it has; reset() then merges them into one block
// of the peak size, so from the second pass on there is exactly one block and no allocation at all.
// mark()/release() free everything allocated since a mark (stack discipline).
class Arena {
public:
    explicit Arena(size_t bytes = 0) { if (bytes) add_block(bytes); }
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    Tensor alloc(std::initializer_list<int64_t> s, DType dt = DType::f32) {
        return alloc(std::vector<int64_t>(s), dt);
    }
    Tensor alloc(const std::vector<int64_t>& s, DType dt = DType::f32) {
        Tensor t;
        t.dtype = dt;
        Tensor::set_shape(t, s);
        t.data = bytes(t.nbytes());
        return t;
    }
    void* bytes(size_t n) {
        n = (n + 63) & ~size_t(63);
        while (cur_ < blocks_.size() && used_ + n > blocks_[cur_].size) { cur_++; used_ = 0; }
        if (cur_ == blocks_.size()) { add_block(n > min_block_ ? n : min_block_); used_ = 0; }
        void* p = blocks_[cur_].ptr.get() + used_;
        used_ += n;
        size_t total = in_use();
        if (total > peak_) peak_ = total;
        return p;
    }
    struct Mark { size_t block, used; };
    Mark mark() const { return {cur_, used_}; }
    void release(Mark m) { cur_ = m.block; used_ = m.used; }
    void reset() {
        cur_ = 0; used_ = 0;
        if (blocks_.size() > 1) {  // merge: one block big enough for the whole peak
            size_t want = peak_ + 64 * blocks_.size();
            blocks_.clear();
            add_block(want);
        }
    }
    // Gives every block back to the system (nothing may be live): the next pass grows to its own need. Used
    // between stages with different shapes (UNet, then VAE), so their peaks do not add up in resident memory.
    void clear() {
        assert(cur_ == 0 && used_ == 0);
        blocks_.clear();
        peak_ = 0;
    }
    size_t capacity() const { size_t c = 0; for (auto& b : blocks_) c += b.size; return c; }
    size_t peak() const { return peak_; }

private:
    struct Free { void operator()(char* p) const { std::free(p); } };
    struct Block { std::unique_ptr<char, Free> ptr; size_t size; };
    std::vector<Block> blocks_;
    size_t cur_ = 0, used_ = 0, peak_ = 0;
    static constexpr size_t min_block_ = 64u << 20;

    size_t in_use() const {
        size_t t = used_;
        for (size_t i = 0; i < cur_ && i < blocks_.size(); i++) t += blocks_[i].size;
        return t;
    }
    void add_block(size_t n) {
        n = (n + 63) & ~size_t(63);
        void* p = std::aligned_alloc(64, n);
        if (!p) throw std::bad_alloc();
        blocks_.push_back(Block{std::unique_ptr<char, Free>(static_cast<char*>(p)), n});
    }
};

}  // namespace sd
