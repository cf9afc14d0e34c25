// test_upscaler.cpp — RRDBNet and SRVGGNetCompact against tools/upscaler_reference.py (an independent PyTorch
// implementation, float64) on tiny random weights in four key layouts; the webui's tiled upscale against the same
// tool's PIL re-enactment of upscale_with_model; tiled equal to untiled away from the seams; the loader's refusals.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "compare.h"
#include "models/upscaler.h"
#include "pipeline/upscale.h"
#include "safetensors.h"

using namespace sd;

namespace {

const char* kGolden = "tests/data/golden_upscaler.safetensors";

std::string model_path(const std::string& name) { return "tests/data/upscaler_" + name + ".safetensors"; }

Tensor owned(const Tensor& t) {
    Tensor c = Tensor::zeros(t.dims());
    std::memcpy(c.data, t.data, t.nbytes());
    return c;
}

// An (H, W, 3) float tensor of 8-bit values → an Image.
Image image_of(const Tensor& t) {
    Image img;
    img.height = (int)t.shape[0]; img.width = (int)t.shape[1]; img.channels = 3;
    for (int64_t i = 0; i < t.numel(); i++) img.pixels.push_back((uint8_t)t.f32()[i]);
    return img;
}

struct PixelDiff { int max = 0; int64_t count = 0; };
PixelDiff diff(const Image& a, const Image& b) {
    PixelDiff d;
    REQUIRE(a.width == b.width);
    REQUIRE(a.height == b.height);
    for (size_t i = 0; i < a.pixels.size(); i++) {
        const int e = std::abs((int)a.pixels[i] - (int)b.pixels[i]);
        d.max = std::max(d.max, e);
        d.count += e != 0;
    }
    return d;
}

}  // namespace

TEST_CASE("upscaler: RRDBNet and SRVGGNetCompact match the PyTorch reference in every key layout") {
    SafeTensors golden(kGolden);
    const Tensor x = owned(golden.get("input", {1, 3, 7, 10}));
    struct Case { const char* name; const char* layout; int scale; size_t blocks; int shuffle; };
    for (const Case& c : {Case{"esrgan_old_x4", "old ESRGAN", 4, 2, 1}, Case{"realesrgan_x4plus", "BasicSR", 4, 1, 1},
                          Case{"realesrgan_x2plus", "BasicSR", 2, 1, 2}, Case{"bsrgan_x2", "BSRGAN", 2, 1, 1},
                          Case{"compact_x4", "SRVGGNetCompact", 4, 0, 1}}) {
        INFO(std::string(c.name));
        Upscaler u = load_upscaler(model_path(c.name));
        CHECK(u.layout == c.layout);
        CHECK(u.scale == c.scale);
        if (u.arch == UpscalerArch::esrgan) {
            CHECK(u.rrdb.body.size() == c.blocks);
            CHECK(u.rrdb.nf == 8);
            CHECK(u.rrdb.gc == 4);
            CHECK(u.rrdb.shuffle == c.shuffle);
        } else {
            CHECK(u.compact.conv.size() == 4);  // num_conv 3, plus the first
        }
        Arena arena;
        const Arena::Mark before = arena.mark();
        Tensor y = upscaler_forward(u, x, arena);
        const Tensor want = golden.get(std::string(c.name) + "/output");
        REQUIRE(y.dims() == want.dims());
        // f32 convs (Winograd / fused upsample paths round a few ulps off a plain conv) against float64 through
        // up to 35 convs: 1e-5 of the output's scale is ~100x what they produce and far below any layer mistake
        // (a missing 0.2 scale or a wrong key moves outputs by > 1e-2).
        test::Diff d = test::compare(y.f32(), want.f32(), y.numel(), test::scale_tol(1e-5, 1e-10));
        MESSAGE(d.summary(c.name));
        CHECK(d.ok);
        Tensor next = arena.alloc({1});  // the temporaries are released: the next allocation follows the output
        CHECK((char*)next.data == (char*)y.data + (y.nbytes() + 63) / 64 * 64);
        arena.release(before);           // ... which starts where the arena's top was on entry
        CHECK(arena.alloc({1}).data == y.data);
    }
}

TEST_CASE("upscaler: the webui's tiled upscale (split_grid, 8-bit blend) matches the reference") {
    SafeTensors golden(kGolden);
    const Image img = image_of(golden.get("tile_image"));
    for (std::string name : {"realesrgan_x2plus", "compact_x4"}) {
        INFO(name);
        Upscaler u = load_upscaler(model_path(name));
        int calls = 0, last_total = 0;
        Image tiled = upscale_with_model(u, img, {16, 4}, [&](int done, int total) { calls = done; last_total = total; });
        CHECK(calls == 6);  // 38 x 27 in 16-tiles overlapping by 4: 3 columns, 2 rows
        CHECK(last_total == 6);
        Image untiled = upscale_with_model(u, img, {0, 0});
        // 8-bit results of float computations: a value within a few ulps of a rounding boundary may land one
        // step off (f32 here, float64 in the reference); anything else is a tiling or blending mistake.
        for (auto [got, key] : {std::pair<const Image*, std::string>{&tiled, "/tiled_16_4"}, {&untiled, "/untiled"}}) {
            PixelDiff d = diff(*got, image_of(golden.get(name + key)));
            MESSAGE(name << key << ": max diff " << d.max << ", " << d.count << " of " << got->pixels.size() << " differ");
            CHECK(d.max <= 1);
            CHECK(d.count * 1000 <= (int64_t)got->pixels.size());
        }
    }
    // Smaller than a tile: the crop is padded with black above and to the left, as PIL's crop does.
    Upscaler u = load_upscaler(model_path("compact_x4"));
    Image small = upscale_with_model(u, image_of(golden.get("small_image")), {16, 4});
    PixelDiff d = diff(small, image_of(golden.get("compact_x4/tiled_16_4_small")));
    CHECK(d.max <= 1);
    CHECK(d.count * 1000 <= (int64_t)small.pixels.size());
}

TEST_CASE("upscaler: the tile grid is images.split_grid's") {
    CHECK(grid_origins(512, 192, 8) == std::vector<int>{0, 160, 320});
    CHECK(grid_origins(192, 192, 8) == std::vector<int>{0});
    CHECK(grid_origins(193, 192, 8) == std::vector<int>{0, 1});
    CHECK(grid_origins(100, 192, 8) == std::vector<int>{-92});
    CHECK(grid_origins(1000, 192, 8) == std::vector<int>{0, 161, 323, 484, 646, 808});
    CHECK(grid_origins(5, 192, 8) == std::vector<int>{-187});  // the webui would have no tile at all here
}

TEST_CASE("upscaler: tiled equals untiled away from the seams") {
    // SRVGGNetCompact's receptive field reaches 5 input pixels (5 convs 3x3; the upsampled input adds none), so a
    // pixel at least 6 pixels inside every tile that covers it (tile edges on the image border do not count: the
    // untiled pass pads there too) sees the same input either way, and every blend of equal values is that value.
    Upscaler u = load_upscaler(model_path("compact_x4"));
    Image img;
    img.width = 101; img.height = 77; img.channels = 3;
    for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++)
            for (int c = 0; c < 3; c++)
                img.pixels.push_back((uint8_t)(128 + 100 * std::sin(0.11 * x + 0.07 * y * (c + 1)) + ((x * 7 + y * 13 + c) % 17)));
    const UpscaleTiling tiling{40, 8};
    Image tiled = upscale_with_model(u, img, tiling), untiled = upscale_with_model(u, img, {0, 0});
    const int R = 5, s = u.scale;
    auto inside = [&](int p, int size) {  // p at least R+1 from every inner tile edge of the tiles that contain it
        for (int o : grid_origins(size, tiling.tile, tiling.overlap)) {
            if (p < o || p >= o + tiling.tile) continue;
            if (o > 0 && p - o <= R) return false;
            if (o + tiling.tile < size && o + tiling.tile - 1 - p <= R) return false;
        }
        return true;
    };
    int64_t compared = 0, differ = 0;
    int max = 0;
    for (int y = 0; y < tiled.height; y++)
        for (int x = 0; x < tiled.width; x++) {
            if (!inside(x / s, img.width) || !inside(y / s, img.height)) continue;
            for (int c = 0; c < 3; c++) {
                const size_t i = ((size_t)y * tiled.width + x) * 3 + c;
                const int e = std::abs((int)tiled.pixels[i] - (int)untiled.pixels[i]);
                max = std::max(max, e);
                differ += e != 0;
                compared++;
            }
        }
    MESSAGE("compared " << compared << " values, " << differ << " differ, max " << max);
    CHECK(compared > (int64_t)tiled.pixels.size() / 4);
    CHECK(max <= 1);                  // a rounding-boundary flip (tiles align the Winograd blocks differently)
    CHECK(differ * 1000 <= compared);
    // ... and the seams do differ (the test can tell tiled from untiled at all).
    CHECK(diff(tiled, untiled).max > 1);
}

TEST_CASE("upscaler: loading refuses pickles, other files, missing and stray tensors, in one sentence") {
    const std::string dir = "build/test_upscaler_tmp";
    std::system(("mkdir -p " + dir).c_str());
    auto throws_with = [](const std::string& path, const std::string& part) {
        try {
            load_upscaler(path);
            FAIL("no error for " << path);
        } catch (const std::runtime_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(part) != std::string::npos);
            CHECK(std::string(e.what()).find('\n') == std::string::npos);
        }
    };
    { std::ofstream(dir + "/x.pth") << "PK\x03\x04 not really a zip"; }
    throws_with(dir + "/x.pth", "convert it to .safetensors");
    { std::ofstream(dir + "/pickle.safetensors", std::ios::binary) << "\x80\x02}q\x00."; }
    throws_with(dir + "/pickle.safetensors", "pickle");
    throws_with(dir + "/absent.safetensors", "absent.safetensors");

    SafeTensors src(model_path("compact_x4"));
    auto rewrite = [&](const std::string& path, const std::string& drop, const std::string& extra) {
        std::vector<std::pair<std::string, Tensor>> ts;
        for (const TensorInfo& t : src.tensors())
            if (t.name != drop) ts.push_back({t.name, owned(src.get(t.name))});
        if (!extra.empty()) ts.push_back({extra, Tensor::zeros({2})});
        write_safetensors(path, ts);
    };
    rewrite(dir + "/other.safetensors", "body.1.weight", "");
    throws_with(dir + "/other.safetensors", "is not an ESRGAN (RRDBNet) or Real-ESRGAN Compact");
    rewrite(dir + "/missing.safetensors", "body.3.weight", "");
    throws_with(dir + "/missing.safetensors", "missing tensor 'body.3.weight'");
    rewrite(dir + "/stray.safetensors", "", "body.2.extra");
    throws_with(dir + "/stray.safetensors", "tensor 'body.2.extra' is not part of the SRVGGNetCompact");
}

TEST_CASE("upscaler: describe_upscaler names the architecture, layout and scale") {
    CHECK(describe_upscaler(SafeTensors(model_path("esrgan_old_x4"))) ==
          "ESRGAN (RRDBNet, old ESRGAN keys) 4x, 2 blocks, 8 features, growth 4");
    CHECK(describe_upscaler(SafeTensors(model_path("realesrgan_x2plus"))) ==
          "ESRGAN (RRDBNet, BasicSR keys) 2x, 1 blocks, 8 features, growth 4, pixel-unshuffle 2");
    CHECK(describe_upscaler(SafeTensors(model_path("compact_x4"))) ==
          "Real-ESRGAN Compact (SRVGGNetCompact) 4x, 3 convs, 8 features");
    CHECK(describe_upscaler(SafeTensors("models/taesd/taesd_decoder.safetensors")).empty());
}
