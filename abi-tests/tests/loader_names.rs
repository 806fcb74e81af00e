//! Module names CPython derives its entry point from (Python/importdl.c `get_encoded_name`):
//! non-ASCII names use `PyInitU_<punycode>` (PEP 489), `-` becomes `_`, at most 200 bytes are
//! looked up; a name that is not UTF-8 cannot be imported at all. Each is checked against what
//! the real interpreters do.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::corpus::cafe_source;
use ftshim_abi_tests::{
    Interpreter, build_c_source, ftshim_json, interpreters, output_within, python_command, reason_codes,
    reason_messages, scratch,
};
use ftshim_loader as loader;
use serde_json::Value;

/// `ftshim check --python <interp> --json <file>`: exit code and the file's object.
fn check(interp: &Interpreter, file: &Path) -> (i32, Value) {
    let (code, doc) = ftshim_json(&[
        OsStr::new("check"),
        OsStr::new("--python"),
        interp.executable.as_os_str(),
        OsStr::new("--json"),
        file.as_os_str(),
    ]);
    (code, doc["files"][0].clone())
}

/// Runs `code` in `interp` with `dir` on `sys.path` (stdout, stderr, success).
fn python(interp: &Interpreter, dir: &Path, code: &str) -> (String, String, bool) {
    let mut cmd = python_command(&interp.executable, dir, &["-I", "-B", "-c", code]);
    // -I drops PYTHONPATH: put the directory on sys.path from the command instead.
    cmd.arg(dir);
    let out = output_within(&mut cmd, Duration::from_secs(60), "python");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

const IMPORT: &str = "import sys, importlib\nsys.path.insert(0, sys.argv[1])\n";

#[test]
fn a_module_named_cafe_is_accepted_and_imports_on_every_interpreter() {
    let root = scratch("loader-names-cafe");
    for (label, interp) in interpreters().all() {
        let dir = root.join(label);
        std::fs::create_dir_all(&dir).unwrap();
        let cafe = build_c_source("café", &cafe_source("PyInitU_caf_dma"), interp, &dir);
        assert_eq!(cafe.file_name().unwrap(), OsStr::new(&format!("café{}", interp.ext_suffix)));

        // The interpreter imports it, under its name, with the GIL still off on 3.13t.
        let (out, err, ok) = python(
            interp,
            &dir,
            &format!(
                "{IMPORT}import café\nprint(café.__name__, café.answer(), getattr(sys, '_is_gil_enabled', lambda: True)())"
            ),
        );
        assert!(ok, "{label}: import café failed:\n{err}");
        assert_eq!(
            out,
            format!("café 42 {}\n", if interp.free_threaded { "False" } else { "True" }),
            "{label}"
        );

        // The CLI accepts it, naming the entry point CPython calls.
        let (code, file) = check(interp, &cafe);
        assert_eq!(code, 0, "{label}: {file:#}");
        assert_eq!(file["verdict"], "accepted", "{label}");
        assert_eq!(file["module"], "café");
        assert_eq!(
            file["entry"],
            serde_json::json!({"kind": "PyInit", "symbol": "PyInitU_caf_dma"}),
            "{label}"
        );
        assert_eq!(file["evidence"]["init_exports"], serde_json::json!(["PyInitU_caf_dma"]), "{label}");
        if interp.free_threaded {
            assert_eq!(file["gil_free"]["declared"], "yes", "{label}: {file:#}");
        }

        // The library (Rust API) and the C API inside the interpreter agree.
        let report = loader::inspect(&cafe, &interp.target());
        assert!(report.accepted(), "{label}: {:?}", report.messages());
        assert_eq!(report.entry, Some(loader::Entry::Init("PyInitU_caf_dma".to_owned())));
        let got = ftshim_abi_tests::inspect_in_process(interp, std::slice::from_ref(&cafe));
        assert_eq!(got, vec![(0, String::new(), String::new())], "{label}: the C API in the interpreter");
    }
}

/// `dir/<minor>[t]`, created: one directory per interpreter.
fn interp_dir(dir: &Path, interp: &Interpreter) -> PathBuf {
    let sub = dir.join(format!("{}{}", interp.version.1, if interp.free_threaded { "t" } else { "" }));
    std::fs::create_dir_all(&sub).unwrap();
    sub
}

#[test]
fn a_cafe_module_exporting_pyinit_cafe_is_refused_as_cpython_fails_to_import_it() {
    let dir = scratch("loader-names-wrong");
    for interp in [&interpreters().ft, &interpreters().gil313] {
        let sub = interp_dir(&dir, interp);
        let wrong = build_c_source("café", &cafe_source("PyInit_café"), interp, &sub);
        let (_, err, ok) = python(interp, &sub, &format!("{IMPORT}import café"));
        assert!(!ok);
        assert!(
            err.ends_with(
                "ImportError: dynamic module does not define module export function (PyInitU_caf_dma)\n"
            ),
            "{err}"
        );
        let (code, file) = check(interp, &wrong);
        assert_eq!(code, 1, "{file:#}");
        assert_eq!(reason_codes(&file), ["init-mismatch"]);
        assert_eq!(
            reason_messages(&file),
            [format!(
                "{}: must export the init function named after the file: expected 'PyInitU_caf_dma' (CPython's entry point for the module name 'café': not ASCII, so its punycode, PEP 489), found 'PyInit_café'",
                wrong.display()
            )]
        );
    }
}

/// `-` is written `_`, and only the first 200 bytes of the name are looked up (`%.200s`): both
/// are CPython's, shown by importing such modules with importlib.
#[test]
fn dashes_and_names_over_200_bytes_are_looked_up_as_cpython_does() {
    let ft = &interpreters().ft;
    let dir = scratch("loader-names-ascii");
    let long = "m".repeat(210);
    let source = |entry: &str| {
        format!(
            "#include <Python.h>\nstatic PyModuleDef_Slot slots[] = {{{{Py_mod_gil, Py_MOD_GIL_NOT_USED}}, {{0, NULL}}}};\n\
             static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, \"x\", NULL, 0, NULL, slots, NULL, NULL, NULL}};\n\
             PyMODINIT_FUNC {entry}(void) {{ return PyModuleDef_Init(&def); }}\n"
        )
    };
    let dashed = build_c_source("my-mod", &source("PyInit_my_mod"), ft, &dir);
    let cut = build_c_source(&long, &source(&format!("PyInit_{}", &long[..200])), ft, &dir);
    let (out, err, ok) = python(
        ft,
        &dir,
        &format!(
            "{IMPORT}print(importlib.import_module('my-mod').__name__)\nprint(len(importlib.import_module('{long}').__name__))"
        ),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "my-mod\n210\n");
    for (file, symbol) in [(&dashed, "PyInit_my_mod".to_owned()), (&cut, format!("PyInit_{}", &long[..200]))]
    {
        let (code, report) = check(ft, file);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(report["entry"]["symbol"], symbol.as_str());
    }
}

/// A file name that is not UTF-8 gives a module name with surrogate escapes, which CPython
/// cannot import (`PyUnicode_AsUTF8` of the name fails); the loader refuses it, saying so.
#[test]
fn a_module_name_that_is_not_utf8_is_refused_as_cpython_cannot_import_it() {
    let dir = scratch("loader-names-bytes");
    for interp in [&interpreters().ft, &interpreters().gil313] {
        let sub = interp_dir(&dir, interp);
        // '\udcff' (the byte 0xff, surrogate-escaped) in punycode is `1c0c`: the module exports
        // the entry point CPython would look up, if it got that far.
        let built = build_c_source("x", &cafe_source("PyInitU_1c0c"), interp, &sub);
        let mut name = b"\xff".to_vec();
        name.extend_from_slice(interp.ext_suffix.as_bytes());
        let file: PathBuf = sub.join(OsStr::from_bytes(&name));
        std::fs::rename(&built, &file).unwrap();
        let (_, err, ok) = python(interp, &sub, &format!("{IMPORT}importlib.import_module('\\udcff')"));
        assert!(!ok);
        assert!(
            err.ends_with(
                "UnicodeEncodeError: 'utf-8' codec can't encode character '\\udcff' in position 0: surrogates not allowed\n"
            ),
            "{err}"
        );
        let (code, report) = check(interp, &file);
        assert_eq!(code, 1, "{report:#}");
        assert_eq!(reason_codes(&report), ["module-name"]);
        assert_eq!(
            reason_messages(&report),
            [format!(
                "{}/\\xff{}: the module name must be text CPython can import: expected a file name that is UTF-8 up to its first '.', found the byte 0xff at offset 0, which is not (CPython's import fails: UnicodeEncodeError, surrogates not allowed)",
                sub.display(),
                interp.ext_suffix
            )]
        );
    }
}

/// What Python/importdl.c does, in Python with the interpreter's own `punycode` codec, for names
/// the interpreter generates: mixed scripts, all non-ASCII, upper case, long, dotted, dashed.
const HOOKS_PY: &str = r#"
import json, random, sys, unicodedata
def hooks(name):
    short = name.rpartition('.')[2]
    try:
        enc, prefixes = short.encode('ascii'), ('PyInit', 'PyModExport')
    except UnicodeEncodeError:
        enc, prefixes = short.encode('punycode'), ('PyInitU', 'PyModExportU')
    enc = enc.replace(b'-', b'_').decode('ascii')[:200]
    return [f'{p}_{enc}' for p in prefixes]
r = random.Random(489)
letters = [chr(c) for c in range(0x80, 0x30000) if (chr(c).isidentifier() and unicodedata.category(chr(c)) != 'Cs')]
names = ['café', 'Café', 'CAFÉ', 'naïve', 'ÉCOLE', 'привет', 'Ünïcödé', '日本語', 'aé_b', 'x.café', 'pkg.sub.日本',
         'ab-c', 'é-é', '_é', 'é1', 'a' * 150 + 'é' * 60, 'é' * 120, '\U0001d4b3', 'Straße', 'ß', 'ñandú_2']
for n in range(1, 400):
    size = r.choice([1, 2, 3, 5, 8, 13, 40])
    pool = r.choice(['ascii', 'mixed', 'wide'])
    chars = []
    for _ in range(size):
        if pool == 'ascii' or (pool == 'mixed' and r.random() < 0.5):
            chars.append(r.choice('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789'))
        else:
            chars.append(r.choice(letters))
    names.append(''.join(chars))
json.dump([[n] + hooks(n) for n in names], sys.stdout)
"#;

#[test]
fn entry_symbols_match_cpython_for_generated_names() {
    for interp in [&interpreters().ft, interpreters().get("3.15")] {
        let out = output_within(
            Command::new(&interp.executable).args(["-I", "-c", HOOKS_PY]),
            Duration::from_secs(60),
            "python",
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cases: Vec<(String, String, String)> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(cases.len(), 420);
        let non_ascii = cases.iter().filter(|c| c.1.starts_with("PyInitU_")).count();
        assert!(non_ascii > 200, "{non_ascii} of {} names are not ASCII", cases.len());
        for (name, init, export) in &cases {
            let got = loader::entry_symbols(name);
            assert_eq!((&got.init, &got.export), (init, export), "{name:?}");
        }
    }
}
