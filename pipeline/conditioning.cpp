// conditioning.cpp — encoding prompts with emphasis, schedules and AND (see conditioning.h); follows the webui's
// sd_hijack_clip.py (forward, process_tokens), sd_emphasis.py (EmphasisOriginal), sd_hijack.py
// (EmbeddingsWithFixes) and prompt_parser.py (get_learned_conditioning, get_multicond_learned_conditioning).
#include "pipeline/conditioning.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "models/ops.h"

namespace sd {
namespace {

// "clip_l vectors 768 wide and clip_g 1280 wide" (an SDXL pair, or SDXL's two encoders), else "vectors 768 wide".
std::string parts_text(const std::vector<int64_t>& parts, int64_t width) {
    if (parts.size() != 2) return "vectors " + std::to_string(width) + " wide";
    return "clip_l vectors " + std::to_string(parts[0]) + " wide and clip_g " + std::to_string(parts[1]) + " wide";
}

}  // namespace

// ---- encoding -------------------------------------------------------------------------------------------------------

std::vector<Tensor> encode_texts(const TextEncoder& enc, const std::vector<std::string>& texts,
                                 const EmbeddingDb* db, Arena& arena, std::vector<const TextEmbedding*>* used,
                                 std::vector<Tensor>* pooled) {
    const int64_t T = 77, C = enc.width;
    // Column groups emphasis rescales on their own (one per encoder): [begin, end) of each.
    std::vector<std::pair<int64_t, int64_t>> groups;
    for (int64_t g0 = 0, k = 0; g0 < C; k++) {
        const int64_t gw = enc.groups.empty() ? C : enc.groups.at(k);
        groups.push_back({g0, g0 + gw});
        g0 += gw;
    }
    const size_t G = groups.size();
    // Each distinct text is tokenized and encoded once; a repeated one counts again in the batch mean.
    std::vector<std::string> distinct;
    std::vector<size_t> which(texts.size());
    std::vector<int> count;
    for (size_t j = 0; j < texts.size(); j++) {
        auto it = std::find(distinct.begin(), distinct.end(), texts[j]);
        which[j] = (size_t)(it - distinct.begin());
        if (it == distinct.end()) { distinct.push_back(texts[j]); count.push_back(0); }
        count[which[j]]++;
    }
    std::vector<std::vector<PromptChunk>> chunks;
    size_t n_chunks = 0;
    for (const std::string& t : distinct) {
        chunks.push_back(tokenize_prompt(t, db));
        n_chunks = std::max(n_chunks, chunks.back().size());
    }
    const PromptChunk empty = empty_chunk();
    std::vector<Tensor> out_distinct, pooled_distinct;
    for (size_t d = 0; d < distinct.size(); d++) {
        out_distinct.push_back(Tensor::zeros({1, (int64_t)n_chunks * T, C}));
        if (pooled && enc.pooled_width) pooled_distinct.push_back(Tensor::zeros({1, enc.pooled_width}));
    }

    std::vector<const float*> rows(T);
    for (size_t i = 0; i < n_chunks; i++) {
        // Encode chunk i of every text, then EmphasisOriginal over the batch (all texts, repeats counted), for each
        // encoder's columns on their own.
        std::vector<double> sum(G, 0.0), weighted_sum(G, 0.0);
        for (size_t d = 0; d < distinct.size(); d++) {
            const PromptChunk& ch = i < chunks[d].size() ? chunks[d][i] : empty;
            std::fill(rows.begin(), rows.end(), nullptr);
            for (const auto& [offset, e] : ch.fixes) {
                if (e->parts != enc.groups)  // same total width, split otherwise (or a one-tensor file on SDXL)
                    throw std::runtime_error("embedding '" + e->name + "' holds " + parts_text(e->parts, e->width) +
                                             ", but this model's text encoders take " +
                                             parts_text(enc.groups, enc.width));
                if (used && std::find(used->begin(), used->end(), e) == used->end()) used->push_back(e);
                const int64_t len = std::min<int64_t>(T - offset - 1, e->vectors);
                for (int64_t k = 0; k < len; k++) rows[offset + 1 + k] = e->data.data() + k * C;
            }
            ArenaScope scratch(arena);  // the encoder's activations, given back after each chunk
            float* pooled_out = i == 0 && !pooled_distinct.empty() ? pooled_distinct[d].f32() : nullptr;
            Tensor z = enc.encode(ch.tokens, rows.data(), arena, pooled_out);  // (77, C)
            float* dst = out_distinct[d].f32() + i * T * C;
            for (size_t g = 0; g < G; g++) {
                double s = 0, ws = 0;
                for (int64_t t = 0; t < T; t++) {
                    const float w = (float)ch.weights[t];  // torch.asarray of the multipliers: float32
                    for (int64_t c = groups[g].first; c < groups[g].second; c++) {
                        const float v = z.f32()[t * C + c];
                        dst[t * C + c] = v * w;
                        s += v;
                        ws += (double)(v * w);
                    }
                }
                sum[g] += s * count[d];
                weighted_sum[g] += ws * count[d];
            }
        }
        for (size_t g = 0; g < G; g++) {
            const double n = (double)texts.size() * T * (groups[g].second - groups[g].first);
            const float original_mean = (float)(sum[g] / n), new_mean = (float)(weighted_sum[g] / n);
            const float scale = original_mean / new_mean;
            for (size_t d = 0; d < distinct.size(); d++) {
                float* dst = out_distinct[d].f32() + i * T * C;
                for (int64_t t = 0; t < T; t++)
                    for (int64_t c = groups[g].first; c < groups[g].second; c++) dst[t * C + c] *= scale;
            }
        }
    }
    std::vector<Tensor> out;
    for (size_t j = 0; j < texts.size(); j++) {
        out.push_back(out_distinct[which[j]]);
        if (!pooled_distinct.empty()) pooled->push_back(pooled_distinct[which[j]]);
    }
    return out;
}

const Tensor& CondSchedule::at(int step) const {
    for (size_t k = 0; k < end_at_step.size(); k++)
        if (step <= end_at_step[k]) return conds[k];
    return conds[0];  // past the last entry the webui falls back to the first
}

const Tensor& CondSchedule::vector_at(int step) const {
    for (size_t k = 0; k < end_at_step.size(); k++)
        if (step <= end_at_step[k]) return vectors.at(k);
    return vectors.at(0);
}

CondSchedule learned_conditioning(const TextEncoder& enc, const std::string& prompt, int steps,
                                  const EmbeddingDb* db, Arena& arena, std::string* ti_hashes) {
    CondSchedule s;
    std::vector<std::string> texts;
    for (ScheduledText& e : prompt_schedule(prompt, steps)) {
        s.end_at_step.push_back(e.end_at_step);
        texts.push_back(std::move(e.text));
    }
    std::vector<const TextEmbedding*> used;
    s.conds = encode_texts(enc, texts, db, arena, &used, enc.pooled_width ? &s.pooled : nullptr);
    if (ti_hashes) add_ti_hashes(ti_hashes, used);
    return s;
}

MultiCond multicond_learned_conditioning(const TextEncoder& enc, const std::string& prompt, int steps,
                                         const EmbeddingDb* db, Arena& arena,
                                         std::string* ti_hashes) {
    MultiCond m;
    std::vector<std::string> flat;
    std::vector<CondSchedule> flat_conds;
    for (const SubPrompt& sp : split_and(prompt)) {
        auto it = std::find(flat.begin(), flat.end(), sp.text);
        if (it == flat.end()) {
            flat.push_back(sp.text);
            flat_conds.push_back(learned_conditioning(enc, sp.text, steps, db, arena, ti_hashes));
            it = flat.end() - 1;
        }
        m.parts.push_back(flat_conds[it - flat.begin()]);
        m.weights.push_back(sp.weight);
    }
    return m;
}


}  // namespace sd
