// fuzz_lora.cpp — libFuzzer main for the LoRA loader (read_lora, the name table, lora_delta). The body is
// fuzz_one_lora() in tests/fuzz/lora_target.h; `make fuzz` builds and runs this (dictionary tests/fuzz/lora.dict),
// and tests/test_fuzz_regress.cpp replays tests/fuzz/corpus/lora/ in `make test`.
#include "tests/fuzz/lora_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return sd::fuzz::run_for_libfuzzer(sd::fuzz::fuzz_one_lora, data, size);
}
