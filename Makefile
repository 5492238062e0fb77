# mailwerk — the two commands of the quick start are `make run` and `make test`.
# Build trees: build/ (release, for run), build-asan/ (ASan+UBSan, for test), build-fuzz/ (libFuzzer).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
VAR        ?= var
PYTEST     ?= /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 20
# Tests run side by side: TEST_JOBS unit test binaries at once (ctest) and TEST_JOBS pytest-xdist
# workers for the integration tests, as most of them wait on timers and peers rather than the CPU;
# FUZZ_JOBS fuzzers at once, each one CPU-bound, so one per CPU.
TEST_JOBS  ?= 4
FUZZ_JOBS  ?= $(shell nproc)

# make install: PREFIX (default /usr/local) and DESTDIR as usual; BUILD names the tree whose
# binary is installed (build it first: make build).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR      ?= $(PREFIX)/share/man
# make deb: the directory the Debian package goes to
DEB_OUT     ?= build-deb

.PHONY: all deps build run test unit integration fuzz fuzz-build bench install deb clean

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
	@cd $(ASAN_BUILD) && ctest --output-on-failure --parallel $(TEST_JOBS)

# Two passes: the tests not marked serial run TEST_JOBS at a time, a test file to a worker (so a
# file's module fixtures live in one process), then the serial ones (deadlines, memory, load: see
# tests/integration/pytest.ini) run alone. The second pass runs even if the first failed (not if it
# was interrupted); the target fails if either did.
integration: asan-build
	@export MAILWERK_BIN=$(CURDIR)/$(ASAN_BUILD)/mailwerk; \
	$(PYTEST) -q -n $(TEST_JOBS) --dist loadfile -m "not serial" tests/integration; side=$$?; \
	[ $$side -ne 2 ] || exit 2; \
	$(PYTEST) -q -m serial tests/integration; alone=$$?; \
	[ $$side -eq 0 ] && [ $$alone -eq 0 ]

test: unit integration fuzz-smoke

fuzz-build: deps
	@CC=clang cmake -S fuzz -B $(FUZZ_BUILD) -G Ninja >/dev/null
	@cmake --build $(FUZZ_BUILD)

# Runs every fuzzer for FUZZ_SECONDS on its corpus, FUZZ_JOBS at a time (CI runs this briefly;
# run longer by hand).
fuzz: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_JOBS)

fuzz-smoke: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ_BUILD) 5 $(FUZZ_JOBS)

bench: build
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/accept.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/delivery.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/relay.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/checks.sh
	@MAILWERK=$(CURDIR)/$(BUILD)/mailwerk bash bench/api.sh

# The binary, its manual pages (made from the README), the service unit (its ExecStart pointed at
# BINDIR), the mailwerk user and its directories; the configuration is made on the machine by
# mailwerk init (README: Installing).
install:
	@test -x $(BUILD)/mailwerk || { echo "$(BUILD)/mailwerk is missing: run make build first" >&2; exit 1; }
	install -D -m 0755 $(BUILD)/mailwerk $(DESTDIR)$(BINDIR)/mailwerk
	/usr/bin/python3 scripts/manpages.py README.md $(BUILD)/man
	install -D -m 0644 $(BUILD)/man/mailwerk.1 $(DESTDIR)$(MANDIR)/man1/mailwerk.1
	install -D -m 0644 $(BUILD)/man/mailwerk.8 $(DESTDIR)$(MANDIR)/man8/mailwerk.8
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/bin/mailwerk|$(BINDIR)/mailwerk|' packaging/mailwerk.service > $(DESTDIR)$(UNITDIR)/mailwerk.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mailwerk.service
	install -D -m 0644 packaging/mailwerk.sysusers $(DESTDIR)$(SYSUSERSDIR)/mailwerk.conf
	install -D -m 0644 packaging/mailwerk.tmpfiles $(DESTDIR)$(TMPFILESDIR)/mailwerk.conf
	install -D -m 0644 packaging/fail2ban/mailwerk.conf $(DESTDIR)$(PREFIX)/share/mailwerk/fail2ban/mailwerk.conf

# The Debian package (debian/), by dpkg-buildpackage: make build's CMake build (in debian/build, no
# tests, parallel) and make install's files under /usr. The .deb, its -dbgsym, .buildinfo, .changes
# and build.log go to DEB_OUT, never to the checkout's parent directory.
deb: deps
	@mkdir -p $(DEB_OUT) && rm -f $(DEB_OUT)/mailwerk_* $(DEB_OUT)/mailwerk-dbgsym_* $(DEB_OUT)/build.log
	@out=$(abspath $(DEB_OUT)); pva=mailwerk_$$(dpkg-parsechangelog -S Version)_$$(dpkg-architecture -qDEB_HOST_ARCH); \
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL DEB_BUILD_OPTIONS="nocheck $(DEB_BUILD_OPTIONS)" MAILWERK_DEB_OUT=$$out \
	  dpkg-buildpackage -b --no-sign --jobs-try=auto --post-clean \
	    --buildinfo-option=-u$$out --buildinfo-file=$$out/$$pva.buildinfo \
	    --changes-option=-u$$out --changes-file=$$out/$$pva.changes >$$out/build.log 2>&1 \
	  || { tail -n 40 $$out/build.log >&2; echo "make deb failed: $(DEB_OUT)/build.log" >&2; exit 1; }; \
	ls $(DEB_OUT)/$$pva.deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(DEB_OUT)
