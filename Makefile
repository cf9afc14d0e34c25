# sd — one binary for any x86-64 or ARM64 CPU. `make` builds ./sd, `make test` runs every test,
# `make bench` prints the kernel throughput table (and the model bench with MODEL=path.safetensors).
CXX      ?= g++
OPT      ?= -O2
CXXFLAGS ?= $(OPT) -g
CXXFLAGS += -std=c++17 -Wall -Wextra -pthread -I. -MMD -MP
# a*b + c rounds twice, as written, on every CPU: GCC would fuse it into one FMA wherever the target has one (any
# ARM64, x86 with -mfma), so pipeline code like the Brownian bridge gave other bits on ARM than on x86 and torch.
# The kernels ask for their FMAs explicitly (vfma); their code is the same with or without this flag.
CXXFLAGS += -ffp-contract=off
LDFLAGS  += -pthread
BUILD    ?= build

# The target architecture is the compiler's (so `make CXX=aarch64-linux-gnu-g++` cross-builds for ARM64).
ARCH := $(shell $(CXX) -dumpmachine | cut -d- -f1)
# Library sources: every .cpp under these folders plus the root's, except the CLI's main.
LIB_SRC := $(wildcard kernels/*.cpp tokenizer/*.cpp models/*.cpp pipeline/*.cpp app/*.cpp server/*.cpp) \
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

sd $(BUILD)/sd: $(BUILD)/sd.o $(BUILD)/libsd.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDFLAGS)

$(BUILD)/libsd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(ISAFLAGS) -c $< -o $@

# The two header-only packages: a missing one stops the build naming the package to install, not with a compiler's
# "No such file or directory" halfway through. Checked once per build folder (the stamp files).
need_header = printf '\#include <$(1)>\n' | $(CXX) -std=c++17 -E -x c++ - -o /dev/null 2>/dev/null || \
    { echo "$(1) not found: install $(2) (Debian/Ubuntu: sudo apt-get install $(2)), then run make again" >&2; exit 1; }
$(BUILD)/.have-stb:
	@$(call need_header,stb/stb_image.h,libstb-dev)
	@$(call need_header,stb/stb_image_write.h,libstb-dev)
	@mkdir -p $(BUILD) && touch $@
$(BUILD)/.have-doctest:
	@$(call need_header,doctest/doctest.h,doctest-dev)
	@mkdir -p $(BUILD) && touch $@
$(LIB_OBJ) $(BUILD)/sd.o: | $(BUILD)/.have-stb
$(TEST_OBJ): | $(BUILD)/.have-stb $(BUILD)/.have-doctest

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

# ---- sanitizers and fuzzing (tests/fuzz/README.md) ------------------------------------------------------------------
# `make test-sanitize`: the whole suite under ASan+UBSan (g++'s own runtimes, nothing extra to install), then the
# threaded kernels and the pool under TSan. Each build lives in its own folder; CXXFLAGS reaches the sub-make through
# the environment so the Makefile's own flags are still appended. What each run leaves out, and why, is below.
SAN_FLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
TSAN_FLAGS := -O1 -g -fsanitize=thread
# Nothing slow needed leaving out: the whole suite takes ~5 CPU minutes under ASan (VAE tiling and TAESD are most
# of it). Tests that measure speed (skipped by default) would mean nothing here, so they stay out.
SAN_EXCLUDE := -tce="*timing*"
# TSan: the pool, every kernel run at 1..3 threads, concurrent tokenizer callers, the background model hash (~1 minute),
# then the whole of tests/test_server.cpp (loop thread, engine worker, hash thread, test clients; a few minutes).
TSAN_TESTS  := -tc="*model hash*,*parallel_for*,*gemm*,*matmul*,*conv2d*,*attention matches*,*norm*,*softmax*,*convert_*,*gelu*,*thread*,*concurrent*"
TSAN_SERVER := -sf="*test_server.cpp"
SAN_ENV  := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# `make test-browser`: the page of `sd serve` in Debian's headless chromium, screenshots to build/ui-*.png.
# `make test-cluster`: two `sd serve` instances behind Debian's nginx, a burst of requests through it.
.PHONY: test-browser test-cluster
test-browser: sd
	tests/browser/test_browser.sh
test-cluster: sd
	tests/cluster/test_cluster.sh

.PHONY: test-sanitize fuzz fuzz-build
test-sanitize: sd  # tests/test_cli.cpp runs ./sd (unsanitized: ASan cannot start under its RLIMIT_AS test)
	CXXFLAGS="$(SAN_FLAGS)" $(MAKE) --no-print-directory BUILD=build-asan build-asan/run_tests
	$(SAN_ENV) build-asan/run_tests $(SAN_EXCLUDE)
	CXXFLAGS="$(TSAN_FLAGS)" $(MAKE) --no-print-directory BUILD=build-tsan build-tsan/run_tests
	$(TSAN_ENV) build-tsan/run_tests $(TSAN_TESTS)
	$(TSAN_ENV) build-tsan/run_tests $(TSAN_SERVER)

# `make fuzz FUZZ_SECONDS=N`: every libFuzzer target (clang only) for N seconds each, one after another.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := safetensors json tokenizer args png_text prompt http api image lora
FUZZ_CXX     ?= clang++
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
# Only the parsers the targets reach are built (not all of libsd.a): faster, and unrelated work in progress
# cannot break `make fuzz`. An undefined reference at link time means this list needs the new dependency.
FUZZ_OBJ := $(addprefix build-fuzz/,json.o safetensors.o models/checkpoint.o app/options.o \
              app/image_io.o tokenizer/clip_tokenizer.o tokenizer/unicode_tables.o \
              sha256.o pipeline/prompt_parser.o pipeline/prompt_chunks.o \
              server/http.o server/api_request.o pipeline/sampler_names.o pipeline/schedule.o app/infotext.o \
              models/lora.o $(patsubst %.cpp,%.o,$(filter-out kernels/isa_neon.cpp,$(wildcard kernels/*.cpp))))
fuzz-build:
	CXXFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" $(MAKE) --no-print-directory BUILD=build-fuzz \
	    CXX=$(FUZZ_CXX) $(FUZZ_OBJ)
	@for t in $(FUZZ_TARGETS); do \
	    echo "$(FUZZ_CXX) ... -o build-fuzz/fuzz_$$t"; \
	    $(FUZZ_CXX) -std=c++17 -I. -pthread $(FUZZ_FLAGS) -fsanitize=fuzzer tests/fuzz/fuzz_$$t.cpp \
	        $(FUZZ_OBJ) -o build-fuzz/fuzz_$$t || exit 1; \
	done

fuzz: fuzz-build
	tests/fuzz/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ---- ARM64 on an x86-64 host -----------------------------------------------------------------------------------------
# `make test-aarch64`: cross-build with Debian's g++-aarch64-linux-gnu into build-aarch64/ (the host's ./sd is left
# alone) and run the whole suite under qemu-aarch64-static; the CLI tests start build-aarch64/sd through the same
# emulator (SD_BIN, SD_TEST_RUNNER). The emulated CPU is qemu's "max": NEON and BF16, so both the fp32 and the
# BFDOT kernels run; then the precision cases again on a Cortex-A76 (Raspberry Pi 5), which has no BF16.
AARCH64_CXX  ?= aarch64-linux-gnu-g++
AARCH64_QEMU ?= qemu-aarch64-static -L /usr/aarch64-linux-gnu
.PHONY: test-aarch64
test-aarch64:
	$(MAKE) --no-print-directory CXX=$(AARCH64_CXX) BUILD=build-aarch64 build-aarch64/run_tests build-aarch64/sd
	SD_BIN=build-aarch64/sd SD_TEST_RUNNER="$(AARCH64_QEMU) -cpu max" $(AARCH64_QEMU) -cpu max build-aarch64/run_tests $(TEST_ARGS)
	$(AARCH64_QEMU) -cpu cortex-a76 build-aarch64/run_tests -tc="*precision*,*bf16*"

# models/taesd_embed.cpp .incbin's these files; the compiler's dependency files cannot see that.
$(BUILD)/models/taesd_embed.o: models/taesd/taesd_decoder.safetensors models/taesd/taesd_encoder.safetensors \
                               models/taesd/taesdxl_decoder.safetensors models/taesd/taesdxl_encoder.safetensors

# server/ui_embed.cpp .incbin's the web page; the compiler's dependency files cannot see that.
$(BUILD)/server/ui_embed.o: server/ui/index.html

# tokenizer/clip_tokenizer.cpp .incbin's the CLIP merges; the compiler's dependency files cannot see that.
$(BUILD)/tokenizer/clip_tokenizer.o: tokenizer/merges.txt

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(BUILD)/sd.d
