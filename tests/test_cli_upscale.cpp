// test_cli_upscale.cpp — `sd upscale` end to end (the tiny models of tools/upscaler_reference.py) and each way it
// refuses: one sentence on stderr, a non-zero exit, no output file.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "app/image_io.h"
#include "pipeline/resample.h"
#include "models/upscaler.h"
#include "pipeline/upscale.h"
#include "sd_command.h"

using namespace sd;
namespace fs = std::filesystem;

namespace {

struct Run {
    int code = -1;
    std::string err;
};

// ./sd upscale ARGS (from the repository root; SD_BIN and SD_TEST_RUNNER as in sd_command.h), stderr captured;
// arguments are single-quoted for the shell.
Run sd_upscale(const std::vector<std::string>& args, const std::string& dir) {
    std::string cmd = sd::test::sd_shell() + " upscale";
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " 2>'" + dir + "/stderr' >/dev/null";
    Run r;
    const int status = std::system(cmd.c_str());
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::ifstream f(dir + "/stderr");
    r.err.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return r;
}

struct Dir {
    std::string path;
    Dir() {
        char tmpl[] = "/tmp/sd_test_upscale_XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~Dir() { std::error_code ec; fs::remove_all(path, ec); }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

Image pattern(int w, int h) {
    Image img;
    img.width = w; img.height = h; img.channels = 3;
    for (int i = 0; i < w * h * 3; i++) img.pixels.push_back((uint8_t)((i * 37) % 251));
    return img;
}

void write_png(const std::string& path, const Image& img, const std::vector<std::pair<std::string, std::string>>& text = {}) {
    write_file_atomic(path, encode_png(img, text));
}

Image read_png(const std::string& path, std::vector<std::pair<std::string, std::string>>* text = nullptr) {
    std::ifstream f(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (text) *text = read_png_text(bytes);
    return decode_image(bytes.data(), bytes.size(), path);
}

const std::string kCompact = "tests/data/upscaler_compact_x4.safetensors";
const std::string kX2 = "tests/data/upscaler_bsrgan_x2.safetensors";

}  // namespace

TEST_CASE("cli upscale: writes the model's upscale with the webui's extras text, keeping the input's") {
    REQUIRE(fs::exists(sd::test::sd_binary()));
    Dir d;
    const Image in = pattern(20, 12);
    write_png(d / "in.png", in, {{"parameters", "a cat\nSteps: 20, Seed: 1"}});
    Run r = sd_upscale({"-m", kCompact, "-i", d / "in.png", "-o", d / "out.png", "--precision", "fp32", "--tile", "16",
                        "--tile-overlap", "4"}, d.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    std::vector<std::pair<std::string, std::string>> text;
    Image out = read_png(d / "out.png", &text);
    CHECK(out.width == 80);
    CHECK(out.height == 48);
    Image want = upscale_with_model(load_upscaler(kCompact), in, {16, 4});
    CHECK(out.pixels == want.pixels);
    const std::string info = "Postprocess upscale by: 4, Postprocess upscaler: upscaler_compact_x4";
    CHECK(text == std::vector<std::pair<std::string, std::string>>{
                      {"parameters", "a cat\nSteps: 20, Seed: 1"}, {"postprocessing", info}, {"extras", info}});

    // --scale 2 with a 4x model: one pass to 80x48, then PIL's Lanczos down to 40x24 (Upscaler.upscale).
    r = sd_upscale({"-m", kCompact, "-i", d / "in.png", "-o", d / "x2.png", "--scale", "2", "--precision", "fp32"}, d.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    out = read_png(d / "x2.png");
    CHECK(out.width == 40);
    CHECK(out.height == 24);
    CHECK(out.pixels == pil_resize(upscale_with_model(load_upscaler(kCompact), in), 40, 24, PilFilter::lanczos).pixels);

    // --scale 8 with a 2x model: three passes (20 -> 40 -> 80 -> 160), as Upscaler.upscale loops.
    r = sd_upscale({"-m", kX2, "-i", d / "in.png", "-o", d / "x8.png", "--scale", "8"}, d.path);
    INFO(r.err);
    REQUIRE(r.code == 0);
    out = read_png(d / "x8.png");
    CHECK(out.width == 160);
    CHECK(out.height == 96);
}

TEST_CASE("cli upscale: bad input is one sentence, a non-zero exit and no file") {
    REQUIRE(fs::exists(sd::test::sd_binary()));
    Dir d;
    write_png(d / "in.png", pattern(20, 12));
    write_png(d / "wide.png", pattern(1100, 8));
    { std::ofstream(d / "notes.png") << "a cat, masterpiece\n"; }
    { std::ofstream(d / "model.pth") << "PK\x03\x04"; }
    const std::string out = d / "out.png";
    struct Case { const char* what; std::vector<std::string> args; int code; std::vector<std::string> says; };
    const std::vector<Case> cases = {
        {"missing model", {"-m", d / "none.safetensors", "-i", d / "in.png", "-o", out}, 1, {"none.safetensors", "no such file"}},
        {".pth model", {"-m", d / "model.pth", "-i", d / "in.png", "-o", out}, 1, {"model.pth", "convert it to .safetensors"}},
        {"not an upscaler", {"-m", "models/taesd/taesd_decoder.safetensors", "-i", d / "in.png", "-o", out}, 1,
         {"is not an ESRGAN (RRDBNet) or Real-ESRGAN Compact (SRVGGNet) upscaler"}},
        {"missing image", {"-m", kCompact, "-i", d / "none.png", "-o", out}, 1, {"cannot read image", "none.png"}},
        {"image is a folder", {"-m", kCompact, "-i", d.path, "-o", out}, 1, {"it is a folder"}},
        {"not an image", {"-m", kCompact, "-i", d / "notes.png", "-o", out}, 1, {"notes.png' is not an image sd can read"}},
        {"scale 100", {"-m", kCompact, "-i", d / "in.png", "-o", out, "--scale", "100"}, 2, {"--scale wants a number above 0 and at most 16, not '100'"}},
        {"scale 0", {"-m", kCompact, "-i", d / "in.png", "-o", out, "--scale", "0"}, 2, {"--scale wants"}},
        {"scale nan", {"-m", kCompact, "-i", d / "in.png", "-o", out, "--scale", "nan"}, 2, {"--scale wants"}},
        {"result too large", {"-m", kCompact, "-i", d / "wide.png", "-o", out, "--scale", "16"}, 1,
         {"upscaling 1100x8 by 16 would make an image over 16384 pixels a side"}},
        {"scale below 8 pixels", {"-m", kCompact, "-i", d / "in.png", "-o", out, "--scale", "0.25"}, 1, {"less than 8 pixels a side"}},
        {"output folder missing", {"-m", kCompact, "-i", d / "in.png", "-o", "/nonexistent/dir/x.png"}, 1,
         {"cannot write '/nonexistent/dir/x.png': the folder '/nonexistent/dir' does not exist"}},
        {"output is a folder", {"-m", kCompact, "-i", d / "in.png", "-o", d.path}, 1, {"it is a folder"}},
        {"no -o", {"-m", kCompact, "-i", d / "in.png"}, 2, {"needs where to write the result: -o OUT.png"}},
        {"no -m", {"-i", d / "in.png", "-o", out}, 2, {"needs the upscaler model"}},
        {"overlap >= tile", {"-m", kCompact, "-i", d / "in.png", "-o", out, "--tile", "8", "--tile-overlap", "8"}, 2,
         {"--tile-overlap (8) must be less than --tile (8)"}},
        {"unknown option", {"-m", kCompact, "-i", d / "in.png", "-o", out, "--strength", "1"}, 2, {"unknown option '--strength'"}},
    };
    for (const Case& c : cases) {
        Run r = sd_upscale(c.args, d.path);
        INFO(std::string(c.what) << ": " << r.err);
        CHECK(r.code == c.code);
        CHECK(r.err.rfind("sd upscale: ", 0) == 0);
        CHECK(r.err.find('\n') == r.err.size() - 1);  // one line
        for (const std::string& s : c.says) CHECK(r.err.find(s) != std::string::npos);
        CHECK(!fs::exists(out));
    }
}
