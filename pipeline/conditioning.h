// conditioning.h — from prompt text to the UNet's cross-attention context, as the webui's sd_hijack_clip.py does it.
//
// A text is read for emphasis (prompt_parser.h), each run tokenized on its own, and the tokens packed into chunks
// of 75: a chunk that fills up within 20 tokens after a comma moves the tokens after that comma to the next chunk
// (the webui's comma_padding_backtrack = 20), BREAK closes a chunk, textual-inversion embeddings take as many
// positions as they have vectors. Each chunk is start + 75 + end (padded with the end token) and CLIP encodes it
// alone; the chunks' (77, C) outputs are concatenated. Emphasis "Original" (the webui's default): the outputs
// are multiplied by their token's weight, then scaled so the mean over the whole batch of texts encoded together
// equals the unweighted mean — texts of one prompt schedule are one batch, as the webui encodes them.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/clip.h"
#include "pipeline/prompt_parser.h"
#include "tensor.h"

namespace sd {

// A textual-inversion embedding: `vectors` rows of the token-embedding width, spliced in where its name's tokens are.
struct TextEmbedding {
    std::string name;       // the file name without extension: what a prompt writes
    std::string shorthash;  // first 12 hex digits of the file's SHA-256 (the webui's "TI hashes")
    int64_t vectors = 0, width = 0;
    int64_t shape = 0;        // the webui's Embedding.shape: the width, or clip_g's + clip_l's for an SDXL pair
    std::vector<float> data;  // (vectors, width)
    // An SDXL pair (`clip_l` and `clip_g` tensors): {clip_l's width, clip_g's}; each row of data is then
    // [clip_l | clip_g], the order of SDXL's concatenated context, so width = their sum (the webui's expected
    // shape for SDXL). Empty for a one-tensor embedding.
    std::vector<int64_t> parts;
};

// The webui's EmbeddingDatabase: names by their token ids, longest first for each first token.
class EmbeddingDb {
public:
    // Adds every .safetensors embedding in `dir` (recursively) whose width is `width`; those of another width are
    // kept aside as skipped (without their vectors), as the webui does; a .pt or .bin file there is an error
    // telling to convert it when a prompt names it (pickles are never read). A missing folder is an empty
    // database. A file that is no embedding throws, or, with `errors`, is reported there and left out.
    void load_dir(const std::string& dir, int64_t width, std::vector<std::string>* errors = nullptr);
    void add(TextEmbedding e);
    // What the webui's /sdapi/v1/embeddings lists, each name once (a later file of a name replaces an earlier
    // one), sorted by lower-case name: loaded (this width) and skipped (another width). Pickles are in neither.
    std::vector<const TextEmbedding*> loaded() const;
    std::vector<const TextEmbedding*> skipped() const;
    // find_embedding_at_position: the embedding whose name's tokens start at tokens[pos], and how many tokens.
    const TextEmbedding* find(const std::vector<int>& tokens, size_t pos, size_t* length) const;
    bool empty() const { return by_first_.empty(); }

private:
    std::vector<std::unique_ptr<TextEmbedding>> all_, skipped_;
    std::map<int, std::vector<std::pair<std::vector<int>, const TextEmbedding*>>> by_first_;
};

// Reads one .safetensors embedding: `emb_params`, a webui `string_to_param.*` tensor, a file's single tensor
// (diffusers concepts), as (vectors, width) or (width); or an SDXL pair, `clip_l` and `clip_g` with the same
// number of vectors.
TextEmbedding load_text_embedding(const std::string& path);

// A 77-token chunk as the encoder sees it: ids (start, 75, end), weights, and embeddings to splice in (at
// position offset + 1, as the webui's EmbeddingsWithFixes does).
struct PromptChunk {
    std::vector<int> tokens;
    std::vector<double> weights;
    std::vector<std::pair<int, const TextEmbedding*>> fixes;
};

// tokenize_line(): the chunks of one text (at least one), and the webui's token count.
std::vector<PromptChunk> tokenize_prompt(const std::string& text, const EmbeddingDb* db = nullptr,
                                         int* token_count = nullptr);
// An empty chunk: start, 76 end tokens, weights 1.
PromptChunk empty_chunk();

// The text encoder a pipeline conditions on: one 77-token chunk → (77, width); token_rows as in clip_encode
// (null entries: the id's own embedding row). SDXL runs two encoders on the same chunk and concatenates their
// outputs along the width; `groups` names the widths of those parts ({768, 1280}), since the webui applies
// emphasis to each encoder's output on its own. pooled_width > 0: encode also writes that many floats of pooled
// output to `pooled` (SDXL: bigG's projected end token); null `pooled` when not wanted.
struct TextEncoder {
    int64_t width = 0;
    std::vector<int64_t> groups;  // empty: one group of `width`
    int64_t pooled_width = 0;
    std::function<Tensor(const std::vector<int>& ids, const float* const* token_rows, Arena& arena, float* pooled)>
        encode;
};

// Encodes texts as one batch (the webui's FrozenCLIPEmbedderWithCustomWords.forward): each text's chunks
// (texts with fewer chunks padded with empty chunks to the longest), emphasis "Original" over the batch.
// Returns one (1, 77·chunks, C) tensor per text. `used` collects the embeddings used, in the webui's order.
// pooled (with enc.pooled_width): one (1, pooled_width) per text, its first chunk's (sd_hijack_clip's forward
// returns zs[0].pooled), before emphasis.
std::vector<Tensor> encode_texts(const TextEncoder& enc, const std::vector<std::string>& texts,
                                 const EmbeddingDb* db, Arena& arena,
                                 std::vector<const TextEmbedding*>* used = nullptr,
                                 std::vector<Tensor>* pooled = nullptr);

// A prompt's conditioning over the steps: conds[k] is used while the denoiser's call counter is <= end_at_step[k].
struct CondSchedule {
    std::vector<int> end_at_step;
    std::vector<Tensor> conds;  // each (1, T, C)
    std::vector<Tensor> vectors;  // SDXL: each (1, adm), conds[k]'s vector (pipeline/sdxl.h); else empty
    std::vector<Tensor> pooled;   // SDXL: each (1, P), conds[k]'s pooled text output; else empty
    const Tensor& vector_at(int step) const;  // vectors[k] for at(step)'s k
    const Tensor& at(int step) const;  // reconstruct_cond_batch's choice
};

// get_learned_conditioning() for one prompt: its schedule over `steps`, each distinct text encoded once.
// The embeddings it used are added to *ti_hashes as the webui's forward() adds them.
CondSchedule learned_conditioning(const TextEncoder& enc, const std::string& prompt, int steps,
                                  const EmbeddingDb* db, Arena& arena, std::string* ti_hashes = nullptr);

// get_multicond_learned_conditioning() for one prompt: its AND parts, each a schedule and a weight.
struct MultiCond {
    std::vector<CondSchedule> parts;
    std::vector<double> weights;
};
MultiCond multicond_learned_conditioning(const TextEncoder& enc, const std::string& prompt, int steps,
                                         const EmbeddingDb* db, Arena& arena,
                                         std::string* ti_hashes = nullptr);

// The infotext's "TI hashes" value as the webui builds it: each encode's new names first, then what was there.
void add_ti_hashes(std::string* ti_hashes, const std::vector<const TextEmbedding*>& used_in_one_encode);
// "TI hashes" of a whole generation without encoding anything: the negative prompt's schedule first, then the
// prompt's AND parts (extra-network tags already cut out), as the webui's setup_conds encodes them.
std::string webui_ti_hashes(const std::string& prompt, const std::string& negative_prompt, int total_steps,
                            const EmbeddingDb& db);

}  // namespace sd
