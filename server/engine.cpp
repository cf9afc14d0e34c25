// engine.cpp — the job queue, the worker that runs txt2img jobs, checkpoints and the progress state.
#include "server/engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "clock.h"
#include "models/checkpoint.h"
#include "app/image_io.h"
#include "app/infotext.h"
#include "app/memory.h"
#include "app/model_hash.h"
#include "app/generation_infotext.h"
#include "pipeline/loras.h"

namespace sd::serve {
namespace fs = std::filesystem;

namespace {

std::string strip_extension(const std::string& name) {
    size_t d = name.rfind('.'), s = name.rfind('/');
    return d == std::string::npos || (s != std::string::npos && d < s) ? name : name.substr(0, d);
}

std::string local_time(const char* fmt) {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, fmt, &tm);
    return buf;
}

// The webui's save_images naming: OUTDIR/KIND-images/YYYY-MM-DD/NNNNN-SEED.png, NNNNN one past the highest.
std::string next_output_path(const std::string& outdir, const char* kind, uint64_t seed) {
    fs::path dir = fs::path(outdir) / (std::string(kind) + "-images") / local_time("%Y-%m-%d");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create the output folder '" + dir.string() + "': " + ec.message());
    long next = 0;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        long v = std::strtol(n.c_str(), nullptr, 10);
        if (v >= next) next = v + 1;
    }
    char name[64];
    std::snprintf(name, sizeof name, "%05ld-%llu.png", next, (unsigned long long)seed);
    return (dir / name).string();
}

}  // namespace

Engine::Engine(EngineConfig cfg) : cfg_(std::move(cfg)) {
    struct stat st;
    if (stat(cfg_.model.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        throw std::runtime_error("model '" + cfg_.model + "' does not exist or is not a file");
    if (!cfg_.models_dir.empty() && (stat(cfg_.models_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
        throw std::runtime_error("--models-dir '" + cfg_.models_dir + "' is not a folder");
    const std::string beside = fs::path(cfg_.model).parent_path().string();
    if (cfg_.lora_dir.empty()) cfg_.lora_dir = default_lora_dir(cfg_.model);
    if (cfg_.upscalers_dir.empty()) cfg_.upscalers_dir = (fs::path(beside) / "upscalers").string();
    refresh_checkpoints();
    current_path_ = fs::absolute(cfg_.model).lexically_normal().string();
}

Engine::~Engine() { shutdown(0); }

void Engine::refresh_checkpoints() {
    std::vector<Checkpoint> found;
    auto add = [&](const fs::path& p, const std::string& filename) {
        std::string path = fs::absolute(p).lexically_normal().string();
        for (const auto& c : found)
            if (c.path == path) return;
        Checkpoint c;
        c.path = path;
        c.filename = filename;
        c.model_name = strip_extension(filename);
        found.push_back(c);
    };
    if (!cfg_.models_dir.empty()) {
        std::error_code ec;
        fs::recursive_directory_iterator it(cfg_.models_dir, fs::directory_options::skip_permission_denied, ec), end;
        std::vector<fs::path> files;
        for (; !ec && it != end; it.increment(ec)) {
            if (it.depth() >= 2) it.disable_recursion_pending();
            if (it->is_regular_file(ec) && it->path().extension() == ".safetensors") files.push_back(it->path());
            if (files.size() > 10000) break;
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) add(f, fs::relative(f, cfg_.models_dir, ec).generic_string());
    }
    add(cfg_.model, fs::path(cfg_.model).filename().string());
    std::lock_guard<std::mutex> lock(m_);
    for (auto& c : found)  // keep hashes already computed
        for (const auto& old : checkpoints_)
            if (old.path == c.path) c.hash = old.hash;
    checkpoints_ = std::move(found);
}

std::vector<Checkpoint> Engine::checkpoints() {
    std::lock_guard<std::mutex> lock(m_);
    return checkpoints_;
}

bool Engine::find_checkpoint(const std::string& name, Checkpoint* out) {
    std::lock_guard<std::mutex> lock(m_);
    for (const auto& c : checkpoints_) {
        const std::string base = fs::path(c.filename).filename().string();
        if (name == c.title() || name == c.filename || name == c.model_name || name == base ||
            name == strip_extension(base) || (!c.hash.empty() && name == c.hash)) {
            *out = c;
            return true;
        }
    }
    return false;
}

Checkpoint Engine::current_checkpoint() {
    std::lock_guard<std::mutex> lock(m_);
    for (const auto& c : checkpoints_)
        if (c.path == current_path_) return c;
    Checkpoint c;  // refreshed away: still the one in use
    c.path = current_path_;
    c.filename = fs::path(current_path_).filename().string();
    c.model_name = strip_extension(c.filename);
    return c;
}

void Engine::set_current_checkpoint(const Checkpoint& c) {
    std::lock_guard<std::mutex> lock(m_);
    current_path_ = c.path;
}

int Engine::text_layers() {
    std::lock_guard<std::mutex> lock(m_);
    return text_layers_;
}

size_t Engine::memory_available() const {
    return cfg_.memory_available ? cfg_.memory_available : available_memory();
}

std::string Engine::memory_refusal_now(const std::string& checkpoint, int width, int height) {
    std::lock_guard<std::mutex> lock(m_);
    const std::string& path = checkpoint.empty() ? current_path_ : checkpoint;
    if (!model_ || model_path_ != path || !state_.job.empty() || !queue_.empty()) return "";
    return memory_refusal(estimate_working_memory(*model_, width, height, false), memory_available(), width, height);
}

std::shared_ptr<const EmbeddingDb> Engine::embeddings(bool reload) {
    int64_t width = 0;
    std::string path;
    {
        std::lock_guard<std::mutex> lock(m_);
        path = current_path_;
        if (model_ && model_path_ == path) width = text_width_;
    }
    if (!width) {  // not loaded yet: the text encoder's width from the file's header (microseconds)
        CheckpointInfo ci = inspect_checkpoint(SafeTensors(path));
        width = ci.text_widths.empty() ? 768 : ci.text_widths[0];
    }
    return embeddings_for(width, reload);
}

// The webui's EmbeddingDatabase.load_textual_inversion_embeddings: read again only when the folder's own
// modification time changed (DirWithTextualInversionEmbeddings.has_changed), or for another text width.
std::shared_ptr<const EmbeddingDb> Engine::embeddings_for(int64_t width, bool reload) {
    const fs::path dir = !cfg_.embeddings_dir.empty() ? fs::path(cfg_.embeddings_dir)
                                                      : fs::path(cfg_.model).parent_path() / "embeddings";
    std::error_code ec;
    const auto t = fs::last_write_time(dir, ec);
    const int64_t mtime = ec ? -2 : (int64_t)t.time_since_epoch().count();
    std::lock_guard<std::mutex> lock(emb_m_);
    if (!reload && embeddings_ && embeddings_width_ == width && embeddings_mtime_ == mtime) return embeddings_;
    auto db = std::make_shared<EmbeddingDb>();
    std::vector<std::string> errors;  // a file that is no embedding is left out, as the webui does
    db->load_dir(dir.string(), width, &errors);
    for (const std::string& e : errors) std::fprintf(stderr, "sd serve: embedding left out: %s\n", e.c_str());
    embeddings_ = db;
    embeddings_width_ = width;
    embeddings_mtime_ = mtime;
    return embeddings_;
}

void Engine::start() {
    thread_ = std::thread([this] { worker(); });
}

bool Engine::submit(Job job, std::function<void(JobResult)> done) {
    std::unique_lock<std::mutex> lock(m_);
    JobResult refused;
    refused.status = 503;
    if (closing_) refused.error = "the server is shutting down";
    else if (queue_.size() >= cfg_.max_queue)
        refused.error = "the queue is full (" + std::to_string(cfg_.max_queue) + " jobs waiting); try again later";
    else {
        if (job.checkpoint.empty()) job.checkpoint = current_path_;
        queue_.push_back({std::move(job), std::move(done)});
        state_.queued = (int)queue_.size();
        cv_.notify_all();
        return true;
    }
    lock.unlock();
    done(refused);
    return false;
}

void Engine::interrupt() {
    interrupt_.store(true);
    cancel_.store(true);
    std::lock_guard<std::mutex> lock(m_);
    if (!state_.job.empty()) state_.interrupted = true;
}

void Engine::skip() {
    skip_.store(true);
    cancel_.store(true);
    std::lock_guard<std::mutex> lock(m_);
    if (!state_.job.empty()) state_.skipped = true;
}

ProgressInfo Engine::progress(bool want_preview) {
    if (want_preview) preview_wanted_.store(true);
    std::lock_guard<std::mutex> lock(m_);
    ProgressInfo p = state_;
    p.queued = (int)queue_.size();
    if (p.job_count > 0) {  // the webui's progressapi arithmetic
        double prog = 0.01 + (double)p.job_no / p.job_count;
        if (p.sampling_steps > 0) prog += 1.0 / p.job_count * p.sampling_step / p.sampling_steps;
        double since = wall_seconds() - time_start_, eta = since / prog;
        p.eta_relative = eta - since;
        p.progress = std::min(prog, 1.0);
    }
    return p;
}

TaskState Engine::task(const std::string& id) {
    std::lock_guard<std::mutex> lock(m_);
    TaskState t;
    t.queue_length = (int)queue_.size();
    if (id.empty()) return t;
    t.active = id == running_task_;
    for (size_t i = 0; i < queue_.size(); i++)
        if (queue_[i].job.task_id == id) { t.queued = true; t.queue_position = (int)i + 1; }
    t.completed = std::find(completed_.begin(), completed_.end(), id) != completed_.end();
    return t;
}

void Engine::shutdown(double drain_seconds) {
    std::deque<Pending> dropped;
    {
        std::lock_guard<std::mutex> lock(m_);
        if (closing_ && !thread_.joinable()) return;
        closing_ = true;
        dropped.swap(queue_);
        state_.queued = 0;
        cv_.notify_all();
    }
    for (auto& p : dropped) {
        JobResult r;
        r.status = 503;
        r.error = "the server is shutting down";
        p.done(r);
    }
    if (!thread_.joinable()) return;
    // Let the running job finish for drain_seconds, then interrupt it; either way it ends cleanly.
    const double until = wall_seconds() + drain_seconds;
    for (;;) {
        {
            std::lock_guard<std::mutex> lock(m_);
            if (state_.job.empty()) break;
        }
        if (wall_seconds() >= until) { interrupt(); break; }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    thread_.join();
}

void Engine::worker() {
    for (;;) {
        Pending p;
        {
            std::unique_lock<std::mutex> lock(m_);
            cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
            if (queue_.empty()) return;  // closing
            p = std::move(queue_.front());
            queue_.pop_front();
            state_ = ProgressInfo{};
            state_.job = p.job.extras ? "extras" : p.job.img2img ? "img2img" : "txt2img";
            state_.job_count = p.job.extras ? (int)p.job.extras->images.size() : p.job.batch_size * p.job.n_iter;
            state_.sampling_steps = p.job.extras ? 0
                                  : p.job.img2img  // img2img runs only the last t_enc + 1 steps of the schedule
                                        ? img2img_steps(p.job.params.steps, p.job.img2img->strength).t_enc + 1
                                        : p.job.params.steps;
            state_.job_timestamp = local_time("%Y%m%d%H%M%S");
            state_.queued = (int)queue_.size();
            state_.current_task = p.job.task_id;
            running_task_ = p.job.task_id;
            time_start_ = wall_seconds();
            cancel_.store(false);
            skip_.store(false);
            interrupt_.store(false);
        }
        JobResult r;
        try {
            r = run(p.job);
        } catch (const std::bad_alloc&) {
            r = JobResult{};
            r.status = 500;
            r.error = "out of memory; try a smaller image";
        } catch (const std::exception& e) {
            r = JobResult{};
            r.status = 500;
            r.error = e.what();
        }
        {
            std::lock_guard<std::mutex> lock(m_);
            state_ = ProgressInfo{};
            state_.queued = (int)queue_.size();
            if (!running_task_.empty()) {
                completed_.push_back(running_task_);
                if (completed_.size() > 256) completed_.pop_front();
            }
            running_task_.clear();
        }
        p.done(std::move(r));
    }
}

void Engine::ensure_model(const std::string& path) {
    if (model_ && model_path_ == path) return;
    {
        std::lock_guard<std::mutex> lock(m_);  // memory_refusal_now() reads the model
        model_.reset();  // free the old weights before mapping the new ones
        model_path_.clear();
    }
    auto m = std::make_unique<Model>(load_model(path));
    std::lock_guard<std::mutex> lock(m_);
    model_ = std::move(m);
    model_path_ = path;
    text_layers_ = model_->sd2() ? 24 : model_->clip.cfg.layers;  // SD 2.x: the webui ignores CLIP skip
    text_width_ = text_encoder(*model_, 1).width;
}

// The webui's run_postprocessing for each image in turn (interrupt stops between tiles; skip drops an image):
// PNGs with the input's text chunks plus "postprocessing", as encode_pil_to_base64 writes image.info.
JobResult Engine::run_extras(const ExtrasJob& job) {
    JobResult r;
    std::string info;
    for (size_t i = 0; i < job.images.size(); i++) {
        if (interrupt_.load()) { r.interrupted = true; break; }
        {
            std::lock_guard<std::mutex> lock(m_);
            state_.job_no = (int)i;
            state_.skipped = false;
        }
        Image out;
        try {
            out = extras_upscale(job.request, job.images[i], job.upscaler_1.get(), job.upscaler_2.get(), &info, [&] {
                if (cancel_.load()) throw Cancelled();
            });
        } catch (const Cancelled&) {
            if (interrupt_.load()) { r.interrupted = true; break; }
            skip_.store(false);
            cancel_.store(false);
            continue;
        }
        std::vector<std::pair<std::string, std::string>> text = job.texts[i];
        auto it = std::find_if(text.begin(), text.end(), [](const auto& kv) { return kv.first == "postprocessing"; });
        if (it != text.end()) it->second = info;
        else text.push_back({"postprocessing", info});
        r.pngs.push_back(encode_png(out, text));
    }
    r.html_info = plaintext_to_html(info);
    return r;
}

JobResult Engine::run(const Job& job) {
    if (job.extras) return run_extras(*job.extras);
    ensure_model(job.checkpoint);
    if (!model_->sd2() && job.params.clip_skip > model_->clip.cfg.layers)
        throw std::runtime_error("CLIP skip " + std::to_string(job.params.clip_skip) + " is more than the text "
                                 "encoder's " + std::to_string(model_->clip.cfg.layers) + " layers");
    JobResult r;
    // The CLI's check, before the first step: nothing else of ours is allocated now, so what is left is the job's.
    // With the hires fix, the upscaled size's (as the CLI checks it).
    const HiresTarget target = job.hires ? hires_target(job.params.width, job.params.height, *job.hires)
                                         : HiresTarget{job.params.width, job.params.height, 0, 0};
    const std::string no_room =
        memory_refusal(estimate_working_memory(*model_, target.upscale_w, target.upscale_h, false,
                                               job.params.vae_tiling),
                       memory_available(), target.upscale_w, target.upscale_h);
    if (!no_room.empty()) {
        r.status = 422;
        r.error = no_room;
        return r;
    }
    const std::shared_ptr<const EmbeddingDb> embeddings = embeddings_for(text_width_, false);
    // The checkpoint's hash is read from the file while the images are made (a first job on a 2 GB checkpoint
    // would otherwise wait ~13 s for it, as the CLI's ModelHashJob avoids too); waited for at the first PNG.
    ModelHashJob hash_job(job.checkpoint);
    auto hash = [&]() -> const std::string& {
        if (r.model_hash.empty()) {
            r.model_hash = hash_job.get();
            std::lock_guard<std::mutex> lock(m_);
            for (auto& c : checkpoints_)
                if (c.path == job.checkpoint) c.hash = r.model_hash;
        }
        return r.model_hash;
    };
    Checkpoint ck;
    {
        std::lock_guard<std::mutex> lock(m_);
        for (const auto& c : checkpoints_)
            if (c.path == job.checkpoint) ck = c;
        r.job_timestamp = state_.job_timestamp;
    }
    if (ck.path.empty()) ck.model_name = strip_extension(fs::path(job.checkpoint).filename().string());
    r.model_name = fs::path(ck.model_name).filename().string();
    r.version = cfg_.version;
    // The fields every infotext of this job shares; each image's differ only in the seed.
    GenerateParams shared = job.params;
    shared.lora_dir = cfg_.lora_dir;
    shared.embeddings = embeddings.get();
    r.info = generation_infotext(shared, job.sampler_label, job.schedule_label);
    r.info.model_name = r.model_name;
    if (job.img2img) r.info.denoising_strength = python_float_repr(job.img2img->strength);
    if (job.hires) {  // "Denoising strength", "Hires upscale"/"Hires resize", "Hires steps", "Hires upscaler"
        add_hires_infotext(*job.hires, r.info);
        if (!job.hires_upscaler_named)  // the webui adds "Hires upscaler" only when hr_upscaler was given
            r.info.extra.erase(std::remove_if(r.info.extra.begin(), r.info.extra.end(),
                                              [](const auto& kv) { return kv.first == "Hires upscaler"; }),
                               r.info.extra.end());
    }
    r.info.prediction = model_->sd2() ? prediction_name(model_->prediction) : "";
    r.info.version = cfg_.version;
    const int total = job.batch_size * job.n_iter;
    for (int i = 0; i < total; i++) r.seeds.push_back(job.params.seed + (uint64_t)i);

    Arena arena, preview_arena;
    for (int i = 0; i < total; i++) {
        if (interrupt_.load()) { r.interrupted = true; break; }
        GenerateParams p = shared;
        p.seed = r.seeds[i];
        if (cfg_.taesd_previews)
            p.on_denoised = [&](int, const std::vector<float>& den) {
                if (!preview_wanted_.exchange(false)) return;  // render only for someone watching
                // The pass's latent size: the first pass's, or the hires second pass's (the upscaled size, or
                // the cropped one).
                int64_t lh = p.height / 8, lw = p.width / 8;
                if (job.hires && (int64_t)den.size() != 4 * lh * lw) {
                    lh = target.upscale_h / 8, lw = target.upscale_w / 8;
                    if ((int64_t)den.size() != 4 * lh * lw) lh = target.height() / 8, lw = target.width() / 8;
                }
                if ((int64_t)den.size() != 4 * lh * lw) return;
                const Image im = preview_image(*model_, den, lh, lw, preview_arena);
                if (im.pixels.empty()) return;  // a non-finite latent: the sampler will say why
                std::vector<uint8_t> png = encode_png(im, {});
                std::lock_guard<std::mutex> lock(m_);
                state_.preview_png.assign(png.begin(), png.end());
                state_.preview_id++;
            };
        {
            std::lock_guard<std::mutex> lock(m_);
            state_.job_no = i;
            state_.sampling_step = 0;
            state_.skipped = false;
        }
        Image img;
        try {
            auto on_step = [&](int k, int n) {
                std::lock_guard<std::mutex> lock(m_);
                state_.sampling_step = k;
                if (n > 0) state_.sampling_steps = n;  // the steps the sampler really runs
            };
            std::vector<std::pair<std::string, std::string>> img2img_info;
            img = job.img2img ? generate_img2img(*model_, p, *job.img2img, arena, nullptr, on_step, &cancel_, &img2img_info)
                              : job.hires ? generate_hires(*model_, p, *job.hires, arena, nullptr, on_step, &cancel_)
                              : generate(*model_, p, arena, nullptr, on_step, &cancel_);
            if (r.pngs.empty()) {  // the mask's fields are the same for every image: the job's, as the CLI writes them
                for (auto& kv : img2img_info) {
                    if (kv.first == "Conditional mask weight") r.info.conditional_mask_weight = kv.second;
                    else r.info.extra.push_back(kv);
                }
            }
        } catch (const Cancelled&) {
            if (interrupt_.load()) { r.interrupted = true; break; }
            skip_.store(false);  // skipped: on with the next image
            cancel_.store(false);
            continue;
        }
        InfoText info = r.info;
        info.seed = p.seed;
        info.model_hash = hash();
        std::string text = format_infotext(info);
        std::vector<uint8_t> png = encode_png(img, {{"parameters", text}});
        if (job.save_images) write_file_atomic(next_output_path(cfg_.outdir, job.img2img ? "img2img" : "txt2img", p.seed), png);
        r.pngs.push_back(std::move(png));
        r.infotexts.push_back(text);
    }
    if (!r.interrupted) hash();  // every image skipped: the response still names the model's hash
    r.info.model_hash = r.model_hash;
    return r;
}

}  // namespace sd::serve
