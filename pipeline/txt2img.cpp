// txt2img.cpp — the text-to-image pipeline: conditioning, the CFG denoiser, sampling, decoding.
#include "pipeline/txt2img.h"


#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "clock.h"
#include "pipeline/img2img.h"
#include "json.h"
#include "models/cost.h"
#include "models/ops.h"
#include "pipeline/loras.h"
#include "pipeline/sdxl.h"
#include "tokenizer/clip_tokenizer.h"

namespace sd {
namespace {

// Index of the first NaN/Inf in [p, p+n), or -1.
int64_t first_non_finite(const float* p, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!std::isfinite(p[i])) return i;
    return -1;
}

// (1, T1, C) and (1, T2, C) → the same with the shorter padded by repeating `pad` (1, 77, C) chunks, as the
// webui pads the uncond (or cond) with empty-prompt chunks when the two differ in length.
Tensor pad_to_chunks(const Tensor& c, int64_t T, const Tensor& pad) {
    int64_t C = c.dim(-1), have = c.dim(1);
    if (have == T) return c;
    Tensor out = Tensor::zeros({1, T, C});
    std::memcpy(out.f32(), c.f32(), have * C * sizeof(float));
    for (int64_t t = have; t < T; t += 77) std::memcpy(out.f32() + t * C, pad.f32(), 77 * C * sizeof(float));
    return out;
}

std::string step_name(int k) {
    char b[32];
    std::snprintf(b, sizeof b, "step_%03d", k);
    return b;
}

// The CLIP head count is not in the weights (width / 64 for every released CLIP); a checkpoint may state it in
// its metadata as clip_config {"heads": N} — the tiny test models do. 0 means "use the default".
int clip_heads_from_metadata(const SafeTensors& st, const char* key = "clip_config") {
    auto it = st.metadata().find(key);
    if (it == st.metadata().end()) return 0;
    try {
        JsonValue cfg = parse_json(it->second);
        const JsonValue* heads = cfg.get("heads");
        uint64_t n = 0;
        if (heads && heads->as_uint64(&n) && n > 0 && n <= 1024) return (int)n;
    } catch (const std::exception&) {
    }
    return 0;  // unreadable metadata is not an error: the weights decide
}

}  // namespace

int64_t unet_head_dim(const SafeTensors& st, bool heads_by_width) {
    if (!heads_by_width) return 0;
    auto it = st.metadata().find("unet_config");
    if (it != st.metadata().end()) {
        try {
            JsonValue cfg = parse_json(it->second);
            const JsonValue* d = cfg.get("num_head_channels");
            uint64_t n = 0;
            if (d && d->as_uint64(&n) && n > 0 && n <= 4096) return (int64_t)n;
        } catch (const std::exception&) {
        }
    }
    return 64;
}

void bind_networks(Model& m) {
    const std::string& path = m.file->path();
    if (m.sdxl()) {  // sgm's conditioner: CLIP ViT-L, then OpenCLIP ViT-bigG (20 heads of 64)
        m.clip = load_clip_text(*m.file, "conditioner.embedders.0.transformer.text_model.",
                                clip_heads_from_metadata(*m.file), &m.low_rank);
        m.open_clip = load_open_clip_text(*m.file, "conditioner.embedders.1.model.",
                                          clip_heads_from_metadata(*m.file, "open_clip_config"), &m.low_rank);
        if (!m.open_clip.text_projection.data)
            throw std::runtime_error(path + ": SDXL's OpenCLIP encoder has no text_projection "
                                            "(conditioner.embedders.1.model.text_projection)");
    } else if (m.sd2()) {
        m.open_clip = load_open_clip_text(*m.file, "cond_stage_model.model.", clip_heads_from_metadata(*m.file),
                                          &m.low_rank);
    } else {
        m.clip = load_clip_text(*m.file, "cond_stage_model.transformer.text_model.", clip_heads_from_metadata(*m.file),
                                &m.low_rank);
    }
    m.unet = load_unet(*m.file, "model.diffusion_model.", unet_head_dim(*m.file, m.sd2() || m.sdxl()), &m.low_rank);
    if (m.sdxl() && m.unet.cfg.adm_in_channels != m.open_clip.text_projection.shape[1] + kSdxlSizeDims)
        throw std::runtime_error(path + ": the UNet's label_emb reads " + std::to_string(m.unet.cfg.adm_in_channels) +
                                 " numbers, but SDXL's vector has " +
                                 std::to_string(m.open_clip.text_projection.shape[1] + kSdxlSizeDims) +
                                 " (pooled text + 6 x 256 size embeddings)");
    if (m.sdxl() && m.unet.cfg.context_dim != m.clip.cfg.width + m.open_clip.cfg.width)
        throw std::runtime_error(path + ": the UNet's context width " + std::to_string(m.unet.cfg.context_dim) +
                                 " is not the two text encoders' " + std::to_string(m.clip.cfg.width) + " + " +
                                 std::to_string(m.open_clip.cfg.width));
}

Model load_model(const std::string& path, const std::string& vae_path, const std::string& prediction) {
    Model m;
    m.file = std::make_unique<SafeTensors>(path);
    m.info = inspect_checkpoint(*m.file);
    require_sd1(m.info, vae_path.empty());
    bind_networks(m);
    if (!vae_path.empty()) {
        m.vae_file = std::make_unique<SafeTensors>(vae_path);
        if (!m.vae_file->find("decoder.conv_in.weight") && !m.vae_file->find("first_stage_model.decoder.conv_in.weight"))
            throw std::runtime_error(vae_path + " is " + inspect_checkpoint(*m.vae_file).what +
                                     "; --vae needs a VAE with ldm key names (decoder.conv_in.weight, with or "
                                     "without first_stage_model.)");
        m.vae = load_vae(*m.vae_file);
    } else {
        m.vae = load_vae(*m.file);
    }
    if (m.sdxl()) m.vae.scale = kSdxlVaeScale;
    Arena probe;
    PredictionChoice pc = decide_prediction(m.info, &m.unet, prediction, probe);
    m.prediction = pc.prediction;
    m.prediction_why = pc.why;
    return m;
}

namespace {

// SD 2.x: the webui's OpenCLIP chunks end-pad with 0 after the first end token, and ldm reads the penultimate
// layer whatever the webui's CLIP skip says (FrozenOpenCLIPEmbedder layer "penultimate"; the webui's
// encode_with_transformers leaves layer_idx alone).
Tensor encode_chunk(const Model& m, std::vector<int> ids, int clip_skip, Arena& arena,
                    const float* const* rows = nullptr) {
    if (!m.sd2()) return clip_encode(m.clip, ids.data(), clip_skip, arena, rows);
    open_clip_pad_ids(ids.data(), (int64_t)ids.size());
    return open_clip_encode(m.open_clip, ids.data(), /*skip=*/2, arena, rows);
}

int64_t text_width(const Model& m) { return m.sd2() ? m.open_clip.cfg.width : m.clip.cfg.width; }

}  // namespace

// SDXL (webui FrozenCLIPEmbedderForSDXLWithCustomWords + FrozenOpenCLIPEmbedder2WithCustomWords, sgm's
// GeneralConditioner concatenating their outputs along the width): CLIP-L's hidden_states[-2] (layer "hidden",
// layer_idx 11: no final norm), end-token padding; bigG's penultimate layer without ln_final, 0 padding, and its
// pooled output. The webui's "CLIP skip" leaves both alone (sdxl_clip_l_skip is off by default).
static TextEncoder sdxl_text_encoder(const Model& m) {
    TextEncoder e;
    const int64_t Cl = m.clip.cfg.width, Cg = m.open_clip.cfg.width;
    e.width = Cl + Cg;
    e.groups = {Cl, Cg};
    e.pooled_width = m.open_clip.text_projection.shape[1];
    e.encode = [&m, Cl, Cg](const std::vector<int>& ids, const float* const* rows, Arena& arena, float* pooled) {
        const int64_t T = (int64_t)ids.size(), C = Cl + Cg;
        // A textual-inversion row is [clip_l | clip_g] (TextEmbedding::parts): each tower gets its own part, as the
        // webui's EmbeddingsWithFixes with textual_inversion_key 'clip_l' and 'clip_g' splice them.
        std::vector<const float*> rows_l(T, nullptr), rows_g(T, nullptr);
        for (int64_t i = 0; rows && i < T; i++)
            if (rows[i]) rows_l[i] = rows[i], rows_g[i] = rows[i] + Cl;
        Tensor out = arena.alloc({T, C});  // (77, Cl + Cg): [CLIP-L | bigG] per token
        ArenaScope s(arena);
        Tensor zl = clip_encode(m.clip, ids.data(), /*clip_skip=*/2, arena, rows_l.data(), /*final_norm=*/false);
        std::vector<int> g = ids;
        open_clip_pad_ids(g.data(), T);
        std::vector<float> unused;
        if (!pooled) unused.resize((size_t)m.open_clip.text_projection.shape[1]);
        Tensor zg = open_clip_encode_xl(m.open_clip, g.data(), arena, pooled ? pooled : unused.data(), rows_g.data());
        for (int64_t t = 0; t < T; t++) {
            std::memcpy(out.f32() + t * C, zl.f32() + t * Cl, Cl * sizeof(float));
            std::memcpy(out.f32() + t * C + Cl, zg.f32() + t * Cg, Cg * sizeof(float));
        }
        return out;
    };
    return e;
}

TextEncoder text_encoder(const Model& m, int clip_skip) {
    if (m.sdxl()) return sdxl_text_encoder(m);
    TextEncoder e;
    e.width = text_width(m);
    e.encode = [&m, clip_skip](const std::vector<int>& ids, const float* const* rows, Arena& arena, float*) {
        // textual-inversion vectors replace their positions' token embeddings in either tower (the webui's
        // EmbeddingsWithFixes wraps CLIP's and OpenCLIP's token_embedding alike)
        return encode_chunk(m, ids, clip_skip, arena, rows);
    };
    return e;
}

namespace {

}  // namespace

Tensor encode_prompt(const Model& m, const std::string& text, int clip_skip, Arena& arena) {
    return encode_texts(text_encoder(m, clip_skip), {text}, nullptr, arena)[0];
}

namespace {

// The prompt without its extra-network tags, and its LoRA tags (a bad weight throws). Other kinds (hypernet, ...)
// are dropped, as the webui skips extra networks it does not know.
std::string strip_supported_networks(const std::string& prompt, std::vector<LoraTag>* loras = nullptr) {
    std::vector<ExtraNetworkTag> tags;
    std::string out = strip_extra_networks(prompt, &tags);
    std::vector<LoraTag> l = lora_tags(tags);
    if (loras) *loras = l;
    return out;
}

}  // namespace

void check_prompts(const std::string& prompt, const std::string& negative_prompt, int total_steps) {
    std::vector<std::string> texts;
    for (const SubPrompt& sp : split_and(strip_supported_networks(prompt))) texts.push_back(sp.text);
    texts.push_back(negative_prompt);
    for (const std::string& t : texts)
        for (const ScheduledText& e : prompt_schedule(t, total_steps)) parse_prompt_attention(e.text);
}

int webui_total_steps(SamplerKind kind, int steps) {
    // sd_samplers_kdiffusion.py marks exactly these "second_order"; prompt schedules then run over twice the steps.
    const bool second_order = kind == SamplerKind::heun || kind == SamplerKind::dpm2 || kind == SamplerKind::dpm2_a ||
                              kind == SamplerKind::dpmpp_2s_a || kind == SamplerKind::dpmpp_sde ||
                              kind == SamplerKind::restart;
    return second_order ? 2 * steps : steps;
}

ScheduleOptions schedule_options_for(ModelFamily family, ScheduleOptions opt) {
    opt.sdxl = family == ModelFamily::sdxl;
    return opt;
}

namespace {

// stack_conds: (1, T_i, C) tensors → (n, T, C), the shorter repeating their last vector.
Tensor stack_conds(const std::vector<const Tensor*>& ts) {
    int64_t T = 0;
    const int64_t C = ts[0]->dim(-1);
    for (const Tensor* t : ts) T = std::max(T, t->dim(1));
    Tensor out = Tensor::zeros({(int64_t)ts.size(), T, C});
    for (size_t i = 0; i < ts.size(); i++) {
        const int64_t have = ts[i]->dim(1);
        float* dst = out.f32() + i * T * C;
        std::memcpy(dst, ts[i]->f32(), have * C * sizeof(float));
        for (int64_t t = have; t < T; t++) std::memcpy(dst + t * C, ts[i]->f32() + (have - 1) * C, C * sizeof(float));
    }
    return out;
}

}  // namespace

Denoiser make_multicond_denoiser(Model& m, const MultiCond& cond, const CondSchedule* uncond, double cfg_scale,
                                 const DiscreteSchedule& table, int64_t h, int64_t w, Arena& arena,
                                 const std::atomic<bool>* cancel, bool lcm, const std::vector<float>* concat) {
    const int64_t n = 4 * h * w;
    const int64_t nc = concat ? (int64_t)concat->size() : 0;  // extra input channels × h × w (inpainting: 5)
    auto calls = std::make_shared<int>(0);  // the webui's CFGDenoiser.step
    const bool v = m.prediction == Prediction::v;
    return [&m, cond, uncond, cfg_scale, table, h, w, &arena, cancel, n, calls, lcm, v, concat, nc](
               const std::vector<float>& x, float sigma, std::vector<float>& out, const DenoiseExtras& extras) {
        if (cancel && cancel->load()) throw Cancelled();
        const int step = (*calls)++;
        ArenaScope scratch(arena);  // this call's activations
        const float c_in = (float)(1.0 / std::sqrt((double)sigma * sigma + 1.0));
        // UniPC names its (fractional) timestep itself, as the webui's CFGDenoiserTimesteps passes it to the UNet
        const bool given_t = extras.timestep >= 0;
        const float t = (float)(given_t ? extras.timestep : table.sigma_to_t(sigma));
        std::vector<const Tensor*> parts;
        for (const CondSchedule& c : cond.parts) parts.push_back(&c.at(step));
        Tensor c = stack_conds(parts);  // (P, T, C)
        const int64_t P = c.shape[0], T = c.shape[1], C = c.shape[2];
        const Tensor* u = uncond ? &uncond->at(step) : nullptr;
        // eps rows: parts 0..P-1, then the uncond.
        std::vector<float> eps((size_t)(P + (u ? 1 : 0)) * n);
        // SDXL: each row's vector y (pipeline/sdxl.h) rides along with its context: rows 0..P-1, then the uncond.
        const bool xl = m.unet.cfg.adm_in_channels > 0;
        auto vector_rows = [&](int64_t first_row, int64_t B) {
            const int64_t A = m.unet.cfg.adm_in_channels;
            Tensor y = arena.alloc({B, A});
            for (int64_t b = 0; b < B; b++) {
                const int64_t r = first_row + b;
                const Tensor& v = r < P ? cond.parts[r].vector_at(step) : uncond->vector_at(step);
                std::memcpy(y.f32() + b * A, v.f32(), A * sizeof(float));
            }
            return y;
        };
        auto run = [&](const Tensor& context, int64_t first_row) {
            const int64_t B = context.shape[0];
            ArenaScope batch(arena);
            // the UNet's input: x · c_in, then (inpainting models) the image conditioning, unscaled (ldm's c_concat)
            Tensor xin = arena.alloc({B, 4 + nc / (h * w), h, w});
            for (int64_t b = 0; b < B; b++) {
                float* dst = xin.f32() + b * (n + nc);
                for (int64_t i = 0; i < n; i++) dst[i] = x[i] * c_in;
                if (nc) std::memcpy(dst + n, concat->data(), nc * sizeof(float));
            }
            std::vector<float> ts((size_t)B, t);
            Tensor y = xl ? vector_rows(first_row, B) : Tensor();
            Tensor e = unet_forward(m.unet, xin, ts.data(), context, arena, xl ? &y : nullptr);
            if (first_non_finite(e.f32(), B * n) >= 0)
                throw std::runtime_error("the UNet produced NaN/Inf at sigma " + std::to_string(sigma) +
                                         " (evaluation " + std::to_string(step + 1) +
                                         "); the checkpoint's weights may be broken");
            std::memcpy(eps.data() + first_row * n, e.f32(), B * n * sizeof(float));
        };
        if (u && u->dim(1) == T) {  // one batch: parts, then the uncond
            Tensor both = Tensor::zeros({P + 1, T, C});
            std::memcpy(both.f32(), c.f32(), P * T * C * sizeof(float));
            std::memcpy(both.f32() + P * T * C, u->f32(), T * C * sizeof(float));
            run(both, 0);
        } else {
            run(c, 0);
            if (u) run(*u, P);
        }
        double c_skip = 0, c_out = 1;
        if (lcm) lcm_boundary_scalings(t, &c_skip, &c_out);
        out.resize(n);
        const float* e_u = u ? eps.data() + P * n : nullptr;
        const double cfg = cfg_scale * extras.cfg_multiplier;
        // D from a model output at element i. With a timestep of its own, a v model's output becomes eps as the
        // webui's CompVisTimestepsVDenoiser does it, with abar at the timestep truncated to an integer.
        const double abar = given_t ? table.alphas_cumprod[std::min<size_t>((size_t)t, table.alphas_cumprod.size() - 1)] : 0;
        auto denoised = [&](int64_t i, double e) {
            if (v && given_t) e = std::sqrt(abar) * e + std::sqrt(1 - abar) * (x[i] * c_in);
            return v && !given_t ? denoised_from_output(Prediction::v, x[i], e, sigma) : x[i] - (double)sigma * e;
        };
        if (extras.uncond) extras.uncond->resize(n);
        for (int64_t i = 0; i < n; i++) {
            // Classifier-free guidance (Ho & Salimans 2022), summed over the AND parts as in composable
            // diffusion (Liu et al. 2022): D_u + sum_k (D_k - D_u) * (weight_k * cfg), written for the model outputs.
            double e;
            if (e_u) {
                e = e_u[i];
                for (int64_t k = 0; k < P; k++) e += cond.weights[k] * cfg * ((double)eps[k * n + i] - e_u[i]);
            } else {
                e = eps[i];
            }
            // D is affine in the model's output at a fixed x (eps or v), so guiding the outputs guides the D's.
            out[i] = (float)(c_out * denoised(i, e) + c_skip * x[i]);
            // CFG++ reads the unconditional prediction (without an uncond pass, at CFG 1: the conditional one)
            if (extras.uncond) (*extras.uncond)[i] = (float)denoised(i, e_u ? e_u[i] : eps[i]);
        }
    };
}

Tensor make_conditioning(const Model& m, const std::string& prompt, const std::string& negative_prompt, bool with_uncond,
                         int clip_skip, Arena& arena) {
    Tensor cond = encode_prompt(m, prompt, clip_skip, arena);
    if (!with_uncond) return cond;
    Tensor uncond = encode_prompt(m, negative_prompt, clip_skip, arena);
    const int64_t T = std::max(cond.dim(1), uncond.dim(1)), C = cond.dim(-1);
    if (cond.dim(1) != uncond.dim(1)) {  // the webui pads the shorter one with empty-prompt chunks
        Tensor empty = encode_prompt(m, "", clip_skip, arena);
        cond = pad_to_chunks(cond, T, empty);
        uncond = pad_to_chunks(uncond, T, empty);
    }
    Tensor context = Tensor::zeros({2, T, C});
    std::memcpy(context.f32(), uncond.f32(), T * C * sizeof(float));
    std::memcpy(context.f32() + T * C, cond.f32(), T * C * sizeof(float));
    return context;
}

Denoiser make_cfg_denoiser(Model& m, const Tensor& context, double cfg_scale, const DiscreteSchedule& table,
                           int64_t h, int64_t w, Arena& arena, const std::atomic<bool>* cancel, bool lcm) {
    const int64_t B = context.shape[0], n = 4 * h * w;
    auto evals = std::make_shared<int>(0);
    const bool v = m.prediction == Prediction::v;
    return [&m, context, cfg_scale, table, h, w, &arena, cancel, B, n, evals, lcm, v](
               const std::vector<float>& x, float sigma, std::vector<float>& out) {
        if (cancel && cancel->load()) throw Cancelled();
        ArenaScope scratch(arena);  // this call's activations
        // k-diffusion's CompVisDenoiser: c_in = 1/sqrt(sigma^2 + 1), t = sigma_to_t(sigma), D = x - sigma * eps;
        // CompVisVDenoiser: the same c_in and t, D = c_skip * x + c_out * v (pipeline/prediction.h).
        const float c_in = (float)(1.0 / std::sqrt((double)sigma * sigma + 1.0));
        const float t = (float)table.sigma_to_t(sigma);
        Tensor xin = arena.alloc({B, 4, h, w});
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < n; i++) xin.f32()[b * n + i] = x[i] * c_in;
        const float ts[2] = {t, t};
        Tensor eps = unet_forward(m.unet, xin, ts, context, arena);  // (B, 4, h, w)
        ++*evals;
        if (first_non_finite(eps.f32(), B * n) >= 0)
            throw std::runtime_error("the UNet produced NaN/Inf at sigma " + std::to_string(sigma) + " (evaluation " +
                                     std::to_string(*evals) + "); the checkpoint's weights may be broken");
        // LCM's boundary condition (the webui's LCM denoiser): D = c_out * (x - sigma * eps) + c_skip * x.
        double c_skip = 0, c_out = 1;
        if (lcm) lcm_boundary_scalings(t, &c_skip, &c_out);
        out.resize(n);
        const float* e_u = eps.f32();                // uncond first ...
        const float* e_c = eps.f32() + (B - 1) * n;  // ... cond last (the same tensor when B = 1)
        // Classifier-free guidance (Ho & Salimans 2022: (1 + w)·eps(z, c) − w·eps(z), i.e. scale = 1 + w).
        // D is affine in the model's output at a fixed x, so guiding the outputs is guiding the D's (the webui
        // combines the denoised estimates).
        for (int64_t i = 0; i < n; i++) {
            double e = B == 2 ? e_u[i] + cfg_scale * ((double)e_c[i] - e_u[i]) : e_c[i];
            double d = v ? denoised_from_output(Prediction::v, x[i], e, sigma) : x[i] - (double)sigma * e;
            out[i] = (float)(c_out * d + c_skip * x[i]);
        }
    };
}

Tensor sample_latent(Model& m, const GenerateParams& p, Arena& arena, StageTimes* times, const StepCallback& on_step,
                     const std::atomic<bool>* cancel) {
    if (p.width % 64 || p.height % 64 || p.width <= 0 || p.height <= 0)
        throw std::runtime_error("width and height must be positive multiples of 64, got " + std::to_string(p.width) +
                                 "x" + std::to_string(p.height));
    const int64_t h = p.height / 8, w = p.width / 8, n = 4 * h * w;
    double t0 = wall_seconds(), c0 = process_cpu_seconds();

    // The webui's setup_conds: extra-network tags out of the prompt, then the negative prompt's schedule and the
    // prompt's AND parts with theirs, over the sampler's total steps.
    std::vector<LoraTag> loras;
    const std::string prompt = strip_supported_networks(p.prompt, &loras);
    std::vector<std::string> warnings;
    apply_loras(m, loras, p.lora_dir, p.lora_apply, &warnings);  // the webui's ExtraNetworkLora.activate
    for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const TextEncoder enc = text_encoder(m, p.clip_skip);
    const int total_steps = webui_total_steps(p.sampler, p.steps);
    MultiCond cond = multicond_learned_conditioning(enc, prompt, total_steps, p.embeddings, arena);
    const bool plain = cond.parts.size() == 1 && cond.weights[0] == 1.0;
    CondSchedule uncond;
    if (p.cfg_scale != 1.0 || !plain)
        uncond = learned_conditioning(enc, p.negative_prompt, total_steps, p.embeddings, arena);
    if (m.sdxl()) {  // the vector y of every conditioning; an all-empty negative prompt's text part is zeros
        for (CondSchedule& part : cond.parts) sdxl_finish_conditioning(part, p.width, p.height, false);
        if (!uncond.conds.empty())
            sdxl_finish_conditioning(uncond, p.width, p.height, sdxl_zero_negative(p.negative_prompt, total_steps));
    }
    double t1 = wall_seconds(), c1 = process_cpu_seconds();
    const DiscreteSchedule table = sampler_table(p.sampler, sd_schedule());
    // Inpainting models (9 input channels) see the image conditioning beside x: the mask and the masked image's
    // latent (img2img), else a mask of ones and the latent of a grey image (the webui's txt2img_image_conditioning).
    std::vector<float> image_cond;
    if (m.unet.cfg.in_channels == 9)
        image_cond = p.start && !p.start->image_cond.empty() ? p.start->image_cond
                                                             : unmasked_image_conditioning(m, h, w, p.taesd, arena);
    Denoiser denoise = make_multicond_denoiser(m, cond, uncond.conds.empty() ? nullptr : &uncond, p.cfg_scale, table,
                                               h, w, arena, cancel, p.sampler == SamplerKind::lcm,
                                               image_cond.empty() ? nullptr : &image_cond);

    // img2img (p.start): the schedule of img2img_steps' length, of which the last steps run (pipeline/img2img.h).
    const Img2imgSteps i2i = p.start ? img2img_steps(p.steps, p.start->strength, p.start->hires_steps) : Img2imgSteps{};
    std::vector<float> sigmas = sampler_sigmas(p.sampler, p.schedule, p.start ? i2i.steps : p.steps, sd_schedule(),
                                               schedule_options_for(m.info.family, p.schedule_options));
    const Img2imgRun i2r = p.start ? img2img_run(p.sampler, sigmas, i2i, table) : Img2imgRun{};
    const std::vector<float>& run = p.start ? i2r.sigmas : sigmas;
    if (p.start && (int64_t)p.start->latent.size() != n)
        throw std::runtime_error("img2img: the init latent does not match the output size");
    ImageRng rng(p.rng, {p.seed});
    std::vector<float> x = rng.randn(n);
    if (p.on_latent) p.on_latent("noise", x, h, w);
    if (p.start) {
        for (int64_t i = 0; i < n; i++) x[i] = i2r.x0_scale * p.start->latent[i] + x[i] * i2r.noise_scale;
        if (!p.start->keep.empty()) denoise = blend_denoiser(denoise, *p.start, sampler_is_timestep(p.sampler));
    } else {
        const float scale = initial_noise_scale(p.sampler, sigmas);
        for (float& v : x) v *= scale;
    }

    // The callback comes after each step's first model evaluation (the bulk of a step), with x as it entered
    // the step: step k's x is the latent after k steps (step_000 the scaled initial noise); the final latent
    // is written after the loop.
    int done = 0;
    double preview_s = 0;
    SamplerCallback cb = [&](int step, int steps, float, const std::vector<float>& xs, const std::vector<float>& d) {
        if (p.on_latent) p.on_latent(step_name(step), xs, h, w);
        if (p.on_preview) {
            double s0 = wall_seconds();
            const Image im = preview_image(m, d, h, w, arena);
            if (!im.pixels.empty()) p.on_preview(im);
            preview_s += wall_seconds() - s0;
        }
        done = step + 1;
        if (p.on_denoised) p.on_denoised(done, d);
        if (on_step) on_step(done, steps);
    };
    if (on_step) on_step(0, std::max((int)run.size() - 1, 0));  // sampling starts now
    SamplerOptions opt;
    opt.unipc = p.unipc;
    // the Brownian tree spans the whole schedule, img2img's too (the webui's create_noise_sampler(x, sigmas, p))
    if (sampler_uses_brownian_noise(p.sampler)) opt.noise_sampler = brownian_noise_sampler(sigmas, {p.seed}, p.rng, n);
    if (p.start) sample_img2img(p.sampler, denoise, x, i2r, rng, cb, opt);
    else sample(p.sampler, denoise, x, run, rng, cb, opt);
    if (p.start && !p.start->keep.empty()) blend_latent(x, *p.start);
    if (p.on_latent) p.on_latent(step_name(done), x, h, w);
    double t2 = wall_seconds(), c2 = process_cpu_seconds();
    if (times) {
        times->text = t1 - t0; times->sampling = t2 - t1; times->preview = preview_s;
        times->text_cpu = c1 - c0; times->sampling_cpu = c2 - c1;
    }

    Tensor latent = Tensor::zeros({1, 4, h, w});
    std::memcpy(latent.f32(), x.data(), n * sizeof(float));
    return latent;
}

Image preview_image(Model& m, const std::vector<float>& latent, int64_t h, int64_t w, Arena& arena) {
    if (first_non_finite(latent.data(), (int64_t)latent.size()) >= 0) return Image();  // the sampler will say why
    if (!m.taesd) m.taesd = std::make_unique<Taesd>(load_taesd_decoder("", m.sdxl()));
    ArenaScope scratch(arena);
    Tensor z = arena.alloc({1, 4, h, w});
    std::memcpy(z.f32(), latent.data(), latent.size() * sizeof(float));
    Tensor img = taesd_decode(*m.taesd, z, arena);  // (1, 3, 8h, 8w) in [0, 1]
    Image out;
    out.width = (int)img.shape[3]; out.height = (int)img.shape[2]; out.channels = 3;
    const int64_t HW = (int64_t)out.width * out.height;
    out.pixels.resize(3 * HW);
    for (int64_t c = 0; c < 3; c++)
        for (int64_t i = 0; i < HW; i++) {
            float v = img.f32()[c * HW + i];
            out.pixels[i * 3 + c] = (uint8_t)((v < 0 ? 0 : v > 1 ? 1 : v) * 255.0f);
        }
    return out;
}

bool vae_tile_decode(int vae_tiling, int64_t width, int64_t height, int64_t auto_above) {
    return vae_tiling > 0 || (vae_tiling < 0 && width * height > auto_above);
}

int64_t vae_auto_tile_pixels(const Model& m) { return m.sdxl() ? 768 * 768 : 1024 * 1024; }

Image decode_latent(Model& m, const Tensor& latent, bool taesd, Arena& arena, int vae_tiling) {
    if (first_non_finite(latent.f32(), latent.numel()) >= 0)
        throw std::runtime_error("the latent to decode contains NaN/Inf; no image was written");
    ArenaScope scratch(arena);
    if (scratch.start().block == 0 && scratch.start().used == 0) arena.clear();  // the UNet's blocks go back before the decoder grows its own
    Tensor img;  // (1, 3, H, W)
    if (taesd) {
        if (!m.taesd) m.taesd = std::make_unique<Taesd>(load_taesd_decoder("", m.sdxl()));
        img = taesd_decode(*m.taesd, latent, arena);
    } else {
        const int64_t h = latent.shape[2], w = latent.shape[3];
        img = vae_tile_decode(vae_tiling, 8 * w, 8 * h, vae_auto_tile_pixels(m))
                  ? vae_decode_tiled(m.vae, latent, arena, vae_decode_tile(m.vae, h, w))
                  : vae_decode(m.vae, latent, arena);
    }
    const int64_t H = img.shape[2], W = img.shape[3], HW = H * W;
    if (first_non_finite(img.f32(), 3 * HW) >= 0)
        throw std::runtime_error(std::string("the ") + (taesd ? "TAESD decoder" : "VAE decoder") +
                                 " produced NaN/Inf; no image was written");
    Image out;
    out.width = (int)W; out.height = (int)H; out.channels = 3;
    out.pixels.resize(3 * HW);
    for (int64_t c = 0; c < 3; c++)
        for (int64_t i = 0; i < HW; i++) {
            float v = img.f32()[c * HW + i];
            v = taesd ? v : (v + 1.0f) * 0.5f;  // TAESD decodes to [0,1] directly
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            out.pixels[i * 3 + c] = (uint8_t)(v * 255.0f);  // truncation, as the webui's astype(uint8)
        }
    return out;
}

Image generate(Model& m, const GenerateParams& p, Arena& arena, StageTimes* times, const StepCallback& on_step,
               const std::atomic<bool>* cancel) {
    Tensor latent = sample_latent(m, p, arena, times, on_step, cancel);
    double t0 = wall_seconds(), c0 = process_cpu_seconds();
    Image img = decode_latent(m, latent, p.taesd, arena, p.vae_tiling);
    if (times) { times->decode = wall_seconds() - t0; times->decode_cpu = process_cpu_seconds() - c0; }
    return img;
}

size_t estimate_working_memory(const Model& m, int width, int height, bool taesd, int vae_tiling) {
    const bool tiled = !taesd && vae_tile_decode(vae_tiling, width, height, vae_auto_tile_pixels(m));
    return txt2img_working_bytes(m.unet, m.vae, width, height, taesd,
                                 tiled ? vae_decode_tile(m.vae, height / 8, width / 8) : 0);
}

}  // namespace sd
