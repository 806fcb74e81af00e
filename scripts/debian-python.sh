# shellcheck shell=bash
# scripts/debian-python.sh — sourced by scripts/setup.sh (uses its CACHE, say, die, mirror_uri and
# check_interp); not a command of its own.
#
# GIL CPython 3.14 and 3.15 from Debian's development release (sid), on this Debian 12 machine,
# without installing anything: sid's *binary* packages (the interpreter, its standard library and
# headers, and the sid runtime libraries they need, glibc included) are fetched through a private
# apt configuration and unpacked with `dpkg-deb -x` into one private root per series:
#
#   $CACHE/apt-sid/                 the private apt configuration and logs (its index only while
#                                   fetching)
#   $CACHE/debian-sid-3.14/debs/    the .debs, and SHA256SUMS checked against the signed index
#   $CACHE/debian-sid-3.14/root/    the unpacked packages (a /usr tree, never /)
#   $CACHE/debian-sid-3.14/bin/python3.14
#                                   the interpreter to use: runs sid's dynamic loader on sid's
#                                   python3.14 with the root's libraries
#   $CACHE/debian-sid-3.14/.ftshim-ok
#                                   written only after everything below was verified; it holds
#                                   the hash of this file, and so does debs/RECIPE: an install or
#                                   download made by another version of this recipe is made again
#
# sid's glibc is newer than this machine's, so sid's binaries cannot use the machine's loader. Five
# edits to the unpacked root make it a working, self-describing installation (each one is checked):
#   * usr/bin/python3.X gets sid's loader in the root as its ELF interpreter and the root's library
#     directory as its DT_RPATH (patchelf), so sys.executable starts by itself: subprocess,
#     multiprocessing and `-m venv` (whose bin/python is a link to it) work;
#   * _sysconfigdata__*.py: the build variables naming /usr/... (prefix, INCLUDEPY, LIBDIR,
#     DESTSHARED, WHEEL_PKG_DIR, ...) are rewritten to name <root>/usr/..., so sysconfig, and
#     anything that reads that file (pyo3-build-config), sees paths that exist on this machine;
#     Debian's original is kept beside it as *.py.debian;
#   * usr/include/python3.X/pyconfig.h, Debian's dispatcher to <x86_64-linux-gnu/python3.X/pyconfig.h>
#     (found on Debian through the system include directory /usr/include, which the root's is not),
#     includes that file by its path relative to itself instead, so INCLUDEPY alone is enough for a
#     compiler here, as for any CPython installation (setuptools, meson-python... pass only that);
#     Debian's original is kept beside it as pyconfig.h.debian;
#   * symlinks with an absolute target (sitecustomize.py -> /etc/python3.X/...) are pointed at the
#     same path inside the root;
#   * the pkg-config files python-3.X.pc and python-3.X-embed.pc (which meson's python dependency
#     reads through sysconfig's LIBPC) say prefix=<root>/usr instead of /usr; Debian's originals are
#     kept beside them as *.pc.debian.
# Nothing under /etc/apt is read or changed, and nothing is installed into the system.

SID_APT="$CACHE/apt-sid"
SID_RECIPE=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
SID_SUITE=sid
SID_ARCH=amd64
SID_MULTIARCH=x86_64-linux-gnu

# Prints $1 as one single-quoted shell word.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Runs a command under the private apt configuration.
sid_apt() { APT_CONFIG="$SID_APT/apt.conf" "$@"; }

# The private apt configuration for sid's binary packages, and its index, fetched once per setup run.
#
# It is given to apt through APT_CONFIG, which apt reads *before* /etc/apt/apt.conf.d; it sets
# Dir::Etc::Parts to /dev/null, so this machine's apt.conf.d does not apply: not its
# APT::Update::Post-Invoke hooks (appstream refresh, PackageKit, docker-clean deleting
# /var/cache/apt/*.bin) and not its extra index targets (DEP-11 metadata). `-o` options come too
# late for that. Check-Valid-Until is off as on this machine's own configuration: the mirror's sid
# InRelease is older than its Valid-Until by this machine's clock. Its signature is still checked,
# against Debian's archive keyring (signed-by).
sid_apt_update() {
  if [ "$(cat "$SID_APT/updated-by" 2>/dev/null)" = "$$" ]; then return 0; fi
  [ "$(dpkg --print-architecture)" = "$SID_ARCH" ] || die "the sid interpreters are set up for $SID_ARCH only"
  case $SID_APT in *'"'*) die "the cache path $SID_APT contains a double quote, which apt.conf cannot hold" ;; esac
  local uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || die "no $keyring (package debian-archive-keyring) to check sid's index with"
  uri=$(mirror_uri)
  say "sid: fetching the package index of $uri $SID_SUITE (private apt configuration in $SID_APT)"
  rm -rf "$SID_APT"
  mkdir -p "$SID_APT/lists/partial" "$SID_APT/cache/archives/partial" "$SID_APT/state"
  : >"$SID_APT/status"
  echo "deb [arch=$SID_ARCH signed-by=$keyring] $uri $SID_SUITE main" >"$SID_APT/sources.list"
  cat >"$SID_APT/apt.conf" <<EOF
// Written by ftshim's scripts/setup.sh (scripts/debian-python.sh); used through APT_CONFIG only.
Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "/dev/null";
Dir::Etc::SourceList "$SID_APT/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "/dev/null";
Dir::State "$SID_APT/state";
Dir::State::Lists "$SID_APT/lists";
Dir::State::Status "$SID_APT/status";
Dir::Cache "$SID_APT/cache";
APT::Architecture "$SID_ARCH";
APT::Architectures { "$SID_ARCH"; };
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
APT::Sandbox::User "root";
Debug::NoLocking "1";
EOF
  sid_apt apt-get update >"$SID_APT/update.log" 2>&1 ||
    { tail -20 "$SID_APT/update.log" >&2; die "private apt-get update for $SID_SUITE failed (log: $SID_APT/update.log)"; }
  # apt-get update exits 0 on some fetch errors: it must have a Packages index now.
  grep -qE '^(E|Err):' "$SID_APT/update.log" &&
    { tail -20 "$SID_APT/update.log" >&2; die "private apt-get update for $SID_SUITE reported errors (log: $SID_APT/update.log)"; }
  ls "$SID_APT/lists/"*_"$SID_SUITE"_main_binary-"$SID_ARCH"_Packages* >/dev/null 2>&1 ||
    { tail -20 "$SID_APT/update.log" >&2; die "no $SID_SUITE Packages index after apt-get update (log: $SID_APT/update.log)"; }
  echo "$$" >"$SID_APT/updated-by"
}

# The index (about 160 MB with apt's caches) is needed only while fetching, and a later fetch
# updates it first: it is not kept once the interpreters are verified.
sid_drop_index() { rm -rf "${SID_APT:?}/lists" "${SID_APT:?}/cache" "${SID_APT:?}/updated-by"; }

# The Depends and Pre-Depends of the named packages (real packages only), one a line.
sid_depends() {
  sid_apt apt-cache depends --no-recommends --no-suggests --no-enhances --no-breaks --no-replaces \
    --no-conflicts "$@" 2>/dev/null | awk '$1 ~ /^\|?(Pre)?Depends:$/ && $2 !~ /^</ { print $2 }' | sort -u
}

# Of the named packages, those in Debian's "libs" section (run-time shared libraries), one a line.
sid_libs_only() {
  [ $# -gt 0 ] || return 0
  sid_apt apt-cache show --no-all-versions "$@" 2>/dev/null |
    awk '/^Package:/ {p = $2} /^Section:/ {s = $2} /^$/ { if (s == "libs") print p; p = s = "" }
         END { if (s == "libs") print p }' | sort -u
}

# sid_packages SERIES -> the packages to fetch, one a line: the interpreter's own packages, the
# wheels its -venv package depends on (ensurepip installs pip from them), and the closure of the
# run-time libraries they depend on (Depends/Pre-Depends in section "libs"; glibc among them, and
# not the data packages tzdata, netbase, media-types: the machine's own files are used for those).
# Which libraries the unpacked interpreter really loads is checked later, file by file.
sid_packages() {
  local s=$1 p
  local own=("python$s-minimal" "libpython$s-minimal" "libpython$s-stdlib" "libpython$s"
    "libpython$s-dev" "python$s-dev" "python$s" "python$s-venv")
  for p in "${own[@]}"; do
    sid_apt apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || die "$SID_SUITE has no package $p"
  done
  local wheels=() libs=() next=()
  mapfile -t wheels < <(sid_depends "python$s-venv" | grep -- '-whl$' || true)
  # shellcheck disable=SC2046 # package names: splitting the list into words is meant
  mapfile -t next < <(sid_libs_only $(sid_depends "python$s-minimal" "libpython$s-minimal" \
    "libpython$s-stdlib" "libpython$s" "python$s" | grep -v '^libpython'))
  while [ ${#next[@]} -gt 0 ]; do
    mapfile -t libs < <(printf '%s\n' "${libs[@]}" "${next[@]}" | grep . | sort -u)
    # shellcheck disable=SC2046
    mapfile -t next < <(sid_libs_only $(sid_depends "${next[@]}" | grep -vxF -f <(printf '%s\n' "${libs[@]}")))
  done
  printf '%s\n' "${own[@]}" "${wheels[@]}" "${libs[@]}"
}

# sid_fetch_debs SERIES DIR: DIR/debs holds the series' .debs and a SHA256SUMS made from the index.
# Reused when they were fetched by this version of the recipe and every file matches SHA256SUMS.
sid_fetch_debs() {
  local s=$1 dir=$2 debs="$2/debs"
  if [ "$(cat "$debs/RECIPE" 2>/dev/null)" = "$SID_RECIPE" ] && [ -f "$debs/SHA256SUMS" ] &&
    (cd "$debs" && sha256sum --quiet --strict -c SHA256SUMS) >/dev/null 2>&1; then
    say "sid $s: reusing the verified packages in $debs"
    return 0
  fi
  rm -rf "$debs"
  mkdir -p "$debs"
  sid_apt_update
  local pkgs=()
  mapfile -t pkgs < <(sid_packages "$s")
  [ ${#pkgs[@]} -gt 8 ] || die "could not list the packages for sid's python$s"
  say "sid $s: downloading ${#pkgs[@]} packages: ${pkgs[*]}"
  # apt-get download checks every file against the SHA256 (and size) in the Packages index, whose
  # InRelease apt-get update checked against the archive key; a mismatch fails the download.
  (cd "$debs" && sid_apt apt-get download "${pkgs[@]}") >"$dir/download.log" 2>&1 ||
    { tail -20 "$dir/download.log" >&2; die "apt-get download of sid's python$s packages failed (log: $dir/download.log)"; }
  # ... and the files are checked here again, by name, size and SHA256 from the same index, which
  # also names exactly which file belongs to which package (SHA256SUMS, for reuse without network).
  local pkg ver arch sha size file n=0
  : >"$debs/SHA256SUMS.tmp"
  while read -r pkg ver arch sha size; do
    file="${pkg}_${ver//:/%3a}_${arch}.deb"
    [ -f "$debs/$file" ] || die "apt-get download left no $file for $pkg $ver"
    [ "$(stat -c %s "$debs/$file")" = "$size" ] || die "$debs/$file: size differs from the index ($size)"
    echo "$sha  $file" | (cd "$debs" && sha256sum --quiet --strict -c -) >/dev/null 2>&1 ||
      die "$debs/$file: SHA256 differs from the index ($sha)"
    echo "$sha  $file" >>"$debs/SHA256SUMS.tmp"
    n=$((n + 1))
  done < <(sid_apt apt-cache show --no-all-versions "${pkgs[@]}" |
    awk '/^Package:/ {p = $2} /^Version:/ {v = $2} /^Architecture:/ {a = $2} /^SHA256:/ {h = $2}
         /^Size:/ {z = $2} /^$/ { if (p != "") print p, v, a, h, z; p = "" } END { if (p != "") print p, v, a, h, z }')
  [ "$n" = ${#pkgs[@]} ] || die "the index described $n of the ${#pkgs[@]} packages fetched for sid $s"
  [ "$(ls "$debs"/*.deb | wc -l)" = "$n" ] || die "$debs holds other .debs than the $n fetched"
  mv "$debs/SHA256SUMS.tmp" "$debs/SHA256SUMS"
  echo "$SID_RECIPE" >"$debs/RECIPE"
}

# The dynamic loader and the library directories of a root (sid has merged /usr: the loader is
# usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2, with usr/lib64/ld-linux-x86-64.so.2 a link to it).
sid_ldso() {
  local d
  for d in usr/lib/$SID_MULTIARCH lib/$SID_MULTIARCH usr/lib64 lib64; do
    if [ -f "$1/$d/ld-linux-x86-64.so.2" ] && [ ! -L "$1/$d/ld-linux-x86-64.so.2" ]; then
      printf '%s\n' "$1/$d/ld-linux-x86-64.so.2"; return 0
    fi
  done
  return 1
}
sid_libpath() {
  local d out=""
  for d in usr/lib/$SID_MULTIARCH lib/$SID_MULTIARCH; do
    [ -d "$1/$d" ] && [ ! -L "$1/$d" ] && out="${out:+$out:}$1/$d"
  done
  printf '%s\n' "$out"
}

# Points every symlink in ROOT with an absolute target at that path inside ROOT, and fails when a
# symlink would lead out of ROOT (a later package unpacked through it would write outside). Run
# after each package; a link already checked (SID_LINKS_SEEN: path and target) is not looked at again.
declare -A SID_LINKS_SEEN=()
sid_contain_links() {
  local root=$1 link target
  while IFS= read -r -d '' link && IFS= read -r -d '' target; do
    [ -z "${SID_LINKS_SEEN[$link -> $target]:-}" ] || continue
    if [[ $target == /* ]]; then
      target=$root$target
      ln -sfn "$target" "$link"
    fi
    case $(realpath -m "$link") in "$root"/*) ;; *) die "symlink $link -> $target leads out of $root" ;; esac
    SID_LINKS_SEEN[$link -> $target]=1
  done < <(find "$root" -type l -printf '%p\0%l\0')
}

# sid_unpack SERIES DIR: DIR/root from DIR/debs, the four edits, and the wrapper DIR/bin/pythonX.Y.
sid_unpack() {
  local s=$1 dir=$2 root="$2/root" deb
  mkdir -p "$root"
  SID_LINKS_SEEN=()
  while read -r _ deb; do
    dpkg-deb -x "$dir/debs/$deb" "$root" || die "dpkg-deb -x $deb failed"
    sid_contain_links "$root"
  done <"$dir/debs/SHA256SUMS"
  local ldso libpath exe="$root/usr/bin/python$s"
  ldso=$(sid_ldso "$root") || die "no dynamic loader (ld-linux-x86-64.so.2) in $root"
  libpath=$(sid_libpath "$root")
  [ -x "$exe" ] || die "no $exe after unpacking"
  patchelf --set-interpreter "$ldso" --force-rpath --set-rpath "$libpath" "$exe" ||
    die "patchelf could not set the loader and DT_RPATH of $exe"
  local data n=0
  for data in "$root/usr/lib/python$s"/_sysconfigdata_*.py; do
    [ -f "$data" ] && [ ! -L "$data" ] || continue
    cp -p "$data" "$data.debian"
    "$exe" -I -S -B - "$root" "$data" <<'EOF' || die "could not relocate $data"
import os, pprint, sys, textwrap
root, path = sys.argv[1], sys.argv[2]
ns = {}
exec(compile(open(path).read(), path, "exec"), ns)
build_time_vars = ns["build_time_vars"]
keep = {"TZPATH", "DTRACE"}  # host data and a host tool: the machine's, not the root's
changed = []
for key, val in build_time_vars.items():
    toks = val.split() if isinstance(val, str) and key not in keep else []
    if toks and all(t == "/usr" or t.startswith("/usr/") for t in toks):
        build_time_vars[key] = " ".join(root + t for t in toks)
        changed.append(key)
if "INCLUDEPY" not in changed or "LIBDIR" not in changed:
    sys.exit("INCLUDEPY or LIBDIR does not name a path under /usr")
head = ("Relocated by ftshim's scripts/setup.sh: the values of these keys named /usr/... and now "
        "name %s/usr/... (Debian's original is %s.debian beside this file): %s"
        % (root, os.path.basename(path), " ".join(changed)))
with open(path + ".tmp", "w") as f:
    f.write("# system configuration generated and used by the sysconfig module\n")
    f.write("".join("# %s\n" % line for line in textwrap.wrap(head, 96)))
    f.write("build_time_vars = %s\n" % pprint.pformat(build_time_vars, indent=4, width=100))
os.replace(path + ".tmp", path)
EOF
    n=$((n + 1))
  done
  [ $n -ge 1 ] || die "no _sysconfigdata_*.py in $root/usr/lib/python$s"
  local pyconfig="$root/usr/include/python$s/pyconfig.h"
  [ -f "$root/usr/include/$SID_MULTIARCH/python$s/pyconfig.h" ] && grep -q "<$SID_MULTIARCH/python$s/pyconfig.h>" "$pyconfig" ||
    die "$pyconfig is not Debian's dispatcher to <$SID_MULTIARCH/python$s/pyconfig.h>"
  mv "$pyconfig" "$pyconfig.debian"
  cat >"$pyconfig" <<EOF
/* Written by ftshim's scripts/setup.sh. Debian's pyconfig.h here (kept as pyconfig.h.debian)
 * includes <$SID_MULTIARCH/python$s/pyconfig.h>, which Debian finds through the system include
 * directory /usr/include; in this private root that directory is not a system one, so the same
 * file is included by its path relative to this one. */
#include "../$SID_MULTIARCH/python$s/pyconfig.h"
EOF
  local pc npc=0
  for pc in "$root/usr/lib/$SID_MULTIARCH/pkgconfig/python-$s.pc" "$root/usr/lib/$SID_MULTIARCH/pkgconfig/python-$s-embed.pc"; do
    [ -f "$pc" ] || continue
    grep -qx 'prefix=/usr' "$pc" || die "$pc does not start from prefix=/usr"
    cp -p "$pc" "$pc.debian"
    sed -i "s|^prefix=/usr\$|prefix=$root/usr|" "$pc"
    npc=$((npc + 1))
  done
  [ $npc -ge 1 ] || die "no python-$s.pc in $root/usr/lib/$SID_MULTIARCH/pkgconfig"
  local version
  version=$(dpkg-deb -f "$(ls "$dir/debs/python${s}_"*.deb)" Version) || die "no python${s} .deb in $dir/debs"
  mkdir -p "$dir/bin"
  {
    echo '#!/bin/sh'
    echo "# Debian $SID_SUITE's CPython $s (package python$s $version), unpacked in"
    echo "# $root by ftshim's scripts/setup.sh. sid's own dynamic loader runs it with the root's"
    echo "# libraries: this machine's glibc is older than the one it was built for."
    echo "exec $(shq "$ldso") --library-path $(shq "$libpath") $(shq "$exe") \"\$@\""
  } >"$dir/bin/python$s.tmp"
  chmod 755 "$dir/bin/python$s.tmp"
  mv "$dir/bin/python$s.tmp" "$dir/bin/python$s"
}

# The tiny extension module the verification compiles with this machine's gcc.
sid_write_check_module() {
  cat >"$1" <<'EOF'
/* Written by ftshim's scripts/setup.sh: the smallest extension module that shows a header set
 * compiles on this machine, and that an interpreter imports and runs what it produced. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    (void)self;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}

/* Reference counting through the headers' inline code: a GIL and a free-threaded build of this
 * file reference different runtime symbols (_Py_Dealloc; _Py_DecRefShared...). */
static PyObject *same(PyObject *self, PyObject *obj) {
    (void)self;
    Py_INCREF(obj);
    Py_DECREF(obj);
    return Py_NewRef(obj);
}

static PyObject *built_free_threaded(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
#ifdef Py_GIL_DISABLED
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "add(a, b) -> a + b"},
    {"same", same, METH_O, "same(x) -> x"},
    {"built_free_threaded", built_free_threaded, METH_NOARGS, "Py_GIL_DISABLED at compile time"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
    {0, NULL},
};

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, "ftshim_sidcheck", NULL, 0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_ftshim_sidcheck(void) { return PyModuleDef_Init(&def); }
EOF
}

# What a process of the interpreter loads and can do; run through the wrapper and through the real
# executable. argv: root. Prints one line: glibc, OpenSSL, SQLite versions.
SID_RUNTIME_CHECK='
import sys, os, subprocess, ctypes, ssl, sqlite3, venv, sysconfig, decimal, lzma, bz2, zlib
import readline, uuid, hashlib, zoneinfo, curses, json, pyexpat, _ctypes
if sys.version_info >= (3, 14):
    import compression.zstd
root = sys.argv[1]
problems = []
mapped = {line.split()[-1] for line in open("/proc/self/maps") if ".so" in line}
outside = sorted(p for p in mapped if p.startswith("/") and not p.startswith(root + "/"))
if outside:
    problems.append("shared objects mapped from outside the root: " + " ".join(outside))
libc_version = ctypes.CDLL(None).gnu_get_libc_version
libc_version.restype = ctypes.c_char_p
ssl.create_default_context()
sqlite3.connect(":memory:").execute("select 1").fetchall()
# sys.executable must start by itself: subprocess, multiprocessing and venv run it.
r = subprocess.run([sys.executable, "-I", "-c", "import ssl, sys; print(sys.version)"],
                   capture_output=True, text=True)
if r.returncode != 0 or r.stdout.strip() != sys.version:
    problems.append("subprocess.run([sys.executable, ...]) -> %d: %s" % (r.returncode, (r.stderr or r.stdout).strip()))
if getattr(sys, "_is_gil_enabled", lambda: True)() is not True:
    problems.append("sys._is_gil_enabled() is not True")
if problems:
    sys.exit("; ".join(problems))
print("glibc %s, %s, SQLite %s" % (libc_version().decode(), ssl.OPENSSL_VERSION, sqlite3.sqlite_version))
'

# sid_verify SERIES DIR: everything a test relies on (log: DIR/verify.log). Prints a summary line.
sid_verify() {
  local s=$1 dir=$2 root="$2/root" py="$2/bin/python$1" work="$2/verify"
  local exe="$root/usr/bin/python$s" lib="$root/usr/lib/$SID_MULTIARCH/libpython$s.so.1.0"
  local inc="$root/usr/include/python$s" ldso libpath info runtime f out
  rm -rf "$work"
  mkdir -p "$work"
  ldso=$(sid_ldso "$root") || { say "no loader in $root"; return 1; }
  libpath=$(sid_libpath "$root")
  # 1. The interpreter, through the wrapper and by itself: series, a GIL build.
  info=$(check_interp "$py" 0 "$s") || return 1
  check_interp "$exe" 0 "$s" >/dev/null || return 1
  # 2. Every library the interpreter, libpython and every lib-dynload module needs is in the root.
  for f in "$exe" "$lib" "$root/usr/lib/python$s/lib-dynload"/*.so; do
    out=$("$ldso" --library-path "$libpath" --list "$f" 2>&1) || { say "$f: $out"; return 1; }
    if grep -q 'not found' <<<"$out" || grep -o '=> /[^ ]*' <<<"$out" | grep -vq "=> $root/"; then
      say "$f needs libraries the root does not have: $(grep -E 'not found|=> /' <<<"$out" | grep -v "=> $root/" | tr -s ' \t\n' ' ')"
      return 1
    fi
  done
  # 3. What the process maps and can do, through the wrapper and through sys.executable.
  runtime=$("$py" -I -c "$SID_RUNTIME_CHECK" "$root" 2>&1) || { say "$py: $runtime"; return 1; }
  out=$("$exe" -I -c "$SID_RUNTIME_CHECK" "$root" 2>&1) || { say "$exe: $out"; return 1; }
  # 4. sysconfig names this root's headers and library, which exist.
  out=$("$py" -I -c 'import sysconfig as s; print(s.get_config_var("INCLUDEPY")); print(s.get_paths()["include"]); print(s.get_config_var("LIBDIR") + "/" + s.get_config_var("INSTSONAME"))')
  [ "$out" = "$inc"$'\n'"$inc"$'\n'"$lib" ] || { say "$py: sysconfig says INCLUDEPY, include, LIBDIR/INSTSONAME = ${out//$'\n'/, }, expected $inc, $inc, $lib"; return 1; }
  [ -f "$inc/Python.h" ] && [ -f "$root/usr/include/$SID_MULTIARCH/python$s/pyconfig.h" ] && [ -f "$lib" ] ||
    { say "missing $inc/Python.h, $root/usr/include/$SID_MULTIARCH/python$s/pyconfig.h or $lib"; return 1; }
  #    pkg-config, through sysconfig's LIBPC as meson finds it, names the same headers.
  out=$(PKG_CONFIG_PATH=$("$py" -I -c 'import sysconfig; print(sysconfig.get_config_var("LIBPC"))') \
    pkg-config --cflags-only-I "python-$s" 2>&1) && [ "${out%% *}" = "-I$inc" ] ||
    { say "pkg-config --cflags-only-I python-$s says '$out', expected -I$inc first"; return 1; }
  # 5. A venv: its bin/python starts, is a venv, and has the pip that ensurepip installed.
  "$py" -m venv "$work/venv" >"$work/venv.log" 2>&1 || { tail -20 "$work/venv.log" >&2; say "$py -m venv failed"; return 1; }
  out=$("$work/venv/bin/python" -I -c 'import sys, ssl; assert sys.prefix != sys.base_prefix, "not a venv"; print(sys.prefix)' 2>&1) &&
    [ "$out" = "$work/venv" ] || { say "$work/venv/bin/python: $out"; return 1; }
  out=$("$work/venv/bin/python" -m pip --version 2>&1) || { say "pip in the venv: $out"; return 1; }
  local pip_version
  pip_version=$(awk '{print $2}' <<<"$out")
  # 6. An extension compiled here with gcc against the root's headers imports and runs, built two
  #    ways: with both include directories (Python.h's, and the one holding the multiarch
  #    x86_64-linux-gnu/python3.X/pyconfig.h), and with sysconfig's INCLUDEPY alone, as build tools
  #    do. Its undefined Py* symbols are all exported by libpython and by the executable.
  local suffix variant flags
  local common=(-shared -fPIC -O2 -Wall -Wextra)
  suffix=$("$py" -I -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  sid_write_check_module "$work/ftshim_sidcheck.c"
  for variant in both includepy; do
    flags=(-I"$inc")
    [ $variant = includepy ] || flags+=(-I"$root/usr/include")
    mkdir -p "$work/$variant"
    gcc "${common[@]}" "${flags[@]}" "$work/ftshim_sidcheck.c" -o "$work/$variant/ftshim_sidcheck$suffix" \
      >"$work/gcc-$variant.log" 2>&1 || { cat "$work/gcc-$variant.log" >&2; say "gcc ${flags[*]} failed"; return 1; }
    out=$("$py" -I -c 'import sys; sys.path.insert(0, sys.argv[1]); import ftshim_sidcheck as m; o = object(); assert m.add(2, 40) == 42 and m.same(o) is o; assert m.built_free_threaded() is False; print(m.__file__)' "$work/$variant" 2>&1) ||
      { say "the extension compiled with ${flags[*]} did not import and run: $out"; return 1; }
  done
  nm -D --undefined-only "$work/both/ftshim_sidcheck$suffix" | awk '$2 ~ /^_?Py/ { print $2 }' | sort -u >"$work/needs"
  [ -s "$work/needs" ] || { say "nm found no Py* symbol the extension needs"; return 1; }
  for f in "$lib" "$exe"; do
    nm -D --defined-only "$f" | awk '{ print $3 }' | sort -u >"$work/exports"
    out=$(comm -23 "$work/needs" "$work/exports")
    [ -z "$out" ] || { say "$f does not export what the extension needs: $(echo "$out" | tr '\n' ' ')"; return 1; }
  done
  # 7. The same module against the same headers as a free-threaded build would see them
  #    (-DPy_GIL_DISABLED=1): it must compile; nothing can run it (sid has no 3.Xt build).
  gcc "${common[@]}" -I"$inc" -I"$root/usr/include" -DPy_GIL_DISABLED=1 "$work/ftshim_sidcheck.c" \
    -o "$work/ftshim_sidcheck-ft.so" >"$work/gcc-ft.log" 2>&1 ||
    { cat "$work/gcc-ft.log" >&2; say "gcc could not compile against $inc with -DPy_GIL_DISABLED=1"; return 1; }
  local warnings
  warnings=$(cat "$work"/gcc-*.log | grep -c 'warning:' || true)
  rm -rf "$work"
  printf '%s; %s; pip %s in a venv; extension built here imports (gcc warnings: %s)\n' "$info" "$runtime" "$pip_version" "$warnings"
}

# Cheap check of a marked install: the wrapper and the executable pass check_interp, the files the
# tests use exist.
sid_quick_check() {
  local s=$1 dir=$2 root="$2/root"
  [ -f "$root/usr/lib/$SID_MULTIARCH/libpython$s.so.1.0" ] &&
    [ -f "$root/usr/include/$SID_MULTIARCH/python$s/pyconfig.h" ] &&
    [ -f "$root/usr/include/python$s/Python.h" ] &&
    check_interp "$root/usr/bin/python$s" 0 "$s" >/dev/null &&
    check_interp "$dir/bin/python$s" 0 "$s"
}

# sid_record SERIES WRAPPER -> the record file's lines for the series.
sid_record() {
  local s=$1 root="$CACHE/debian-sid-$1/root" v=${1/./}
  printf 'FTSHIM_PY_%s=%s\n' "$v" "$2"
  printf 'FTSHIM_INCLUDE_%s=%s:%s\n' "$v" "$root/usr/include/python$s" "$root/usr/include"
  printf 'FTSHIM_LIBPYTHON_%s=%s\n' "$v" "$root/usr/lib/$SID_MULTIARCH/libpython$s.so.1.0"
}

# sid_python SERIES -> prints the path of the verified wrapper $CACHE/debian-sid-SERIES/bin/pythonSERIES,
# fetching, unpacking and verifying first unless a marked install passes sid_quick_check. Anything
# unmarked or failing is removed and made again (from the cached .debs when they still match).
sid_python() {
  local s=$1 dir="$CACHE/debian-sid-$1" info
  case $dir in *:*) die "the cache path $CACHE contains ':', which cannot be in a library search path" ;; esac
  if [ "$(cat "$dir/.ftshim-ok" 2>/dev/null)" = "$SID_RECIPE" ] && info=$(sid_quick_check "$s" "$dir" 2>/dev/null); then
    printf '%s\n' "$dir/bin/python$s"
    return 0
  fi
  if [ -e "$dir/root" ] || [ -e "$dir/bin" ]; then
    say "sid $s: $dir has no verified install of this recipe (marker missing or older, or its check failed): removing it"
  fi
  rm -rf "${dir:?}/root" "${dir:?}/bin" "${dir:?}/verify" "${dir:?}/.ftshim-ok"
  mkdir -p "$dir"
  local t0=$SECONDS t1 bytes
  sid_fetch_debs "$s" "$dir"
  bytes=$(cat "$dir"/debs/*.deb | wc -c)
  sid_unpack "$s" "$dir"
  t1=$SECONDS
  say "sid $s: $(ls "$dir"/debs/*.deb | wc -l) packages, $((bytes / 1024)) KiB, fetched and unpacked in $((t1 - t0)) s ($(du -sk "$dir/root" | cut -f1) KiB unpacked); verifying (log: $dir/verify.log)"
  info=$(sid_verify "$s" "$dir" 2>"$dir/verify.log") || {
    tail -30 "$dir/verify.log" >&2
    rm -rf "${dir:?}/root" "${dir:?}/bin"
    die "sid $s: the unpacked interpreter failed verification (above; log: $dir/verify.log); removed, the .debs are kept"
  }
  echo "$SID_RECIPE" >"$dir/.ftshim-ok"
  say "sid $s: verified in $((SECONDS - t1)) s: $info"
  printf '%s\n' "$dir/bin/python$s"
}
