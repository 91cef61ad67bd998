# loom: the two commands of the README, plus helpers.
#   make run    train the seed CNN on Fashion-MNIST (installs what it needs)
#   make test   build and run every test, then again under AddressSanitizer + UBSan, then each fuzz target briefly
#   make fuzz   every libFuzzer target for FUZZ_SECONDS (default 600) each (fuzz/README.md)
JOBS ?= $(shell nproc)
# ccache keys on paths relative to the checkout, so a fresh clone in another folder reuses earlier builds.
export CCACHE_BASEDIR ?= $(CURDIR)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_SECONDS ?= 600
FUZZ_SECONDS_CI ?= 12

.PHONY: deps build test test-release test-asan test-fuzz fuzz run bench clean

deps:
	@bash scripts/install_deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

# OMP_WAIT_POLICY=passive: ctest runs tests side by side, each with OpenMP threads; spinning threads of one test
# steal the cores another needs (measured: a 1 s test took 72 s on a loaded machine). Results are unchanged.
test-release: build
	cd $(BUILD) && OMP_WAIT_POLICY=passive ctest --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1 -g" -DLOOM_SANITIZE=ON -DLOOM_BUILD_TOOLS=OFF -DLOOM_CUDA=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && OMP_WAIT_POLICY=passive ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer targets (clang-14, over the Release build's libloom_*.a): a short run each in CI, fails on any finding.
test-fuzz: build
	BUILD=$(BUILD) bash scripts/fuzz.sh $(FUZZ_SECONDS_CI)

fuzz: build
	BUILD=$(BUILD) bash scripts/fuzz.sh $(FUZZ_SECONDS)

test: test-release test-asan test-fuzz

run: build
	bash scripts/run_main.sh $(BUILD)

bench: build
	bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
