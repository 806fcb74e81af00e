#!/usr/bin/env bash
# scripts/build-wheel.sh — the ftshim wheel, from what scripts/build-libs.sh staged in
# ${CARGO_TARGET_DIR:-target}/ftshim (run that first; `make wheel` does both):
#
#   ftshim/__init__.py __main__.py _binding.py py.typed   python/ftshim + the guard's ctypes binding
#   ftshim/include/   ftshim.h ftshim_status.h ftshim_loader.h
#   ftshim/lib/       libftshim.so.1 libftshim.a libftshim_loader.so.1 libftshim_loader.a, and
#                     libftshim.so / libftshim_loader.so as one-line linker scripts (a wheel holds
#                     no symlinks; `-lftshim` still finds the shared library)
#   ftshim/lib/pkgconfig/  ftshim.pc ftshim_loader.pc       ftshim/lib/cmake/ftshim/  the package
#   ftshim-<v>.data/scripts/ftshim                           the CLI, on PATH once installed
#
# Backend: maturin (python/pyproject.toml), `bindings = "bin"`: it builds the CLI itself, with
# `--zig` and `--compatibility manylinux2014`, so the executable has the same glibc 2.17 baseline
# as the libraries (the CLI build-libs.sh stages is linked against this machine's glibc), and tags
# the wheel py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64. maturin, auditwheel and zig come
# from the private tools venv scripts/setup.sh records (FTSHIM_PYTOOLS).
#
# Prints the wheel's path on stdout. Output: ${CARGO_TARGET_DIR:-target}/ftshim-wheel/dist/.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
PREFIX=$TARGET_DIR/ftshim
OUT=$TARGET_DIR/ftshim-wheel

TOOLS=$(record_get FTSHIM_PYTOOLS)
[ -n "$TOOLS" ] && [ -x "$TOOLS/bin/maturin" ] ||
  die "no maturin recorded in $RECORD (FTSHIM_PYTOOLS='$TOOLS'): run \`make setup\`, which installs it"
for f in include/ftshim.h lib/libftshim.so.1 lib/libftshim.a lib/libftshim_loader.so.1 \
  lib/libftshim_loader.a lib/pkgconfig/ftshim.pc lib/cmake/ftshim/ftshimConfig.cmake; do
  [ -f "$PREFIX/$f" ] || die "$PREFIX/$f missing: run scripts/build-libs.sh first"
done

exec 9>"$TARGET_DIR/.ftshim-wheel.lock"
flock 9

# The project maturin sees: python/ plus the staged files, in a scratch copy (nothing generated
# lands in the source tree).
SRC=$OUT/src
rm -rf "$SRC" "$OUT/dist"
mkdir -p "$SRC/ftshim/lib" "$OUT/dist"
sed "s|^python-source = .*|python-source = \".\"\nmanifest-path = \"$ROOT/cli/Cargo.toml\"|" \
  "$ROOT/python/pyproject.toml" >"$SRC/pyproject.toml"
cp "$ROOT"/python/ftshim/*.py "$ROOT/python/ftshim/py.typed" "$SRC/ftshim/"
cp "$ROOT/cli/src/guard/_ftshim_guard.py" "$SRC/ftshim/_binding.py"
cp -r "$PREFIX/include" "$SRC/ftshim/include"
for lib in libftshim libftshim_loader; do
  cp "$PREFIX/lib/$lib.so.1" "$PREFIX/lib/$lib.a" "$SRC/ftshim/lib/"
  printf '/* GNU ld script: -l%s links the shared library by its SONAME */\nINPUT(%s.so.1)\n' \
    "${lib#lib}" "$lib" >"$SRC/ftshim/lib/$lib.so"
done
cp -r "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake" "$SRC/ftshim/lib/"

(cd "$SRC" && PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/maturin" build --release --zig \
  --compatibility manylinux2014 --out "$OUT/dist" --quiet) >"$OUT/maturin.log" 2>&1 ||
  { tail -30 "$OUT/maturin.log" >&2; die "maturin build failed (log: $OUT/maturin.log)"; }
wheel=$(ls "$OUT"/dist/ftshim-*.whl)
[ "$(wc -l <<<"$wheel")" = 1 ] || die "expected one wheel in $OUT/dist, found: $wheel"
printf '%s\n' "$wheel"
