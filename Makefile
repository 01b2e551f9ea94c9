# Thin front for CMake: `make demo` and `make test` are the quick start.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo demo-caf test asan tsan fuzz bench clean format

all: build

deps:
	@bash tools/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

demo: build
	@bash examples/run-demo.sh $(BUILD)

# 1,000 CAF account actors killed with SIGKILL and recovered (integrations/caf).
demo-caf: build
	@bash integrations/caf/run-caf-bank.sh $(BUILD)/integrations/caf/caf_bank

test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_FLAGS="-DSNAP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DSNAP_BUILD_BENCH=OFF"

# The threaded tests under ThreadSanitizer.
tsan:
	@$(MAKE) --no-print-directory build BUILD=build-tsan CMAKE_FLAGS="-DSNAP_TSAN=ON -DCMAKE_BUILD_TYPE=Debug -DSNAP_BUILD_BENCH=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++"
	@ctest --test-dir build-tsan --output-on-failure -L threads

fuzz:
	@bash fuzz/run.sh

bench: build
	@$(BUILD)/bench/snap_bench

format:
	@find pipeline store plugin tests fuzz examples bench tools integrations -name '*.[ch]' -o -name '*.[ch]pp' | xargs clang-format -i

clean:
	@rm -rf build build-*
