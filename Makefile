# tpipe — thin wrapper around CMake. `make` builds into build/.
#   make demo        install missing Debian packages, build, run the main demo
#   make test        install missing packages, build with -Werror, run the whole suite,
#                    then the AddressSanitizer+UBSan build of the suite, then clang-format check
#   make check       only the -Werror build + ctest (fast inner loop)
#   make bench       build and run every benchmark in bench/
#   make install     install library, header, pkg-config and CMake package files (PREFIX=...)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
CTEST_ARGS ?=

.PHONY: all deps build check check-asan check-tsan format format-check test demo bench install clean

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

check-tsan:
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DTPIPE_TSAN=ON >/dev/null
	@cmake --build build-tsan -j$(JOBS) --target test_core
	cd build-tsan && ctest --output-on-failure -R '^test_core$$'

# generated tables (tests/template/*_cases.h, written by gen_engine_cases.py) are not formatted
FORMAT_FILES = $(filter-out %_cases.h,$(shell git ls-files '*.c' '*.h' 2>/dev/null))
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

test: deps check check-asan check-tsan format-check
	@echo "tpipe: all tests passed"

demo: deps build
	@scripts/demo.sh $(BUILD)

bench: deps build
	@scripts/bench.sh $(BUILD)

install: deps build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-tsan
