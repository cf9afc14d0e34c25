// fuzz_png_text.cpp — libFuzzer main for read_png_text, with an encode_png/read round trip of the text found.
// The body is fuzz_one_png_text() in tests/fuzz/targets.h; `make fuzz` builds and runs this,
// and tests/test_fuzz_regress.cpp replays tests/fuzz/corpus/png_text/ and tests/fuzz/regress/png_text/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_png_text, data, size);
}
