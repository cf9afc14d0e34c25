// fuzz_json.cpp — libFuzzer main for the strict JSON parser, with a write/re-parse round trip.
// The body is fuzz_one_json() in tests/fuzz/targets.h; `make fuzz` builds and runs
// this (dictionary tests/fuzz/safetensors.dict), and tests/test_fuzz_regress.cpp
// replays tests/fuzz/corpus/json/ and tests/fuzz/regress/json/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_json, data, size);
}
