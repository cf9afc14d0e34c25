// prediction.cpp — epsilon or v: the webui's decision (see prediction.h).
#include "pipeline/prediction.h"

#include <limits.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "models/ops.h"

namespace sd {

const char* prediction_name(Prediction p) { return p == Prediction::v ? "v" : "eps"; }

Prediction parse_prediction(const std::string& s) {
    if (s == "eps" || s == "epsilon") return Prediction::eps;
    if (s == "v" || s == "v_prediction") return Prediction::v;
    throw std::runtime_error("--prediction must be eps or v, got '" + s + "'");
}

double v_probe(const UNet& unet, Arena& a) {
    ArenaScope scope(a);  // everything below is given back on return
    Tensor x = a.alloc({1, unet.cfg.in_channels, 8, 8});
    for (int64_t i = 0; i < x.numel(); i++) x.f32()[i] = 0.5f;
    Tensor ctx = a.alloc({1, 2, unet.cfg.context_dim});
    for (int64_t i = 0; i < ctx.numel(); i++) ctx.f32()[i] = 0.5f;
    const float t = 999;
    Tensor out = unet_forward(unet, x, &t, ctx, a);
    double sum = 0;
    for (int64_t i = 0; i < out.numel(); i++) sum += (double)out.f32()[i] - 0.5;
    return sum / (double)out.numel();
}

namespace {

// MODEL.yaml beside MODEL.safetensors (the webui's find_checkpoint_config_near_filename): its path, or "".
std::string config_near(const std::string& path) {
    size_t slash = path.rfind('/'), dot = path.rfind('.');
    std::string base = dot == std::string::npos || (slash != std::string::npos && dot < slash) ? path : path.substr(0, dot);
    std::string yaml = base + ".yaml";
    std::ifstream f(yaml);
    return f.good() ? yaml : "";
}

// ldm's LatentDiffusion reads `parameterization` from the config's model.params ("eps" when absent).
bool config_says_v(const std::string& yaml) {
    std::ifstream f(yaml);
    std::string line;
    while (std::getline(f, line)) {
        size_t k = line.find("parameterization:");
        if (k == std::string::npos || line.find_first_not_of(" \t") != k) continue;
        std::string v = line.substr(k + 17);
        std::string word;
        for (char c : v)
            if (c == '#') break;
            else if (c != ' ' && c != '\t' && c != '"' && c != '\'' && c != '\r') word += c;
        return word == "v";
    }
    return false;
}

// The probe reads every UNet weight once (~0.5 CPU-s for SD 2.x): its mean is kept in
// $XDG_CACHE_HOME/sd/probes.tsv (or ~/.cache/sd/), keyed by absolute path, size and mtime, as the model hash is.
// Cache problems are ignored (the probe runs again).
std::string probe_key(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return "";
    char real[PATH_MAX];
    std::string abs = realpath(path.c_str(), real) ? real : path;
    return abs + "\t" + std::to_string((long long)st.st_size) + "\t" + std::to_string((long long)st.st_mtime);
}

std::string probe_cache_file() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    std::string dir = xdg && *xdg ? std::string(xdg) : home && *home ? std::string(home) + "/.cache" : "";
    return dir.empty() ? "" : dir + "/sd/probes.tsv";
}

bool cached_probe(const std::string& key, double* mean) {
    std::string file = probe_cache_file();
    if (key.empty() || file.empty()) return false;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line))
        if (line.size() > key.size() + 1 && line.compare(0, key.size(), key) == 0 && line[key.size()] == '\t') {
            char* end = nullptr;
            double v = std::strtod(line.c_str() + key.size() + 1, &end);
            if (end && *end == 0 && std::isfinite(v)) { *mean = v; return true; }
        }
    return false;
}

void store_probe(const std::string& key, double mean) {
    std::string file = probe_cache_file();
    if (key.empty() || file.empty() || !std::isfinite(mean)) return;
    std::string dir = file.substr(0, file.rfind('/'));
    mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0755);
    mkdir(dir.c_str(), 0755);
    std::ofstream out(file, std::ios::app);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", mean);
    if (out) out << key << '\t' << buf << '\n';
}

}  // namespace

PredictionChoice decide_prediction(const CheckpointInfo& info, const UNet* unet, const std::string& override_,
                                   Arena& arena) {
    PredictionChoice c;
    if (!override_.empty()) {
        c.prediction = parse_prediction(override_);
        c.why = "--prediction " + override_;
        return c;
    }
    std::string yaml = config_near(info.path);
    if (!yaml.empty()) {
        c.prediction = config_says_v(yaml) ? Prediction::v : Prediction::eps;
        c.why = "the config next to the file (" + yaml + ") says " +
                (c.prediction == Prediction::v ? "parameterization v" : "nothing about v");
        return c;
    }
    if (info.family != ModelFamily::sd2) {
        c.why = std::string(family_name(info.family)) + " models predict epsilon";
        return c;
    }
    if (info.unet_in_channels == 9) {
        c.why = "SD 2.x inpainting models predict epsilon";
        return c;
    }
    const std::string key = probe_key(info.path);
    double mean = 0;
    bool cached = cached_probe(key, &mean);
    if (!cached) {
        if (!unet) throw std::logic_error("decide_prediction: the SD 2.x probe needs the UNet");
        mean = v_probe(*unet, arena);
        store_probe(key, mean);
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "the webui's UNet probe%s: mean(out - x) at t=999 is %.4f, %s -1",
                  cached ? " (cached)" : "", mean, mean < -1 ? "below" : "not below");
    c.prediction = mean < -1 ? Prediction::v : Prediction::eps;
    c.why = buf;
    return c;
}

}  // namespace sd
