//! The import guard, installed into private venvs only (never into the machine's interpreters):
//! a refused module raises ImportError with the loader's reasons on every importlib route,
//! accepted modules import exactly as without the guard, a broken install fails closed, and
//! uninstall leaves site-packages byte-for-byte as it was.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ftshim_abi_tests::corpus::cafe_source;
use ftshim_abi_tests::{
    Interpreter, artifacts, assert_success, build_c_source, build_extension, ftshim_cli, interpreters,
    make_venv, output_within, scratch, snapshot,
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
import _imp
print("guard", getattr(_imp.create_dynamic, "_ftshim_guard", None))
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
    assert_eq!(stdout_of(&run(py, &s.good, GUARD_STATE, false)), "guard active\n");
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
    assert_eq!(stdout_of(&run(py, &s.good, GUARD_STATE, true)), "guard None\n");

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
    assert_eq!(stdout_of(&run(py, &s.good, GUARD_STATE, false)), "guard None\n");
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

/// Every importlib route that creates an extension module from a file, one per run: argv is the
/// route and the directory holding `counter<EXT_SUFFIX>`. Prints `refused <codes>` for an
/// ImportError and `imported <value>` when the module loaded and works.
const ROUTES: &str = r#"
import importlib, importlib.util, sys, _imp
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, FileFinder, PathFinder
route, d = sys.argv[1], sys.argv[2]
path = d + "/counter" + EXTENSION_SUFFIXES[0]

class EditableFinder:  # the shape of meson-python's and setuptools' editable-install finders
    def find_spec(self, fullname, path_=None, target=None):
        return importlib.util.spec_from_file_location(fullname, path) if fullname == "counter" else None

def from_spec(spec):
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m

try:
    if route == "import":
        sys.path.insert(0, d)
        import counter as m
    elif route == "meta_path[0]":
        sys.meta_path.insert(0, EditableFinder())
        import counter as m
    elif route == "meta_path appended":  # counter is not on sys.path: only this finder finds it
        sys.meta_path.append(EditableFinder())
        import counter as m
    elif route == "spec_from_file_location":
        m = from_spec(importlib.util.spec_from_file_location("counter", path))
    elif route == "ExtensionFileLoader":
        m = from_spec(importlib.util.spec_from_loader("counter", ExtensionFileLoader("counter", path)))
    elif route == "PathFinder.find_spec":
        m = from_spec(PathFinder.find_spec("counter", [d]))
    elif route == "FileFinder":
        m = from_spec(FileFinder(d, (ExtensionFileLoader, EXTENSION_SUFFIXES)).find_spec("counter"))
    elif route == "_imp.create_dynamic":
        m = _imp.create_dynamic(importlib.util.spec_from_file_location("counter", path))
        _imp.exec_dynamic(m)
    else:
        raise SystemExit(f"unknown route {route}")
except ImportError as e:
    print("refused", ",".join(c for c, _ in getattr(e, "ftshim_reasons", [])) or repr(e))
else:
    c = m.Counter()
    c.increment(2)
    print("imported", c.value)
"#;

const ROUTE_NAMES: [&str; 8] = [
    "import",
    "meta_path[0]",
    "meta_path appended",
    "spec_from_file_location",
    "ExtensionFileLoader",
    "PathFinder.find_spec",
    "FileFinder",
    "_imp.create_dynamic",
];

/// `python [flags] -c ROUTES route dir` in the venv, guard on, nothing else on the path.
fn route(python: &Path, flags: &[&str], name: &str, dir: &Path) -> String {
    let mut cmd = Command::new(python);
    cmd.args(flags).arg("-c").arg(ROUTES).arg(name).arg(dir);
    cmd.env_remove("PYTHONPATH").env_remove("PYTHON_GIL").env_remove("PYTHONHOME").env_remove("FTSHIM_GUARD");
    stdout_of(&output_within(&mut cmd, Duration::from_secs(60), "python in the guard venv"))
}

#[test]
fn every_importlib_route_goes_through_the_guard() {
    let all = interpreters();
    let s = setup("guard-routes", &all.ft, &all.gil313);
    let py = &s.venv_python;
    assert_eq!(guard("install", py).0, 0);
    let _uninstall = Installed(py);
    for name in ROUTE_NAMES {
        assert_eq!(route(py, &[], name, &s.bad), "refused gil-build\n", "route {name}, GIL build");
        assert_eq!(route(py, &[], name, &s.good), "imported 2\n", "route {name}, free-threaded build");
    }
    // A module whose name is not ASCII: CPython looks up PyInitU_<punycode>, and so does the guard.
    build_c_source("café", &cafe_source("PyInitU_caf_dma"), &all.ft, &s.good);
    let cafe = "import café\nprint(café.__name__, café.answer())\n";
    assert_eq!(stdout_of(&run(py, &s.good, cafe, false)), "café 42\n");
    // -I (isolated) still runs site-packages' .pth files.
    assert_eq!(route(py, &["-I"], "import", &s.bad), "refused gil-build\n");
    // Out of reach, as docs/loader.md says: -S runs no site, so no .pth and no guard.
    let mut cmd = Command::new(py);
    cmd.args(["-S", "-c", GUARD_STATE]).env_remove("FTSHIM_GUARD");
    assert_eq!(stdout_of(&output_within(&mut cmd, Duration::from_secs(60), "python -S")), "guard None\n");
}

/// `import counter` from `dir` and a stdlib extension module nothing imported yet: each line
/// `<name>: imported` or `<name>: ImportError <message>`.
const IMPORT_TWO: &str = r#"
import importlib
for name in ["counter", "_decimal"]:
    try:
        importlib.import_module(name)
    except ImportError as e:
        print(f"{name}: ImportError {e}")
    else:
        print(f"{name}: imported")
"#;

#[test]
fn a_broken_guard_install_makes_extension_imports_fail_closed() {
    let all = interpreters();
    let s = setup("guard-broken", &all.ft, &all.gil313);
    let py = &s.venv_python;
    assert_eq!(guard("install", py).0, 0);
    let _uninstall = Installed(py);
    let package = s.site.join("_ftshim_guard");
    let lib = package.join("libftshim_loader.so.1");
    let good_lib = std::fs::read(&lib).unwrap();
    let blocked = |name: &str, origin: &Path, why: &str| {
        format!(
            "{name}: ImportError ftshim guard refused to import '{name}' from {}: the guard is installed but could not start ({why}), so no extension module is loaded (fail closed). Repair it with 'ftshim guard install --python {p}', remove it with 'ftshim guard uninstall --python {p}', or set FTSHIM_GUARD=off to run without it.\n",
            origin.display(),
            p = py.display()
        )
    };
    let decimal = describe::describe(py).unwrap().lib_dynload.join(format!("_decimal{}", all.ft.ext_suffix));
    assert!(decimal.is_file(), "{}", decimal.display());
    let digest_of = |path: &Path| {
        let out = Command::new("sha256sum").arg(path).output().unwrap();
        assert_success(&out, "sha256sum");
        String::from_utf8_lossy(&out.stdout).split(' ').next().unwrap().to_owned()
    };
    let expected = digest_of(&lib);
    let mismatch = |path: &Path| {
        format!(
            "OSError: {}: SHA-256 {}, expected {expected} (the copy install made): changed or truncated",
            lib.display(),
            digest_of(path)
        )
    };
    /// What it breaks, and the breakage (returning the reason the guard will give).
    type Breakage<'a> = (&'a str, Box<dyn Fn() -> String + 'a>);
    let breakages: [Breakage; 4] = [
        (
            "loader library missing",
            Box::new(|| {
                std::fs::remove_file(&lib).unwrap();
                format!("FileNotFoundError: [Errno 2] No such file or directory: '{}'", lib.display())
            }),
        ),
        (
            // Without the digest, this is glibc's dlopen dying of SIGBUS at startup.
            "loader library truncated",
            Box::new(|| {
                std::fs::write(&lib, &good_lib[..good_lib.len() / 2]).unwrap();
                mismatch(&lib)
            }),
        ),
        (
            "another library in its place",
            Box::new(|| {
                std::fs::copy(artifacts().lib_dir.join("libftshim.so.1"), &lib).unwrap();
                mismatch(&lib)
            }),
        ),
        (
            "guard package gone",
            Box::new(|| {
                std::fs::remove_dir_all(&package).unwrap();
                "ModuleNotFoundError: No module named '_ftshim_guard'".to_owned()
            }),
        ),
    ];
    for (what, breakage) in breakages {
        let why = breakage();
        let out = stdout_of(&run(py, &s.good, IMPORT_TWO, false));
        assert_eq!(
            out,
            format!(
                "{}{}",
                blocked("counter", &s.good.join(format!("counter{}", all.ft.ext_suffix)), &why),
                blocked("_decimal", &decimal, &why)
            ),
            "{what}"
        );
        assert_eq!(stdout_of(&run(py, &s.good, IMPORT_TWO, true)), "counter: imported\n_decimal: imported\n");
        assert_eq!(
            guard("status", py).1,
            format!(
                "installed in {} but broken: extension-module imports fail closed because the guard could not start ({why}); run 'ftshim guard install' again to repair it\n",
                s.site.display()
            ),
            "{what}"
        );
        // Installing again repairs it.
        assert_eq!(guard("install", py).0, 0, "{what}");
        assert_eq!(
            stdout_of(&run(py, &s.good, IMPORT_TWO, false)),
            "counter: imported\n_decimal: imported\n"
        );
    }

    // An install whose loader library cannot start is removed again, saying why.
    let wrong = artifacts().lib_dir.join("libftshim.so.1");
    let (code, _, stderr) = ftshim_cli(&[
        OsStr::new("guard"),
        OsStr::new("install"),
        OsStr::new("--python"),
        py.as_os_str(),
        OsStr::new("--loader-lib"),
        wrong.as_os_str(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "ftshim guard install: the guard did not activate, so it was removed again: a fresh interpreter could not start it: AttributeError: {}: undefined symbol: ftshim_loader_abi_version\n",
            lib.display()
        )
    );
    assert_eq!(guard("status", py).1, format!("not installed in {}\n", s.site.display()));
}

#[test]
fn the_guard_starts_and_refuses_on_every_gil_interpreter() {
    let all = interpreters();
    for (label, interp) in all.all().into_iter().filter(|(label, _)| !label.ends_with('t')) {
        if label == "3.13" {
            continue; // on_a_gil_interpreter_the_guard_refuses_the_free_threaded_build
        }
        let s = setup(&format!("guard-{label}"), interp, &all.ft);
        let py = &s.venv_python;
        assert_eq!(guard("install", py).0, 0, "{label}");
        let _uninstall = Installed(py);
        assert_eq!(stdout_of(&run(py, &s.good, GUARD_STATE, false)), "guard active\n", "{label}");
        // 3.11 and 3.12 do not know the Py_mod_gil slot the free-threaded build carries.
        let codes = match label {
            "3.11" | "3.12" => "unknown-slot,ft-build,unresolved-symbol",
            _ => "ft-build,unresolved-symbol",
        };
        for name in ["import", "spec_from_file_location"] {
            assert_eq!(route(py, &[], name, &s.bad), format!("refused {codes}\n"), "{label} route {name}");
            assert_eq!(route(py, &[], name, &s.good), "imported 2\n", "{label} route {name}");
        }
    }
}
