// fuzz_tokenizer.cpp — libFuzzer main for ClipTokenizer encode / encode_chunks / decode on arbitrary bytes.
// The body is fuzz_one_tokenizer() in tests/fuzz/targets.h; `make fuzz` builds and runs this,
// and tests/test_fuzz_regress.cpp replays tests/fuzz/corpus/tokenizer/ and tests/fuzz/regress/tokenizer/ in `make test`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_tokenizer, data, size);
}
