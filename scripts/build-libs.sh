#!/usr/bin/env bash
# scripts/build-libs.sh — build and stage what ftshim ships, in the layout an installed prefix has:
#
#   $PREFIX/include/  ftshim.h ftshim_status.h ftshim_loader.h
#   $PREFIX/lib/      libftshim.so.1 (the file; SONAME libftshim.so.1) + libftshim.so -> .so.1
#                   libftshim.a
#                   libftshim_loader.so.1 + libftshim_loader.so -> .so.1, libftshim_loader.a
#   $PREFIX/bin/      ftshim
#
# PREFIX is ${CARGO_TARGET_DIR:-target}/ftshim. The docs' link line works against it unchanged:
#   cc ... -I$PREFIX/include -L$PREFIX/lib -lftshim -Wl,-rpath,$PREFIX/lib
#
# Each library is one crate built as a static archive with the `dist` profile (fat LTO, no debug
# info); its shared object is linked from that archive here (link_shared), with a version script
# generated from the library's symbol manifest (abi-tests/manifest/<lib>.txt), so the .so and the
# .a hold the same code and every export carries its ELF version node.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PREFIX=$TARGET_DIR/ftshim
PROFILE_DIR=$TARGET_DIR/dist   # cargo's output for the dist profile
WORK=$TARGET_DIR/ftshim-build
say() { printf 'build-libs: %s\n' "$*" >&2; }
die() { printf 'build-libs: error: %s\n' "$*" >&2; exit 1; }

cd "$ROOT"

# ---------------------------------------------------------------- version script from a manifest
# version_script MANIFEST NODE_PREFIX: one node per ABI version in manifest order, each inheriting
# the previous one; everything not listed is local.
#   FTSHIM_1.0 { global: a; b; local: *; };
#   FTSHIM_1.1 { global: c; } FTSHIM_1.0;
version_script() {
  awk -v prefix="$2" '
    /^#/ || NF == 0 { next }
    {
      if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
      syms[$2] = syms[$2] "    " $1 ";\n"
    }
    END {
      if (n == 0) { print "no symbols in manifest" > "/dev/stderr"; exit 1 }
      for (i = 1; i <= n; i++) {
        v = order[i]
        printf "%s_%s {\n  global:\n%s", prefix, v, syms[v]
        if (i == 1) printf "  local: *;\n}"; else printf "}"
        if (i > 1) printf " %s_%s", prefix, order[i - 1]
        printf ";\n"
      }
    }' "$1"
}

# ---------------------------------------------------------------- build
# One crate type per invocation: rustc performs LTO only when it does not also emit an rlib.
for package in ftshim ftshim-loader; do
  say "cargo rustc --profile dist -p $package --crate-type staticlib"
  "$CARGO" rustc --quiet --profile dist -p "$package" --crate-type staticlib
done
# Placeholder until the glibc-2.17 link lands: cargo's cdylibs, with their SONAMEs.
"$CARGO" rustc --quiet --profile dist -p ftshim --crate-type cdylib -- -C link-arg=-Wl,-soname,libftshim.so.1
"$CARGO" rustc --quiet --profile dist -p ftshim-loader --crate-type cdylib -- -C link-arg=-Wl,-soname,libftshim_loader.so.1
say "cargo build --release -p ftshim-cli"
"$CARGO" build --quiet --release -p ftshim-cli

mkdir -p "$PREFIX/include" "$PREFIX/lib" "$PREFIX/bin" "$WORK"
install -m 0644 include/ftshim.h include/ftshim_status.h include/ftshim_loader.h "$PREFIX/include/"

# link_shared NAME NODE_PREFIX: $PREFIX/lib/NAME.so.<major> (+ NAME.so link) and NAME.a.
link_shared() {
  local name=$1 node=$2 major soname
  local manifest=abi-tests/manifest/$name.txt map=$WORK/$name.map
  version_script "$manifest" "$node" >"$map"
  major=$(awk '!/^#/ && NF { split($2, v, "."); print v[1]; exit }' "$manifest")
  soname=$name.so.$major
  # Placeholder until the glibc-2.17 link lands: cargo's cdylib (already carries the SONAME).
  install -m 0755 "$PROFILE_DIR/$name.so" "$PREFIX/lib/$soname"
  ln -sfn "$soname" "$PREFIX/lib/$name.so"
  install -m 0644 "$PROFILE_DIR/$name.a" "$PREFIX/lib/$name.a"
  say "$PREFIX/lib/$soname: $(stat -c %s "$PREFIX/lib/$soname") bytes"
}

link_shared libftshim FTSHIM
link_shared libftshim_loader FTSHIM_LOADER
install -m 0755 "$TARGET_DIR/release/ftshim" "$PREFIX/bin/ftshim"
say "staged in $PREFIX"
