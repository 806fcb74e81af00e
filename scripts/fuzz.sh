#!/usr/bin/env bash
# `make fuzz`: the loader's libFuzzer targets (abi-tests/fuzz: `inspect`, `wheel`) under cargo-fuzz
# with AddressSanitizer on the nightly toolchain, each for FUZZ_SECONDS (default 60).
#
# Seeds are real files: the extension modules in python3.13t's and GIL 3.15's lib-dynload, the
# shipped libraries and the counter builds the tests left under the target directory (inspect);
# the PyPI wheels the tests fetched into the cache (wheel). The growing corpus lives in the cache
# (outside the repository); a crash, leak or timeout leaves its input under
# <target>/fuzz-artifacts/<target>/ and makes this script fail, naming it.
#
# Needs: `make setup` (the record), the nightly toolchain (rustup), cargo-fuzz (installed here
# into the cache on first use from crates.io). Missing pieces fail with the reason.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=common.sh
source "$ROOT/scripts/common.sh"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] ||
  die "FUZZ_SECONDS='$SECONDS_PER_TARGET': expected a whole number of seconds, at least 1"
[[ -f "$RECORD" ]] || die "$RECORD: no interpreter record; run 'make setup' first"
CACHE=$(record_get FTSHIM_CACHE_DIR)
[[ -n "$CACHE" ]] || die "$RECORD: names no FTSHIM_CACHE_DIR; run 'make setup' again"

rustup run nightly rustc --version >/dev/null 2>&1 ||
  die "no nightly Rust toolchain (cargo-fuzz needs -Zsanitizer): 'rustup toolchain install nightly'"
FUZZ_ROOT="$CACHE/cargo-fuzz"
if [[ ! -x "$FUZZ_ROOT/bin/cargo-fuzz" ]]; then
  say "installing cargo-fuzz into $FUZZ_ROOT (crates.io, --locked)"
  cargo install --quiet --locked cargo-fuzz --root "$FUZZ_ROOT" || die "cargo install cargo-fuzz failed"
fi
export PATH="$FUZZ_ROOT/bin:$PATH"

# Seeds: real files up to 1 MiB (libFuzzer's -max_len below), copied under content names.
SEEDS="$TARGET_DIR/fuzz-seeds"
rm -rf "$SEEDS" && mkdir -p "$SEEDS/inspect" "$SEEDS/wheel"
seed() { # seed DIR FILE...
  local dir=$1 f; shift
  for f in "$@"; do
    [[ -f "$f" && $(stat -c %s "$f") -le 1048576 ]] || continue
    cp "$f" "$dir/$(sha256sum "$f" | cut -c1-16)"
  done
}
for py in "$(record_get FTSHIM_PY_FT)" "$(record_get FTSHIM_PY_315)"; do
  [[ -n "$py" ]] || die "$RECORD: an interpreter the seeds come from is missing; run 'make setup'"
  dynload=$("$py" -I -B -c 'import sysconfig; print(sysconfig.get_config_var("DESTSHARED"))')
  seed "$SEEDS/inspect" "$dynload"/*.so
done
seed "$SEEDS/inspect" "$TARGET_DIR"/ftshim/lib/*.so.1
mapfile -t counters < <(find "$TARGET_DIR/abi-tests" -name 'counter*.so' 2>/dev/null | head -50)
seed "$SEEDS/inspect" "${counters[@]}"
mapfile -t wheels < <(find "$CACHE/wheels" -name '*.whl' 2>/dev/null)
seed "$SEEDS/wheel" "${wheels[@]}"
for t in inspect wheel; do
  n=$(find "$SEEDS/$t" -type f | wc -l)
  [[ $n -gt 0 ]] || die "no seed files for the $t target (run 'make test' once so the wheels are fetched)"
  say "$t: $n seed files"
done

status=0
for t in inspect wheel; do
  corpus="$CACHE/fuzz-corpus/$t"
  artifacts="$TARGET_DIR/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  log="$TARGET_DIR/fuzz-$t.log"
  say "$t: fuzzing for ${SECONDS_PER_TARGET}s (log: $log)"
  set +e
  rustup run nightly cargo fuzz run --fuzz-dir "$ROOT/abi-tests/fuzz" --target-dir "$TARGET_DIR/fuzz" "$t" \
    "$corpus" "$SEEDS/$t" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=1048576 -timeout=10 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  files=$(find "$corpus" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    echo "fuzz $t: ${runs:-?} executions in ${SECONDS_PER_TARGET}s (${speed:-?}/s), ${cov:-cov: ?} edges, corpus $files inputs, no findings"
  else
    echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} executions; the input and report:"
    ls -1 "$artifacts"
    grep -m2 -E 'ERROR: |panicked at|sabotage|deadly signal' "$log" || tail -20 "$log"
    status=1
  fi
done
exit $status
