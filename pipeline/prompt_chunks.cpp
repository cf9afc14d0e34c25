// prompt_chunks.cpp — textual-inversion embeddings and the webui's chunking of a prompt into 77-token chunks
// (declared in conditioning.h; kept apart from the encoding so the prompt fuzz target links without CLIP).
// Follows sd_hijack_clip.py (tokenize_line) and textual_inversion.py (EmbeddingDatabase).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>

#include "sha256.h"
#include "pipeline/conditioning.h"
#include "safetensors.h"
#include "tokenizer/clip_tokenizer.h"

namespace sd {
namespace {

constexpr int kChunk = 75;            // tokens per chunk between start and end
constexpr int kCommaBacktrack = 20;   // the webui's comma_padding_backtrack default

int comma_token() {
    static const int id = [] {
        std::vector<int> ids = ClipTokenizer::get().encode(",");
        return ids.size() == 1 ? ids[0] : -1;
    }();
    return id;
}

std::string lower_ext(const std::string& path) {
    std::string e = std::filesystem::path(path).extension().string();
    for (char& c : e) c = (char)std::tolower((unsigned char)c);
    return e;
}

}  // namespace

// ---- embeddings ---------------------------------------------------------------------------------------------------

TextEmbedding load_text_embedding(const std::string& path) {
    SafeTensors st(path);
    const std::vector<TensorInfo>& ts = st.tensors();
    const TensorInfo* t = nullptr;
    if (ts.size() == 1) t = &ts[0];
    else if (st.has("clip_l") && st.has("clip_g")) t = st.find("clip_l");  // SDXL pair: the CLIP-L half
    else throw std::runtime_error(path + ": an embedding file must hold one tensor (or clip_l and clip_g), it has " +
                                  std::to_string(ts.size()));
    if (!t->usable() || t->shape.empty() || t->shape.size() > 2)
        throw std::runtime_error(path + ": embedding tensor '" + t->name + "' must be F32/F16/BF16 of shape (N, C) or (C)");
    Tensor v = st.get(t->name);
    TextEmbedding e;
    e.name = std::filesystem::path(path).stem().string();
    e.vectors = t->shape.size() == 2 ? t->shape[0] : 1;
    e.width = e.shape = t->shape.back();
    e.data.assign(v.f32(), v.f32() + e.vectors * e.width);
    if (st.has("clip_l") && st.has("clip_g")) {  // the webui's shape is clip_g + clip_l: never SD 1.x
        const TensorInfo* g = st.find("clip_g");
        if (!g->usable() || g->shape.empty() || g->shape.size() > 2)
            throw std::runtime_error(path + ": embedding tensor 'clip_g' must be F32/F16/BF16 of shape (N, C) or (C)");
        const int64_t gn = g->shape.size() == 2 ? g->shape[0] : 1, cl = e.width, cg = g->shape.back();
        if (gn != e.vectors)
            throw std::runtime_error(path + ": an SDXL embedding needs as many clip_l as clip_g vectors, it has " +
                                     std::to_string(e.vectors) + " and " + std::to_string(gn));
        Tensor vg = st.get("clip_g");
        std::vector<float> rows((size_t)(e.vectors * (cl + cg)));
        for (int64_t k = 0; k < e.vectors; k++) {
            std::copy(v.f32() + k * cl, v.f32() + (k + 1) * cl, rows.begin() + k * (cl + cg));
            std::copy(vg.f32() + k * cg, vg.f32() + (k + 1) * cg, rows.begin() + k * (cl + cg) + cl);
        }
        e.data = std::move(rows);
        e.width = e.shape = cl + cg;
        e.parts = {cl, cg};
    }
    e.shorthash = sha256_file(path).substr(0, 12);
    return e;
}

void EmbeddingDb::add(TextEmbedding e) {
    all_.push_back(std::make_unique<TextEmbedding>(std::move(e)));
    const TextEmbedding* p = all_.back().get();
    std::vector<int> ids = ClipTokenizer::get().encode(p->name);
    if (ids.empty()) return;
    auto& list = by_first_[ids[0]];
    list.erase(std::remove_if(list.begin(), list.end(), [&](const auto& x) { return x.second->name == p->name; }),
               list.end());
    list.emplace_back(std::move(ids), p);
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void EmbeddingDb::load_dir(const std::string& dir, int64_t width, std::vector<std::string>* errors) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return;
    std::vector<fs::path> files;
    for (fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
         !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec)) files.push_back(it->path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        const std::string ext = lower_ext(f.string());
        if (fs::file_size(f, ec) == 0) continue;
        if (ext == ".pt" || ext == ".bin") {
            // Never unpickled; kept as a name, so that a prompt using it gets a clear message.
            TextEmbedding e;
            e.name = f.stem().string();
            e.vectors = -1;
            e.shorthash = f.string();
            add(std::move(e));
        } else if (ext == ".safetensors") {
            TextEmbedding e;
            try {
                e = load_text_embedding(f.string());
            } catch (const std::exception& err) {
                if (!errors) throw;
                errors->push_back(err.what());
                continue;
            }
            if (e.width == width) add(std::move(e));
            else {  // another model's embedding: listed as skipped, never used
                e.data = {};
                skipped_.push_back(std::make_unique<TextEmbedding>(std::move(e)));
            }
        }
    }
}

namespace {
// Each name once, the last of a name winning (a dict by name, as the webui's), sorted by lower-case name.
std::vector<const TextEmbedding*> by_name(const std::vector<std::unique_ptr<TextEmbedding>>& list) {
    std::map<std::string, const TextEmbedding*> last;
    for (const auto& e : list)
        if (e->vectors >= 0) last[e->name] = e.get();
    std::vector<const TextEmbedding*> out;
    for (const auto& [name, e] : last) out.push_back(e);
    auto lower = [](std::string s) {
        for (char& c : s) c = (char)std::tolower((unsigned char)c);
        return s;
    };
    std::stable_sort(out.begin(), out.end(),
                     [&](const TextEmbedding* a, const TextEmbedding* b) { return lower(a->name) < lower(b->name); });
    return out;
}
}  // namespace

std::vector<const TextEmbedding*> EmbeddingDb::loaded() const { return by_name(all_); }
std::vector<const TextEmbedding*> EmbeddingDb::skipped() const { return by_name(skipped_); }

const TextEmbedding* EmbeddingDb::find(const std::vector<int>& tokens, size_t pos, size_t* length) const {
    auto it = by_first_.find(tokens[pos]);
    if (it == by_first_.end()) return nullptr;
    for (const auto& [ids, e] : it->second) {
        if (pos + ids.size() <= tokens.size() && std::equal(ids.begin(), ids.end(), tokens.begin() + pos)) {
            if (e->vectors < 0)
                throw std::runtime_error("the prompt uses the embedding '" + e->name + "', but " + e->shorthash +
                                         " is a pickle (.pt/.bin), which sd does not read; convert it to "
                                         ".safetensors");
            *length = ids.size();
            return e;
        }
    }
    return nullptr;
}

// ---- chunks ---------------------------------------------------------------------------------------------------------

PromptChunk empty_chunk() {
    PromptChunk c;
    c.tokens.assign(kChunk + 2, ClipTokenizer::kEnd);
    c.tokens[0] = ClipTokenizer::kStart;
    c.weights.assign(kChunk + 2, 1.0);
    return c;
}

std::vector<PromptChunk> tokenize_prompt(const std::string& line, const EmbeddingDb* db, int* token_count_out) {
    const std::vector<WeightedText> parsed = parse_prompt_attention(line);
    const ClipTokenizer& tok = ClipTokenizer::get();
    const int comma = comma_token();

    std::vector<PromptChunk> chunks;
    PromptChunk chunk;
    int token_count = 0, last_comma = -1;
    auto next_chunk = [&](bool is_last) {
        token_count += is_last ? (int)chunk.tokens.size() : kChunk;
        const int to_add = kChunk - (int)chunk.tokens.size();
        if (to_add > 0) {
            chunk.tokens.insert(chunk.tokens.end(), to_add, ClipTokenizer::kEnd);
            chunk.weights.insert(chunk.weights.end(), to_add, 1.0);
        }
        chunk.tokens.insert(chunk.tokens.begin(), ClipTokenizer::kStart);
        chunk.tokens.push_back(ClipTokenizer::kEnd);
        chunk.weights.insert(chunk.weights.begin(), 1.0);
        chunk.weights.push_back(1.0);
        last_comma = -1;
        chunks.push_back(std::move(chunk));
        chunk = PromptChunk();
    };

    for (const WeightedText& wt : parsed) {
        if (wt.is_break()) {
            next_chunk(false);
            continue;
        }
        const std::vector<int> tokens = tok.encode(wt.text);
        size_t position = 0;
        while (position < tokens.size()) {
            const int token = tokens[position];
            const int len = (int)chunk.tokens.size();
            if (token == comma) {
                last_comma = len;
            } else if (len == kChunk && last_comma != -1 && len - last_comma <= kCommaBacktrack) {
                // The chunk is full within 20 tokens of a comma: what follows the comma moves to the next chunk.
                // (Embedding fixes stay with the chunk they were made in, as in the webui.)
                const size_t at = (size_t)last_comma + 1;
                std::vector<int> reloc_tokens(chunk.tokens.begin() + at, chunk.tokens.end());
                std::vector<double> reloc_weights(chunk.weights.begin() + at, chunk.weights.end());
                chunk.tokens.resize(at);
                chunk.weights.resize(at);
                next_chunk(false);
                chunk.tokens = std::move(reloc_tokens);
                chunk.weights = std::move(reloc_weights);
            }
            if ((int)chunk.tokens.size() == kChunk) next_chunk(false);

            size_t emb_tokens = 0;
            const TextEmbedding* e = db ? db->find(tokens, position, &emb_tokens) : nullptr;
            if (!e) {
                chunk.tokens.push_back(token);
                chunk.weights.push_back(wt.weight);
                position++;
                continue;
            }
            const int emb_len = (int)e->vectors;
            if ((int)chunk.tokens.size() + emb_len > kChunk) next_chunk(false);
            chunk.fixes.push_back({(int)chunk.tokens.size(), e});
            chunk.tokens.insert(chunk.tokens.end(), emb_len, 0);
            chunk.weights.insert(chunk.weights.end(), emb_len, wt.weight);
            position += emb_tokens;
        }
    }
    if (!chunk.tokens.empty() || chunks.empty()) next_chunk(true);
    if (token_count_out) *token_count_out = token_count;
    return chunks;
}

// ---- TI hashes ------------------------------------------------------------------------------------------------------

void add_ti_hashes(std::string* ti_hashes, const std::vector<const TextEmbedding*>& used) {
    std::string joined;
    for (const TextEmbedding* e : used) {
        if (e->shorthash.empty()) continue;
        std::string name;
        for (char c : e->name)
            if (c != ':' && c != ',') name += c;
        joined += (joined.empty() ? "" : ", ") + name + ": " + e->shorthash;
    }
    if (joined.empty()) return;
    if (!ti_hashes->empty()) joined += ", " + *ti_hashes;
    *ti_hashes = joined;
}


std::string webui_ti_hashes(const std::string& prompt, const std::string& negative_prompt, int total_steps,
                            const EmbeddingDb& db) {
    if (db.empty()) return "";
    std::string hashes;
    // One forward() per distinct prompt: chunk i of every schedule text in turn, embeddings in order of first use.
    auto one_encode = [&](const std::string& p) {
        std::vector<std::vector<PromptChunk>> per_text;
        size_t n = 0;
        for (const ScheduledText& e : prompt_schedule(p, total_steps)) {
            per_text.push_back(tokenize_prompt(e.text, &db));
            n = std::max(n, per_text.back().size());
        }
        std::vector<const TextEmbedding*> used;
        for (size_t i = 0; i < n; i++)
            for (const auto& chunks : per_text)
                if (i < chunks.size())
                    for (const auto& fix : chunks[i].fixes)
                        if (std::find(used.begin(), used.end(), fix.second) == used.end()) used.push_back(fix.second);
        add_ti_hashes(&hashes, used);
    };
    one_encode(negative_prompt);
    std::vector<std::string> seen;
    for (const SubPrompt& sp : split_and(prompt)) {
        if (std::find(seen.begin(), seen.end(), sp.text) != seen.end()) continue;
        seen.push_back(sp.text);
        one_encode(sp.text);
    }
    return hashes;
}

}  // namespace sd
