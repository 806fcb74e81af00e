//! Targets for interpreters not on this machine: the suffix list the loader derives per version
//! and build is the one each real interpreter here reports.

use ftshim_abi_tests::interpreters;

/// Observed here (`importlib.machinery.EXTENSION_SUFFIXES`), e.g. GIL 3.15.2:
/// `['.cpython-315-x86_64-linux-gnu.so', '.abi3-x86_64-linux-gnu.so', '.abi3.so',
/// '.abi3t-x86_64-linux-gnu.so', '.abi3t.so', '.so']` — abi3t is listed on the GIL build too
/// (PEP 803), so the loader accepts `.abi3t.so` for GIL 3.15.
#[test]
fn the_derived_extension_suffixes_are_each_recorded_interpreters() {
    for (label, interp) in interpreters().all() {
        assert_eq!(interp.target().extension_suffixes(), interp.extension_suffixes, "{label}");
    }
}
