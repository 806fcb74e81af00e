//! The import guard, installed into private venvs only (never into the machine's interpreters):
//! a refused module raises ImportError with the loader's reasons, accepted modules import exactly
//! as without the guard, and uninstall leaves site-packages byte-for-byte as it was.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ftshim_abi_tests::{
    Interpreter, artifacts, assert_success, build_extension, ftshim_cli, interpreters, make_venv,
    output_within, scratch, snapshot,
};
use ftshim_loader::describe;

/// Uninstalls the guard from the venv however the test ends.
struct Installed<'a>(&'a Path);

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        let _ = ftshim_cli(&[
            OsStr::new("guard"),
            OsStr::new("uninstall"),
            OsStr::new("--python"),
            self.0.as_os_str(),
        ]);
    }
}

fn run(python: &Path, pythonpath: &Path, script: &str, guard_off: bool) -> Output {
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).env("PYTHONPATH", pythonpath).env_remove("PYTHON_GIL").env_remove("PYTHONHOME");
    if guard_off {
        cmd.env("FTSHIM_GUARD", "off");
    } else {
        cmd.env_remove("FTSHIM_GUARD");
    }
    output_within(&mut cmd, Duration::from_secs(60), "python in the guard venv")
}

fn stdout_of(out: &Output) -> String {
    assert_success(out, "python in the guard venv");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn guard(action: &str, python: &Path) -> (i32, String, String) {
    ftshim_cli(&[OsStr::new("guard"), OsStr::new(action), OsStr::new("--python"), python.as_os_str()])
}

/// Imports the example, a package with the example as a submodule, stdlib extension modules and
/// source modules, and prints everything about them that "imports exactly as before" covers.
const PROBE: &str = r#"
import importlib, json, sys
out = []
for name in ["counter", "pkg", "pkg.counter", "_json", "math", "_decimal", "json", "xml.etree.ElementTree"]:
    m = importlib.import_module(name)
    s = m.__spec__
    out.append({
        "name": name, "module_name": m.__name__, "file": getattr(m, "__file__", None),
        "loader": type(m.__loader__).__qualname__, "spec_loader": type(s.loader).__qualname__,
        "spec": [s.name, s.origin, s.parent, s.has_location,
                 None if s.submodule_search_locations is None else list(s.submodule_search_locations)],
        "same_object": importlib.import_module(name) is m and sys.modules[name] is m,
    })
c = importlib.import_module("counter").Counter(); c.increment(5)
p = importlib.import_module("pkg.counter").Counter(); p.increment(3)
print(json.dumps(out, sort_keys=True))
print("counts", c.value, p.value)
print("gil", sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else None)
"#;

const GUARD_STATE: &str = r#"
import sys
from importlib.machinery import PathFinder
g = [i for i, f in enumerate(sys.meta_path) if getattr(f, "_ftshim_guard", False)]
print("guards", len(g), "right before PathFinder", bool(g) and sys.meta_path[g[0] + 1] is PathFinder)
"#;

const IMPORT_BAD: &str = r#"
import sys
try:
    import counter
except BaseException as e:
    print("raised", type(e).__name__)
    print("name", getattr(e, "name", None))
    print("path", getattr(e, "path", None))
    print("codes", ",".join(c for c, _ in getattr(e, "ftshim_reasons", [])))
    print(e)
else:
    print("imported")
"#;

struct Setup {
    venv_python: PathBuf,
    site: PathBuf,
    good: PathBuf,
    bad: PathBuf,
}

/// A venv of `interp`, a directory with the modules `interp` should accept (the counter example
/// and `pkg/` with it as a submodule) and one with `bad`'s counter under `interp`'s suffix.
fn setup(name: &str, interp: &Interpreter, bad_build: &Interpreter) -> Setup {
    let dir = scratch(name);
    let venv_python = make_venv(interp, &dir.join("venv"));
    let site = describe::describe(&venv_python).unwrap().site_packages[0].clone();
    assert!(site.starts_with(dir.join("venv")), "the venv's own site-packages: {}", site.display());
    let good = dir.join("good");
    std::fs::create_dir_all(good.join("pkg")).unwrap();
    let counter = build_extension("counter", interp, &good);
    std::fs::write(good.join("pkg/__init__.py"), "").unwrap();
    std::fs::copy(&counter, good.join("pkg").join(counter.file_name().unwrap())).unwrap();
    std::fs::copy(good.join("libftshim.so.1"), good.join("pkg/libftshim.so.1")).unwrap();
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let built = build_extension("counter", bad_build, &bad);
    std::fs::rename(&built, bad.join(counter.file_name().unwrap())).unwrap();
    Setup { venv_python, site, good, bad }
}

#[test]
fn the_guard_refuses_the_renamed_gil_build_and_changes_nothing_else() {
    let all = interpreters();
    let s = setup("guard-ft", &all.ft, &all.gil313);
    let py = &s.venv_python;
    let bad_path = s.bad.join(format!("counter{}", all.ft.ext_suffix));

    // Without the guard: today's behaviour, for the record. The GIL build is loaded and its init
    // function is run against the wrong object layout.
    let unguarded = run(py, &s.bad, IMPORT_BAD, false);
    let text = String::from_utf8_lossy(&unguarded.stdout);
    assert!(
        std::os::unix::process::ExitStatusExt::signal(&unguarded.status).is_some()
            || text.starts_with("raised SystemError\n"),
        "{:?} {text}",
        unguarded.status
    );
    let before = stdout_of(&run(py, &s.good, PROBE, false));
    assert!(before.ends_with("counts 5 3\ngil False\n"), "{before}");
    let pristine = snapshot(&s.site);

    let (code, stdout, stderr) = guard("install", py);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "installed the ftshim import guard in {} (ftshim-guard.pth, _ftshim_guard/ with libftshim_loader.so.1 from {}); active in {}\n",
            s.site.display(),
            artifacts().lib_dir.join("libftshim_loader.so.1").display(),
            py.display()
        )
    );
    let _uninstall = Installed(py);
    // Installing twice is harmless: the same files, and one guard in sys.meta_path.
    let once = snapshot(&s.site);
    assert_eq!(guard("install", py).0, 0);
    assert_eq!(snapshot(&s.site), once, "a second install changed site-packages");
    assert_eq!(stdout_of(&run(py, &s.good, GUARD_STATE, false)), "guards 1 right before PathFinder True\n");
    assert_eq!(guard("status", py).1, format!("installed in {} and active\n", s.site.display()));

    // Refused: ImportError carrying the loader's reasons; nothing was loaded.
    let refused = stdout_of(&run(py, &s.bad, IMPORT_BAD, false));
    let reason = format!(
        "  [gil-build] {p}: built for a GIL interpreter, target is free-threaded 3.13: expected a free-threaded build (undefined symbols such as _Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL), found GIL-only references (_Py_Dealloc) and none of those",
        p = bad_path.display()
    );
    assert_eq!(
        refused,
        format!(
            "raised ImportError\nname counter\npath {p}\ncodes gil-build\nftshim guard refused to import 'counter' from {p} (module refused by the loader):\n{reason}\n",
            p = bad_path.display()
        )
    );

    // Accepted: exactly as before, GIL still off; including packages and submodules.
    assert_eq!(stdout_of(&run(py, &s.good, PROBE, false)), before);
    // FTSHIM_GUARD=off starts without it.
    assert_eq!(stdout_of(&run(py, &s.good, GUARD_STATE, true)), "guards 0 right before PathFinder False\n");

    // Uninstall leaves site-packages byte-for-byte as it was; a second uninstall is harmless.
    let (code, stdout, _) = guard("uninstall", py);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        format!(
            "removed the ftshim import guard from {} (ftshim-guard.pth, _ftshim_guard/)\n",
            s.site.display()
        )
    );
    assert_eq!(snapshot(&s.site), pristine, "site-packages differs after uninstall");
    assert_eq!(
        guard("uninstall", py).1,
        format!("no ftshim import guard in {}; nothing to remove\n", s.site.display())
    );
    assert_eq!(stdout_of(&run(py, &s.good, GUARD_STATE, false)), "guards 0 right before PathFinder False\n");
    assert_eq!(guard("status", py).1, format!("not installed in {}\n", s.site.display()));
}

#[test]
fn on_a_gil_interpreter_the_guard_refuses_the_free_threaded_build() {
    let all = interpreters();
    let s = setup("guard-gil", &all.gil313, &all.ft);
    let py = &s.venv_python;
    let pristine = snapshot(&s.site);
    assert_eq!(guard("install", py).0, 0);
    let _uninstall = Installed(py);
    let refused = stdout_of(&run(py, &s.bad, IMPORT_BAD, false));
    let mut lines = refused.lines();
    assert_eq!(lines.next(), Some("raised ImportError"));
    assert_eq!(lines.nth(2), Some("codes ft-build,unresolved-symbol"), "{refused}");
    assert!(
        refused.contains("found 2 missing: _Py_DecRefShared, _Py_MergeZeroLocalRefcount\n"),
        "the process's own exports were checked: {refused}"
    );
    let probe = stdout_of(&run(py, &s.good, PROBE, false));
    assert!(probe.ends_with("counts 5 3\ngil True\n"), "{probe}");
    assert_eq!(guard("uninstall", py).0, 0);
    assert_eq!(snapshot(&s.site), pristine);
}

#[test]
fn guard_needs_an_interpreter_and_refuses_files_it_did_not_write() {
    let (code, _, stderr) = ftshim_cli(&[OsStr::new("guard"), OsStr::new("install")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--python <PY>"), "{stderr}");
    let all = interpreters();
    let dir = scratch("guard-foreign");
    let py = make_venv(&all.ft, &dir.join("venv"));
    let site = describe::describe(&py).unwrap().site_packages[0].clone();
    std::fs::write(site.join("ftshim-guard.pth"), "import something_else\n").unwrap();
    let (code, _, stderr) = guard("uninstall", &py);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "ftshim guard uninstall: {}: not written by ftshim guard install; not removing it\n",
            site.join("ftshim-guard.pth").display()
        )
    );
    assert_eq!(std::fs::read_to_string(site.join("ftshim-guard.pth")).unwrap(), "import something_else\n");
}
