// full_model.h — where the full-size tests (skipped by default, run with --no-skip) find a checkpoint in the real
// SD 1.5 layout: $SD_MODEL, else sd15_f16.safetensors in the project root, where the tests run and where
// docs/performance.md makes one with random weights:
//     /usr/bin/python3 ../shared/tools/make_random_sd15.py --dtype f16 --out sd15_f16.safetensors
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sd::test {

// The checkpoint's path; when it cannot be read the test fails with one sentence saying how to make it, rather
// than with a parser error. $SD_UNET_MODEL, the name the UNet timings once read, still works.
inline std::string full_size_model() {
    const char* env = std::getenv("SD_MODEL");
    if (!env) env = std::getenv("SD_UNET_MODEL");
    const std::string path = env ? env : "sd15_f16.safetensors";
    if (access(path.c_str(), R_OK) != 0)
        FAIL(path << " cannot be read: set SD_MODEL to an SD 1.5 checkpoint, or make one with /usr/bin/python3 "
                     "../shared/tools/make_random_sd15.py --dtype f16 --out sd15_f16.safetensors");
    return path;
}

}  // namespace sd::test
