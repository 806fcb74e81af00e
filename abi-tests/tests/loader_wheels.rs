//! Real wheels from PyPI, checked with `ftshim check --target` for interpreters this machine does
//! not have: cryptography 50.0.2's abi3t module (`cp315-abi3.abi3t`, entry point
//! `PyModExport__rust`) and its cp314t module.
//!
//! The wheels come from [`ftshim_abi_tests::pypi`] (fetched once into the cache outside the
//! repository, SHA-256 pinned; a failed download fails the test). Here the modules are unzipped
//! with Python's `zipfile` and checked as loose files; tests/check_wheels.rs checks wheels whole.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::pypi::{self, CRYPTOGRAPHY_ABI3T as ABI3T, CRYPTOGRAPHY_CP314T as CP314T, Wheel};
use ftshim_abi_tests::{ftshim_json, interpreters, output_within, reason_codes, reason_messages, scratch};
use serde_json::Value;

/// Unzips the wheel's `.so` files and its `WHEEL` into a scratch dir (fetching and verifying it
/// first, [`pypi::fetch`]). Returns (scratch dir, extracted paths).
fn unpack(wheel: &Wheel, name: &str) -> (PathBuf, Vec<PathBuf>) {
    let python = &interpreters().py311.executable;
    let path = pypi::fetch(wheel);
    let dir = scratch(name);
    let script = "import sys, zipfile\n\
        whl, out = sys.argv[1], sys.argv[2]\n\
        z = zipfile.ZipFile(whl)\n\
        for n in z.namelist():\n\
        \x20   if n.endswith('.so') or n.endswith('.dist-info/WHEEL'):\n\
        \x20       print(z.extract(n, out))\n";
    let mut unzip = Command::new(python);
    unzip.args(["-I", "-c", script]).arg(&path).arg(&dir);
    let out = output_within(&mut unzip, Duration::from_secs(120), "unzip");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unzipping {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, stdout.lines().map(PathBuf::from).collect())
}

/// `ftshim check --json --target <target> [--exports <exports>] <module>`: exit code and the one
/// file's JSON.
fn check(module: &Path, target: &str, exports: Option<&Path>) -> (i32, Value) {
    let mut args =
        vec![OsStr::new("check"), OsStr::new("--json"), OsStr::new("--target"), OsStr::new(target)];
    if let Some(e) = exports {
        args.extend([OsStr::new("--exports"), e.as_os_str()]);
    }
    args.push(module.as_os_str());
    let (code, doc) = ftshim_json(&args);
    (code, doc["files"][0].clone())
}

fn notes(file: &Value) -> Vec<&str> {
    file["inconclusive"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect()
}

fn gil315_exports() -> PathBuf {
    let i = interpreters().get("3.15");
    i.exports_file.clone()
}

#[test]
fn cryptography_abi3t_module_is_for_3_15_only() {
    let (dir, files) = unpack(&ABI3T, "wheel-abi3t");
    let wheel_meta = std::fs::read_to_string(dir.join("cryptography-50.0.2.dist-info/WHEEL")).unwrap();
    assert!(wheel_meta.contains("Tag: cp315-abi3t-manylinux_2_17_x86_64\n"), "{wheel_meta}");
    let module = dir.join("cryptography/hazmat/bindings/_rust.abi3t.so");
    assert_eq!(files, vec![module.clone(), dir.join("cryptography-50.0.2.dist-info/WHEEL")]);
    let m = module.display();
    let no_refcount = format!(
        "{m}: no refcounting symbols that tell a free-threaded from a GIL build (limited API or no Py_DECREF)"
    );

    // Free-threaded 3.15: accepted by its abi3t name, entry point PyModExport__rust; its 153
    // Py* imports are not checked (no 3.15t here), and the report says why.
    let (code, file) = check(&module, "3.15t", None);
    assert_eq!(code, 0, "{file:#}");
    assert_eq!(file["verdict"], "accepted");
    assert_eq!(file["entry"], serde_json::json!({"kind": "PyModExport", "symbol": "PyModExport__rust"}));
    // Its PySlot array (PEP 820 layout), reached from PyModExport__rust's code: PyO3's PyABIInfo
    // says abi3t (stable, both builds) and its Py_mod_gil slot declares GIL freedom.
    assert_eq!(
        file["abi_info"],
        serde_json::json!({"major": 1, "minor": 0, "flags": 7, "flag_names": "STABLE|GIL|FREETHREADED",
            "build_version": 0, "abi_version": 0})
    );
    assert_eq!(
        file["gil_free"],
        serde_json::json!({"declared": "yes", "because": "Py_mod_gil slot is Py_MOD_GIL_NOT_USED"})
    );
    assert_eq!(
        notes(&file),
        vec![
            no_refcount.clone(),
            format!(
                "{m}: 153 undefined Py*/_Py* symbols were not checked: no --exports was given for --target 3.15t, and without the exports of a real CPython 3.15t they are not guessed (pass --exports with its libpython or its executable)"
            ),
        ]
    );

    // GIL 3.15 (abi3t is for both builds): accepted, and every import resolves in a real 3.15.
    let (code, file) = check(&module, "3.15", Some(&gil315_exports()));
    assert_eq!(code, 0, "{file:#}");
    assert_eq!(file["entry"]["symbol"], "PyModExport__rust");
    assert_eq!(notes(&file), vec![no_refcount.clone()]);

    // `open` hands out PyInit_ functions only: refused before dlopen, so none of its code runs.
    let t315 = ftshim_loader::Target::new((3, 15), true, ".cpython-315t-x86_64-linux-gnu.so");
    // SAFETY: the module is refused before dlopen (asserted below); nothing of it is loaded.
    match unsafe { ftshim_loader::open(&module, &t315) } {
        Err(ftshim_loader::OpenError::Refused(report)) => assert_eq!(
            report.messages(),
            vec![format!(
                "{m}: accepted, but not opened: its entry point is 'PyModExport__rust' (PEP 793, returns PySlot *), and the loader hands out PyInit_<name> functions only"
            )]
        ),
        Err(other) => panic!("expected a refusal before dlopen, got {other:?}"),
        Ok(_) => panic!("{m} was opened"),
    }

    // Free-threaded 3.13: neither the name nor the entry point is one 3.13 knows.
    let (code, file) = check(&module, "3.13t", None);
    assert_eq!(code, 1, "{file:#}");
    assert_eq!(file["verdict"], "refused");
    assert_eq!(file["entry"], Value::Null);
    assert_eq!(reason_codes(&file), vec!["suffix-mismatch", "no-init"]);
    assert_eq!(
        reason_messages(&file),
        vec![
            format!(
                "{m}: file name must end with the target interpreter's EXT_SUFFIX: expected '.cpython-313t-x86_64-linux-gnu.so', found '.abi3t.so': CPython imports abi3t files (PEP 803) only from 3.15, target is free-threaded 3.13"
            ),
            format!(
                "{m}: must export the init function named after the file: expected 'PyInit__rust', found no PyInit_* export; it exports PyModExport_* entry points ('PyModExport__rust'), which CPython calls only from 3.15 (PEP 793), target is free-threaded 3.13"
            ),
        ]
    );
}

#[test]
fn cryptography_cp314t_module_is_for_3_14t_only() {
    let (dir, files) = unpack(&CP314T, "wheel-cp314t");
    let wheel_meta = std::fs::read_to_string(dir.join("cryptography-50.0.2.dist-info/WHEEL")).unwrap();
    assert!(wheel_meta.contains("Tag: cp314-cp314t-manylinux_2_17_x86_64\n"), "{wheel_meta}");
    let module = dir.join("cryptography/hazmat/bindings/_rust.cpython-314t-x86_64-linux-gnu.so");
    assert_eq!(files, vec![module.clone(), dir.join("cryptography-50.0.2.dist-info/WHEEL")]);
    let m = module.display();

    let (code, file) = check(&module, "3.14t", None);
    assert_eq!(code, 0, "{file:#}");
    assert_eq!(file["entry"], serde_json::json!({"kind": "PyInit", "symbol": "PyInit__rust"}));
    // Multi-phase: the PyModuleDef PyInit__rust passes on holds the slot array (no PyABIInfo
    // before 3.15).
    assert_eq!(
        file["gil_free"],
        serde_json::json!({"declared": "yes", "because": "Py_mod_gil slot is Py_MOD_GIL_NOT_USED"})
    );
    assert_eq!(file["abi_info"], Value::Null);
    assert_eq!(
        file["evidence"]["ft_markers"],
        serde_json::json!(["_Py_DecRefShared", "_Py_MergeZeroLocalRefcount"])
    );
    assert_eq!(
        notes(&file),
        vec![format!(
            "{m}: 154 undefined Py*/_Py* symbols were not checked: no --exports was given for --target 3.14t, and without the exports of a real CPython 3.14t they are not guessed (pass --exports with its libpython or its executable)"
        )]
    );

    // Free-threaded 3.13, with the real 3.13t's exports: wrong tag, and 3.14 API 3.13t lacks.
    let ft313 = &interpreters().ft.exports_file;
    let (code, file) = check(&module, "3.13t", Some(ft313));
    assert_eq!(code, 1, "{file:#}");
    assert_eq!(file["entry"]["symbol"], "PyInit__rust");
    assert_eq!(reason_codes(&file), vec!["suffix-mismatch", "unresolved-symbol"]);
    assert_eq!(
        reason_messages(&file),
        vec![
            format!(
                "{m}: file name must end with the target interpreter's EXT_SUFFIX: expected '.cpython-313t-x86_64-linux-gnu.so', found '.cpython-314t-x86_64-linux-gnu.so'"
            ),
            format!(
                "{m}: every undefined Py*/_Py* symbol must be exported by the target interpreter: expected all 154 to resolve in {}, found 7 missing: PyUnicodeWriter_Discard, PyUnicodeWriter_Finish, PyUnicodeWriter_WriteChar, PyUnicodeWriter_WriteUTF8, PyIter_NextItem, PyType_Freeze, PyUnicodeWriter_Create",
                ft313.display()
            ),
        ]
    );
    // Without exports, the tag alone refuses it.
    let (code, file) = check(&module, "3.13t", None);
    assert_eq!((code, reason_codes(&file)), (1, vec!["suffix-mismatch"]));
}
