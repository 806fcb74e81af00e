//! Opening an accepted module: [`open`] opens the file once, inspects it through that descriptor
//! and loads it through the same descriptor (`dlopen("/proc/self/fd/N")`), so what was inspected
//! is what is loaded; [`Module`] keeps its `PyInit_<name>` borrowed from the library.
//!
//! What this guarantees, and what it does not (docs/loader.md, "What open guarantees"):
//!
//! - **The same file.** The path is resolved once, by `open(2)`. The kernel's `/proc/self/fd/N`
//!   link names the open file itself, so replacing or renaming the path (a symbolic link swapped
//!   in a loop, a `rename` over it) after that cannot change what is loaded.
//! - **The same bytes.** The file's stamp (size, mtime, ctime, device, inode) is taken when it is
//!   opened and compared when inspection ends, just before `dlopen` and after `dlopen` returns;
//!   a difference is `file-changed` and no module is handed out. A change seen only after
//!   `dlopen` means the library's constructors have already run (it stays loaded, as every library
//!   opened here is `RTLD_NODELETE`). How far timestamps see a rewrite is said in
//!   [`file`](crate::file).
//! - **Names.** The dynamic linker matches a `dlopen` name against the names of objects already
//!   loaded before it looks at any file, so a descriptor whose `/proc/self/fd/N` name it recorded
//!   must never be closed, or the next file opened as descriptor `N` would be taken for the old
//!   module. Each module file opened here keeps one descriptor for the life of the process, in a
//!   table keyed by device and inode; opening the same file again reuses it (and refuses, as
//!   `file-changed`, a file changed since it was loaded, since the dynamic linker would hand back
//!   the copy loaded then). `dladdr` and `dl_iterate_phdr` report the module as `/proc/self/fd/N`,
//!   which names the file within this process only.
//! - **`$ORIGIN`.** The dynamic linker takes `$ORIGIN` from the name given to `dlopen`, here
//!   `/proc/self/fd`; the libraries the module finds through its own `$ORIGIN` are found first as
//!   `dlopen(path)` would find them and loaded by their absolute paths
//!   ([`linkage::origin_preloads`]). Libraries are always loaded by path, as the dynamic linker
//!   loads them: the guarantee is about the module file.
//! - **`/proc`.** Without a mounted `/proc`, `open` refuses (`dlopen-failed`, saying so); it never
//!   falls back to the path.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::code::{Code, Refusal};
use crate::elf::Dynamic;
use crate::file::{self, Stamp};
use crate::inspect::{inspect_source, unreadable_report};
use crate::linkage;
use crate::report::{Entry, Report, Verdict};
use crate::target::Target;

/// A module accepted by the loader and opened. The init function borrows from the library, so
/// it cannot outlive it.
pub struct Module {
    lib: libloading::Library,
    init_name: String,
    /// The inspection that accepted it.
    pub report: Report,
}

/// `PyObject *PyInit_<name>(void)`.
pub type InitFn = unsafe extern "C" fn() -> *mut PyObject;

/// CPython's `PyObject` (`struct _object`), opaque: the loader only passes pointers to it along.
#[repr(C)]
pub struct PyObject {
    _opaque: [u8; 0],
}

impl Module {
    /// The module's `PyInit_<name>`, borrowed from the opened library.
    pub fn init(&self) -> libloading::Symbol<'_, InitFn> {
        let name = format!("{}\0", self.init_name);
        // SAFETY: `open` resolved this very symbol before handing out the Module, and the library
        // (opened NODELETE) cannot lose it; CPython declares every PyInit_* as `PyObject *(void)`.
        unsafe { self.lib.get::<InitFn>(name.as_bytes()) }
            .expect("PyInit_ symbol vanished between open and init")
    }
}

/// Why [`open`] did not hand back a module. Each variant carries the inspection report.
#[derive(Debug)]
pub enum OpenError {
    /// The file's bytes could not be had ([`Report::io_failed`]); nothing was loaded.
    Io(Box<Report>),
    /// The inspection refused it, it changed (`file-changed`), or it cannot be opened through
    /// its descriptor (`dlopen-failed`, e.g. no `/proc`). Nothing was loaded, except after a
    /// `file-changed` seen only once `dlopen` had returned (the refusal says so).
    Refused(Box<Report>),
    /// `dlopen` or `dlsym` failed after the file was accepted.
    Dl {
        /// The inspection that accepted the file, with the failure added as its one refusal
        /// ([`Code::DlopenFailed`], worded with what the dynamic loader said), so its verdict is
        /// [`Verdict::DlopenFailed`].
        report: Box<Report>,
        /// What the dynamic loader said.
        error: libloading::Error,
    },
}

impl OpenError {
    /// The inspection report.
    pub fn report(&self) -> &Report {
        match self {
            OpenError::Io(r) | OpenError::Refused(r) | OpenError::Dl { report: r, .. } => r,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(r) | OpenError::Refused(r) => write!(f, "refused: {}", r.messages().join("; ")),
            // The report of an accepted file: its one refusal is the dlopen failure.
            OpenError::Dl { report, .. } => f.write_str(&report.messages().join("; ")),
        }
    }
}

impl std::error::Error for OpenError {}

/// What the dynamic loader said: `dlerror()`'s text when libloading kept it, else its summary.
pub fn dl_text(error: &libloading::Error) -> String {
    use std::error::Error as _;
    error.source().map_or_else(|| error.to_string(), |s| s.to_string())
}

/// Opens the file at `path` once, inspects it through that descriptor and, only if it is
/// accepted, loads it through the same descriptor with `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE`
/// (see the module documentation for what that guarantees). The library stays mapped after the
/// [`Module`] is dropped, as CPython never unloads an extension module: objects its init function
/// created would otherwise point into unmapped code.
///
/// # Safety
/// Opening a library runs its initialisers (and those of the libraries it needs). Inspection
/// rules out the ABI mismatches in docs/loader.md, not arbitrary code in a constructor: only open
/// files you trust to that extent.
pub unsafe fn open(path: &Path, target: &Target) -> Result<Module, OpenError> {
    let source = match file::open(path) {
        Ok(source) => source,
        Err(unreadable) => return Err(OpenError::Io(Box::new(unreadable_report(path, target, unreadable)))),
    };
    let mut report = inspect_source(path, &source, target);
    match report.verdict() {
        Verdict::Accepted => {}
        Verdict::IoFailed => return Err(OpenError::Io(Box::new(report))),
        Verdict::Refused | Verdict::DlopenFailed => return Err(OpenError::Refused(Box::new(report))),
    }
    if let Some(Entry::Export(export)) = &report.entry {
        // Decided before dlopen: no constructor of a module this loader cannot hand out runs.
        let message = format!(
            "accepted, but not opened: its entry point is '{export}' (PEP 793, returns PySlot *), and the loader hands out PyInit_<name> functions only"
        );
        report.refusals.push(Refusal::new(Code::DlopenFailed, message));
        return Err(OpenError::Refused(Box::new(report)));
    }
    // Accepted: `settle` found the file as it was opened, so this stamp is the inspected file's.
    let stamp = source.stamp().clone();
    let dynamic = report.evidence.as_ref().map(|ev| ev.dynamic.clone()).unwrap_or_default();
    // SAFETY: the caller accepts running the library's initialisers (see above).
    let loaded = unsafe { load(path, source.into_file(), &stamp, &dynamic) };
    let lib = match loaded {
        Ok(lib) => lib,
        Err(Failure::Refused(refusal)) => {
            report.refusals.push(refusal);
            return Err(OpenError::Refused(Box::new(report)));
        }
        Err(Failure::Dl(error, fd_name)) => {
            return Err(dl_failed(report, error, fd_name.as_deref().map(|n| (n, path))));
        }
    };
    let init_name = crate::names::entry_symbols(&report.module).init;
    let name = format!("{init_name}\0");
    // SAFETY: presence check only; the type is the one `init` uses.
    if let Err(error) = unsafe { lib.get::<InitFn>(name.as_bytes()) } {
        return Err(dl_failed(report, error, None));
    }
    Ok(Module { lib, init_name, report })
}

/// The error for an accepted file that `dlopen` or `dlsym` then failed on: the failure becomes the
/// report's refusal, so the report's verdict says what happened. `named` is the module's
/// `/proc/self/fd/N` name and its path: `dlerror()` names the module by the former, the refusal
/// by the latter (the descriptor is closed by then).
fn dl_failed(mut report: Report, error: libloading::Error, named: Option<(&Path, &Path)>) -> OpenError {
    let mut text = dl_text(&error);
    if let Some((fd_name, path)) = named {
        let (from, to) = (format!("{}: ", fd_name.display()), format!("{}: ", path.display()));
        if text.starts_with(&from) {
            text.replace_range(..from.len(), &to);
        }
    }
    report.refusals.push(Refusal::new(Code::DlopenFailed, format!("accepted, but dlopen failed: {text}")));
    OpenError::Dl { report: Box::new(report), error }
}

/// Why [`load`] handed back no library.
enum Failure {
    /// A refusal for the report (`file-changed`, or `dlopen-failed` decided without dlopen).
    Refused(Refusal),
    /// What `dlopen` said, and the `/proc/self/fd/N` name it was given when that was the
    /// module's.
    Dl(libloading::Error, Option<PathBuf>),
}

/// A module file loaded through its descriptor: the descriptor, kept open for the life of the
/// process (its `/proc/self/fd/N` name is the module's name in the dynamic linker), the stamp it
/// was loaded with, and the handle `dlopen` returned.
struct Kept {
    file: File,
    stamp: Stamp,
    handle: usize,
    /// Descriptors of the same file that concurrent opens also passed to `dlopen`: their names
    /// are recorded as well, so they are kept too.
    more: Vec<File>,
}

/// Every module file loaded by [`open`] in this process, by `(st_dev, st_ino)`.
static KEPT: Mutex<BTreeMap<(u64, u64), Kept>> = Mutex::new(BTreeMap::new());

/// The name under which the dynamic linker opens the file behind `fd`.
fn fd_name(fd: i32) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// The `file-changed` refusal for a file inspected as `then` and found as `found` `when`.
fn changed_as(when: &str, then: &Stamp, found: &str, after: &str) -> Refusal {
    Refusal::new(
        Code::FileChanged,
        format!(
            "the file changed {when}: expected it as it was inspected ({}), found {found}{after}",
            then.describe()
        ),
    )
}

/// The `file-changed` refusal for a file whose stamp is now `now` (`None`: unchanged).
fn changed(when: &str, then: &Stamp, now: &Stamp, after: &str) -> Option<Refusal> {
    then.differences(now).map(|found| changed_as(when, then, &found, after))
}

/// `fstat` of the open file compared with the inspected `stamp`.
fn check(file: &File, stamp: &Stamp, when: &str, after: &str) -> Result<(), Failure> {
    let now = file::stamp_of(file)
        .map_err(|e| Failure::Refused(changed_as(when, stamp, &format!("that fstat fails: {e}"), after)))?;
    changed(when, stamp, &now, after).map_or(Ok(()), |r| Err(Failure::Refused(r)))
}

/// A refusal of an accepted module that is not opened, decided without `dlopen`.
fn not_opened(why: String) -> Failure {
    Failure::Refused(Refusal::new(Code::DlopenFailed, format!("accepted, but not opened: {why}")))
}

/// True when the process has a library loaded under `name` (or its `DT_SONAME`).
fn is_loaded(name: &str) -> bool {
    let Ok(c) = CString::new(name) else { return false };
    // SAFETY: RTLD_NOLOAD never loads anything, so no initialiser runs; a handle it returns holds
    // one more reference, released at once.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
    if handle.is_null() {
        return false;
    }
    // SAFETY: a handle dlopen just returned, released once.
    unsafe { libc::dlclose(handle) };
    true
}

/// `dlopen(name, flags)`.
///
/// # Safety
/// Runs the initialisers of what it loads.
unsafe fn dlopen(name: &Path, flags: i32) -> Result<libloading::Library, Failure> {
    // SAFETY: the caller's contract.
    unsafe { libloading::os::unix::Library::open(Some(name), flags) }
        .map(libloading::Library::from)
        .map_err(|e| Failure::Dl(e, None))
}

/// Loads the inspected file open as `file` (whose stamp at the end of inspection is `stamp`, and
/// whose dynamic section is `dynamic`) through its descriptor; `path` is the name it was opened by,
/// for `$ORIGIN`.
///
/// # Safety
/// Runs the initialisers of the module and of the libraries it needs.
unsafe fn load(
    path: &Path,
    file: File,
    stamp: &Stamp,
    dynamic: &Dynamic,
) -> Result<libloading::Library, Failure> {
    let key = (stamp.dev, stamp.ino);
    let earlier = {
        let kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(&key).map(|k| (k.stamp.clone(), k.file.as_raw_fd()))
    };
    if let Some((then, fd)) = earlier {
        if let Some(found) = then.differences(stamp) {
            return Err(Failure::Refused(Refusal::new(
                Code::FileChanged,
                format!(
                    "the file changed since the loader opened it before in this process: expected it as it was then ({}), found {found}; the dynamic linker would hand back the copy loaded then, not the file inspected",
                    then.describe()
                ),
            )));
        }
        // Loaded before, unchanged: the kept descriptor's name is the module's, and the dynamic
        // linker hands back the object it names. This descriptor is closed again.
        // SAFETY: the module is loaded already: no initialiser runs again.
        return unsafe { dlopen(&fd_name(fd), libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE) };
    }

    let name = fd_name(file.as_raw_fd());
    match std::fs::metadata(&name) {
        Ok(m) if (m.dev(), m.ino()) == key => {}
        Ok(m) => {
            return Err(not_opened(format!(
                "the loader opens a module through its descriptor, and {} names device {} inode {}, not the inspected file (device {} inode {}); it does not fall back to the path",
                name.display(),
                m.dev(),
                m.ino(),
                key.0,
                key.1
            )));
        }
        Err(e) => {
            return Err(not_opened(format!(
                "the loader opens a module through its descriptor, and {} cannot be used ({e}): is /proc mounted? It does not fall back to the path",
                name.display()
            )));
        }
    }
    let preloads = linkage::origin_preloads(path, dynamic, &mut is_loaded)
        .map_err(|why| not_opened(format!("it cannot be opened through its descriptor: {why}")))?;
    let mut libraries = Vec::with_capacity(preloads.len());
    for library in &preloads {
        // SAFETY: the caller's contract covers the libraries the module needs.
        libraries.push(unsafe { dlopen(library, libc::RTLD_NOW | libc::RTLD_LOCAL) }?);
    }
    check(&file, stamp, "after it was inspected, before dlopen", "")?;
    // SAFETY: the caller's contract.
    let lib = unsafe { dlopen(&name, libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE) }.map_err(
        |f| match f {
            Failure::Dl(e, _) => Failure::Dl(e, Some(name.clone())),
            other => other,
        },
    )?;
    // The module holds its own references to the libraries it needs.
    drop(libraries);
    let after = check(
        &file,
        stamp,
        "while dlopen loaded it",
        "; its constructors have run and it stays loaded, but it is not handed out",
    );
    let lib = libloading::os::unix::Library::from(lib);
    let handle = lib.into_raw();
    let lib = {
        let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = kept.iter().find(|(k, v)| **k != key && v.handle == handle as usize).map(|(k, _)| *k);
        if let Some(other) = taken {
            // SAFETY: the handle dlopen returned above, released once.
            drop(unsafe { libloading::os::unix::Library::from_raw(handle) });
            return Err(not_opened(format!(
                "dlopen({}) returned the module loaded before from device {} inode {}: the descriptor the loader keeps for that module was closed by other code, and its name reused",
                name.display(),
                other.0,
                other.1
            )));
        }
        // The name is now the module's in the dynamic linker: the descriptor stays open.
        match kept.entry(key) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Kept { file, stamp: stamp.clone(), handle: handle as usize, more: Vec::new() });
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().more.push(file),
        }
        // SAFETY: the handle dlopen returned above.
        unsafe { libloading::os::unix::Library::from_raw(handle) }
    };
    after?;
    Ok(libloading::Library::from(lib))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_names_what_changed() {
        let then = Stamp { dev: 1, ino: 2, size: 3, mtime: (4, 5), ctime: (6, 7) };
        assert!(changed("before dlopen", &then, &then.clone(), "").is_none());
        let now = Stamp { size: 9, ctime: (6, 8), ..then.clone() };
        let refusal = changed("while dlopen loaded it", &then, &now, "; x").unwrap();
        assert_eq!(refusal.code, Code::FileChanged);
        assert_eq!(
            refusal.message,
            "the file changed while dlopen loaded it: expected it as it was inspected (size 3 bytes, mtime 4.000000005, ctime 6.000000007), found size 9 bytes, ctime 6.000000008; x"
        );
    }
}
