// test_fuzz_regress.cpp — replays every file of tests/fuzz/corpus/<target>/ and tests/fuzz/regress/<target>/
// through the fuzz targets' own bodies (tests/fuzz/targets.h), so `make test` re-checks every seed and every
// past finding without clang or libFuzzer; `make test-sanitize` replays them under ASan and UBSan too.
//
// A replay fails when the target reports a broken promise (Finding), lets any exception escape, or takes more
// than 10 s on one input (a hang). The hand-made seeds (tests/fuzz/make_seeds.py) also state their verdict in
// their name: ok-* must be accepted, bad-* refused with a std::exception; other names may go either way.
// Left out: crashes — a segfault ends the runner, which is a failure too, just a louder one.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/prompt_target.h"
#include "tests/fuzz/targets.h"

namespace fs = std::filesystem;

namespace {

struct FuzzTarget {
    const char* name;  // the folder name under tests/fuzz/corpus and tests/fuzz/regress
    int (*run)(const uint8_t*, size_t);
};
const FuzzTarget kFuzzTargets[] = {
    {"safetensors", sd::fuzz::fuzz_one_safetensors}, {"json", sd::fuzz::fuzz_one_json},
    {"tokenizer", sd::fuzz::fuzz_one_tokenizer},     {"args", sd::fuzz::fuzz_one_args},
    {"png_text", sd::fuzz::fuzz_one_png_text},     {"prompt", sd::fuzz::fuzz_one_prompt},
    {"http", sd::fuzz::fuzz_one_http},             {"api", sd::fuzz::fuzz_one_api},
    {"image", sd::fuzz::fuzz_one_image},
};
const char* const kFuzzRoots[] = {"tests/fuzz/corpus", "tests/fuzz/regress"};
constexpr double kHangSeconds = 10;  // libFuzzer's -timeout in run_fuzz.sh; real inputs take milliseconds

std::vector<fs::path> files_in(const fs::path& dir) {
    std::vector<fs::path> out;
    if (!fs::is_directory(dir)) return out;
    for (const fs::directory_entry& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Replays one target's files; returns how many there were.
size_t replay(const FuzzTarget& target) {
    size_t count = 0;
    for (const char* root : kFuzzRoots) {
        for (const fs::path& path : files_in(fs::path(root) / target.name)) {
            std::ifstream in(path, std::ios::binary);
            REQUIRE_MESSAGE(in, "cannot read " << path.string());
            std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            const std::string name = path.filename().string();
            count++;
            auto t0 = std::chrono::steady_clock::now();
            int verdict = -1;
            try {
                verdict = target.run(bytes.data(), bytes.size());
            } catch (const sd::fuzz::Finding& f) {
                FAIL_CHECK(path.string() << ": " << f.what);
                continue;
            } catch (const std::exception& e) {
                FAIL_CHECK(path.string() << ": an exception escaped the target: " << e.what());
                continue;
            } catch (...) {
                FAIL_CHECK(path.string() << ": an exception that is not a std::exception escaped");
                continue;
            }
            double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            CHECK_MESSAGE(seconds < kHangSeconds, path.string() << " took " << seconds << " s");
            if (starts_with(name, "ok-")) {
                CHECK_MESSAGE(verdict == sd::fuzz::kAccepted, path.string() << " must be accepted, but was refused");
            } else if (starts_with(name, "bad-")) {
                CHECK_MESSAGE(verdict == sd::fuzz::kRefused, path.string() << " must be refused, but was accepted");
            }
        }
    }
    return count;
}

const FuzzTarget& target_named(const char* name) {
    for (const FuzzTarget& t : kFuzzTargets)
        if (std::string(t.name) == name) return t;
    throw std::logic_error(std::string("no fuzz target ") + name);
}

}  // namespace

TEST_CASE("fuzz corpus: every folder belongs to a fuzz target, and every target has seeds") {
    REQUIRE_MESSAGE(fs::is_directory("tests/fuzz/corpus"), "run the tests from the repository root");
    for (const char* root : kFuzzRoots) {
        if (!fs::is_directory(root)) continue;
        for (const fs::directory_entry& e : fs::directory_iterator(root)) {
            if (!e.is_directory()) continue;
            std::string name = e.path().filename().string();
            bool known = std::any_of(std::begin(kFuzzTargets), std::end(kFuzzTargets),
                                     [&](const FuzzTarget& t) { return name == t.name; });
            CHECK_MESSAGE(known, e.path().string() << " is not a fuzz target's folder (a typo would go unreplayed)");
        }
    }
    for (const FuzzTarget& t : kFuzzTargets)
        CHECK_MESSAGE(files_in(fs::path("tests/fuzz/corpus") / t.name).size() >= 10, t.name << " has under 10 seeds");
}

TEST_CASE("fuzz corpus: safetensors inputs replay cleanly") { CHECK(replay(target_named("safetensors")) > 0); }
TEST_CASE("fuzz corpus: json inputs replay cleanly") { CHECK(replay(target_named("json")) > 0); }
TEST_CASE("fuzz corpus: tokenizer inputs replay cleanly") { CHECK(replay(target_named("tokenizer")) > 0); }
TEST_CASE("fuzz corpus: args inputs replay cleanly") { CHECK(replay(target_named("args")) > 0); }
TEST_CASE("fuzz corpus: png_text inputs replay cleanly") { CHECK(replay(target_named("png_text")) > 0); }
TEST_CASE("fuzz corpus: image inputs replay cleanly") { CHECK(replay(target_named("image")) > 0); }
