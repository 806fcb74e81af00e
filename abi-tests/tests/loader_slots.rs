//! The module's slot array, read by the loader from the file (`slots.rs`), checked against what
//! the real interpreters do with the same modules: whether the GIL stays off on 3.13t
//! (`Py_mod_gil`), and whether GIL 3.15 accepts the `PyABIInfo` (`Py_mod_abi`) and GIL 3.14 the
//! slot IDs. Every module here is built from C in the test; the PyPI ones are in loader_wheels.rs.

use std::path::{Path, PathBuf};

use ftshim_abi_tests::{Interpreter, build_c_source, interpreters, run_python, scratch};
use ftshim_loader::{AbiInfo, Code, GilFreedom, Report};

fn interp(label: &str) -> &'static Interpreter {
    interpreters().get(label)
}

/// Builds `source` as module `name` for `interp` in its own scratch directory.
fn module(name: &str, tag: &str, source: &str, interp: &Interpreter) -> PathBuf {
    let dir = scratch(&format!("slots-{tag}"));
    build_c_source(name, source, interp, &dir)
}

/// Imports `name` from `dir` on `interp`; prints the GIL state after, or the exception.
fn import(interp: &Interpreter, dir: &Path, name: &str) -> String {
    let probe = format!(
        "import sys\ntry:\n    import {name}\n    print('imported', getattr(sys, '_is_gil_enabled', lambda: True)())\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    );
    let out = run_python(interp, dir, &["-W", "ignore", "-c", &probe]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn inspect(module: &Path, interp: &Interpreter) -> Report {
    ftshim_loader::inspect(module, &interp.target())
}

const MULTI_PHASE: &str = r#"
#include <Python.h>
static PyModuleDef_Slot slots[] = {
    SLOTS
    {0, NULL},
};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, .m_name = "NAME", .m_slots = slots};
PyMODINIT_FUNC PyInit_NAME(void) { return PyModuleDef_Init(&def); }
"#;

fn multi_phase(name: &str, slots: &str) -> String {
    MULTI_PHASE.replace("NAME", name).replace("SLOTS", slots)
}

/// `Py_mod_gil` as the loader reads it, and what free-threaded 3.13 does on import: the GIL
/// stays off exactly when the loader says "yes".
#[test]
fn gil_freedom_read_from_the_file_is_what_3_13t_does() {
    let ft = &interpreters().ft;
    let cases = [
        (
            "notused",
            "{Py_mod_gil, Py_MOD_GIL_NOT_USED},",
            "yes",
            "Py_mod_gil slot is Py_MOD_GIL_NOT_USED",
            "False",
        ),
        ("used", "{Py_mod_gil, Py_MOD_GIL_USED},", "no", "Py_mod_gil slot is Py_MOD_GIL_USED", "True"),
        (
            "noslot",
            "{Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},",
            "no",
            "its slot array has no Py_mod_gil slot (CPython's default is Py_MOD_GIL_USED)",
            "True",
        ),
    ];
    for (name, slots, declared, because, gil_after) in cases {
        let m = module(name, &format!("gil-{name}"), &multi_phase(name, slots), ft);
        let report = inspect(&m, ft);
        assert!(report.accepted(), "{:?}", report.messages());
        let gil = report.gil.clone().expect("read");
        assert_eq!((gil.as_str(), gil.because()), (declared, because), "{name}");
        assert_eq!(import(ft, m.parent().unwrap(), name), format!("imported {gil_after}\n"), "{name}");
    }
}

/// A 3.15 module whose `PyABIInfo` CPython refuses: the loader refuses it with CPython's own
/// reason, and real GIL 3.15 raises ImportError with that reason.
#[test]
fn pyabiinfo_is_checked_as_3_15_checks_it() {
    let py315 = interp("3.15");
    let cases = [
        ("default", "PyABIInfo_VAR(info);", None),
        (
            "ftonly",
            "static PyABIInfo info = {1, 0, PyABIInfo_FREETHREADED, PY_VERSION_HEX, PY_VERSION_HEX};",
            Some("only compatible with free-threaded CPython"),
        ),
        (
            "future",
            "static PyABIInfo info = {1, 0, PyABIInfo_STABLE | PyABIInfo_GIL, 0, 0x03100000};",
            Some("incompatible future stable ABI version (3.16)"),
        ),
        (
            "toohigh",
            "static PyABIInfo info = {2, 0, PyABIInfo_GIL, 0, 0};",
            Some("PyABIInfo version too high"),
        ),
        (
            "oldabi",
            "static PyABIInfo info = {1, 0, PyABIInfo_GIL, 0, 0x030e0000};",
            Some("incompatible ABI version (3.14)"),
        ),
    ];
    for (name, info, refusal) in cases {
        let source = multi_phase(name, "{Py_mod_abi, &info},\n    {Py_mod_gil, Py_MOD_GIL_NOT_USED},")
            .replace("#include <Python.h>", &format!("#include <Python.h>\n{info}"));
        let m = module(name, &format!("abi-{name}"), &source, py315);
        let report = inspect(&m, py315);
        let imported = import(py315, m.parent().unwrap(), name);
        match refusal {
            None => {
                assert!(report.accepted(), "{:?}", report.messages());
                assert_eq!(imported, "imported True\n");
                let out =
                    run_python(py315, m.parent().unwrap(), &["-c", "import sys; print(sys.hexversion)"]);
                let hex: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("sys.hexversion");
                assert_eq!(
                    report.abi_info,
                    Some(AbiInfo { major: 1, minor: 0, flags: 0x2, build_version: hex, abi_version: hex })
                );
                // The same file for a free-threaded 3.15: CPython's check refuses GIL-only info.
                let t = ftshim_loader::Target::new((3, 15), true, ".cpython-315t-x86_64-linux-gnu.so");
                let ft = ftshim_loader::inspect(&m, &t);
                let abi: Vec<&str> = ft
                    .refusals
                    .iter()
                    .filter(|r| r.code == Code::AbiInfo)
                    .map(|r| r.message.as_str())
                    .collect();
                assert_eq!(
                    abi,
                    vec![
                        "the module's PyABIInfo (Py_mod_abi) must pass the target's PyABIInfo_Check: incompatible with free-threaded CPython (flags GIL, target free-threaded 3.15)"
                    ]
                );
            }
            Some(why) => {
                assert_eq!(report.codes(), vec![Code::AbiInfo], "{name}: {:?}", report.messages());
                let info = report.abi_info.expect("read");
                assert_eq!(
                    report.refusals[0].message,
                    format!(
                        "the module's PyABIInfo (Py_mod_abi) must pass the target's PyABIInfo_Check: {why} (flags {}, target GIL 3.15)",
                        info.flag_names()
                    )
                );
                assert_eq!(imported, format!("ImportError {name}: {why}\n"), "{name}");
            }
        }
    }
}

/// A `PyModExport_<name>` module (PEP 793) with a `PySlot` array (PEP 820): read through the
/// function's code, and real GIL 3.15 imports it.
#[test]
fn a_pymodexport_slot_array_is_read_from_the_entry_point() {
    let py315 = interp("3.15");
    let source = r#"
#include <Python.h>
PyABIInfo_VAR(info);
static PySlot slots[] = {
    {.sl_id = Py_mod_name, .sl_ptr = "pexp"},
    {.sl_id = Py_mod_abi, .sl_ptr = &info},
    PySlot_DATA(Py_mod_gil, Py_MOD_GIL_NOT_USED),
    PySlot_END,
};
PyMODEXPORT_FUNC PyModExport_pexp(void) { return slots; }
"#;
    let m = module("pexp", "export", source, py315);
    let report = inspect(&m, py315);
    assert!(report.accepted(), "{:?}", report.messages());
    assert_eq!(report.entry.as_ref().map(|e| e.symbol()), Some("PyModExport_pexp"));
    assert_eq!(report.gil, Some(GilFreedom::Yes("Py_mod_gil slot is Py_MOD_GIL_NOT_USED".to_owned())));
    assert_eq!(report.abi_info.map(|i| i.flag_names()), Some("GIL".to_owned()));
    assert_eq!(import(py315, m.parent().unwrap(), "pexp"), "imported True\n");
}

/// Slot 109 (`Py_mod_abi`) in a module for GIL 3.14: the loader refuses it as `unknown-slot`, and
/// real 3.14 raises the SystemError it names.
#[test]
fn a_slot_the_target_does_not_know_is_refused() {
    let py314 = interp("3.14");
    let source = multi_phase(
        "newslot",
        "{109, &info},\n    {Py_mod_gil, Py_MOD_GIL_NOT_USED},",
    )
    .replace(
        "#include <Python.h>",
        "#include <Python.h>\nstatic struct { uint8_t major, minor; uint16_t flags; uint32_t build, abi; } info = {1, 0, 2, 0, 0};",
    );
    let m = module("newslot", "unknown", &source, py314);
    let report = inspect(&m, py314);
    assert_eq!(report.codes(), vec![Code::UnknownSlot], "{:?}", report.messages());
    assert_eq!(
        report.refusals[0].message,
        "every module slot must be known to the target (CPython raises SystemError 'uses unknown slot ID' otherwise): target GIL 3.14 does not know Py_mod_abi (109)"
    );
    assert_eq!(
        import(py314, m.parent().unwrap(), "newslot"),
        "SystemError module newslot uses unknown slot ID 109\n"
    );
}
