// fuzz_args.cpp — libFuzzer main for parse_args, the input split on NUL bytes into argv[1..].
// The body is fuzz_one_args() in tests/fuzz/targets.h; `make fuzz` builds and runs
// this (dictionary tests/fuzz/args.dict), and tests/test_fuzz_regress.cpp
// replays tests/fuzz/corpus/args/ and tests/fuzz/regress/args/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_args, data, size);
}
