// sd_command.h — how the tests that start the built ./sd find it: SD_BIN=path overrides ./sd, and
// SD_TEST_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu" puts words before it, so an ARM64 ./sd built on an
// x86-64 host runs under the emulator (`make test-aarch64`). Every test that runs the binary goes through here.
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace sd::test {

inline std::string sd_binary() {
    const char* env = std::getenv("SD_BIN");
    return env && *env ? env : "./sd";
}

inline bool emulated() {
    const char* env = std::getenv("SD_TEST_RUNNER");
    return env && *env;
}

// How much longer a run may take: under the emulator ./sd runs some 30× slower.
inline double slowdown() { return emulated() ? 30.0 : 1.0; }

// The argv before sd's own arguments. The runner's first word is looked up in PATH here, before any fork(),
// since execv does not search.
inline std::vector<std::string> sd_argv() {
    std::vector<std::string> words;
    std::istringstream in(emulated() ? std::getenv("SD_TEST_RUNNER") : "");
    for (std::string w; in >> w;) words.push_back(w);
    if (!words.empty() && words[0].find('/') == std::string::npos) {
        std::istringstream path(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
        for (std::string dir; std::getline(path, dir, ':');)
            if (access((dir + "/" + words[0]).c_str(), X_OK) == 0) { words[0] = dir + "/" + words[0]; break; }
    }
    words.push_back(sd_binary());
    return words;
}

// The same as the start of a shell command line (for popen): runner words and binary, space-separated.
inline std::string sd_shell() {
    std::string s;
    for (const std::string& w : sd_argv()) s += (s.empty() ? "" : " ") + w;
    return s;
}

}  // namespace sd::test
