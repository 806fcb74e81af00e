# ftshim — two commands do everything on a fresh Debian 12 machine:
#   make run    set up if needed, build, check the example with the loader, run the threaded demo
#   make test   set up if needed, then the whole test suite (format, lints, cargo tests incl. abi-tests)

SHELL := bash
CARGO ?= cargo
export FTSHIM_INTERPRETERS ?= $(CURDIR)/target/ftshim-interpreters.env

.PHONY: all setup build libs wheel install run test lint bench fuzz clean abi-baseline

all: build

# Builds (first time) or verifies (after) python3.13t, finds the GIL 3.13 and 3.11, records them.
setup:
	bash scripts/setup.sh

# Both libraries (libftshim, libftshim_loader) and the CLI, staged like an installed prefix in
# target/ftshim/{include,lib,bin} (scripts/build-libs.sh); then the demo and bench binaries.
build: libs
	$(CARGO) build --release -p ftshim-abi-tests

# Links with the zig that setup installs (its record names it).
libs: setup
	bash scripts/build-libs.sh

# The ftshim wheel (py3-none-manylinux_2_17): the CLI, the headers, both libraries, pkg-config
# files, the CMake package and the Python package (scripts/build-wheel.sh, maturin).
wheel: libs
	bash scripts/build-wheel.sh

# For C users and packagers: headers, both libraries with their SONAME links, the pkg-config files
# (prefix = PREFIX), the CMake package and the CLI, into $(DESTDIR)$(PREFIX).
PREFIX ?= /usr/local
DESTDIR ?=
install: libs
	PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" bash scripts/install.sh

# After the demo: `ftshim audit --import` over every extension module python3.13t would load from
# its lib-dynload plus the example the demo just built (target/abi-tests/demo): each inspected,
# then imported in a child interpreter to see that the GIL stays off (docs/loader.md).
run: setup build
	$(CARGO) run --release --quiet -p ftshim-abi-tests --bin ftshim-demo
	@source "$(FTSHIM_INTERPRETERS)" && tgt="$${CARGO_TARGET_DIR:-target}" && \
	  dynload="$$("$$FTSHIM_PY_FT" -I -B -c 'import sysconfig; print(sysconfig.get_config_var("DESTSHARED"))')" && \
	  echo && echo "ftshim audit --import --python $$FTSHIM_PY_FT $$dynload $$tgt/abi-tests/demo" && \
	  "$$tgt/ftshim/bin/ftshim" audit --import --python "$$FTSHIM_PY_FT" "$$dynload" "$$tgt/abi-tests/demo"

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Then the mutex exports' Rust fast path, which other architectures compile instead of the x86-64
# assembly (shim/src/mutex.rs): the runtime's lints and unit tests once more, built with it.
test: setup build lint
	$(CARGO) test --workspace -- --show-output
	export RUSTFLAGS="--cfg ftshim_portable_mutex" CARGO_TARGET_DIR="$${CARGO_TARGET_DIR:-target}/portable-mutex" && \
	  $(CARGO) clippy -p ftshim --all-targets -- -D warnings && $(CARGO) test -p ftshim --lib

# ftshim vs the native CPython primitive on python3.13t, same process: wall-time ratios and
# callgrind instruction counts; contention on every interpreter; the cache extension's scaling
# from 1 to 2 threads (3.13t, GIL 3.13); the CLI's speed. Writes target/bench/results.json and
# draws it: docs/benchmarks.png and the generated section of docs/benchmarks.md.
bench: setup build
	$(CARGO) run --release --quiet -p ftshim-abi-tests --bin ftshim-bench

# The loader's libFuzzer targets (inspector, wheel reader) with AddressSanitizer, FUZZ_SECONDS
# each (default 60), seeded with real modules and wheels (scripts/fuzz.sh; nightly + cargo-fuzz).
# `make test` runs the deterministic stable harness instead (abi-tests/tests/loader_fuzz.rs).
fuzz: setup
	bash scripts/fuzz.sh

clean:
	$(CARGO) clean

# Rewrite the libabigail ABI baselines (abi-tests/abi/*.abi) from today's build: only when a
# release is cut (tests/abi_check.rs fails on any other ABI change).
abi-baseline: libs
	bash scripts/abi-baseline.sh
