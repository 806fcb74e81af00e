//! What libftshim costs an extension that links it statically, measured on each interpreter.
//!
//! The module below uses a one-object section, a two-object section, a mutex section, the mutex
//! and the ABI check — the runtime's everyday surface. It is linked twice with the flags
//! docs/getting-started.md gives: against the shared `libftshim.so.1`, and statically against
//! `libftshim.a` (`--exclude-libs,ALL --gc-sections`); both are stripped as a packager ships
//! them. The difference is what the static link adds. Budget: 150 KiB.

use std::path::Path;
use std::process::Command;

use ftshim_abi_tests::{BuildOptions, build_module, interpreters, scratch};

const MODULE_C: &str = r#"#include "ftshim.h"
typedef struct {
    PyObject_HEAD
    ftshim_mutex mutex;
    long value;
} Box;
static ftshim_mutex table_mutex;
static long table_total;
static PyObject *bump(PyObject *self, PyObject *other) {
    Box *b = (Box *)self;
    FTSHIM_BEGIN_CRITICAL_SECTION(self);
    b->value++;
    FTSHIM_END_CRITICAL_SECTION();
    FTSHIM_BEGIN_CRITICAL_SECTION2(self, other);
    b->value++;
    FTSHIM_END_CRITICAL_SECTION2();
    FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(&table_mutex);
    table_total++;
    FTSHIM_END_CRITICAL_SECTION_MUTEX();
    if (ftshim_mutex_lock(&b->mutex) != FTSHIM_OK) {
        return NULL;
    }
    b->value++;
    (void)ftshim_mutex_unlock(&b->mutex);
    return PyLong_FromLong(b->value);
}
static PyMethodDef methods[] = {{"bump", bump, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static int exec_module(PyObject *m) { (void)m; return ftshim_check_abi_version(); }
static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, (void *)exec_module},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "sized", NULL, 0, methods, slots, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit_sized(void) { return PyModuleDef_Init(&def); }
"#;

/// Size in bytes of a stripped copy of `path` (`strip --strip-unneeded`, as packagers ship).
fn stripped_size(path: &Path) -> u64 {
    let copy = path.with_extension("stripped");
    std::fs::copy(path, &copy).unwrap();
    let out = Command::new("strip").arg("--strip-unneeded").arg(&copy).output().expect("run strip");
    assert!(out.status.success(), "strip {}: {}", copy.display(), String::from_utf8_lossy(&out.stderr));
    std::fs::metadata(&copy).unwrap().len()
}

#[test]
fn a_static_link_adds_at_most_150_kib_to_a_sections_and_mutex_module() {
    const BUDGET: u64 = 150 * 1024;
    let mut report = Vec::new();
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("sizes-{label}"));
        let src = dir.join("sized.c");
        std::fs::write(&src, MODULE_C).unwrap();
        let (shared_dir, static_dir) = (dir.join("shared"), dir.join("static"));
        std::fs::create_dir_all(&shared_dir).unwrap();
        std::fs::create_dir_all(&static_dir).unwrap();
        let shared = build_module(&src, "sized", interp, &shared_dir, &BuildOptions::default());
        let fixed = build_module(
            &src,
            "sized",
            interp,
            &static_dir,
            &BuildOptions { static_link: true, ..Default::default() },
        );
        let (a, b) = (stripped_size(&shared), stripped_size(&fixed));
        let added = b.saturating_sub(a);
        report.push(format!("{label}: dynamic {a} B, static {b} B, static link adds {added} B"));
        assert!(added <= BUDGET, "{label}: a static link adds {added} bytes (budget {BUDGET}): {report:?}");
    }
    println!("{}", report.join("\n"));
}
