// npy.h — writes float32 arrays as NumPy .npy files (format version 1.0), for --dump-latents:
// numpy.load(path) gives an array of the given shape, C order, dtype '<f4'.
// Left out: reading, other dtypes, Fortran order, format versions 2 and 3 (headers over 64 KiB).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sd {

// The .npy bytes: magic, version 1.0, little-endian header length, a Python-dict header padded with
// spaces and ending in '\n' so the data starts at a multiple of 64 bytes, then the little-endian floats.
std::string npy_bytes(const float* data, const std::vector<int64_t>& shape);

// Writes npy_bytes to path; throws std::runtime_error naming the path if it cannot be written.
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace sd
