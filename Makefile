# nncc — thin wrapper over CMake. The two commands of the README:
#   make demo   install what is missing, build, compile the bundled example
#   make test   install what is missing, build, run the whole test suite
#               (a normal build, then an ASan+UBSan build of the same tests,
#               then the runtime's thread tests built with TSan)
# Other targets: make build, make deps, make clean, and
#   make install PREFIX=DIR   bin/nncc, nncc.h, libnncc_runtime, nncc.pc and
#                             the CMake package under DIR (docs/ABI.md)

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

# Debian packages: to build, and additionally to test (reference outputs
# and the model zoo come from PyTorch itself).
BUILD_PKGS = cmake make gcc pkg-config llvm-dev libzip-dev libcjson-dev
TEST_PKGS  = python3 python3-torch python3-torchvision python3-numpy unzip clang-14 libclang-rt-14-dev \
             g++ graphviz valgrind clang-format clang-tidy cppcheck strace

.PHONY: all build demo test test-fast deps deps-test install clean

all: build

deps:
	@sh tools/ensure-packages.sh $(BUILD_PKGS)

deps-test:
	@sh tools/ensure-packages.sh $(BUILD_PKGS) $(TEST_PKGS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@sh examples/demo.sh $(BUILD)/nncc

test: deps-test $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DNNCC_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS) -E '^(dynamic|cuda|valgrind|libfuzzer|lint)$$'
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DNNCC_SANITIZE=thread
	cmake --build $(BUILD_TSAN) -j $(JOBS) --target nncc_test_misuse nncc_test_concurrency
	bash tests/runtime/tsan.sh $(BUILD) $(BUILD_TSAN)

# The suite without the sanitizer build, for quick iterations.
test-fast: deps-test $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
