// sha256.h — SHA-256 (FIPS 180-4), for the webui-compatible "Model hash" (first 10 hex digits of the
// checkpoint file's SHA-256). Streaming: feed bytes with update(), read the digest with hex().
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

namespace sd {

class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t n);
    std::string hex();  // finalises; call once

private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

std::string sha256_hex(const void* data, size_t n);
// SHA-256 of a whole file (read in 1 MiB chunks); throws naming the file if it cannot be read, and throws
// HashStopped as soon as *stop becomes true.
std::string sha256_file(const std::string& path, const std::atomic<bool>* stop = nullptr);
struct HashStopped : std::runtime_error {
    HashStopped() : std::runtime_error("hashing stopped") {}
};
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
