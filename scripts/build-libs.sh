#!/usr/bin/env bash
# scripts/build-libs.sh — build and stage what ftshim ships, in the layout an installed prefix has:
#
#   $PREFIX/include/  ftshim.h ftshim_status.h ftshim_loader.h
#   $PREFIX/lib/      libftshim.so.1 (the file; SONAME libftshim.so.1) + libftshim.so -> .so.1
#                   libftshim.a
#                   libftshim_loader.so.1 + libftshim_loader.so -> .so.1, libftshim_loader.a
#                   pkgconfig/ftshim.pc, pkgconfig/ftshim_loader.pc (relocatable: ${pcfiledir})
#                   cmake/ftshim/ftshimConfig.cmake, ftshimConfigVersion.cmake
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
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
PREFIX=$TARGET_DIR/ftshim
PROFILE_DIR=$TARGET_DIR/dist   # cargo's output for the dist profile (Cargo.toml)
WORK=$TARGET_DIR/ftshim-build

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

# ---------------------------------------------------------------- toolchain
# The zig scripts/setup.sh installed, from the record it writes (as the tests read it).
ZIG_PYTHON=$(record_get FTSHIM_ZIG_PYTHON)
[ -n "$ZIG_PYTHON" ] && [ -x "$ZIG_PYTHON" ] ||
  die "no zig recorded in $RECORD (FTSHIM_ZIG_PYTHON='$ZIG_PYTHON'): run \`make setup\`, which installs it"
case "$(uname -m)" in
  x86_64) ZIG_TARGET=x86_64-linux-gnu.2.17 ;;
  aarch64) ZIG_TARGET=aarch64-linux-gnu.2.17 ;;
  *) die "no glibc 2.17 target known for $(uname -m)" ;;
esac

# ---------------------------------------------------------------- build
# One crate type per invocation: rustc performs LTO only when it does not also emit an rlib.
# Paths are remapped so the debug info, the build-id and the ABI baseline (abidw) do not depend on
# where the checkout or the cargo registry lives.
DIST_RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$ROOT=/ftshim --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
mkdir -p "$PREFIX/include" "$PREFIX/lib" "$PREFIX/bin" "$WORK"
for package in ftshim ftshim-loader; do
  say "cargo rustc --profile dist -p $package --crate-type staticlib"
  RUSTFLAGS=$DIST_RUSTFLAGS "$CARGO" rustc --quiet --profile dist -p "$package" --crate-type staticlib \
    -- --print native-static-libs 2>"$WORK/$package.rustc.log" ||
    { cat "$WORK/$package.rustc.log" >&2; die "building $package failed"; }
done
say "cargo build --release -p ftshim-cli"
"$CARGO" build --quiet --release -p ftshim-cli

install -m 0644 include/ftshim.h include/ftshim_status.h include/ftshim_loader.h "$PREFIX/include/"

# link_shared PACKAGE NAME NODE_PREFIX HEADER: $PREFIX/lib/NAME.so.<major> (+ NAME.so link) and
# NAME.a; <major> is <NODE_PREFIX>_ABI_VERSION_MAJOR in HEADER, the one place it is written.
#
# zig cc links the LTO'd archive for glibc 2.17 (its own glibc stubs of that version, and its
# static LLVM libunwind where rustc asks for libgcc_s). `-u SYM` pulls each export in (a version
# script alone does not pull archive members), --gc-sections drops the rest, `-z defs` makes any
# unresolved symbol a link error. The unstripped link is kept in $WORK for abidw; what ships is
# stripped by binutils afterwards (a strip flag to zig would make it rebuild its runtime).
link_shared() {
  local package=$1 name=$2 node=$3 header=$4 major soname native sym
  local manifest=abi-tests/manifest/$name.txt map=$WORK/$name.map
  version_script "$manifest" "$node" >"$map"
  major=$(awk -v m="${node}_ABI_VERSION_MAJOR" '$1 == "#define" && $2 == m { print $3; exit }' "$header")
  [[ $major =~ ^[0-9]+$ ]] || die "$header has no numeric ${node}_ABI_VERSION_MAJOR"
  soname=$name.so.$major
  native=$(sed -n 's/^note: native-static-libs: //p' "$WORK/$package.rustc.log" | tail -1)
  [ -n "$native" ] || die "rustc printed no native-static-libs for $package (see $WORK/$package.rustc.log)"
  native=${native//-lgcc_s/-lunwind}
  local undefs=()
  while read -r sym; do undefs+=("-Wl,-u,$sym"); done < <(awk '!/^#/ && NF { print $1 }' "$manifest")
  # shellcheck disable=SC2086 # $native is a list of -l flags
  (cd "$WORK" && ZIG_GLOBAL_CACHE_DIR="$WORK/zig-cache" ZIG_LOCAL_CACHE_DIR="$WORK/zig-cache" \
    "$ZIG_PYTHON" -m ziglang cc -target "$ZIG_TARGET" -shared -fno-sanitize=undefined \
      -Wl,--gc-sections -Wl,-z,defs -Wl,--build-id=sha1 \
      -Wl,-soname,"$soname" -Wl,--version-script="$map" "${undefs[@]}" \
      -o "$WORK/$soname.debug" "$PROFILE_DIR/$name.a" $native) >"$WORK/$name.link.log" 2>&1 ||
    { cat "$WORK/$name.link.log" >&2; die "linking $soname failed"; }
  strip -o "$PREFIX/lib/$soname.tmp" "$WORK/$soname.debug"
  mv -f "$PREFIX/lib/$soname.tmp" "$PREFIX/lib/$soname"
  ln -sfn "$soname" "$PREFIX/lib/$name.so"
  # binutils warns about the LLVM bitcode of the LTO'd object ("bfd plugin"); kept in a log.
  strip --strip-debug -o "$PREFIX/lib/$name.a.tmp" "$PROFILE_DIR/$name.a" 2>"$WORK/$name.strip.log" ||
    { cat "$WORK/$name.strip.log" >&2; die "strip --strip-debug $PROFILE_DIR/$name.a failed"; }
  mv -f "$PREFIX/lib/$name.a.tmp" "$PREFIX/lib/$name.a"
  say "$PREFIX/lib/$soname: $(stat -c %s "$PREFIX/lib/$soname") bytes; $name.a: $(stat -c %s "$PREFIX/lib/$name.a") bytes"
}

link_shared ftshim libftshim FTSHIM include/ftshim.h
link_shared ftshim-loader libftshim_loader FTSHIM_LOADER include/ftshim_loader.h
install -m 0755 "$TARGET_DIR/release/ftshim" "$PREFIX/bin/ftshim"

# pkg-config files and the CMake package (packaging/), with the release version: the workspace's
# (Cargo.toml), the one number every copy is tested against.
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[[ $VERSION =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] ||
  die "no MAJOR.MINOR.PATCH version in Cargo.toml ('$VERSION')"
subst() {
  sed -e "s/@VERSION@/$VERSION/g" -e "s/@VERSION_MAJOR@/${BASH_REMATCH[1]}/g" \
    -e "s/@VERSION_MAJOR_MINOR@/${BASH_REMATCH[1]}.${BASH_REMATCH[2]}/g" "$1" >"$2.tmp"
  mv -f "$2.tmp" "$2"
}
mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/ftshim"
subst packaging/pkgconfig/ftshim.pc.in "$PREFIX/lib/pkgconfig/ftshim.pc"
subst packaging/pkgconfig/ftshim_loader.pc.in "$PREFIX/lib/pkgconfig/ftshim_loader.pc"
install -m 0644 packaging/cmake/ftshimConfig.cmake "$PREFIX/lib/cmake/ftshim/"
subst packaging/cmake/ftshimConfigVersion.cmake.in "$PREFIX/lib/cmake/ftshim/ftshimConfigVersion.cmake"
say "staged in $PREFIX"
