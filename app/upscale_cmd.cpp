// upscale_cmd.cpp — `sd upscale`: the webui's Extras tab upscale ("Scale by") with one ESRGAN-family model file.
//
//   sd upscale -m MODEL.safetensors -i IN.png -o OUT.png [--scale F] [--tile N] [--tile-overlap N] [-t N]
//
// As the webui: the image goes through the model until it is `scale` times larger (Upscaler.upscale; a Lanczos
// resize makes up any difference, e.g. --scale 2 with a 4x model), transparency is dropped (its upscalers take
// img.convert("RGB")), and the PNG keeps the input's text chunks plus "postprocessing" and "extras":
// "Postprocess upscale by: 4, Postprocess upscaler: NAME" (postprocessing.run_postprocessing).
#include "app/upscale_cmd.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "app/bench.h"
#include "app/image_io.h"
#include "app/infotext.h"
#include "kernels/kernels.h"
#include "pipeline/upscale.h"

namespace sd {

namespace {

const char* kUsage = R"(usage: sd upscale -m MODEL -i IN -o OUT.png [options]

Upscales an image with an ESRGAN-family model as the webui's Extras tab does: ESRGAN / Real-ESRGAN (RRDBNet,
x4plus, x2plus) and Real-ESRGAN Compact (realesr-general-x4v3), from .safetensors files.

options:
  -m, --model PATH        the upscaler (.safetensors; a .pth must be converted first)
  -i, --input PATH        the image (PNG, JPEG, BMP, ...)
  -o, --output PATH       the PNG to write
      --scale F           how much larger, above 0 and at most 16 (default: the model's own scale); the
                          model runs until the image is at least that large, then Lanczos resizes to
                          W*F and H*F rounded down to multiples of 8, as the webui
      --tile N            tile size, 0 for none (default: 192, the webui's ESRGAN_tile)
      --tile-overlap N    tile overlap, 0..N-1 (default: 8, the webui's ESRGAN_tile_overlap)
  -t, --threads N         worker threads (default: all cores)
      --precision P       fp32 or bf16 matrix products (default: bf16 where the CPU has AVX512_BF16)
  -v, --verbose           print timings
)";

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::atomic<bool> g_stop{false};
void on_sigint(int) {
    if (g_stop.exchange(true)) _exit(130);
}

int parse_int(const std::string& flag, const std::string& v, int lo, int hi) {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || errno || n < lo || n > hi)
        throw UsageError(flag + " wants a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                         ", not '" + v + "'");
    return (int)n;
}

std::vector<uint8_t> read_bytes(const std::string& path, const char* what) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        throw std::runtime_error(std::string("cannot read ") + what + " '" + path + "': " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw std::runtime_error(std::string("cannot read ") + what + " '" + path + "': it is a folder");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(std::string("cannot read ") + what + " '" + path + "': " + std::strerror(errno));
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string stem(const std::string& path) {  // modelloader.friendly_name: the file name without its extension
    std::string name = path.substr(path.find_last_of('/') + 1);
    const size_t dot = name.rfind('.');
    return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

// The shortest of "%g" forms that reads back as the same double: 4, 2.5, 1.3333333333333333.
std::string number_text(double v) {
    char b[64];
    for (int prec = 1; prec <= 17; prec++) {
        std::snprintf(b, sizeof b, "%.*g", prec, v);
        if (std::strtod(b, nullptr) == v) break;
    }
    std::string s = b;
    return s;
}

struct Args {
    std::string model, input, output;
    double scale = 0;  // 0: the model's own
    UpscaleTiling tiling;
    int threads = 0;
    std::string precision;
    bool verbose = false, help = false;
};

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        const std::string f = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw UsageError(f + " needs a value");
            return argv[++i];
        };
        if (f == "-h" || f == "--help") a.help = true;
        else if (f == "-m" || f == "--model") a.model = value();
        else if (f == "-i" || f == "--input") a.input = value();
        else if (f == "-o" || f == "--output") a.output = value();
        else if (f == "--scale") {
            const std::string v = value();
            char* end = nullptr;
            a.scale = std::strtod(v.c_str(), &end);
            if (v.empty() || *end || !(a.scale > 0 && a.scale <= 16))
                throw UsageError("--scale wants a number above 0 and at most 16, not '" + v + "'");
        } else if (f == "--tile") a.tiling.tile = parse_int(f, value(), 0, 4096);
        else if (f == "--tile-overlap") a.tiling.overlap = parse_int(f, value(), 0, 1024);
        else if (f == "-t" || f == "--threads") a.threads = parse_int(f, value(), 1, 1024);
        else if (f == "--precision") {
            a.precision = value();
            if (a.precision != "fp32" && a.precision != "bf16")
                throw UsageError("--precision wants fp32 or bf16, not '" + a.precision + "'");
        } else if (f == "-v" || f == "--verbose") a.verbose = true;
        else throw UsageError("unknown option '" + f + "' for sd upscale (see sd upscale --help)");
    }
    if (a.help) return a;
    if (a.model.empty()) throw UsageError("sd upscale needs the upscaler model: -m MODEL.safetensors");
    if (a.input.empty()) throw UsageError("sd upscale needs the image to upscale: -i IN.png");
    if (a.output.empty()) throw UsageError("sd upscale needs where to write the result: -o OUT.png");
    if (a.tiling.tile > 0 && a.tiling.overlap >= a.tiling.tile)
        throw UsageError("--tile-overlap (" + std::to_string(a.tiling.overlap) + ") must be less than --tile (" +
                         std::to_string(a.tiling.tile) + ")");
    return a;
}

// The output folder must exist before minutes of work go into an image that cannot be written.
void check_output_folder(const std::string& out) {
    const size_t slash = out.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : out.substr(0, slash);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw std::runtime_error("cannot write '" + out + "': the folder '" + dir + "' does not exist");
    if (access(dir.c_str(), W_OK) != 0)
        throw std::runtime_error("cannot write '" + out + "': the folder '" + dir + "' is not writable");
    if (stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        throw std::runtime_error("cannot write '" + out + "': it is a folder");
}

}  // namespace

int upscale_main(int argc, char** argv) {
    try {
        const Args a = parse(argc, argv);
        if (a.help) { std::printf("%s", kUsage); return 0; }
        if (a.threads > 0) set_num_threads(a.threads);
        if (!a.precision.empty()) set_precision(parse_precision(a.precision.c_str()));
        else if (!std::getenv("SD_PRECISION")) set_precision(best_precision());
        check_output_folder(a.output);

        const std::vector<uint8_t> bytes = read_bytes(a.input, "image");
        Image img = decode_image(bytes.data(), bytes.size(), "'" + a.input + "'");
        if (img.channels == 4) {  // img.convert("RGB"): the alpha channel is dropped, not composited
            Image rgb;
            rgb.width = img.width; rgb.height = img.height; rgb.channels = 3;
            for (size_t i = 0; i < img.pixels.size(); i += 4) rgb.pixels.insert(rgb.pixels.end(), &img.pixels[i], &img.pixels[i + 3]);
            img = std::move(rgb);
        }
        std::vector<std::pair<std::string, std::string>> text;  // the input's own text chunks, kept
        try { text = read_png_text(bytes); } catch (const std::exception&) {}

        const Upscaler u = load_upscaler(a.model);
        const double scale = a.scale > 0 ? a.scale : u.scale;
        const double out_w = std::floor(img.width * scale / 8) * 8, out_h = std::floor(img.height * scale / 8) * 8;
        if (out_w > kMaxImageSide || out_h > kMaxImageSide)
            throw std::runtime_error("upscaling " + std::to_string(img.width) + "x" + std::to_string(img.height) + " by " +
                                     number_text(scale) + " would make an image over " + std::to_string(kMaxImageSide) +
                                     " pixels a side");

        std::signal(SIGINT, on_sigint);
        const bool tty = isatty(2);
        Image out = upscale_image(u, img, scale, a.tiling, [&](int done, int total) {
            if (g_stop) throw std::runtime_error("interrupted; no image was written");
            if (tty) std::fprintf(stderr, "\rupscale: tile %d/%d", done, total);
        });
        if (tty) std::fprintf(stderr, "\n");

        const std::string info = "Postprocess upscale by: " + number_text(scale) +
                                 ", Postprocess upscaler: " + infotext_quote(stem(a.model));
        auto set = [&](const std::string& k, const std::string& v) {
            for (auto& kv : text) if (kv.first == k) { kv.second = v; return; }
            text.push_back({k, v});
        };
        set("postprocessing", info);
        set("extras", info);
        write_file_atomic(a.output, encode_png(out, text));
        if (a.verbose) {
            // The work done: every tile runs whole (a grid of T x T crops), so the model sees more pixels than the
            // image has; FLOPs = 2 x multiply-adds of the convs. CPU-seconds and the peak RSS from getrusage.
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            const double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
            double pixels = 0;  // through the model, summed over passes
            for (int w = img.width, h = img.height; w < out.width || h < out.height || pixels == 0; w *= u.scale, h *= u.scale) {
                const int T = a.tiling.tile;
                pixels += T > 0 ? (double)grid_origins(w, T, a.tiling.overlap).size() * grid_origins(h, T, a.tiling.overlap).size() * T * T
                                : (double)w * h;
                if (u.scale <= 1) break;
            }
            const double gflop = 2 * upscaler_macs_per_pixel(u) * pixels / 1e9;
            const double peak = measure_fma_peak(1).per_core;
            std::fprintf(stderr,
                         "%dx%d -> %dx%d with %s\n"
                         "model: %.2f MFLOP per input pixel, %.0f pixels through it (%.2fx the image's), %.0f GFLOP\n"
                         "time: %.1f CPU-s (%d threads, %s), %.1f GFLOP per CPU-s = %.0f%% of the fp32 FMA peak per core "
                         "(%.0f GFLOP/s); peak RSS %.0f MiB\n",
                         img.width, img.height, out.width, out.height, describe_upscaler(*u.file).c_str(),
                         2 * upscaler_macs_per_pixel(u) / 1e6, pixels, pixels / ((double)img.width * img.height), gflop,
                         cpu, num_threads(), precision_name(active_precision()), gflop / cpu, 100 * gflop / cpu / peak, peak,
                         ru.ru_maxrss / 1024.0);
        }
        return 0;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "sd upscale: %s\n", e.what());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "sd upscale: out of memory; try a smaller --tile\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sd upscale: %s\n", e.what());
        return g_stop ? 130 : 1;
    }
}

}  // namespace sd
