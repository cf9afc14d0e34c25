// weights.h — binding checkpoint tensors to model fields by name, one greppable line per layer.
//
//   WeightLoader file(st, "model.diffusion_model.");
//   Binder w(file);
//   b.conv1 = w.conv(p + "in_layers.2", cout, cin, 3);   // in_layers.2.weight (cout, cin, 3, 3), .bias (cout)
//   b.norm1 = w.norm(p + "in_layers.0", cin);            // in_layers.0.weight, .bias (cin)
//
// Large matrices stay in the mapped file in their stored dtype (f16/bf16/f32); the kernels read them as
// they are. Biases and norm parameters are small, so they are widened to f32 once at load.
#pragma once
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "models/ops.h"
#include "safetensors.h"

namespace sd {

class WeightLoader {
public:
    // low_rank: LoRAs to add at run time to the layers it names (pipeline/loras.h); null: none.
    WeightLoader(const SafeTensors& st, std::string prefix, const LowRankTable* low_rank = nullptr)
        : st_(st), prefix_(std::move(prefix)), low_rank_(low_rank) {}

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
    // The run-time LoRAs of the layer whose weight is `name` (empty: none).
    std::vector<LowRank> low_rank(const std::string& name) const {
        if (!low_rank_) return {};
        auto it = low_rank_->find(prefix_ + name);
        return it == low_rank_->end() ? std::vector<LowRank>() : it->second;
    }

    // An owned f32 copy of any usable tensor.
    static Tensor to_f32(const Tensor& t) {
        Tensor out = Tensor::zeros(t.dims(), DType::F32);
        convert_to_f32(out.f32(), t.data, t.dtype, t.numel());
        return out;
    }

private:
    const SafeTensors& st_;
    std::string prefix_;
    const LowRankTable* low_rank_;
};

// The binders' helper: a WeightLoader that remembers every name bound, so a loader can refuse a file with
// tensors it did not use (a structure it misread), and whose error for a missing tensor names the shape it
// should have had. Layers are bound by their module path: conv("in_layers.2", ...) binds "in_layers.2.weight"
// and "in_layers.2.bias".
class Binder {
public:
    explicit Binder(const WeightLoader& w) : w_(w) {}

    Tensor mat(const std::string& name, std::initializer_list<int64_t> shape) {  // stored dtype: a file view
        require(name, shape);
        return w_.mat(name, shape);
    }
    Tensor vec(const std::string& name, std::initializer_list<int64_t> shape) {  // an owned f32 copy
        require(name, shape);
        return w_.vec(name, shape);
    }
    Linear linear(const std::string& p, int64_t out, int64_t in, bool bias = true) {
        return {mat(p + ".weight", {out, in}), bias ? vec(p + ".bias", {out}) : Tensor(), w_.low_rank(p + ".weight")};
    }
    Conv conv(const std::string& p, int64_t cout, int64_t cin, int64_t k, bool bias = true) {
        return {mat(p + ".weight", {cout, cin, k, k}), bias ? vec(p + ".bias", {cout}) : Tensor(),
                w_.low_rank(p + ".weight")};
    }
    Norm norm(const std::string& p, int64_t C) { return {vec(p + ".weight", {C}), vec(p + ".bias", {C})}; }
    // A 1×1 conv (ldm) or a Linear (SD 2.x, converted files): the same (out, in) matrix, kept as a Linear.
    Linear proj(const std::string& p, int64_t out, int64_t in, bool bias = true) {
        const std::string name = p + ".weight";
        Tensor w = w_.has(name) && w_.shape(name).size() == 2 ? mat(name, {out, in})
                                                              : mat(name, {out, in, 1, 1}).reshape({out, in});
        return {w, bias ? vec(p + ".bias", {out}) : Tensor(), w_.low_rank(name)};
    }

    const WeightLoader& loader() const { return w_; }
    // Throws naming the first tensor under the prefix that nothing bound, as not part of `layout`.
    void refuse_unused(const std::string& layout) const {
        const std::string& prefix = w_.prefix();
        for (const TensorInfo& t : w_.file().tensors()) {
            if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
            if (!used_.count(t.name.substr(prefix.size())))
                throw std::runtime_error(w_.file().path() + ": tensor '" + t.name + "' is not part of the " + layout +
                                         " inferred from this file");
        }
    }

private:
    const WeightLoader& w_;
    std::set<std::string> used_;

    void require(const std::string& name, std::initializer_list<int64_t> shape) {
        if (!w_.has(name)) {
            Tensor expected;
            Tensor::set_shape(expected, shape);
            throw std::runtime_error(w_.file().path() + ": missing tensor '" + w_.prefix() + name +
                                     "' (expected shape " + expected.shape_str() + ")");
        }
        used_.insert(name);
    }
};

}  // namespace sd
