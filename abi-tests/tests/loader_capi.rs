//! The loader's C API: a strict C11 program embedding python3.13t, and ctypes inside each real
//! interpreter (the running-process target), give the same reasons as the Rust API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::corpus::{self, Corpus};
use ftshim_abi_tests::{
    build_c_source, build_extension, c_program, inspect_in_process, interpreters, output_within, scratch,
    workspace_root, write_source,
};
use ftshim_loader as loader;

/// Inspects every path three ways (explicit target with the interpreter's libpython exports,
/// NULL = this process, and open with NULL) and prints each report.
const CAPI_C: &str = r#"#include <Python.h>
#include "ftshim_loader.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void show(const char *how, const char *path, ftshim_status st, ftshim_loader_report *r)
{
    printf("%s %s status=%d inconclusive=%u evidence=%u\n", how, path, (int)st,
           (unsigned)r->inconclusive_count, (unsigned)r->evidence);
    for (uint32_t i = 0; i < r->reason_count; i++) {
        const char *code = NULL, *message = NULL;
        if (ftshim_loader_report_reason(r, i, &code, &message) != FTSHIM_OK) {
            printf("  reason %u unreadable\n", (unsigned)i);
            continue;
        }
        printf("  [%s] %s\n", code, message);
    }
    if (r->status != st) {
        printf("  report status %d differs\n", (int)r->status);
    }
    if (ftshim_loader_report_clear(r) != FTSHIM_OK || r->reason_count != 0 || r->_ftshim_private != NULL) {
        printf("  clear failed\n");
    }
}

static PyObject *sentinel(void) { return NULL; }

int main(int argc, char **argv)
{
    if (argc < 3) {
        return 2;
    }
    Py_InitializeEx(0);
    ftshim_loader_target target = {sizeof target, PY_VERSION_HEX, FTSHIM_LOADER_FREE_THREADED, argv[1], argv[2]};
    for (int i = 3; i < argc; i++) {
        ftshim_loader_report report = {sizeof report, 0, 0, 0, 0, NULL};
        show("explicit", argv[i], ftshim_loader_inspect(argv[i], &target, &report), &report);
        show("process", argv[i], ftshim_loader_inspect(argv[i], NULL, &report), &report);
        PyObject *(*init)(void) = sentinel; /* open must reset it to NULL on failure */
        ftshim_status st = ftshim_loader_open(argv[i], NULL, &report, &init);
        show("open", argv[i], st, &report);
        if (st == FTSHIM_OK) {
            Dl_info info;
            void *addr;
            memcpy(&addr, &init, sizeof addr);
            if (dladdr(addr, &info) && info.dli_sname) {
                printf("  init=%s\n", info.dli_sname);
            }
        } else if (init != NULL) {
            printf("  init not NULL after a failure\n");
        }
    }
    ftshim_loader_report report = {sizeof report, 0, 0, 0, 0, NULL};
    show("null-path", "-", ftshim_loader_inspect(NULL, &target, &report), &report);
    show("null-init", "-", ftshim_loader_open(argv[3], &target, &report, NULL), &report);
    /* An exports_path that is not there, and one that is no CPython: unusable targets. */
    ftshim_loader_target missing = {sizeof missing, PY_VERSION_HEX, FTSHIM_LOADER_FREE_THREADED, argv[1],
                                    "/nonexistent/libpython3.13t.so.1.0"};
    show("bad-exports", "-", ftshim_loader_inspect(argv[3], &missing, &report), &report);
    ftshim_loader_target not_python = {sizeof not_python, PY_VERSION_HEX, FTSHIM_LOADER_FREE_THREADED, argv[1],
                                       argv[3]};
    show("not-python", "-", ftshim_loader_inspect(argv[3], &not_python, &report), &report);
    report.size = 4;
    printf("short-report status=%d\n", (int)ftshim_loader_inspect(argv[3], &target, &report));
    printf("null-report status=%d\n", (int)ftshim_loader_inspect(argv[3], &target, NULL));
    return Py_FinalizeEx() < 0 ? 3 : 0;
}
"#;

/// A module that is fine by every static check but needs a non-Python symbol nobody exports:
/// accepted, then dlopen (RTLD_NOW) fails.
const NEEDS_MISSING_C: &str = r#"#include <Python.h>
extern void ftshim_test_symbol_nobody_exports(void);
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "needsmissing", NULL, 0, NULL, NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit_needsmissing(void) {
    ftshim_test_symbol_nobody_exports();
    PyObject *m = PyModule_Create(&def);
    Py_XDECREF(m);
    return PyModule_Create(&def);
}
"#;

/// What the Rust API says, in the C program's format (for an explicit FT target).
fn rust_lines(how: &str, path: &Path, target: &loader::Target) -> String {
    let r = loader::inspect(path, target);
    let status = r.verdict().status().0;
    let evidence = r.evidence.as_ref().map_or(0, |ev| {
        1 | if ev.ft_markers.is_empty() { 0 } else { 2 } | if ev.gil_markers.is_empty() { 0 } else { 4 }
    });
    let mut s = format!(
        "{how} {} status={status} inconclusive={} evidence={evidence}\n",
        path.display(),
        r.inconclusive.len()
    );
    for x in &r.refusals {
        s.push_str(&format!("  [{}] {}\n", x.code, r.about(&x.message)));
    }
    s
}

fn corpus() -> Corpus {
    corpus::build("loader-capi-corpus")
}

fn case(c: &Corpus, label: &str) -> PathBuf {
    c.refused.iter().find(|x| x.label == label).unwrap().path.clone()
}

#[test]
fn a_c_program_gets_the_rust_reasons_and_opens_only_accepted_modules() {
    let ft = &interpreters().ft;
    let c = corpus();
    let dir = scratch("loader-capi-c");
    let missing = build_c_source("needsmissing", NEEDS_MISSING_C, ft, &dir);
    let src = write_source(&dir, "capi.c", CAPI_C);
    let libdir = ft.exports_file.parent().unwrap();
    let extra = [
        "-Wpedantic".to_owned(),
        "-D_GNU_SOURCE".to_owned(),
        "-lftshim_loader".to_owned(),
        format!("-L{}", libdir.display()),
        "-lpython3.13t".to_owned(),
        format!("-Wl,-rpath,{}", libdir.display()),
    ];
    let exe = c_program(&src, ft, &dir, &extra);

    let files = [
        c.ft_counter.clone(),
        case(&c, "gil-renamed"),
        case(&c, "bare-so"),
        case(&c, "truncated-1000"),
        case(&c, "unresolved"),
        case(&c, "empty"),
        case(&c, "fifo"),
        case(&c, "dangling"),
        missing.clone(),
    ];
    let mut cmd = Command::new(&exe);
    cmd.arg(&ft.ext_suffix).arg(&ft.exports_file).args(&files).env_remove("PYTHONPATH");
    let run = output_within(&mut cmd, Duration::from_secs(60), "the C API program");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{:?}\n{stdout}\n{}", run.status, String::from_utf8_lossy(&run.stderr));

    let target = ft.target();
    let mut expected = String::new();
    for f in &files {
        let explicit = rust_lines("explicit", f, &target);
        expected.push_str(&explicit);
        // The running-process target is the same interpreter: the same verdict, with the
        // exports looked up in the process instead of read from libpython.
        let process = explicit.replace(
            &format!("resolve in {},", ft.exports_file.display()),
            "resolve in the running process,",
        );
        expected.push_str(&process.replacen("explicit ", "process ", 1));
        if f == &c.ft_counter {
            expected.push_str(&process.replacen("explicit ", "open ", 1));
            expected.push_str("  init=PyInit_counter\n");
        } else if f == &missing {
            let first = explicit
                .lines()
                .next()
                .unwrap()
                .replacen("explicit ", "open ", 1)
                .replace("status=0", "status=-12");
            expected.push_str(&format!(
                "{first}\n  [dlopen-failed] {p}: accepted, but dlopen failed: {p}: undefined symbol: ftshim_test_symbol_nobody_exports\n",
                p = f.display()
            ));
        } else {
            expected.push_str(&process.replacen("explicit ", "open ", 1));
        }
    }
    expected.push_str("null-path - status=-1 inconclusive=0 evidence=0\n  [invalid-argument] path is NULL\n");
    expected.push_str("null-init - status=-1 inconclusive=0 evidence=0\n  [invalid-argument] init is NULL\n");
    // An unusable exports_path is the caller's error now (it was an "inconclusive" note, and the
    // failed read was kept for the life of the process).
    expected.push_str(
        "bad-exports - status=-9 inconclusive=0 evidence=0\n  [invalid-argument] target->exports_path is unusable: cannot read the target's exports from /nonexistent/libpython3.13t.so.1.0: expected a file, found nothing at this path (No such file or directory (os error 2))\n",
    );
    expected.push_str(&format!(
        "not-python - status=-9 inconclusive=0 evidence=0\n  [invalid-argument] target->exports_path is unusable: {} exports no CPython C API (no Py_Initialize)\n",
        c.ft_counter.display()
    ));
    expected.push_str("short-report status=-9\nnull-report status=-1\n");
    assert_eq!(stdout, expected);
}

#[test]
fn inside_each_interpreter_the_running_process_is_the_target() {
    let all = interpreters();
    let dir = scratch("loader-capi-ctypes");
    let ft_dir = dir.join("ft");
    std::fs::create_dir_all(&ft_dir).unwrap();
    let ft_counter = build_extension("counter", &all.ft, &ft_dir);
    for (label, interp) in all.all() {
        let own_dir = dir.join(label);
        std::fs::create_dir_all(&own_dir).unwrap();
        let own = build_extension("counter", interp, &own_dir);
        // A copy with a name no interpreter accepts: the refusal names the derived EXT_SUFFIX.
        let odd = own_dir.join("counter.odd.so");
        std::fs::copy(&own, &odd).unwrap();
        let got = inspect_in_process(interp, &[own.clone(), odd.clone(), ft_counter.clone()]);
        assert_eq!(got[0], (0, String::new(), String::new()), "{label}: its own counter");
        assert_eq!(got[1].1, "suffix-mismatch", "{label}");
        assert_eq!(
            got[1].2,
            format!(
                "{}: file name must end with the target interpreter's EXT_SUFFIX: expected '{}', found '.odd.so'",
                odd.display(),
                interp.ext_suffix
            ),
            "{label}: the EXT_SUFFIX derived in-process equals sysconfig's"
        );
        if interp.free_threaded {
            assert_eq!(got[2].0, 0, "{label}: {:?}", got[2]);
        } else {
            assert_eq!(got[2].0, -10, "{label}");
            // Before 3.13 its Py_mod_gil slot (ID 4) is one CPython does not know either.
            let codes = if interp.version < (3, 13) {
                "suffix-mismatch,unknown-slot,ft-build,unresolved-symbol"
            } else {
                "suffix-mismatch,ft-build,unresolved-symbol"
            };
            assert_eq!(got[2].1, codes, "{label}");
            // 3.11 and 3.12 also lack the critical-section API the 3.13 build calls.
            let missing = if interp.version < (3, 13) {
                "4 missing: PyCriticalSection_Begin, _Py_DecRefShared, _Py_MergeZeroLocalRefcount, PyCriticalSection_End"
            } else {
                "2 missing: _Py_DecRefShared, _Py_MergeZeroLocalRefcount"
            };
            let rest = &got[2].2;
            assert!(
                rest.ends_with(&format!("to resolve in the running process, found {missing}")),
                "{label}: {rest}"
            );
        }
    }
}

/// The Python binding's ctypes structs have the C layout: the same size and, field by field, the
/// same names and offsets as the Rust definitions (which tests/layout.rs checks against the
/// header), in every interpreter.
#[test]
fn the_python_binding_lays_the_structs_out_as_the_header_does() {
    use std::mem::{offset_of, size_of};

    use loader::capi::{ftshim_loader_report, ftshim_loader_target};
    const LAYOUT_PY: &str = r#"
import ctypes, sys
sys.path.insert(0, sys.argv[1])
import _ftshim_guard
for s in (_ftshim_guard.Target, _ftshim_guard.Report):
    print(ctypes.sizeof(s), *(f"{name}@{getattr(s, name).offset}" for name, _ in s._fields_))
"#;
    let expected = format!(
        "{} size@{} version_hex@{} flags@{} ext_suffix@{} exports_path@{}\n{} size@{} status@{} reason_count@{} inconclusive_count@{} evidence@{} _ftshim_private@{}\n",
        size_of::<ftshim_loader_target>(),
        offset_of!(ftshim_loader_target, size),
        offset_of!(ftshim_loader_target, version_hex),
        offset_of!(ftshim_loader_target, flags),
        offset_of!(ftshim_loader_target, ext_suffix),
        offset_of!(ftshim_loader_target, exports_path),
        size_of::<ftshim_loader_report>(),
        offset_of!(ftshim_loader_report, size),
        offset_of!(ftshim_loader_report, status),
        offset_of!(ftshim_loader_report, reason_count),
        offset_of!(ftshim_loader_report, inconclusive_count),
        offset_of!(ftshim_loader_report, evidence),
        offset_of!(ftshim_loader_report, _ftshim_private),
    );
    for (label, interp) in interpreters().all() {
        let mut cmd = Command::new(&interp.executable);
        cmd.args(["-I", "-B", "-c", LAYOUT_PY]).arg(workspace_root().join("cli/src/guard"));
        let out = output_within(&mut cmd, Duration::from_secs(60), "the binding's layout");
        assert!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{label}");
    }
}
