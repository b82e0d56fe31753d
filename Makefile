# tpipe — thin wrapper around CMake. `make` builds into build/.
#   make demo        install missing Debian packages, build, run the main demo
#   make test        install missing packages, build with -Werror, run the whole suite,
#                    then the AddressSanitizer+UBSan build of the suite, the ThreadSanitizer
#                    tests, a short run of every fuzzer (fuzz-ci), then clang-format check
#   make check       only the -Werror build + ctest (fast inner loop)
#   make bench       build and run every benchmark in bench/
#   make install     install library, header, pkg-config and CMake package files (PREFIX=...)
#   make fuzz        build the libFuzzer harnesses of fuzz/ (clang, in build-fuzz/) and run
#                    each for FUZZ_SECONDS (default 300), FUZZ_JOBS (default 1) at a time;
#                    FUZZ_TARGETS="safetensors jsonl" picks some
#   make fuzz-ci     the same, about 45 s per target, two at a time (part of make test)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
CTEST_ARGS ?=
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_JOBS ?= 1
FUZZ_TARGETS ?=
FUZZ_CI_SECONDS ?= 45
FUZZ_CI_SEED ?= 1

.PHONY: all deps build check check-asan check-tsan fuzz-build fuzz fuzz-ci format format-check test demo bench install clean

all: build

deps:
	@scripts/setup.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DTPIPE_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

check: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

check-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTPIPE_WERROR=ON -DTPIPE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		TPIPE_SANITIZER_BUILD=1 ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# ThreadSanitizer: the thread pool (test_core) and one model shared by 4 threads
# (test_concurrency, a lighter workload under TSan: TPIPE_TSAN_BUILD=1)
TSAN_TESTS = test_core test_concurrency
check-tsan:
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DTPIPE_TSAN=ON >/dev/null
	@cmake --build build-tsan -j$(JOBS) --target $(TSAN_TESTS) tp_mkmodel
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" TPIPE_TSAN_BUILD=1 \
		ctest --output-on-failure -R '^($(subst $(eval) ,|,$(TSAN_TESTS)))$$'

# libFuzzer harnesses: clang only, in their own build folder (the gcc builds never need clang)
fuzz-build:
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTPIPE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzzers

fuzz: deps fuzz-build
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

fuzz-ci: fuzz-build
	FUZZ_SEED=$(FUZZ_CI_SEED) scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_CI_SECONDS) 2

# generated tables (tests/template/*_cases.h, written by gen_engine_cases.py) are not formatted
FORMAT_FILES = $(filter-out %_cases.h,$(shell git ls-files '*.c' '*.h' 2>/dev/null))
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

test: deps check check-asan check-tsan fuzz-ci format-check
	@echo "tpipe: all tests passed"

demo: deps build
	@scripts/demo.sh $(BUILD)

bench: deps build
	@scripts/bench.sh $(BUILD)

install: deps build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-tsan $(FUZZ_BUILD)
