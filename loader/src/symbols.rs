//! What the target interpreter exports: the other half of "every undefined `Py*`/`_Py*` symbol of
//! the module resolves". For the running process the global symbol scope is asked (`dlsym`, which
//! runs no code from the module: the module is not loaded); for an interpreter described from its
//! executable, the dynamic exports of its libpython (or of its executable, for a static build) are
//! read with the same ELF reader as modules, once, on first use.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ftshim_boundary::process::in_global_scope;

/// A symbol every CPython exports; its absence means the source is not a CPython at all.
const SENTINEL: &str = "Py_Initialize";

/// Where the target's exported C API is looked up.
#[derive(Clone, Default)]
pub enum Symbols {
    /// Unknown: the undefined-symbol check is reported as inconclusive.
    #[default]
    Unknown,
    /// Unknown for a stated reason (a target named by version, with no interpreter to read the
    /// exports of): the undefined-symbol check is inconclusive, and the note gives the reason.
    Unavailable(String),
    /// The running process's global symbol scope (`dlsym(RTLD_DEFAULT, …)`).
    Process,
    /// The dynamic exports of a file: libpython for a shared build, else the executable.
    File(Arc<ExportFile>),
}

/// The exports of one file, read on first use and cached.
pub struct ExportFile {
    path: PathBuf,
    exports: OnceLock<Result<HashSet<String>, String>>,
}

impl ExportFile {
    /// The file whose exports are used.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The exports of `path` (libpython or an interpreter executable), read on first use.
    pub fn new(path: impl Into<PathBuf>) -> Arc<ExportFile> {
        Arc::new(ExportFile { path: path.into(), exports: OnceLock::new() })
    }

    /// Reads the exports now (once); `Err` says why they cannot be had.
    pub fn check(&self) -> Result<(), String> {
        self.exports().map(|_| ())
    }

    fn exports(&self) -> Result<&HashSet<String>, String> {
        self.exports
            .get_or_init(|| {
                let shown = self.path.display();
                let cannot = |p: crate::Refusal| {
                    format!("cannot read the target's exports from {shown}: {}", p.message)
                };
                let source = super::file::open(&self.path).map_err(cannot)?;
                let names = super::elf::exports_of(&source);
                source.settle().map_err(cannot)?;
                let names =
                    names.map_err(|why| format!("cannot read the target's exports from {shown}: {why}"))?;
                let set: HashSet<String> = names.into_iter().collect();
                if !set.contains(SENTINEL) {
                    return Err(format!("{shown} exports no CPython C API (no {SENTINEL})"));
                }
                Ok(set)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Symbols {
    /// The exports of `path` (libpython or an interpreter executable), read on first use.
    pub fn file(path: impl Into<PathBuf>) -> Symbols {
        Symbols::File(ExportFile::new(path))
    }

    /// Which of `names` the target does not export, in order; `Err` says why the target's
    /// exports cannot be known (then nothing was checked).
    pub fn missing<'a>(&self, names: &'a [String]) -> Result<Vec<&'a str>, String> {
        match self {
            Symbols::Unknown => Err("the target interpreter's exports are unknown".to_owned()),
            Symbols::Unavailable(why) => Err(why.clone()),
            Symbols::Process => {
                if !in_global_scope(SENTINEL) {
                    return Err(format!(
                        "the running process has no CPython in its global symbol scope (no {SENTINEL})"
                    ));
                }
                Ok(names.iter().map(String::as_str).filter(|n| !in_global_scope(n)).collect())
            }
            Symbols::File(file) => {
                let set = file.exports()?;
                Ok(names.iter().map(String::as_str).filter(|n| !set.contains(*n)).collect())
            }
        }
    }
}

impl fmt::Display for Symbols {
    /// Where the symbols come from, as used in messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Symbols::Unknown | Symbols::Unavailable(_) => f.write_str("an unknown interpreter"),
            Symbols::Process => f.write_str("the running process"),
            Symbols::File(file) => write!(f, "{}", file.path.display()),
        }
    }
}

impl fmt::Debug for Symbols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Symbols::Unknown => f.write_str("Unknown"),
            Symbols::Unavailable(why) => f.debug_tuple("Unavailable").field(why).finish(),
            Symbols::Process => f.write_str("Process"),
            Symbols::File(file) => f.debug_tuple("File").field(&file.path).finish(),
        }
    }
}

impl PartialEq for Symbols {
    fn eq(&self, other: &Symbols) -> bool {
        match (self, other) {
            (Symbols::Unknown, Symbols::Unknown) | (Symbols::Process, Symbols::Process) => true,
            (Symbols::File(a), Symbols::File(b)) => a.path == b.path,
            (Symbols::Unavailable(a), Symbols::Unavailable(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Symbols {}
