// engine.h — what `sd serve` runs: one worker thread taking generation jobs from a FIFO queue, one at a time
// on all cores; the checkpoints it may switch between; the progress state the webui's /progress reports.
//
// A job holds no reference to the connection that asked for it: its result goes to a callback, so a client
// that disconnects loses only its answer, never the queue. Interrupt stops the running job (images finished so
// far are returned, nothing half-made), skip drops the current image and goes on with the next. shutdown()
// refuses new jobs, answers queued ones with 503, lets the running one finish for a while, then interrupts it.
// Textual-inversion embeddings come from one folder (as the CLI's), reloaded when it changes, as the webui does.
// A job is txt2img (with the hires fix or not), img2img or inpainting (pipeline/img2img.h), or an upscale (the
// webui's extras); LoRAs named in prompts are merged as the CLI does. Left out: VAE switching.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "app/infotext.h"
#include "pipeline/conditioning.h"
#include "pipeline/hires.h"
#include "pipeline/img2img.h"
#include "pipeline/txt2img.h"
#include "server/extras.h"

namespace sd::serve {

struct Checkpoint {
    std::string path;       // on disk
    std::string filename;   // relative to the models folder (or the -m file's base name): "sub/v1-5.safetensors"
    std::string model_name; // filename without extension: "sub/v1-5"
    std::string hash;       // first 10 hex digits of the SHA-256 once computed (webui's shorthash); else empty
    // The webui's title: "v1-5.safetensors [6ce0161689]", or the filename alone before the hash is known.
    std::string title() const { return hash.empty() ? filename : filename + " [" + hash + "]"; }
};

struct EngineConfig {
    std::string model;       // -m: the checkpoint loaded first
    std::string models_dir;  // --models-dir: more checkpoints (*.safetensors, searched two levels deep)
    std::string outdir = "outputs";  // save_images: OUTDIR/txt2img-images/YYYY-MM-DD/NNNNN-SEED.png (img2img-images)
    size_t max_queue = 32;   // waiting jobs beyond this are refused (HTTP 503)
    bool taesd_previews = true;
    std::string version;     // "Version" in infotexts
    std::string embeddings_dir;  // textual-inversion embeddings; empty: embeddings/ beside -m (as the CLI)
    std::string lora_dir;        // LoRAs named by <lora:...> in prompts; empty: loras/ beside -m (as the CLI)
    std::string upscalers_dir;   // upscaler models (.safetensors); empty: upscalers/ beside -m
    // Bytes a job may still allocate; 0: ask the system (app/memory.h) — tests set it to see a refusal.
    size_t memory_available = 0;
};

// The Extras tab's upscale of decoded images (server/extras.h), with the text chunks each keeps.
struct ExtrasJob {
    ExtrasRequest request;
    std::vector<Image> images;
    std::vector<std::vector<std::pair<std::string, std::string>>> texts;  // each input PNG's text chunks
    std::shared_ptr<const UpscalerEntry> upscaler_1, upscaler_2;            // null: "None"
};

struct Job {
    GenerateParams params;   // seed: the first image's; image i uses seed + i
    int batch_size = 1, n_iter = 1;
    std::string checkpoint;  // a Checkpoint's path; empty: the current one
    bool save_images = false;
    std::string task_id;     // for /internal/progress; may be empty
    std::string sampler_label, schedule_label;  // for infotexts: "Euler a", "Karras"
    std::shared_ptr<const Img2imgParams> img2img;  // the init image and strength; null: txt2img
    std::shared_ptr<const HiresParams> hires;      // txt2img with the hires fix; null: without
    bool hires_upscaler_named = false;             // hr_upscaler given (else no "Hires upscaler" in the infotext)
    std::shared_ptr<const ExtrasJob> extras;       // an upscale instead of a generation; null: none
};

struct JobResult {
    int status = 200;        // 200, or 422 (too big for the memory) / 500 / 503 with `error`
    std::string error;
    std::vector<std::vector<uint8_t>> pngs;  // finished images with their "parameters" chunk
    std::vector<uint64_t> seeds;             // of every planned image (all_seeds)
    std::vector<std::string> infotexts;      // of the finished images
    InfoText info;                           // the fields all images share (the first image's seed), for Processed.js
    std::string model_name, model_hash;
    std::string job_timestamp, version;  // "YYYYmmddHHMMSS" of the start; the infotexts' Version
    bool interrupted = false;
    std::string html_info;  // extras: the last image's "postprocessing" text as HTML
};

// The webui's shared.state.dict() plus our queue length, and the values /progress computes from it.
struct ProgressInfo {
    bool skipped = false, interrupted = false;
    std::string job;                 // "" idle, "txt2img", "img2img" or "extras" busy
    int job_count = 0, job_no = 0, sampling_step = 0, sampling_steps = 0;
    std::string job_timestamp;       // "YYYYmmddHHMMSS" of the running job's start
    int queued = 0;                  // jobs waiting behind the running one
    double progress = 0, eta_relative = 0;
    std::string preview_png;         // latest live preview (PNG bytes), may be empty
    int preview_id = 0;              // increases with every new preview
    std::string current_task;
};

// What /internal/progress tells about one task id.
struct TaskState {
    bool active = false, queued = false, completed = false;
    int queue_position = 0;  // 1-based among waiting jobs when queued
    int queue_length = 0;
};

class Engine {
public:
    explicit Engine(EngineConfig cfg);  // scans the checkpoints; throws if -m is missing
    ~Engine();

    void start();  // the worker thread
    // Queues a job; `done` runs on the worker thread (or at once when refused). False when refused.
    bool submit(Job job, std::function<void(JobResult)> done);
    void interrupt();
    void skip();
    // want_preview asks the worker to render a preview at its next step.
    ProgressInfo progress(bool want_preview);
    TaskState task(const std::string& id);

    std::vector<Checkpoint> checkpoints();
    void refresh_checkpoints();
    // The checkpoint a name means: a title, filename, model name, file name alone, or hash; false when none.
    bool find_checkpoint(const std::string& name, Checkpoint* out);
    Checkpoint current_checkpoint();
    void set_current_checkpoint(const Checkpoint& c);  // used by jobs that do not name one
    int clip_skip_default() const { return clip_skip_.load(); }
    void set_clip_skip_default(int v) { clip_skip_.store(v); }
    int text_layers();  // of the current model once loaded (CLIP skip bound); 12 before
    const std::string& lora_dir() const { return cfg_.lora_dir; }          // resolved: never empty
    const std::string& upscalers_dir() const { return cfg_.upscalers_dir; }  // resolved: never empty

    // The textual-inversion embeddings for the current checkpoint's text width (read from its header when it is not
    // loaded yet), reloaded when the folder changed since or `reload` is set (POST /sdapi/v1/refresh-embeddings).
    std::shared_ptr<const EmbeddingDb> embeddings(bool reload = false);
    // The refusal of a width × height job on `checkpoint` (a path; empty: the current one) when it cannot fit in
    // the memory left, decided now if that model is loaded and no job runs or waits (their memory would be
    // counted against it), else empty — the worker decides again before the job's first step either way.
    std::string memory_refusal_now(const std::string& checkpoint, int width, int height);

    void shutdown(double drain_seconds);

private:
    struct Pending {
        Job job;
        std::function<void(JobResult)> done;
    };
    void worker();
    JobResult run(const Job& job);
    JobResult run_extras(const ExtrasJob& job);
    void ensure_model(const std::string& path);
    std::shared_ptr<const EmbeddingDb> embeddings_for(int64_t width, bool reload);
    size_t memory_available() const;

    EngineConfig cfg_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<Pending> queue_;
    bool closing_ = false;
    std::thread thread_;
    std::vector<Checkpoint> checkpoints_;
    std::string current_path_;
    std::atomic<int> clip_skip_{1};

    // Worker-owned model state (the worker is the only user; m_ guards the fields others read).
    std::unique_ptr<Model> model_;
    std::string model_path_;
    int text_layers_ = 12;
    int64_t text_width_ = 0;  // of the loaded model's text encoder (the embeddings' width); 0 before

    // Guarded by emb_m_ (taken without m_ held): the embeddings, the width and folder time they were read for.
    std::mutex emb_m_;
    std::shared_ptr<const EmbeddingDb> embeddings_;
    int64_t embeddings_width_ = -1;
    int64_t embeddings_mtime_ = -1;

    std::atomic<bool> cancel_{false}, skip_{false}, interrupt_{false}, preview_wanted_{false};
    ProgressInfo state_;      // guarded by m_
    double time_start_ = 0;   // of the running job
    std::string running_task_;
    std::deque<std::string> completed_;  // recent task ids
};

}  // namespace sd::serve
