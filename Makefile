# mailwerk — the two commands of the quick start are `make run` and `make test`.
# Build trees: build/ (release, for run), build-asan/ (ASan+UBSan, for test), build-fuzz/ (libFuzzer).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
VAR        ?= var
PYTEST     ?= /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test unit integration fuzz fuzz-build bench clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILWERK_TESTS=OFF >/dev/null
	@cmake --build $(BUILD)

run: build
	@bash scripts/run.sh $(BUILD)/mailwerk $(VAR)

asan-build: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMAILWERK_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD)

unit: asan-build
	@cd $(ASAN_BUILD) && ctest --output-on-failure

integration: asan-build
	@MAILWERK_BIN=$(CURDIR)/$(ASAN_BUILD)/mailwerk $(PYTEST) -q tests/integration

test: unit integration fuzz-smoke

fuzz-build: deps
	@CC=clang cmake -S fuzz -B $(FUZZ_BUILD) -G Ninja >/dev/null
	@cmake --build $(FUZZ_BUILD)

# Runs every fuzzer for FUZZ_SECONDS on its corpus (CI runs this briefly; run longer by hand).
fuzz: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_BUILD) 10

bench: build
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/accept.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/delivery.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/relay.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/checks.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/api.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
