// weights.h — binding checkpoint tensors to model fields by name, one greppable line per tensor.
//
//   WeightLoader w(st, "model.diffusion_model.");
//   b.conv1_w = w.mat(p + "in_layers.2.weight", {cout, cin, 3, 3});   // stored dtype, a view of the file
//   b.conv1_b = w.vec(p + "in_layers.2.bias", {cout});                // small: an owned f32 copy
//
// Large matrices stay in the mapped file in their stored dtype (f16/bf16/f32); the kernels read them as
// they are. Biases and norm parameters are small, so they are widened to f32 once at load.
#pragma once
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "safetensors.h"

namespace sd {

class WeightLoader {
public:
    WeightLoader(const SafeTensors& st, std::string prefix) : st_(st), prefix_(std::move(prefix)) {}

    Tensor mat(const std::string& name, std::initializer_list<int64_t> shape) const {
        return st_.get(prefix_ + name, shape);
    }
    Tensor vec(const std::string& name, std::initializer_list<int64_t> shape) const {
        return to_f32(st_.get(prefix_ + name, shape));
    }
    bool has(const std::string& name) const { return st_.has(prefix_ + name); }
    // The stored shape of a tensor, for inferring a model's configuration; throws naming it if absent.
    std::vector<int64_t> shape(const std::string& name) const {
        const TensorInfo* t = st_.find(prefix_ + name);
        if (!t) throw std::runtime_error(st_.path() + ": missing tensor '" + prefix_ + name + "'");
        return t->shape;
    }
    // 1 + the largest N for which a tensor is named prefix + head + N + "." + ..., 0 if none. Counting by
    // the largest index rather than the first gap turns a missing middle entry into a missing-tensor error
    // instead of a silently shorter model.
    int64_t count_indexed(const std::string& head) const {
        const std::string start = prefix_ + head;
        int64_t count = 0;
        for (const TensorInfo& t : st_.tensors()) {
            if (t.name.compare(0, start.size(), start) != 0) continue;
            size_t i = start.size(), j = i;
            int64_t n = 0;
            while (j < t.name.size() && j - i < 9 && t.name[j] >= '0' && t.name[j] <= '9') n = n * 10 + (t.name[j++] - '0');
            if (j > i && j < t.name.size() && t.name[j] == '.' && n + 1 > count) count = n + 1;
        }
        return count;
    }
    const std::string& prefix() const { return prefix_; }
    const SafeTensors& file() const { return st_; }

    // An owned f32 copy of any usable tensor.
    static Tensor to_f32(const Tensor& t) {
        Tensor out = Tensor::zeros(t.dims(), DType::F32);
        convert_to_f32(out.f32(), t.data, t.dtype, t.numel());
        return out;
    }

private:
    const SafeTensors& st_;
    std::string prefix_;
};

}  // namespace sd
