//! The loader: checks a native module against a target interpreter **before** any of its code
//! runs, then opens it with `RTLD_NOW | RTLD_LOCAL`.
//!
//! `dlopen` runs a library's constructors, so everything that can be decided from the file is
//! decided from the file: its name's ABI tag and the evidence in its ELF dynamic symbols. Only
//! then is it opened, with `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE`.
//! See docs/loader.md for every check and code.

#[cfg(feature = "describe")]
pub mod describe;
mod elf;

use std::fmt;
use std::path::{Path, PathBuf};

pub use elf::{Evidence, FT_MARKERS, GIL_MARKERS};

/// The interpreter a module is checked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `(major, minor)`, e.g. `(3, 13)`.
    pub version: (u8, u8),
    /// Built with `Py_GIL_DISABLED` (free-threaded).
    pub free_threaded: bool,
    /// The interpreter's own `EXT_SUFFIX`, e.g. `.cpython-313t-x86_64-linux-gnu.so`.
    pub ext_suffix: String,
}

/// Why a module is refused. The `code` strings are stable: scripts may match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The file name does not end with the target's exact `EXT_SUFFIX`.
    SuffixMismatch,
    /// The file is not an ELF shared object this machine can load.
    NotElf,
    /// The undefined symbols show a GIL (non-free-threaded) build loaded into an FT interpreter.
    GilBuild,
    /// The undefined symbols show a free-threaded build loaded into a GIL interpreter.
    FtBuild,
    /// No `PyInit_<name>` matching the file name is exported.
    NoInit,
}

impl Code {
    /// The stable machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::SuffixMismatch => "suffix-mismatch",
            Code::NotElf => "not-elf",
            Code::GilBuild => "gil-build",
            Code::FtBuild => "ft-build",
            Code::NoInit => "no-init",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason for refusing a file: a code and a sentence naming the file, rule, expected and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: Code,
    /// Human-readable: names the file, the rule, the expected and the found value.
    pub message: String,
}

/// The result of inspecting one file.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file inspected.
    pub path: PathBuf,
    /// Module name taken from the file name (text before the first dot).
    pub module: String,
    /// Every reason to refuse; empty means accepted.
    pub refusals: Vec<Refusal>,
    /// What the file's symbols say about its build (when it parsed as ELF).
    pub evidence: Option<Evidence>,
    /// What static evidence could not decide.
    pub inconclusive: Vec<String>,
}

impl Report {
    /// True when nothing refuses the file.
    pub fn accepted(&self) -> bool {
        self.refusals.is_empty()
    }

    /// Codes of all refusals, in order.
    pub fn codes(&self) -> Vec<Code> {
        self.refusals.iter().map(|r| r.code).collect()
    }
}

/// The file could not be read at all (distinct from a refusal of its contents).
#[derive(Debug)]
pub struct IoError {
    /// The path given.
    pub path: PathBuf,
    /// What the OS said.
    pub source: std::io::Error,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot read: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for IoError {}

/// The module name CPython derives from a file name: the text before the first `.`.
pub fn module_name(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    file.split('.').next().unwrap_or_default().to_owned()
}

/// Inspects `path` for `target` without running any of its code.
pub fn inspect(path: &Path, target: &Target) -> Result<Report, IoError> {
    let data = std::fs::read(path).map_err(|source| IoError { path: path.to_owned(), source })?;
    Ok(inspect_bytes(path, &data, target))
}

/// [`inspect`] on bytes already read; `path` is used for the name checks and messages.
pub fn inspect_bytes(path: &Path, data: &[u8], target: &Target) -> Report {
    let shown = path.display();
    let module = module_name(path);
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut refusals = Vec::new();
    let mut inconclusive = Vec::new();

    if !file_name.ends_with(&target.ext_suffix) || file_name.len() == target.ext_suffix.len() {
        let found = file_name.find('.').map_or("(none)", |i| &file_name[i..]);
        refusals.push(Refusal {
            code: Code::SuffixMismatch,
            message: format!(
                "{shown}: file name must end with the target interpreter's EXT_SUFFIX: expected '{}', found '{found}'",
                target.ext_suffix
            ),
        });
    }

    let evidence = match elf::Evidence::read(data) {
        Ok(ev) => Some(ev),
        Err(why) => {
            refusals.push(Refusal {
                code: Code::NotElf,
                message: format!("{shown}: not a loadable ELF shared object: {why}"),
            });
            None
        }
    };

    if let Some(ev) = &evidence {
        let init = format!("PyInit_{module}");
        if !ev.exports.contains(&init) {
            let found: Vec<&str> =
                ev.exports.iter().filter(|s| s.starts_with("PyInit_")).map(String::as_str).collect();
            refusals.push(Refusal {
                code: Code::NoInit,
                message: format!(
                    "{shown}: must export the init function named after the file: expected '{init}', found {}",
                    if found.is_empty() { "no PyInit_* export".to_owned() } else { format!("'{}'", found.join("', '")) }
                ),
            });
        }
        match (target.free_threaded, ev.ft_markers.is_empty(), ev.gil_markers.is_empty()) {
            (true, true, false) => refusals.push(Refusal {
                code: Code::GilBuild,
                message: format!(
                    "{shown}: built for a GIL interpreter, target is free-threaded {}.{}: expected a free-threaded build (undefined symbols such as {}), found GIL-only references ({}) and none of those",
                    target.version.0,
                    target.version.1,
                    FT_MARKERS.join(", "),
                    ev.gil_markers.join(", ")
                ),
            }),
            (false, false, _) => refusals.push(Refusal {
                code: Code::FtBuild,
                message: format!(
                    "{shown}: built for a free-threaded interpreter, target is GIL {}.{}: expected no free-threaded symbols, found {}",
                    target.version.0,
                    target.version.1,
                    ev.ft_markers.join(", ")
                ),
            }),
            (_, true, true) => inconclusive.push(format!(
                "{shown}: no refcounting symbols that tell a free-threaded from a GIL build (limited API or no Py_DECREF)"
            )),
            _ => {}
        }
    }

    Report { path: path.to_owned(), module, refusals, evidence, inconclusive }
}

/// A module accepted by the loader and opened. The init function borrows from the library, so
/// it cannot outlive it.
pub struct Module {
    lib: libloading::os::unix::Library,
    init_name: String,
    /// The inspection that accepted it.
    pub report: Report,
}

/// `PyObject *PyInit_<name>(void)`.
pub type InitFn = unsafe extern "C" fn() -> *mut crate::runtime::PyObject;

impl Module {
    /// The module's `PyInit_<name>`, borrowed from the opened library.
    pub fn init(&self) -> libloading::os::unix::Symbol<InitFn> {
        let name = format!("{}\0", self.init_name);
        // SAFETY: inspection proved the symbol is exported; CPython declares every PyInit_* as
        // `PyObject *(void)`.
        unsafe { self.lib.get::<InitFn>(name.as_bytes()) }
            .expect("PyInit_ symbol vanished between inspection and dlsym")
    }
}

/// Why [`open`] did not hand back a module.
#[derive(Debug)]
pub enum OpenError {
    /// The file could not be read.
    Io(IoError),
    /// The inspection refused it; nothing was loaded.
    Refused(Box<Report>),
    /// `dlopen` or `dlsym` failed after the file was accepted.
    Dl(libloading::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(e) => e.fmt(f),
            OpenError::Refused(r) => {
                let msgs: Vec<&str> = r.refusals.iter().map(|x| x.message.as_str()).collect();
                write!(f, "refused: {}", msgs.join("; "))
            }
            OpenError::Dl(e) => write!(f, "dlopen failed: {e}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Inspects `path` and, only if it is accepted, opens it with `RTLD_NOW | RTLD_LOCAL |
/// RTLD_NODELETE`. The library stays mapped after the [`Module`] is dropped, as CPython never
/// unloads an extension module: objects its init function created would otherwise point into
/// unmapped code.
///
/// # Safety
/// Opening a library runs its initialisers. Inspection rules out the ABI mismatches in
/// docs/loader.md, not arbitrary code in a constructor: only open files you trust to that extent.
pub unsafe fn open(path: &Path, target: &Target) -> Result<Module, OpenError> {
    let report = inspect(path, target).map_err(OpenError::Io)?;
    if !report.accepted() {
        return Err(OpenError::Refused(Box::new(report)));
    }
    // SAFETY: the caller accepts running the library's initialisers (see above).
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE,
        )
    }
    .map_err(OpenError::Dl)?;
    let init_name = format!("PyInit_{}", report.module);
    let module = Module { lib, init_name, report };
    let name = format!("{}\0", module.init_name);
    // SAFETY: presence check only; the type is the one `init` uses.
    unsafe { module.lib.get::<InitFn>(name.as_bytes()) }.map_err(OpenError::Dl)?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FT_SUFFIX: &str = ".cpython-313t-x86_64-linux-gnu.so";

    fn ft_target() -> Target {
        Target { version: (3, 13), free_threaded: true, ext_suffix: FT_SUFFIX.to_owned() }
    }

    /// The running test executable: a real ELF of this machine (PIE, so ET_DYN), with no
    /// PyInit_ export and no refcounting markers.
    fn real_elf() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn abi3_and_bare_so_names_are_refused_on_the_free_threaded_target() {
        let data = real_elf();
        for (name, found) in
            [("m.abi3.so", ".abi3.so"), ("m.so", ".so"), ("m", "(none)"), (FT_SUFFIX, FT_SUFFIX)]
        {
            let report = inspect_bytes(Path::new(name), &data, &ft_target());
            assert_eq!(report.refusals[0].code, Code::SuffixMismatch, "{name}");
            let expected = format!(
                "{name}: file name must end with the target interpreter's EXT_SUFFIX: expected '{FT_SUFFIX}', found '{found}'"
            );
            assert_eq!(report.refusals[0].message, expected);
        }
    }

    #[test]
    fn a_file_without_its_init_function_is_refused_and_the_build_is_inconclusive() {
        let path = PathBuf::from(format!("/x/mod{FT_SUFFIX}"));
        let report = inspect_bytes(&path, &real_elf(), &ft_target());
        assert_eq!(report.codes(), vec![Code::NoInit]);
        assert_eq!(
            report.refusals[0].message,
            format!(
                "/x/mod{FT_SUFFIX}: must export the init function named after the file: expected 'PyInit_mod', found no PyInit_* export"
            )
        );
        assert_eq!(report.module, "mod");
        assert_eq!(report.inconclusive.len(), 1, "{:?}", report.inconclusive);
    }

    #[test]
    fn empty_and_non_elf_files_are_refused_with_every_problem_listed() {
        let report = inspect_bytes(Path::new("e.so"), b"", &ft_target());
        assert_eq!(report.codes(), vec![Code::SuffixMismatch, Code::NotElf]);
        assert_eq!(
            report.refusals[1].message,
            "e.so: not a loadable ELF shared object: expected the ELF magic 7f 45 4c 46, found an empty file"
        );
        assert!(!report.accepted());
    }
}
