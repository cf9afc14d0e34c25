// fuzz_http.cpp — libFuzzer main for the HTTP/1.1 request parser of `sd serve` (server/http.h).
// The body is fuzz_one_http() in tests/fuzz/targets.h; `make fuzz` builds and runs this (dictionary
// tests/fuzz/http.dict), and tests/test_fuzz_regress.cpp replays tests/fuzz/corpus/http/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_http, data, size);
}
