// image.h — an 8-bit image as the pipeline makes it (decode_latent) and reads it (img2img, masks, upscalers).
// Reading and writing files: app/image_io.h.
#pragma once
#include <cstdint>
#include <vector>

namespace sd {

struct Image {
    int width = 0, height = 0, channels = 0;  // channels: 1 (a mask), 3 (RGB) or 4 (RGBA)
    std::vector<uint8_t> pixels;              // (height, width, channels), row-major
};

}  // namespace sd
