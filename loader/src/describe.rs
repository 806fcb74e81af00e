//! Describes an interpreter from its executable, through pyo3-build-config.
//!
//! The interpreter is asked one thing — where its `_sysconfigdata_*.py` module is — and
//! pyo3-build-config parses that file ([`pyo3_build_config::parse_sysconfigdata`]) and builds
//! its [`InterpreterConfig`] from it (version, free-threading, library), so no build variable is
//! scraped from `python -c` output by hand.
//!
//! Both steps run a Python process (≈ 0.25 s), so the description is kept on disk (the `cache`
//! module below) and reused while the files it came from are unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use pyo3_build_config::InterpreterConfig;

mod cache;

use super::{Symbols, Target};

/// Everything the tools need to know about one interpreter.
pub struct Interpreter {
    /// The executable that was described.
    pub executable: PathBuf,
    /// Its `_sysconfigdata_*.py` module (what [`Interpreter::config`] parses).
    pub sysconfigdata: PathBuf,
    /// `(major, minor)`.
    pub version: (u8, u8),
    /// `Py_GIL_DISABLED` was set at build time.
    pub free_threaded: bool,
    /// `EXT_SUFFIX`, e.g. `.cpython-313t-x86_64-linux-gnu.so`.
    pub ext_suffix: String,
    /// `INCLUDEPY`: the directory holding `Python.h`.
    pub include_dir: PathBuf,
    /// `DESTSHARED`: the interpreter's lib-dynload directory.
    pub lib_dynload: PathBuf,
    /// sysconfig's `purelib` then `platlib` (once if equal): where installed packages go and
    /// where `.pth` files are read from at startup.
    pub site_packages: Vec<PathBuf>,
    /// `importlib.machinery.EXTENSION_SUFFIXES`, in the import system's order.
    pub extension_suffixes: Vec<String>,
    /// The file whose dynamic exports are the interpreter's C API: libpython
    /// (`LIBDIR/INSTSONAME`) for a shared build, else the executable itself.
    pub exports_file: PathBuf,
    /// The exports of `exports_file`, read once and shared by every target made from this.
    symbols: Symbols,
}

impl Interpreter {
    /// pyo3-build-config's view of it, parsed from its sysconfigdata (runs a Python process: not
    /// kept in the on-disk description).
    pub fn config(&self) -> Result<InterpreterConfig, DescribeError> {
        let path = &self.sysconfigdata;
        let err = |what: String| DescribeError(format!("{}: {what}", self.executable.display()));
        let data = without_stdout(|| pyo3_build_config::parse_sysconfigdata(path))
            .map_err(|e| err(format!("cannot parse {}: {e}", path.display())))?;
        InterpreterConfig::from_sysconfigdata(&data)
            .map_err(|e| err(format!("pyo3-build-config rejected {}: {e}", path.display())))
    }

    /// The process this interpreter runs modules in, for the library and symbol checks
    /// ([`linkage`](crate::linkage)): its executable and libpython, and what they need.
    pub fn host(&self) -> crate::linkage::Host {
        let exe = std::fs::canonicalize(&self.executable).unwrap_or_else(|_| self.executable.clone());
        crate::linkage::Host::interpreter(&[exe, self.exports_file.clone()])
    }

    /// The loader target for this interpreter.
    pub fn target(&self) -> Target {
        Target {
            version: self.version,
            free_threaded: self.free_threaded,
            ext_suffix: self.ext_suffix.clone(),
            symbols: self.symbols.clone(),
        }
    }
}

/// Why an executable could not be described; the message names the executable.
#[derive(Debug)]
pub struct DescribeError(pub String);

impl std::fmt::Display for DescribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DescribeError {}

/// Prints, one a line: the sysconfigdata module's file, purelib, platlib, and the extension
/// suffixes separated by spaces.
const FIND_SYSCONFIGDATA: &str = "import importlib.util, importlib.machinery, sysconfig; \
print(importlib.util.find_spec(sysconfig._get_sysconfigdata_name()).origin); \
print(sysconfig.get_path('purelib')); print(sysconfig.get_path('platlib')); \
print(' '.join(importlib.machinery.EXTENSION_SUFFIXES))";

/// Describes the interpreter at `executable`: from the on-disk cache when the executable, its
/// libpython, its sysconfigdata (and a venv's `pyvenv.cfg`) are the files described before (same
/// path, size, modification time, device and inode), else by running it ([`describe_uncached`])
/// and storing the result. A cache that cannot be read or written is passed over silently.
pub fn describe(executable: &Path) -> Result<Interpreter, DescribeError> {
    if let Some(cached) = cache::load(executable) {
        return Ok(cached);
    }
    let interp = describe_uncached(executable)?;
    cache::store(&interp);
    Ok(interp)
}

/// Describes the interpreter at `executable` by running it (with `-I -B`: isolated, and writing no
/// bytecode anywhere, so describing never changes an installation) and pyo3-build-config.
pub fn describe_uncached(executable: &Path) -> Result<Interpreter, DescribeError> {
    let err = |what: String| DescribeError(format!("{}: {what}", executable.display()));
    let out = Command::new(executable)
        .args(["-I", "-B", "-c", FIND_SYSCONFIGDATA])
        .output()
        .map_err(|e| err(format!("cannot run it: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "could not locate its sysconfigdata ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    let [path, purelib, platlib, suffixes] = lines[..] else {
        return Err(err(format!("expected 4 lines from its sysconfig query, found {:?}", stdout)));
    };
    let path = path.to_owned();
    let mut site_packages = vec![PathBuf::from(purelib)];
    if platlib != purelib {
        site_packages.push(PathBuf::from(platlib));
    }
    let extension_suffixes: Vec<String> = suffixes.split_whitespace().map(str::to_owned).collect();
    let data = without_stdout(|| pyo3_build_config::parse_sysconfigdata(&path))
        .map_err(|e| err(format!("cannot parse {path}: {e}")))?;
    let config = InterpreterConfig::from_sysconfigdata(&data)
        .map_err(|e| err(format!("pyo3-build-config rejected {path}: {e}")))?;
    let var = |k: &str| data.get_value(k).map(str::to_owned).ok_or_else(|| err(format!("{path} has no {k}")));
    let v = config.version();
    let free_threaded = config.is_free_threaded();
    let gil_disabled_var = data.get_value("Py_GIL_DISABLED") == Some("1");
    if free_threaded != gil_disabled_var {
        return Err(err(format!(
            "pyo3-build-config says free-threaded={free_threaded} but {path} has Py_GIL_DISABLED={}",
            data.get_value("Py_GIL_DISABLED").unwrap_or("(unset)")
        )));
    }
    let exports_file = exports_file(executable, |k| data.get_value(k));
    Ok(Interpreter {
        symbols: Symbols::file(&exports_file),
        exports_file,
        site_packages,
        extension_suffixes,
        executable: executable.to_owned(),
        sysconfigdata: PathBuf::from(&path),
        version: (v.major, v.minor),
        free_threaded,
        ext_suffix: var("EXT_SUFFIX")?,
        include_dir: PathBuf::from(var("INCLUDEPY")?),
        lib_dynload: PathBuf::from(var("DESTSHARED")?),
    })
}

/// libpython for a shared build (`Py_ENABLE_SHARED=1`: `LIBDIR/INSTSONAME`, else
/// `LIBDIR/LDLIBRARY`), when that file exists; otherwise the executable (a static build exports
/// its C API from the executable).
fn exports_file<'a>(executable: &Path, get: impl Fn(&str) -> Option<&'a str>) -> PathBuf {
    if get("Py_ENABLE_SHARED") == Some("1")
        && let Some(dir) = get("LIBDIR")
    {
        for key in ["INSTSONAME", "LDLIBRARY"] {
            let lib = get(key).map(|name| Path::new(dir).join(name));
            if let Some(lib) = lib.filter(|lib| lib.is_file()) {
                return lib;
            }
        }
    }
    executable.to_owned()
}

/// Runs `f` with file descriptor 1 pointed at /dev/null.
///
/// pyo3-build-config is written for build scripts: `parse_sysconfigdata` prints
/// `cargo:rerun-if-env-changed=…` directives to stdout, which would corrupt a tool's output.
/// Calls are serialised so two describes cannot interleave their redirections.
fn without_stdout<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = std::io::stdout().flush();
    // SAFETY: plain POSIX fd calls on fds this function owns (saved, null) or on fd 1, which is
    // restored below before returning; a failure leaves stdout as it was.
    let saved = unsafe { libc::dup(1) };
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null");
    let redirected = match (&null, saved >= 0) {
        // SAFETY: both fds are open.
        (Ok(null), true) => unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(null), 1) >= 0 },
        _ => false,
    };
    let out = f();
    let _ = std::io::stdout().flush();
    if redirected {
        // SAFETY: `saved` is the original fd 1, still open.
        unsafe { libc::dup2(saved, 1) };
    }
    if saved >= 0 {
        // SAFETY: `saved` is owned here and not used again.
        unsafe { libc::close(saved) };
    }
    out
}
