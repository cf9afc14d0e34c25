// loras.cpp — prompt tags → LoRA files → merged weights (see loras.h).
#include "pipeline/loras.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
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

// Python's int() of a tag's dyn= value: an optional sign and decimal digits, spaces around.
int64_t tag_int(const std::string& name, const std::string& v) {
    size_t i = 0, j = v.size();
    while (i < j && std::isspace((unsigned char)v[i])) i++;
    while (j > i && std::isspace((unsigned char)v[j - 1])) j--;
    const std::string t = v.substr(i, j - i);
    size_t d = t.size() && (t[0] == '+' || t[0] == '-') ? 1 : 0;
    bool ok = d < t.size() && t.size() - d <= 9;
    for (size_t k = d; ok && k < t.size(); k++) ok = t[k] >= '0' && t[k] <= '9';
    if (!ok)
        throw std::runtime_error("the dyn value '" + v + "' of <lora:" + name +
                                 ":...> in the prompt is not a whole number (the ranks of a DyLoRA to use)");
    return std::stoll(t);
}

// modules/util.py natural_sort_key: digit runs compare as numbers, the text between them lower-cased.
bool natural_less(const std::string& a, const std::string& b) {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        const bool da = std::isdigit((unsigned char)a[i]), db = std::isdigit((unsigned char)b[j]);
        if (da && db) {
            size_t ie = i, je = j;
            while (ie < a.size() && std::isdigit((unsigned char)a[ie])) ie++;
            while (je < b.size() && std::isdigit((unsigned char)b[je])) je++;
            std::string x = a.substr(i, ie - i), y = b.substr(j, je - j);
            x.erase(0, std::min(x.find_first_not_of('0'), x.size() - 1));
            y.erase(0, std::min(y.find_first_not_of('0'), y.size() - 1));
            if (x.size() != y.size()) return x.size() < y.size();
            if (x != y) return x < y;
            i = ie, j = je;
            continue;
        }
        if (da != db) return da;  // "" before a number: a text run ends where the other's digits start
        const char ca = (char)std::tolower((unsigned char)a[i]), cb = (char)std::tolower((unsigned char)b[j]);
        if (ca != cb) return ca < cb;
        i++, j++;
    }
    return a.size() - i < b.size() - j;
}

// Every .safetensors / .pt / .ckpt file under dir, in the order the webui's walk_files gives them: folders by
// their paths' natural order, then the files of each in natural order.
std::vector<std::string> list_loras(const std::string& dir) {
    std::vector<std::string> dirs = {dir}, files;
    for (size_t k = 0; k < dirs.size() && dirs.size() < 10000; k++) {
        DIR* d = opendir(dirs[k].c_str());
        if (!d) continue;
        while (dirent* e = readdir(d)) {
            const std::string n = e->d_name;
            if (n == "." || n == "..") continue;
            const std::string path = dirs[k] + "/" + n;
            struct stat st;
            if (stat(path.c_str(), &st) != 0) continue;
            if (S_ISDIR(st.st_mode)) dirs.push_back(path);
        }
        closedir(d);
    }
    std::sort(dirs.begin(), dirs.end(), natural_less);
    for (const std::string& dpath : dirs) {
        DIR* d = opendir(dpath.c_str());
        if (!d) continue;
        std::vector<std::string> names;
        while (dirent* e = readdir(d)) names.push_back(e->d_name);
        closedir(d);
        std::sort(names.begin(), names.end(), natural_less);
        for (const std::string& n : names) {
            const size_t dot = n.rfind('.');
            std::string ext = dot == std::string::npos ? "" : n.substr(dot);
            for (char& c : ext) c = (char)std::tolower((unsigned char)c);
            struct stat st;
            const std::string path = dpath + "/" + n;
            if ((ext == ".safetensors" || ext == ".pt" || ext == ".ckpt") && stat(path.c_str(), &st) == 0 &&
                !S_ISDIR(st.st_mode))
                files.push_back(path);
        }
    }
    return files;
}

std::string stem_of(const std::string& path) {
    const size_t s = path.rfind('/') + 1, dot = path.rfind('.');
    return path.substr(s, dot == std::string::npos || dot < s ? std::string::npos : dot - s);
}

// A file's alias as NetworkOnDisk reads it: its ss_output_name metadata, else its name.
std::string alias_of(const std::string& path) {
    if (path.size() < 12 || path.compare(path.size() - 12, 12, ".safetensors") != 0) return stem_of(path);
    try {
        SafeTensors st(path);
        auto it = st.metadata().find("ss_output_name");
        return it == st.metadata().end() ? stem_of(path) : it->second;
    } catch (const std::exception&) {
        return stem_of(path);  // an unreadable file is reported when it is asked for by name
    }
}

std::string lower(std::string s) {
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
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
        if (pos.size() > 3) l.dyn = tag_int(what, pos[3]);
        if (named.count("dyn")) l.dyn = tag_int(what, named["dyn"]);
        out.push_back(l);
    }
    return out;
}

std::map<std::string, std::string> list_lora_files(const std::string& dir) {
    std::map<std::string, std::string> all;
    for (const std::string& f : list_loras(dir)) all[stem_of(f)] = f;  // available_networks: the last one wins
    return all;
}

std::string default_lora_dir(const std::string& model_path) {
    const size_t s = model_path.rfind('/');
    return (s == std::string::npos ? std::string() : model_path.substr(0, s + 1)) + "loras";
}

std::string find_lora(const std::string& dir, const std::string& name) {
    // networks.py process_network_files / load_networks: a name is a file's name (stem) or its alias (the
    // ss_output_name it was trained under). Files are listed in order and later ones win a shared stem; an alias
    // that two files (or a file's alias and another's stem) share becomes "forbidden", as "none" is, and then
    // only a file of that stem answers to it.
    const std::vector<std::string> files = list_loras(dir);
    std::string path;
    for (const std::string& f : files)
        if (stem_of(f) == name) path = f;  // available_networks[name]: the last one
    if (path.empty() && lower(name) != "none") {
        std::map<std::string, std::string> aliases;  // available_network_aliases
        std::set<std::string> forbidden = {"none"};
        for (const std::string& f : files) {
            const std::string stem = stem_of(f), alias = alias_of(f);
            if (aliases.count(alias)) forbidden.insert(lower(alias));
            aliases[stem] = f;
            aliases[alias] = f;
        }
        auto it = aliases.find(name);
        if (forbidden.count(lower(name)) && it != aliases.end())
            throw std::runtime_error("LoRA '" + name + "' is the alias (ss_output_name) of more than one file in " +
                                     dir + ", so the webui does not accept it; name the file instead (e.g. " +
                                     stem_of(it->second) + ")");
        if (it != aliases.end()) path = it->second;
    }
    if (!path.empty()) {
        if (path.size() < 12 || lower(path.substr(path.size() - 12)) != ".safetensors")
            throw std::runtime_error("LoRA '" + name + "' is " + path +
                                     ", a pickled PyTorch file; only .safetensors LoRAs can be read");
        return path;
    }
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw std::runtime_error("LoRA '" + name + "': the LoRA folder " + dir +
                                 " does not exist (put NAME.safetensors in loras/ beside the model, or pass --lora-dir)");
    std::vector<std::pair<size_t, std::string>> near;
    std::set<std::string> stems;
    for (const std::string& f : files) stems.insert(stem_of(f));
    for (const std::string& stem : stems) near.push_back({edit_distance(stem, name), stem});
    std::sort(near.begin(), near.end());
    std::string list;
    for (size_t i = 0; i < near.size() && i < 3 && near[i].first <= std::max<size_t>(3, name.size() / 2); i++)
        list += (list.empty() ? "" : ", ") + near[i].second;
    throw std::runtime_error("no LoRA named '" + name + "' in " + dir +
                             (list.empty() ? files.empty() ? " (the folder has no .safetensors files)" : ""
                                           : " (close: " + list + ")"));
}

void apply_loras(Model& m, const std::vector<LoraTag>& tags, const std::string& dir, LoraApply apply,
                 std::vector<std::string>* warnings) {
    std::string key = tags.empty() ? "" : apply == LoraApply::Runtime ? "runtime|" : "merge|";
    for (const LoraTag& t : tags) {
        char w[96];
        std::snprintf(w, sizeof w, ":%.9g:%.9g:%lld|", t.te, t.unet, (long long)t.dyn);
        key += dir + "/" + t.name + w;
    }
    if (key == m.loras) return;
    std::vector<LoraFile> files;
    files.reserve(tags.size());
    std::vector<LoraUse> uses;
    for (const LoraTag& t : tags) files.push_back(read_lora(find_lora(dir, t.name)));
    for (size_t i = 0; i < tags.size(); i++)
        uses.push_back({tags[i].name, &files[i], tags[i].te, tags[i].unet, tags[i].dyn});
    LoraWeights lw;
    if (!uses.empty()) lw = prepare_loras(*m.file, family_name(m), uses, apply, warnings);
    m.loras.clear();  // until the binding below succeeded
    m.file->set_overrides(std::move(lw.merged));
    m.low_rank = std::move(lw.low_rank);  // its factors keep their LoRA files mapped
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
