// sha256.h — SHA-256 (FIPS 180-4): the webui's file hashes (checkpoint, LoRA, embedding) are digests of it.
// Streaming: feed bytes with update(), read the digest with hex(). The cached, background model hash: app/model_hash.h.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

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

}  // namespace sd
