//! `ftshim guard install|uninstall|status`: the opt-in import guard.
//!
//! Install writes three things into the interpreter's site-packages (sysconfig `purelib`):
//! `ftshim-guard.pth` (one `import` line, run by `site` at startup: it starts the guard, or makes
//! extension imports fail closed if the package cannot be imported), the pure-Python package
//! `_ftshim_guard/` (the wrapper around `_imp.create_dynamic`) and `_ftshim_guard/libftshim_loader.so.1` (the loader library it
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
/// What the `.pth` line runs: unless FTSHIM_GUARD is off, start the guard; if it cannot start
/// (its library missing, truncated or of another ABI; its package gone or broken), block
/// extension-module imports with an ImportError saying why, so a broken install fails closed.
/// The one copy of the blocker: it must work without the package. `site` runs `import` lines of
/// `.pth` files with `exec`, one line each, so this is put on one line by [`pth_line`].
const PTH_BODY: &str = r#"import _imp, os, sys
if os.environ.get("FTSHIM_GUARD", "").lower() not in ("off", "0", "no"):
    try:
        import _ftshim_guard
        _ftshim_guard.install()
    except Exception as e:
        def blocked_create_dynamic(spec, *args, why=f"{type(e).__name__}: {e}", exe=sys.executable):
            name, origin = getattr(spec, "name", None), getattr(spec, "origin", None)
            raise ImportError(
                f"ftshim guard refused to import {name!r} from {origin}: the guard is installed but"
                f" could not start ({why}), so no extension module is loaded (fail closed). Repair it"
                f" with 'ftshim guard install --python {exe}', remove it with 'ftshim guard"
                f" uninstall --python {exe}', or set FTSHIM_GUARD=off to run without it.",
                name=name, path=origin)
        blocked_create_dynamic._ftshim_guard = f"blocked: {type(e).__name__}: {e}"
        _imp.create_dynamic = blocked_create_dynamic
"#;

/// The `.pth` file: [`PTH_BODY`] on one `import` line (Rust's string escaping of ASCII text is a
/// valid Python string literal).
fn pth_line() -> String {
    format!("import sys; exec({PTH_BODY:?})\n")
}

/// What earlier versions wrote, still recognised as ours by uninstall.
const PTH_BEFORE_0_2: &str = "import _ftshim_guard; _ftshim_guard.install()\n";
const PACKAGE: &str = "_ftshim_guard";
const LIB_NAME: &str = ftshim_loader::version::SONAME;
/// The library's SHA-256 as `sha256sum` writes it, next to it; the guard checks it before dlopen.
const DIGEST_NAME: &str = "libftshim_loader.so.1.sha256";

/// Prints the probe's answer: the guard's state in a fresh interpreter, `active`, `blocked: why`
/// or `None`. Run with `-B`, so checking writes no bytecode into site-packages.
const PROBE: &str = "import _imp; print(getattr(_imp.create_dynamic, '_ftshim_guard', None))";

/// The guard in a fresh interpreter, as [`probe`] sees it.
#[derive(Debug, PartialEq)]
enum State {
    Active,
    /// Installed but could not start: extension imports fail closed, for this reason.
    Blocked(String),
    Absent,
}

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

fn probe(interp: &Interpreter) -> Result<State, String> {
    let out = Command::new(&interp.executable)
        .args(["-I", "-B", "-c", PROBE])
        .env_remove("FTSHIM_GUARD")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", interp.executable.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), stdout.trim_end_matches('\n')) {
        (true, "active") => Ok(State::Active),
        (true, "None") => Ok(State::Absent),
        (true, state) if state.starts_with("blocked: ") => {
            Ok(State::Blocked(state["blocked: ".len()..].to_owned()))
        }
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
    write_atomically(&package.join(DIGEST_NAME), digest_line(&lib_bytes).as_bytes())?;
    // The .pth last: until it exists, nothing imports the package.
    write_atomically(&site.join(PTH_NAME), pth_line().as_bytes())?;
    match probe(interp) {
        Ok(State::Active) => Ok(format!(
            "installed the ftshim import guard in {} ({PTH_NAME}, {PACKAGE}/ with {LIB_NAME} from {}); active in {}",
            site.display(),
            lib.display(),
            interp.executable.display()
        )),
        other => {
            let why = match other {
                Ok(State::Blocked(why)) => format!("a fresh interpreter could not start it: {why}"),
                Ok(_) => "a fresh interpreter does not show it around _imp.create_dynamic".to_owned(),
                Err(e) => e,
            };
            let _ = do_uninstall(interp);
            Err(format!("the guard did not activate, so it was removed again: {why}"))
        }
    }
}

/// `<sha256 hex>  libftshim_loader.so.1\n`, the `sha256sum` format.
fn digest_line(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}  {LIB_NAME}\n")
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
        if text != pth_line() && text != PTH_BEFORE_0_2 {
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
        Ok(match (installed, probe(&interp)?) {
            (true, State::Active) => format!("installed in {} and active", site.display()),
            (_, State::Blocked(why)) => format!(
                "installed in {} but broken: extension-module imports fail closed because the guard could not start ({why}); run 'ftshim guard install' again to repair it",
                site.display()
            ),
            (true, State::Absent) => {
                format!("installed in {} but NOT active (FTSHIM_GUARD=off or python -S?)", site.display())
            }
            (false, State::Active) => {
                format!("not installed in {}, yet a guard is active (another site dir?)", site.display())
            }
            (false, State::Absent) => format!("not installed in {}", site.display()),
        })
    });
    finish("status", result)
}
