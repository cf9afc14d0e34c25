// fuzz_image.cpp — libFuzzer main for decode_image (stb_image's decoders), with a PNG round trip of what it accepts.
// The body is fuzz_one_image() in tests/fuzz/targets.h; `make fuzz` builds and runs this,
// and tests/test_fuzz_regress.cpp replays tests/fuzz/corpus/image/ and tests/fuzz/regress/image/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_image, data, size);
}
