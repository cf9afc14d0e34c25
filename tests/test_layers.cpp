// test_layers.cpp — the layering of docs/architecture.md, checked on the sources. Each folder includes only itself
// and the layers below it:
//   sd.cpp → server/ → app/ → pipeline/ → models/ → kernels/, tokenizer/ → the root's tensor.h, safetensors, json, sha256
// and server/ reaches the other folders through their headers only (no .inc or .cpp of theirs). A new #include
// that points up (a pipeline file reaching for app/, a model reaching for pipeline/) fails here, naming the file and
// the line, so the diffusion code stays readable without the application around it.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

// The layer of a source file or an include target: its first folder, "" for the root.
std::string layer_of(const std::string& path) {
    const size_t slash = path.find('/');
    return slash == std::string::npos ? "" : path.substr(0, slash);
}

// What each layer may include (besides itself).
const std::map<std::string, std::set<std::string>>& allowed() {
    static const std::map<std::string, std::set<std::string>> a = {
        {"", {}},
        {"kernels", {""}},
        {"tokenizer", {""}},
        {"models", {"", "kernels", "tokenizer"}},
        {"pipeline", {"", "kernels", "tokenizer", "models"}},
        {"app", {"", "kernels", "tokenizer", "models", "pipeline"}},
        {"server", {"", "kernels", "tokenizer", "models", "pipeline", "app"}},
    };
    return a;
}

// Empty when `file` may include `target`, else the reason.
std::string layering_violation(const std::string& file, const std::string& target) {
    if (file == "sd.cpp") return "";  // main: the top, it may include anything
    const std::string from = layer_of(file), to = layer_of(target);
    if (from == to) return "";
    const auto it = allowed().find(from);
    if (it == allowed().end()) return "";  // folders outside the layers (tests/, bench/)
    if (!it->second.count(to))
        return (to.empty() ? std::string("the root") : to + "/") + " is not below " + (from.empty() ? "the root" : from + "/");
    if (from == "server" && target.size() > 2 && target.compare(target.size() - 2, 2, ".h") != 0)
        return "server/ uses other folders through their headers only";
    return "";
}

std::vector<std::string> layered_sources() {
    namespace fs = std::filesystem;
    std::vector<std::string> files;
    auto source = [](const fs::path& p) {
        const std::string e = p.extension().string();
        return e == ".h" || e == ".cpp" || e == ".inc";
    };
    for (const auto& kv : allowed()) {
        const std::string& layer = kv.first;
        if (layer.empty()) {
            for (const auto& f : fs::directory_iterator("."))
                if (f.is_regular_file() && source(f.path()) && f.path().filename() != "sd.cpp")
                    files.push_back(f.path().filename().string());
            continue;
        }
        for (const auto& f : fs::recursive_directory_iterator(layer))
            if (f.is_regular_file() && source(f.path())) files.push_back(f.path().generic_string());
    }
    return files;
}

}  // namespace

TEST_CASE("layers: the rule itself flags an include that points up and passes one that points down") {
    CHECK(layering_violation("pipeline/txt2img.cpp", "app/npy.h") != "");
    CHECK(layering_violation("models/lora.cpp", "pipeline/loras.h") != "");
    CHECK(layering_violation("kernels/gemm.cpp", "models/ops.h") != "");
    CHECK(layering_violation("safetensors.cpp", "kernels/kernels.h") != "");
    CHECK(layering_violation("server/engine.cpp", "pipeline/prompt_digits.inc") != "");
    CHECK(layering_violation("pipeline/txt2img.cpp", "models/unet.h") == "");
    CHECK(layering_violation("app/bench.cpp", "pipeline/txt2img.h") == "");
    CHECK(layering_violation("server/engine.cpp", "app/image_io.h") == "");
    CHECK(layering_violation("sd.cpp", "server/serve.h") == "");
}

TEST_CASE("layers: no source file includes a layer above its own") {
    const std::vector<std::string> files = layered_sources();
    REQUIRE(files.size() > 100);  // run from the repository root, as make test does
    const std::regex include_re(R"re(^\s*#\s*include\s*"([^"]+)")re");
    int includes = 0;
    for (const std::string& f : files) {
        std::ifstream in(f);
        REQUIRE_MESSAGE(in.good(), "cannot read " << f);
        std::string line;
        for (int n = 1; std::getline(in, line); n++) {
            std::smatch m;
            if (!std::regex_search(line, m, include_re)) continue;
            includes++;
            const std::string why = layering_violation(f, m[1].str());
            CHECK_MESSAGE(why.empty(), f << ":" << n << ": #include \"" << m[1].str() << "\": " << why);
        }
    }
    CHECK(includes > 200);
}
