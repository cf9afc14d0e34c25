// fuzz_api.cpp — libFuzzer main for the API's JSON handling in `sd serve` (server/api_request.h): txt2img,
// options and png-info bodies, and the infotext parser behind png-info. The body is fuzz_one_api() in
// tests/fuzz/targets.h; tests/test_fuzz_regress.cpp replays tests/fuzz/corpus/api/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_api, data, size);
}
