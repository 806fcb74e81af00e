# Sourced by the scripts in this directory after they set ROOT: messages prefixed with the
# script's name, the target directory, and the record scripts/setup.sh writes (the same path
# abi-tests/src/record.rs reads: $FTSHIM_INTERPRETERS, else <target dir>/ftshim-interpreters.env).
# shellcheck shell=bash
FTSHIM_SCRIPT=$(basename "$0" .sh)
say() { printf '%s: %s\n' "$FTSHIM_SCRIPT" "$*" >&2; }
die() { printf '%s: error: %s\n' "$FTSHIM_SCRIPT" "$*" >&2; exit 1; }
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RECORD=${FTSHIM_INTERPRETERS:-$TARGET_DIR/ftshim-interpreters.env}
# record_get KEY: KEY's value in the record (empty when the record or the key is missing).
record_get() { sed -n "s/^$1=//p" "$RECORD" 2>/dev/null || true; }
