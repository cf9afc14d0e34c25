// image_io.h — reading images and writing PNGs atomically with the webui's "parameters" text chunk.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/image.h"

namespace sd {

// Encodes `img` as PNG with tEXt/iTXt chunks for each (key, value) pair — tEXt when the value is
// Latin-1 text (what PIL, and so the webui, writes), iTXt (UTF-8) otherwise.
std::vector<uint8_t> encode_png(const Image& img, const std::vector<std::pair<std::string, std::string>>& text);

// Writes bytes to `path` atomically: a temporary file in the same folder, flushed and synced, then renamed
// over `path`. On any failure (unwritable folder, disk full) the temporary file is removed and a
// std::runtime_error names the path and the reason; `path` is never left half-written.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

// The limits on a decoded image: a hostile file may claim any size in a few bytes, and the decoders allocate
// what the header claims before they find the data missing.
constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;  // 64 megapixels (8192 x 8192): 256 MB as RGBA

// Decodes PNG/JPEG/BMP/GIF/... bytes (stb_image) as RGB, or RGBA when the image has alpha (gray becomes RGB).
// Throws one sentence naming `label`: not an image, or larger than kMaxImageSide a side or max_pixels in all.
Image decode_image(const uint8_t* data, size_t size, const std::string& label, int64_t max_pixels = kMaxImagePixels);

// Reads PNG/JPEG/BMP/... (stb_image) as RGB; throws naming the file on failure.
Image read_image_rgb(const std::string& path);

// Reads PNG/JPEG/BMP/... keeping transparency: RGB, or RGBA when the file has alpha (gray becomes RGB). Throws
// one sentence naming the file: missing, unreadable, not an image, or larger than 16384 pixels a side.
Image read_image(const std::string& path);
// read_image on bytes in memory (an image sent to the server); `what` names it in the error ("init_images[0]"),
// and an image above max_pixels is refused from its header, before it is decoded.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& what, int64_t max_pixels);

// The text chunks of a PNG (tEXt and uncompressed iTXt), in file order; throws on a malformed PNG.
std::vector<std::pair<std::string, std::string>> read_png_text(const std::vector<uint8_t>& png);

}  // namespace sd
