// loras.cpp — prompt tags → LoRA files → merged weights (see loras.h).
#include "pipeline/loras.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <stdexcept>

#include "models/lora.h"
#include "pipeline/txt2img.h"

namespace sd {

namespace {

float tag_float(const std::string& name, const std::string& v) {
    const char* s = v.c_str();
    char* end = nullptr;
    const double d = std::strtod(s, &end);
    while (end && (*end == ' ' || *end == '\t')) end++;
    if (v.empty() || end == s || *end)
        throw std::runtime_error("the weight '" + v + "' of <lora:" + name + ":...> in the prompt is not a number");
    return (float)d;
}

// Every .safetensors / .pt / .ckpt file under dir (recursively): stem → path. The first one found wins a
// duplicate stem, in name order.
void list_loras(const std::string& dir, std::map<std::string, std::string>* out, int depth = 0) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> names;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') names.push_back(e->d_name);
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
        const std::string path = dir + "/" + n;
        struct stat st;
        if (stat(path.c_str(), &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 8) list_loras(path, out, depth + 1);
            continue;
        }
        const size_t dot = n.rfind('.');
        if (dot == std::string::npos) continue;
        const std::string ext = n.substr(dot);
        if (ext == ".safetensors" || ext == ".pt" || ext == ".ckpt") out->emplace(n.substr(0, dot), path);
    }
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); j++) prev[j] = j;
    for (size_t i = 1; i <= a.size(); i++) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); j++)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                               prev[j - 1] + (std::tolower((unsigned char)a[i - 1]) != std::tolower((unsigned char)b[j - 1]))});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string family_name(const Model& m) {
    switch (m.info.family) {
    case ModelFamily::SD1: return "SD 1.x";
    case ModelFamily::SD2: return "SD 2.x";
    case ModelFamily::SDXL: return "SDXL";
    default: return "";
    }
}

}  // namespace

std::vector<LoraTag> lora_tags(const std::vector<ExtraNetworkTag>& tags) {
    std::vector<LoraTag> out;
    for (const ExtraNetworkTag& t : tags) {
        if (t.kind != "lora" && t.kind != "lyco") continue;
        // ExtraNetworkParams: an item with one '=' is named, the others positional.
        std::vector<std::string> pos;
        std::map<std::string, std::string> named;
        for (const std::string& a : t.args) {
            const size_t eq = a.find('=');
            if (eq != std::string::npos && a.find('=', eq + 1) == std::string::npos) named[a.substr(0, eq)] = a.substr(eq + 1);
            else pos.push_back(a);
        }
        if (pos.empty() || pos[0].empty()) throw std::runtime_error("a <" + t.kind + ":...> tag without a LoRA name");
        LoraTag l;
        l.name = pos[0];
        const std::string what = l.name;
        l.te = pos.size() > 1 ? tag_float(what, pos[1]) : 1.0f;
        if (named.count("te")) l.te = tag_float(what, named["te"]);
        l.unet = pos.size() > 2 ? tag_float(what, pos[2]) : l.te;
        if (named.count("unet")) l.unet = tag_float(what, named["unet"]);
        out.push_back(l);
    }
    return out;
}

std::map<std::string, std::string> list_lora_files(const std::string& dir) {
    std::map<std::string, std::string> all;
    list_loras(dir, &all);
    return all;
}

std::string default_lora_dir(const std::string& model_path) {
    const size_t s = model_path.rfind('/');
    return (s == std::string::npos ? std::string() : model_path.substr(0, s + 1)) + "loras";
}

std::string find_lora(const std::string& dir, const std::string& name) {
    std::map<std::string, std::string> all;
    list_loras(dir, &all);
    auto it = all.find(name);
    if (it != all.end()) {
        if (it->second.size() < 12 || it->second.compare(it->second.size() - 12, 12, ".safetensors") != 0)
            throw std::runtime_error("LoRA '" + name + "' is " + it->second +
                                     ", a pickled PyTorch file; only .safetensors LoRAs can be read");
        return it->second;
    }
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw std::runtime_error("LoRA '" + name + "': the LoRA folder " + dir +
                                 " does not exist (put NAME.safetensors in loras/ beside the model, or pass --lora-dir)");
    std::vector<std::pair<size_t, std::string>> near;
    for (const auto& [stem, path] : all) near.push_back({edit_distance(stem, name), stem});
    std::sort(near.begin(), near.end());
    std::string list;
    for (size_t i = 0; i < near.size() && i < 3 && near[i].first <= std::max<size_t>(3, name.size() / 2); i++)
        list += (list.empty() ? "" : ", ") + near[i].second;
    throw std::runtime_error("no LoRA named '" + name + "' in " + dir +
                             (list.empty() ? all.empty() ? " (the folder has no .safetensors files)" : ""
                                           : " (close: " + list + ")"));
}

void apply_loras(Model& m, const std::vector<LoraTag>& tags, const std::string& dir, std::vector<std::string>* warnings) {
    std::string key;
    for (const LoraTag& t : tags) {
        char w[64];
        std::snprintf(w, sizeof w, ":%.9g:%.9g|", t.te, t.unet);
        key += dir + "/" + t.name + w;
    }
    if (key == m.loras) return;
    std::vector<LoraFile> files;
    files.reserve(tags.size());
    std::vector<LoraUse> uses;
    for (const LoraTag& t : tags) files.push_back(read_lora(find_lora(dir, t.name)));
    for (size_t i = 0; i < tags.size(); i++) uses.push_back({tags[i].name, &files[i], tags[i].te, tags[i].unet});
    std::map<std::string, Tensor> merged;
    if (!uses.empty()) merged = merge_loras(*m.file, family_name(m), uses, warnings);
    m.loras.clear();  // until the binding below succeeded
    m.file->set_overrides(std::move(merged));
    bind_networks(m);
    m.loras = key;
}

std::string webui_lora_hashes(const std::vector<LoraTag>& tags, const std::string& dir) {
    std::vector<std::pair<std::string, std::string>> seen;  // a dict in the webui: one entry per name
    for (const LoraTag& t : tags) {
        std::string name;
        for (char c : t.name)
            if (c != ':' && c != ',') name += c;
        const std::string path = find_lora(dir, t.name);
        std::string hash;
        LoraFile f = read_lora(path);
        auto md = f.st->metadata().find("sshs_model_hash");
        hash = md != f.st->metadata().end() ? md->second : lora_hash(path);
        auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& p) { return p.first == name; });
        if (it != seen.end()) it->second = hash.substr(0, 12);
        else seen.push_back({name, hash.substr(0, 12)});
    }
    std::string out;
    for (const auto& [n, h] : seen) out += (out.empty() ? "" : ", ") + n + ": " + h;
    return out;
}

}  // namespace sd
