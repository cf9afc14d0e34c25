// npy.cpp — the .npy v1.0 writer (format: numpy/lib/format.py, NEP 1).
#include "app/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace sd {

std::string npy_bytes(const float* data, const std::vector<int64_t>& shape) {
    int64_t count = 1;
    std::string dims;
    for (int64_t d : shape) {
        if (d < 0) throw std::logic_error("npy: negative dimension");
        count *= d;
        dims += std::to_string(d) + ", ";
    }
    if (shape.size() > 1) dims.resize(dims.size() - 2);  // "(4, 64, 64)"; a 1-d shape keeps its comma: "(7,)"
    else if (shape.size() == 1) dims.resize(dims.size() - 1);
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
    const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
    size_t total = preamble + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    if (header.size() > 65535) throw std::logic_error("npy: header too long for format 1.0");

    std::string out("\x93NUMPY\x01\x00", 8);
    out += (char)(header.size() & 0xff);
    out += (char)(header.size() >> 8);
    out += header;
    size_t offset = out.size();
    out.resize(offset + (size_t)count * 4);
    for (int64_t i = 0; i < count; i++) {  // little-endian whatever the host
        uint32_t bits;
        std::memcpy(&bits, data + i, 4);
        for (int b = 0; b < 4; b++) out[offset + (size_t)i * 4 + b] = (char)((bits >> (8 * b)) & 0xff);
    }
    return out;
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
    std::string bytes = npy_bytes(data, shape);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error(path + ": cannot open for writing: " + std::strerror(errno));
    size_t written = std::fwrite(bytes.data(), 1, bytes.size(), f);
    bool ok = written == bytes.size();
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) throw std::runtime_error(path + ": write failed");
}

}  // namespace sd
