// image_io.cpp — PNG encoding via stb_image_write, plus our own text chunks and CRC; atomic file writes.
// The stb implementations are compiled here only, as static functions, so no other file can clash with them.
#include "app/image_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_MAX_DIMENSIONS 16384  // = kMaxImageSide: every decoder refuses larger headers itself, too
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace sd {
namespace {

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
    static uint32_t table[256];
    static bool init = [] {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return true;
    }();
    (void)init;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

void put_u32(std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back((uint8_t)(x >> s));
}
uint32_t get_u32(const uint8_t* p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

// UTF-8 → Latin-1 if every code point is below 256; false otherwise (or if the UTF-8 is invalid).
bool utf8_to_latin1(const std::string& s, std::string& out) {
    out.clear();
    for (size_t i = 0; i < s.size(); i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) out += (char)c;
        else if ((c == 0xc2 || c == 0xc3) && i + 1 < s.size() && ((uint8_t)s[i + 1] & 0xc0) == 0x80) {
            out += (char)(((c & 0x1f) << 6) | ((uint8_t)s[i + 1] & 0x3f));
            i++;
        } else return false;
    }
    return true;
}
std::string latin1_to_utf8(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c < 0x80) out += (char)c;
        else { out += (char)(0xc0 | (c >> 6)); out += (char)(0x80 | (c & 0x3f)); }
    }
    return out;
}

std::vector<uint8_t> chunk(const char type[4], const std::string& data) {
    std::vector<uint8_t> c;
    put_u32(c, (uint32_t)data.size());
    c.insert(c.end(), type, type + 4);
    c.insert(c.end(), data.begin(), data.end());
    put_u32(c, crc32(c.data() + 4, data.size() + 4));
    return c;
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& img, const std::vector<std::pair<std::string, std::string>>& text) {
    if (img.width <= 0 || img.height <= 0 || (img.channels != 3 && img.channels != 4) ||
        img.pixels.size() != (size_t)img.width * img.height * img.channels)
        throw std::logic_error("encode_png: inconsistent image");
    int len = 0;
    unsigned char* png = stbi_write_png_to_mem(img.pixels.data(), img.width * img.channels, img.width,
                                               img.height, img.channels, &len);
    if (!png) throw std::runtime_error("PNG encoding failed (out of memory?)");
    std::vector<uint8_t> out(png, png + len);
    STBIW_FREE(png);
    // Insert the text chunks right after IHDR (8-byte signature + 25-byte IHDR chunk).
    std::vector<uint8_t> chunks;
    for (auto& [key, value] : text) {
        std::string latin;
        std::vector<uint8_t> c;
        if (utf8_to_latin1(value, latin)) c = chunk("tEXt", key + '\0' + latin);
        else c = chunk("iTXt", key + '\0' + '\0' + '\0' + '\0' + '\0' + value);  // no compression, no language
        chunks.insert(chunks.end(), c.begin(), c.end());
    }
    out.insert(out.begin() + 33, chunks.begin(), chunks.end());
    return out;
}

std::vector<std::pair<std::string, std::string>> read_png_text(const std::vector<uint8_t>& png) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (png.size() < 8 || std::memcmp(png.data(), sig, 8) != 0) throw std::runtime_error("not a PNG file");
    std::vector<std::pair<std::string, std::string>> out;
    size_t pos = 8;
    while (pos + 12 <= png.size()) {
        uint32_t len = get_u32(&png[pos]);
        if (len > png.size() - pos - 12) throw std::runtime_error("truncated PNG chunk");
        std::string type((const char*)&png[pos + 4], 4);
        std::string data((const char*)&png[pos + 8], len);
        if (crc32(&png[pos + 4], len + 4) != get_u32(&png[pos + 8 + len])) throw std::runtime_error("PNG chunk CRC mismatch");
        size_t nul = data.find('\0');
        if (type == "tEXt" && nul != std::string::npos) {
            out.emplace_back(data.substr(0, nul), latin1_to_utf8(data.substr(nul + 1)));
        } else if (type == "iTXt" && nul != std::string::npos && nul + 2 < data.size() && data[nul + 1] == 0) {
            size_t lang_end = data.find('\0', nul + 3);
            size_t key_end = lang_end == std::string::npos ? lang_end : data.find('\0', lang_end + 1);
            if (key_end != std::string::npos) out.emplace_back(data.substr(0, nul), data.substr(key_end + 1));
        }
        if (type == "IEND") break;
        pos += 12 + len;
    }
    return out;
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    std::string tmpl = dir + "/.sd-tmp-XXXXXX";
    std::vector<char> tmp(tmpl.begin(), tmpl.end());
    tmp.push_back('\0');
    int fd = mkstemp(tmp.data());
    if (fd < 0)
        throw std::runtime_error("cannot write '" + path + "': folder '" + dir + "' is not writable (" +
                                 std::strerror(errno) + ")");
    auto fail = [&](const char* what) {
        int e = errno;
        close(fd);
        unlink(tmp.data());
        throw std::runtime_error("cannot write '" + path + "': " + what + " (" + std::strerror(e) + "); nothing was written");
    };
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("write failed");
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0) fail("flush to disk failed");
    fchmod(fd, 0644);
    if (close(fd) != 0) { fd = -1; unlink(tmp.data()); throw std::runtime_error("cannot write '" + path + "': close failed"); }
    if (rename(tmp.data(), path.c_str()) != 0) {
        int e = errno;
        unlink(tmp.data());
        throw std::runtime_error("cannot write '" + path + "': " + std::strerror(e));
    }
}

// stb_image 2.27 (Debian's) builds a JPEG Huffman table from 16 code counts without checking that they total at
// most 256 symbols, and writes past its 257-entry tables when they do (fixed upstream in 2.28; found by
// tests/fuzz/fuzz_image.cpp). This walks the markers as stb's decoder does (fill bytes, skipping stray bytes
// between segments, entropy-coded data up to the next marker that is not a stuffed 00 or a restart) and refuses
// any DHT table over 256 symbols before stb sees the file.
static bool jpeg_huffman_tables_fit(const uint8_t* d, size_t n) {
    if (n < 2 || d[0] != 0xFF || d[1] != 0xD8) return true;  // not a JPEG
    size_t p = 2;
    while (p + 1 < n) {
        if (d[p] != 0xFF) { p++; continue; }  // stb skips bytes until a marker
        while (p < n && d[p] == 0xFF) p++;    // fill bytes
        if (p >= n) break;
        const uint8_t m = d[p++];
        if (m == 0xD9) break;                                      // end of image
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
        if (p + 2 > n) break;
        const size_t len = (size_t)d[p] << 8 | d[p + 1];
        if (m == 0xC4) {  // DHT: tables of [class/id, 16 counts, symbols], as many as the length holds
            long left = (long)len - 2;
            size_t q = p + 2;
            while (left > 0 && q < n) {
                int symbols = 0;  // stb reads 0 past the end of the data, so a cut-off table still counts
                for (size_t i = 1; i <= 16; i++) symbols += q + i < n ? d[q + i] : 0;
                if (symbols > 256) return false;
                q += 17 + symbols;
                left -= 17 + symbols;
            }
        }
        p += len;
        if (m == 0xDA) {  // start of scan: entropy-coded data runs to the next real marker
            while (p + 1 < n && !(d[p] == 0xFF && d[p + 1] != 0x00 && !(d[p + 1] >= 0xD0 && d[p + 1] <= 0xD7))) p++;
        }
    }
    return true;
}

// Two more stb_image 2.27 PNG troubles the fuzzer found: it grows its IDAT buffer to the length a chunk claims
// before reading it (a 1 GB claim in a 100-byte file is a 1 GB allocation), and it memcpy's a zero-length first
// IDAT into a null buffer (undefined behaviour). A chunk whose data runs past the end is refused here (stb
// would refuse it too, after the allocation); empty IDAT chunks, legal but meaningless, are left out of a
// copy (*cleaned) that stb decodes instead. Returns false for the former.
static bool png_chunks_fit(const uint8_t* d, size_t n, std::vector<uint8_t>* cleaned) {
    static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n < 8 || std::memcmp(d, kSignature, 8) != 0) return true;
    std::vector<size_t> empty_idat;  // offsets of the 12-byte empty IDAT chunks
    for (size_t p = 8; p + 8 <= n;) {
        const size_t len = (size_t)d[p] << 24 | (size_t)d[p + 1] << 16 | (size_t)d[p + 2] << 8 | d[p + 3];
        if (len > n - p - 8) return false;
        if (std::memcmp(d + p + 4, "IEND", 4) == 0) break;
        if (len == 0 && std::memcmp(d + p + 4, "IDAT", 4) == 0) empty_idat.push_back(p);
        p += 12 + len;
    }
    if (!empty_idat.empty()) {
        cleaned->clear();
        size_t from = 0;
        for (size_t at : empty_idat) {
            cleaned->insert(cleaned->end(), d + from, d + at);
            from = std::min(n, at + 12);
        }
        cleaned->insert(cleaned->end(), d + from, d + n);
    }
    return true;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& label, int64_t max_pixels) {
    int w = 0, h = 0, c = 0;
    if (!jpeg_huffman_tables_fit(data, size))
        throw std::runtime_error(label + " is a corrupt JPEG (a Huffman table of more than 256 symbols)");
    std::vector<uint8_t> cleaned;
    if (!png_chunks_fit(data, size, &cleaned))
        throw std::runtime_error(label + " is a corrupt PNG (a chunk runs past the end of the file)");
    if (!cleaned.empty()) { data = cleaned.data(); size = cleaned.size(); }
    if (size > (size_t)INT32_MAX || !stbi_info_from_memory(data, (int)size, &w, &h, &c))
        throw std::runtime_error(label + " is not an image sd can read (PNG, JPEG, BMP, GIF, TGA, PSD, PNM)");
    if (w < 1 || h < 1) throw std::runtime_error(label + " is an image of no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
    if (w > kMaxImageSide || h > kMaxImageSide || (int64_t)w * h > max_pixels)
        throw std::runtime_error(label + " is " + std::to_string(w) + "x" + std::to_string(h) + "; sd reads images up to " +
                                 std::to_string(kMaxImageSide) + " pixels a side and " +
                                 std::to_string(max_pixels / 1000000) + " megapixels");
    const int want = c == 2 || c == 4 ? 4 : 3;  // keep alpha where there is one
    unsigned char* p = stbi_load_from_memory(data, (int)size, &w, &h, &c, want);
    if (!p) throw std::runtime_error("cannot decode image " + label + ": " + stbi_failure_reason());
    if (w < 1 || h < 1 || (int64_t)w * h > max_pixels) {  // a decoder that read other dimensions than its info pass said
        stbi_image_free(p);
        throw std::runtime_error("cannot decode image " + label + ": its size changed while decoding");
    }
    Image img;
    img.width = w; img.height = h; img.channels = want;
    img.pixels.assign(p, p + (size_t)w * h * want);
    stbi_image_free(p);
    return img;
}

Image read_image_rgb(const std::string& path) {
    int w = 0, h = 0, c = 0;
    unsigned char* p = stbi_load(path.c_str(), &w, &h, &c, 3);
    if (!p) throw std::runtime_error("cannot read image '" + path + "': " + stbi_failure_reason());
    Image img;
    img.width = w; img.height = h; img.channels = 3;
    img.pixels.assign(p, p + (size_t)w * h * 3);
    stbi_image_free(p);
    return img;
}

Image read_image(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        throw std::runtime_error("cannot read image '" + path + "': " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw std::runtime_error("cannot read image '" + path + "': it is a folder");
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot read image '" + path + "': " + std::strerror(errno));
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    const bool bad = std::ferror(f);
    std::fclose(f);
    if (bad) throw std::runtime_error("cannot read image '" + path + "': read error");
    // the file's bytes go through the same checks as any other image: stb never sees a corrupt table or chunk
    return decode_image(bytes.data(), bytes.size(), "'" + path + "'", (int64_t)kMaxImageSide * kMaxImageSide);
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& what, int64_t max_pixels) {
    return decode_image(bytes.data(), bytes.size(), what, max_pixels);
}

}  // namespace sd
