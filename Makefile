# sd — one binary for any x86-64 or ARM64 CPU. `make` builds ./sd, `make test` runs every test,
# `make bench` prints the kernel throughput table (and the model bench with MODEL=path.safetensors).
CXX      ?= g++
OPT      ?= -O2
CXXFLAGS ?= $(OPT) -g
CXXFLAGS += -std=c++17 -Wall -Wextra -pthread -I. -MMD -MP
LDFLAGS  += -pthread
BUILD    ?= build

ARCH := $(shell uname -m)
# Library sources: every .cpp under these folders plus the root's, except the CLI's main.
LIB_SRC := $(wildcard kernels/*.cpp tokenizer/*.cpp models/*.cpp pipeline/*.cpp) \
           $(filter-out sd.cpp,$(wildcard *.cpp))
ifeq ($(ARCH),x86_64)
  LIB_SRC := $(filter-out %_neon.cpp,$(LIB_SRC))
else
  LIB_SRC := $(filter-out %_avx2.cpp %_avx512.cpp,$(LIB_SRC))
endif
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/*.cpp)
TEST_OBJ := $(TEST_SRC:%.cpp=$(BUILD)/%.o)
BENCH_SRC := $(wildcard bench/*.cpp)
BENCH_OBJ := $(BENCH_SRC:%.cpp=$(BUILD)/%.o)

# Per-file instruction-set flags: only files named *_avx2.cpp / *_avx512.cpp may use those instructions.
$(BUILD)/%_avx2.o:   ISAFLAGS := -mavx2 -mfma -mf16c
$(BUILD)/%_avx512.o: ISAFLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c -mavx2
# Kernel files are the hot path: optimise them harder.
$(BUILD)/kernels/%.o: OPT := -O3

.PHONY: all test bench clean
all: sd

sd: $(BUILD)/sd.o $(BUILD)/libsd.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDFLAGS)

$(BUILD)/libsd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(ISAFLAGS) -c $< -o $@

$(BUILD)/run_tests: $(TEST_OBJ) $(BUILD)/libsd.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDFLAGS)

$(BUILD)/bench_kernels: $(BENCH_OBJ) $(BUILD)/libsd.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDFLAGS)

# Tests run from the repo root (they read tests/data/). The runner prints "N passed, N failed" last.
test: $(BUILD)/run_tests sd
	$(BUILD)/run_tests $(TEST_ARGS)

bench: $(BUILD)/bench_kernels sd
	$(BUILD)/bench_kernels
	@if [ -n "$(MODEL)" ]; then ./sd bench -m "$(MODEL)"; fi

clean:
	rm -rf $(BUILD) sd

# models/taesd_embed.cpp .incbin's these files; the compiler's dependency files cannot see that.
$(BUILD)/models/taesd_embed.o: models/taesd/taesd_decoder.safetensors models/taesd/taesd_encoder.safetensors

# tokenizer/clip_tokenizer.cpp .incbin's the CLIP merges; the compiler's dependency files cannot see that.
$(BUILD)/tokenizer/clip_tokenizer.o: tokenizer/merges.txt

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(BUILD)/sd.d
