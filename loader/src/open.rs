//! Opening an accepted module: [`open`] inspects, checks the path still names the inspected
//! file, and only then `dlopen`s it; [`Module`] keeps its `PyInit_<name>` borrowed from the
//! library.

use std::fmt;
use std::path::Path;

use crate::code::{Code, Refusal};
use crate::file;
use crate::inspect::inspect;
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
    /// The inspection refused it (or it changed before `dlopen`); nothing was loaded.
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

/// The refusal pushed when the path names another file than the one inspected.
fn changed(report: &Report, now: std::io::Result<(u64, u64)>) -> Option<Refusal> {
    let then = report.identity?;
    let found = match now {
        Ok(now) if now == then => return None,
        Ok((dev, ino)) => format!("device {dev} inode {ino}"),
        Err(e) => format!("no file ({e})"),
    };
    Some(Refusal::new(
        Code::FileChanged,
        format!(
            "the file changed between inspection and dlopen: expected device {} inode {}, found {found}",
            then.0, then.1
        ),
    ))
}

/// Inspects `path` and, only if it is accepted, opens it with `RTLD_NOW | RTLD_LOCAL |
/// RTLD_NODELETE`. The library stays mapped after the [`Module`] is dropped, as CPython never
/// unloads an extension module: objects its init function created would otherwise point into
/// unmapped code. Just before `dlopen` the path is checked to still name the inspected file
/// (same device and inode); a replacement in the instant between that check and `dlopen` is not
/// detected (docs/loader.md).
///
/// # Safety
/// Opening a library runs its initialisers. Inspection rules out the ABI mismatches in
/// docs/loader.md, not arbitrary code in a constructor: only open files you trust to that extent.
pub unsafe fn open(path: &Path, target: &Target) -> Result<Module, OpenError> {
    let mut report = inspect(path, target);
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
    if let Some(refusal) = changed(&report, file::identity_now(path)) {
        report.refusals.push(refusal);
        return Err(OpenError::Refused(Box::new(report)));
    }
    // SAFETY: the caller accepts running the library's initialisers (see above).
    let opened = unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE,
        )
    };
    let lib = match opened {
        Ok(lib) => libloading::Library::from(lib),
        Err(error) => return Err(dl_failed(report, error)),
    };
    let init_name = crate::names::entry_symbols(&report.module).init;
    let name = format!("{init_name}\0");
    // SAFETY: presence check only; the type is the one `init` uses.
    if let Err(error) = unsafe { lib.get::<InitFn>(name.as_bytes()) } {
        return Err(dl_failed(report, error));
    }
    Ok(Module { lib, init_name, report })
}

/// The error for an accepted file that `dlopen` or `dlsym` then failed on: the failure becomes the
/// report's refusal, so the report's verdict says what happened.
fn dl_failed(mut report: Report, error: libloading::Error) -> OpenError {
    report
        .refusals
        .push(Refusal::new(Code::DlopenFailed, format!("accepted, but dlopen failed: {}", dl_text(&error))));
    OpenError::Dl { report: Box::new(report), error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_detected_before_dlopen() {
        let mut report = crate::inspect::inspect_bytes(
            Path::new("/x/m.so"),
            b"",
            &Target::new((3, 13), true, ".cpython-313t-x86_64-linux-gnu.so"),
        );
        report.identity = Some((1, 2));
        assert_eq!(changed(&report, Ok((1, 2))), None);
        let refusal = changed(&report, Ok((1, 3))).unwrap();
        assert_eq!(refusal.code, Code::FileChanged);
        assert_eq!(
            report.about(&refusal.message),
            "/x/m.so: the file changed between inspection and dlopen: expected device 1 inode 2, found device 1 inode 3"
        );
    }
}
