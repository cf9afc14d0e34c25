// sha256.h — SHA-256 (FIPS 180-4), for the webui-compatible "Model hash" (first 10 hex digits of the
// checkpoint file's SHA-256). Streaming: feed bytes with update(), read the digest with hex().
#pragma once
#include <cstddef>
#include <cstdint>
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
// SHA-256 of a whole file (read in 1 MiB chunks); throws naming the file if it cannot be read.
std::string sha256_file(const std::string& path);
// The webui's model hash: first 10 hex digits of the file's SHA-256, cached in
// $XDG_CACHE_HOME/sd/hashes.tsv (or ~/.cache/sd/) keyed by absolute path, size and mtime,
// so only the first run pays for reading the file. Cache problems are ignored (the hash is recomputed).
std::string model_hash(const std::string& path);

}  // namespace sd
