#!/usr/bin/env bash
# scripts/abi-baseline.sh — write the libabigail ABI baselines (abi-tests/abi/<lib>.abi) from the
# unstripped links scripts/build-libs.sh keeps in target/ftshim-build/ (`make abi-baseline` builds
# them first). Run it only when a release is cut: between releases, tests/abi_check.rs compares
# every build with the committed baselines and fails on any change except added exports.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${CARGO_TARGET_DIR:-$ROOT/target}/ftshim-build
cd "$ROOT"
for lib in libftshim libftshim_loader; do
  abidw --suppressions abi-tests/abi/interface.suppr --drop-undefined-syms --no-corpus-path \
    --no-comp-dir-path --no-show-locs --type-id-style hash \
    --out-file "abi-tests/abi/$lib.abi" "$WORK/$lib.so.1.debug"
  echo "abi-baseline: wrote abi-tests/abi/$lib.abi"
done
