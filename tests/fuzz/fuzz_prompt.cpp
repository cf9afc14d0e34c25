// fuzz_prompt.cpp — libFuzzer main for the prompt syntax (emphasis, schedules, AND, tags, chunking).
// The body is fuzz_one_prompt() in tests/fuzz/prompt_target.h; `make fuzz` builds and runs this,
// and tests/test_fuzz_regress.cpp replays tests/fuzz/corpus/prompt/ and tests/fuzz/regress/prompt/ in `make test`.
#include "tests/fuzz/prompt_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_prompt, data, size);
}
