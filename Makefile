# ftshim — two commands do everything on a fresh Debian 12 machine:
#   make run    set up if needed, build, check the example with the loader, run the threaded demo
#   make test   set up if needed, then the whole test suite (format, lints, cargo tests incl. abi-tests)

SHELL := bash
CARGO ?= cargo
export FTSHIM_INTERPRETERS ?= $(CURDIR)/target/ftshim-interpreters.env

.PHONY: all setup build run test lint bench clean

all: build

# Builds (first time) or verifies (after) python3.13t, finds the GIL 3.13 and 3.11, records them.
setup:
	bash scripts/setup.sh

# libftshim is built on its own so the CLI's and the tests' features never enter the cdylib.
build:
	$(CARGO) build --release -p ftshim
	$(CARGO) build --release -p ftshim-cli -p ftshim-abi-tests

run: setup build
	$(CARGO) run --release --quiet -p ftshim-abi-tests --bin ftshim-demo

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: setup build lint
	$(CARGO) test --workspace -- --show-output

# ftshim vs the native CPython primitive on python3.13t, same process: wall-time ratios and
# callgrind instruction counts (see docs/benchmarks.md).
bench: setup build
	$(CARGO) run --release --quiet -p ftshim-abi-tests --bin ftshim-bench

clean:
	$(CARGO) clean
