// model_hash.h — the webui's "Model hash" of a checkpoint (the first 10 hex digits of the file's SHA-256), cached, and
// computed on its own thread while the text encoder and sampler run.
#pragma once
#include <atomic>
#include <exception>
#include <string>
#include <thread>

#include "sha256.h"

namespace sd {

// The webui's model hash: first 10 hex digits of the file's SHA-256, cached in
// $XDG_CACHE_HOME/sd/hashes.tsv (or ~/.cache/sd/) keyed by absolute path, size and mtime,
// so only the first run pays for reading the file. Cache problems are ignored (the hash is recomputed).
// A hash stopped early (HashStopped) is not cached.
std::string model_hash(const std::string& path, const std::atomic<bool>* stop = nullptr);

// model_hash on its own thread, started at construction: the first run on a 2 GB checkpoint spends ~13 s reading
// and hashing it, which this overlaps with the text encoder and the sampler; the infotext needs the hash only when
// the PNG is written. get() waits for it (at once when cached) and rethrows a hashing error. Destroying the job
// before it finished (an error, Ctrl-C) stops the hashing within one 1 MiB chunk and caches nothing.
class ModelHashJob {
public:
    explicit ModelHashJob(const std::string& path);
    ~ModelHashJob();
    ModelHashJob(const ModelHashJob&) = delete;
    ModelHashJob& operator=(const ModelHashJob&) = delete;
    const std::string& get();

private:
    std::atomic<bool> stop_{false};
    std::string hash_;
    std::exception_ptr error_;
    std::thread thread_;  // last: starts once the members it writes exist
};

}  // namespace sd
