# The two commands a newcomer runs (README.md):
#   make demo   installs what is missing, builds, runs the walk-through
#   make test   installs what is missing, builds with -Werror under
#               AddressSanitizer + UndefinedBehaviorSanitizer, checks the
#               format, and runs every test (unit, fuzz corpora, end to end)
# Other targets: build (release build), lint (cppcheck + clang-tidy), fuzz
# (libFuzzer, clang; FUZZ_SECONDS per target), bench, format.
JOBS ?= $(shell nproc)
TEST_DIR := build/test
REL_DIR := build/release
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60

.PHONY: deps build demo test test-build check-format format lint fuzz bench clean

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(REL_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(REL_DIR) -j$(JOBS)

demo: build
	@scripts/demo $(REL_DIR)

test-build: deps
	@cmake -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=Debug -DANCHOR_WERROR=ON -DANCHOR_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_DIR) -j$(JOBS)

test: test-build check-format
	@scripts/lint
	@cd $(TEST_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j$(JOBS)

check-format:
	@scripts/check-format

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

lint: test-build
	@scripts/lint --tidy $(TEST_DIR)

fuzz: deps
	@CC=clang-14 cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANCHOR_FUZZ=ON -DANCHOR_SANITIZE=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j$(JOBS)
	@scripts/fuzz $(FUZZ_DIR) $(FUZZ_SECONDS)

bench: build
	@scripts/bench $(REL_DIR)

clean:
	rm -rf build
