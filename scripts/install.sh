#!/usr/bin/env bash
# scripts/install.sh — `make install PREFIX=/usr/local DESTDIR=`: copies what scripts/build-libs.sh
# staged into $DESTDIR$PREFIX, laid out as staged:
#
#   include/  ftshim.h ftshim_status.h ftshim_loader.h
#   lib/      libftshim.so.1 + libftshim.so link, libftshim.a, the same for libftshim_loader
#   lib/pkgconfig/  ftshim.pc ftshim_loader.pc, their prefix set to $PREFIX (not $DESTDIR)
#   lib/cmake/ftshim/  find_package(ftshim CONFIG) (relocatable)
#   bin/      ftshim
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
STAGED=$TARGET_DIR/ftshim
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}

[[ $PREFIX == /* ]] || die "PREFIX must be an absolute path, got '$PREFIX'"
[ -f "$STAGED/lib/pkgconfig/ftshim.pc" ] || die "nothing staged in $STAGED: run scripts/build-libs.sh first"
dest=$DESTDIR$PREFIX
install -d "$dest/include" "$dest/lib/pkgconfig" "$dest/lib/cmake/ftshim" "$dest/bin"
install -m 0644 "$STAGED"/include/*.h "$dest/include/"
for lib in libftshim libftshim_loader; do
  install -m 0755 "$STAGED/lib/$lib.so.1" "$dest/lib/"
  ln -sfn "$lib.so.1" "$dest/lib/$lib.so"
  install -m 0644 "$STAGED/lib/$lib.a" "$dest/lib/"
done
for pc in ftshim ftshim_loader; do
  sed "s|^prefix=.*|prefix=$PREFIX|" "$STAGED/lib/pkgconfig/$pc.pc" >"$dest/lib/pkgconfig/$pc.pc"
  chmod 0644 "$dest/lib/pkgconfig/$pc.pc"
done
install -m 0644 "$STAGED"/lib/cmake/ftshim/*.cmake "$dest/lib/cmake/ftshim/"
install -m 0755 "$STAGED/bin/ftshim" "$dest/bin/"
printf 'install: installed ftshim into %s\n' "$dest" >&2
