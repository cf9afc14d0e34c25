// fuzz_safetensors.cpp — libFuzzer main for SafeTensors::from_memory, every tensor view, checkpoint detection.
// The body is fuzz_one_safetensors() in tests/fuzz/targets.h; `make fuzz` builds and runs
// this (dictionary tests/fuzz/safetensors.dict), and tests/test_fuzz_regress.cpp
// replays tests/fuzz/corpus/safetensors/ and tests/fuzz/regress/safetensors/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_safetensors, data, size);
}
