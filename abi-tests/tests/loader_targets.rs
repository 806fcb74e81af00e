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

/// `--target` values that are not `3.<minor>[t]` are usage errors naming the value and the rule;
/// `--target` excludes `--python` and `--import`; `--exports` must be a CPython of that build.
#[test]
fn bad_targets_are_usage_errors() {
    use std::ffi::OsStr;

    use ftshim_abi_tests::ftshim_cli;

    let rule = "expected 3.<minor>[t] with minor 11 or later (the versions whose Py_Version the loader knows), and 't' (free-threaded) only from 3.13, e.g. 3.14t, 3.15t, 3.13";
    for bad in ["3.x", "2.7", "3.14tt", "3.12t"] {
        let (code, stdout, stderr) =
            ftshim_cli(&[OsStr::new("check"), OsStr::new("--target"), OsStr::new(bad), OsStr::new("m.so")]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{bad}");
        assert!(
            stderr
                .starts_with(&format!("error: invalid value '{bad}' for '--target <VERSION[t]>': {rule}\n")),
            "{bad}: {stderr}"
        );
    }
    let all = interpreters();
    let (code, _, stderr) = ftshim_cli(&[
        OsStr::new("check"),
        OsStr::new("--target"),
        OsStr::new("3.14t"),
        OsStr::new("--python"),
        all.ft.executable.as_os_str(),
        OsStr::new("m.so"),
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr
            .starts_with("error: the argument '--target <VERSION[t]>' cannot be used with '--python <PY>'\n"),
        "{stderr}"
    );
    let (code, _, stderr) = ftshim_cli(&[
        OsStr::new("audit"),
        OsStr::new("--target"),
        OsStr::new("3.15t"),
        OsStr::new("--import"),
        OsStr::new("/"),
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: the argument '--target <VERSION[t]>' cannot be used with '--import'\n"),
        "{stderr}"
    );
    let (code, _, stderr) = ftshim_cli(&[OsStr::new("audit"), OsStr::new("--target"), OsStr::new("3.15t")]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "ftshim audit: with --target, name the directories to audit (there is no interpreter to take lib-dynload and site-packages from)\n"
    );
    // A GIL libpython for a free-threaded target: refused before anything is checked.
    let (code, _, stderr) = ftshim_cli(&[
        OsStr::new("check"),
        OsStr::new("--target"),
        OsStr::new("3.13t"),
        OsStr::new("--exports"),
        all.gil313.exports_file.as_os_str(),
        OsStr::new("m.so"),
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "ftshim check: --exports {}: expected the exports of a free-threaded CPython for --target 3.13t, found no exported _Py_DecRefShared (a GIL build)\n",
            all.gil313.exports_file.display()
        )
    );
}
