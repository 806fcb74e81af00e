//! `ftshim guard install|uninstall|status`: the opt-in import guard.
//!
//! Install writes three things into the interpreter's site-packages (sysconfig `purelib`):
//! `ftshim-guard.pth` (one `import` line, run by `site` at startup), the pure-Python package
//! `_ftshim_guard/` (the finder) and `_ftshim_guard/libftshim_loader.so.1` (the loader library it
//! calls through ctypes; not libftshim, so the guard never puts a second runtime into the process).
//! Nothing else is touched; uninstall removes exactly those, so site-packages is as it
//! was. Python's bytecode cache for the package lands inside `_ftshim_guard/` and goes with it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use ftshim_loader::describe::Interpreter;

use crate::{EXIT_USAGE, interpreter};

/// The package's source: its first line is the marker uninstall looks for.
const GUARD_PY: &str = include_str!("guard/_ftshim_guard.py");
const MARKER: &str = "# ftshim-guard:";
const PTH_NAME: &str = "ftshim-guard.pth";
const PTH: &str = "import _ftshim_guard; _ftshim_guard.install()\n";
const PACKAGE: &str = "_ftshim_guard";
const LIB_NAME: &str = ftshim_loader::version::SONAME;

/// Prints the probe's answer: is a guard finder in sys.meta_path of a fresh interpreter? Run with
/// `-B`, so checking writes no bytecode into site-packages.
const PROBE: &str = "import sys; print(any(getattr(f, '_ftshim_guard', False) for f in sys.meta_path))";

fn site_dir(interp: &Interpreter) -> Result<PathBuf, String> {
    let site = interp.site_packages.first().ok_or("the interpreter reports no site-packages")?;
    if !site.is_dir() {
        return Err(format!(
            "{}: site-packages of {} is not a directory",
            site.display(),
            interp.executable.display()
        ));
    }
    Ok(site.clone())
}

/// The loader library to copy: `--loader-lib`, else `../lib/libftshim_loader.so.1` next to this
/// executable's directory (the installed and staged layout: `<prefix>/bin/ftshim`,
/// `<prefix>/lib/libftshim_loader.so.1`).
fn loader_lib_source(given: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{}: no such file (--loader-lib)", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate the ftshim executable: {e}"))?;
    let candidate = exe.parent().unwrap_or(Path::new(".")).join("../lib").join(LIB_NAME);
    if candidate.is_file() {
        std::fs::canonicalize(&candidate).map_err(|e| format!("{}: {e}", candidate.display()))
    } else {
        Err(format!("{}: no such file; pass --loader-lib PATH", candidate.display()))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// running interpreter never sees a half-written file.
/// A file that already holds exactly `bytes` is left alone (so installing twice changes nothing,
/// not even a modification time).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = path.with_file_name(format!(
        ".{}.ftshim-tmp-{}",
        path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: cannot write: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot replace: {e}", path.display())
    })
}

fn probe(interp: &Interpreter) -> Result<bool, String> {
    let out = Command::new(&interp.executable)
        .args(["-I", "-B", "-c", PROBE])
        .env_remove("FTSHIM_GUARD")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", interp.executable.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), stdout.trim()) {
        (true, "True") => Ok(true),
        (true, "False") => Ok(false),
        _ => Err(format!(
            "{} failed to start ({}): {}",
            interp.executable.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn do_install(interp: &Interpreter, loader_lib: Option<PathBuf>) -> Result<String, String> {
    let site = site_dir(interp)?;
    let lib = loader_lib_source(loader_lib)?;
    let lib_bytes = std::fs::read(&lib).map_err(|e| format!("{}: cannot read: {e}", lib.display()))?;
    let package = site.join(PACKAGE);
    if package.exists() && !is_ours(&package) {
        return Err(format!("{}: exists and is not an ftshim guard; not touching it", package.display()));
    }
    std::fs::create_dir_all(&package).map_err(|e| format!("{}: cannot create: {e}", package.display()))?;
    write_atomically(&package.join("__init__.py"), GUARD_PY.as_bytes())?;
    write_atomically(&package.join(LIB_NAME), &lib_bytes)?;
    // The .pth last: until it exists, nothing imports the package.
    write_atomically(&site.join(PTH_NAME), PTH.as_bytes())?;
    match probe(interp) {
        Ok(true) => Ok(format!(
            "installed the ftshim import guard in {} ({PTH_NAME}, {PACKAGE}/ with {LIB_NAME} from {}); active in {}",
            site.display(),
            lib.display(),
            interp.executable.display()
        )),
        other => {
            let why = match other {
                Ok(_) => "a fresh interpreter does not show the guard in sys.meta_path".to_owned(),
                Err(e) => e,
            };
            let _ = do_uninstall(interp);
            Err(format!("the guard did not activate, so it was removed again: {why}"))
        }
    }
}

/// True when `package` is a guard package written by `install` (its `__init__.py` starts with
/// the marker).
fn is_ours(package: &Path) -> bool {
    std::fs::read_to_string(package.join("__init__.py")).is_ok_and(|s| s.starts_with(MARKER))
}

fn do_uninstall(interp: &Interpreter) -> Result<String, String> {
    let site = site_dir(interp)?;
    let pth = site.join(PTH_NAME);
    let package = site.join(PACKAGE);
    let mut removed = Vec::new();
    if pth.exists() {
        let text = std::fs::read_to_string(&pth).unwrap_or_default();
        if text != PTH {
            return Err(format!("{}: not written by ftshim guard install; not removing it", pth.display()));
        }
    }
    if package.exists() && !is_ours(&package) {
        return Err(format!("{}: not an ftshim guard package; not removing it", package.display()));
    }
    if pth.exists() {
        std::fs::remove_file(&pth).map_err(|e| format!("{}: cannot remove: {e}", pth.display()))?;
        removed.push(PTH_NAME);
    }
    if package.exists() {
        std::fs::remove_dir_all(&package)
            .map_err(|e| format!("{}: cannot remove: {e}", package.display()))?;
        removed.push("_ftshim_guard/");
    }
    Ok(if removed.is_empty() {
        format!("no ftshim import guard in {}; nothing to remove", site.display())
    } else {
        format!("removed the ftshim import guard from {} ({})", site.display(), removed.join(", "))
    })
}

fn finish(what: &str, result: Result<String, String>) -> ExitCode {
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ftshim guard {what}: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `ftshim guard install --python PY [--loader-lib PATH]`.
pub fn install(python: &Path, loader_lib: Option<PathBuf>) -> ExitCode {
    finish("install", interpreter(Some(python.to_owned())).and_then(|i| do_install(&i, loader_lib)))
}

/// `ftshim guard uninstall --python PY`.
pub fn uninstall(python: &Path) -> ExitCode {
    finish("uninstall", interpreter(Some(python.to_owned())).and_then(|i| do_uninstall(&i)))
}

/// `ftshim guard status --python PY`: exit 0 and "active" when a fresh interpreter runs with the
/// guard, exit 0 and "not installed" when there is none, exit 2 on errors.
pub fn status(python: &Path) -> ExitCode {
    let result = interpreter(Some(python.to_owned())).and_then(|interp| {
        let site = site_dir(&interp)?;
        let installed = site.join(PTH_NAME).exists() && is_ours(&site.join(PACKAGE));
        let active = probe(&interp)?;
        Ok(match (installed, active) {
            (true, true) => format!("installed in {} and active", site.display()),
            (true, false) => {
                format!("installed in {} but NOT active (FTSHIM_GUARD=off or python -S?)", site.display())
            }
            (false, true) => {
                format!("not installed in {}, yet a guard is active (another site dir?)", site.display())
            }
            (false, false) => format!("not installed in {}", site.display()),
        })
    });
    finish("status", result)
}
