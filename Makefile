# Thin front for CMake: `make demo` and `make test` are the quick start.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo demo-caf test asan tsan fuzz bench soak clean format

all: build

deps:
	@bash tools/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# Builds only the demo and the options tour (and the library they link),
# quietly: the build's output goes to a log that is shown only if the build
# fails. Runs the demo; the tour is there to run next (docs/OPTIONS.md).
demo: configure
	@echo "make demo: building the demo (log: $(BUILD)/demo-build.log)"
	@cmake --build $(BUILD) -j $(JOBS) --target bank_demo options_tour -- --no-print-directory \
	  >$(BUILD)/demo-build.log 2>&1 || { cat $(BUILD)/demo-build.log; \
	  echo "make demo: the build failed (log above: $(BUILD)/demo-build.log)" >&2; exit 1; }
	@bash examples/run-demo.sh $(BUILD)
	@echo "make demo: next, the stored size and cost of every option: $(BUILD)/examples/options_tour (docs/OPTIONS.md)"

# 1,000 CAF account actors killed with SIGKILL and recovered (integrations/caf).
demo-caf: build
	@bash integrations/caf/run-caf-bank.sh $(BUILD)/integrations/caf/caf_bank

# --no-tests=error: a build directory configured without tests fails loudly
# instead of reporting success for a run of nothing.
test: build
	@ctest --test-dir $(BUILD) --output-on-failure --no-tests=error -j $(JOBS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_FLAGS="-DSNAP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DSNAP_BUILD_BENCH=OFF"

# The threaded tests under ThreadSanitizer.
tsan:
	@$(MAKE) --no-print-directory build BUILD=build-tsan CMAKE_FLAGS="-DSNAP_TSAN=ON -DCMAKE_BUILD_TYPE=Debug -DSNAP_BUILD_BENCH=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++"
	@ctest --test-dir build-tsan --output-on-failure --no-tests=error -L threads

fuzz:
	@bash fuzz/run.sh

# The randomized robustness tests at a larger count: 20,000 simulated power
# cuts per synchronous mode (SNAP_POWERCUTS overrides; `make test` runs 2,000).
soak: build
	@SNAP_POWERCUTS=$${SNAP_POWERCUTS:-20000} $(BUILD)/tests/test_powerloss --verbose

bench: build
	@$(BUILD)/bench/snap_bench

format:
	@find pipeline store plugin tests fuzz examples bench tools integrations -name '*.[ch]' -o -name '*.[ch]pp' | xargs clang-format -i

clean:
	@rm -rf build build-*
