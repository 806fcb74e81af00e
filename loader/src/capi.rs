//! The C API of `include/ftshim_loader.h`: inspect and open a module from C.
//!
//! Reasons never go to a global "last error": they go into the caller's
//! `ftshim_loader_report` (its first field is its size, and the struct only grows at the end).
//! The variable-length part (each reason's code and text) is allocated by libftshim_loader, reached
//! through `ftshim_loader_report_reason` / `_inconclusive`, and released by
//! `ftshim_loader_report_clear`.

#![allow(non_camel_case_types)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, c_char, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{Code, ExportFile, InitFn, ProcessTargetError, Refusal, Report, Symbols, Target};
use ftshim_boundary::status::{
    FTSHIM_ERR_INVALID_ARGUMENT, FTSHIM_ERR_NO_RUNTIME, FTSHIM_ERR_NULL_ARGUMENT, FTSHIM_OK, ftshim_status,
};
use ftshim_boundary::{export, try_mut, try_ref};

/// `ftshim_loader_target.flags`: the target is a free-threaded (`Py_GIL_DISABLED`) build.
pub const FTSHIM_LOADER_FREE_THREADED: u32 = 0x1;
/// `ftshim_loader_target.flags`: check undefined `Py*` symbols against this process's globals.
pub const FTSHIM_LOADER_PROCESS_SYMBOLS: u32 = 0x2;
const KNOWN_FLAGS: u32 = FTSHIM_LOADER_FREE_THREADED | FTSHIM_LOADER_PROCESS_SYMBOLS;

/// `ftshim_loader_report.evidence`: the file parsed as ELF and its dynamic symbols were read.
pub const FTSHIM_LOADER_EVIDENCE_ELF: u32 = 0x1;
/// `ftshim_loader_report.evidence`: free-threaded refcounting symbols were found.
pub const FTSHIM_LOADER_EVIDENCE_FT: u32 = 0x2;
/// `ftshim_loader_report.evidence`: GIL-build refcounting symbols were found.
pub const FTSHIM_LOADER_EVIDENCE_GIL: u32 = 0x4;

/// `ftshim_loader_target` in the header (ABI 1.0 layout; only grows at the end).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ftshim_loader_target {
    /// `sizeof(ftshim_loader_target)` as the caller compiled it.
    pub size: usize,
    /// `PY_VERSION_HEX` of the target (major and minor are used).
    pub version_hex: u32,
    /// `FTSHIM_LOADER_*` bits.
    pub flags: u32,
    /// The target's `EXT_SUFFIX`, or NULL to derive it.
    pub ext_suffix: *const c_char,
    /// libpython or executable whose dynamic exports are the target's C API, or NULL.
    pub exports_path: *const c_char,
}

/// `ftshim_loader_report` in the header (ABI 1.0 layout; only grows at the end).
#[repr(C)]
#[derive(Debug)]
pub struct ftshim_loader_report {
    /// `sizeof(ftshim_loader_report)` as the caller compiled it.
    pub size: usize,
    /// The status the call returned.
    pub status: ftshim_status,
    /// Number of reasons (read them with `ftshim_loader_report_reason`).
    pub reason_count: u32,
    /// Number of inconclusive notes (`ftshim_loader_report_inconclusive`).
    pub inconclusive_count: u32,
    /// `FTSHIM_LOADER_EVIDENCE_*` bits.
    pub evidence: u32,
    /// libftshim_loader's allocation holding the texts; released by `ftshim_loader_report_clear`.
    pub _ftshim_private: *mut c_void,
}

/// The texts behind a report.
struct Details {
    reasons: Vec<(&'static CStr, CString)>,
    inconclusive: Vec<CString>,
}

fn c_text(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// A failure that is not an inspection verdict: the status and the one reason explaining it (a
/// sentence about the call's arguments, so no path is put in front of it).
struct Failure {
    status: ftshim_status,
    refusal: Refusal,
}

fn invalid(message: String) -> Failure {
    Failure { status: FTSHIM_ERR_INVALID_ARGUMENT, refusal: Refusal::new(Code::InvalidArgument, message) }
}

fn null(what: &str) -> Failure {
    Failure {
        status: FTSHIM_ERR_NULL_ARGUMENT,
        refusal: Refusal::new(Code::InvalidArgument, format!("{what} is NULL")),
    }
}

/// Export sets of interpreters described by path, read once per process — when they can be read:
/// a path whose exports cannot be read is an error now (not a silently inconclusive check later),
/// and is not kept, so the same path is read again once it is fixed.
fn export_file(path: PathBuf) -> Result<Symbols, String> {
    static CACHE: Mutex<Option<HashMap<PathBuf, Arc<ExportFile>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(file) = map.get(&path) {
        return Ok(Symbols::File(file.clone()));
    }
    let file = ExportFile::new(path.clone());
    file.check()?;
    map.insert(path, file.clone());
    Ok(Symbols::File(file))
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for reads.
unsafe fn c_bytes<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the caller's contract: NULL or a valid C string that outlives the call.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// Builds the Rust target from the C description (NULL: the running process).
///
/// # Safety
/// `ptr` is NULL or points to at least `ptr->size` readable bytes, as the header requires.
unsafe fn target_from(ptr: *const ftshim_loader_target) -> Result<Target, Failure> {
    if ptr.is_null() {
        return Target::running_process().map_err(|e| match e {
            ProcessTargetError::NoRuntime => Failure {
                status: FTSHIM_ERR_NO_RUNTIME,
                refusal: Refusal::new(
                    Code::NoRuntime,
                    format!("target is NULL (the running process), but {e}"),
                ),
            },
            ProcessTargetError::UnknownPlatform => {
                invalid(format!("target is NULL (the running process), but {e}"))
            }
        });
    }
    // SAFETY: non-NULL; every version of the struct starts with its size.
    let size = unsafe { ptr.cast::<usize>().read_unaligned() };
    let v1 = std::mem::size_of::<ftshim_loader_target>();
    if size < v1 {
        return Err(invalid(format!(
            "target->size is {size}, expected at least {v1} (sizeof(ftshim_loader_target) in ABI 1.0)"
        )));
    }
    // SAFETY: the caller's struct has at least `size >= v1` bytes; fields past v1 are not read.
    let t = unsafe { ptr.read_unaligned() };
    if t.flags & !KNOWN_FLAGS != 0 {
        return Err(invalid(format!(
            "target->flags has unknown bits {:#x} (known: FTSHIM_LOADER_FREE_THREADED, FTSHIM_LOADER_PROCESS_SYMBOLS)",
            t.flags & !KNOWN_FLAGS
        )));
    }
    let (major, minor) = ((t.version_hex >> 24) as u8, (t.version_hex >> 16) as u8);
    if major != 3 {
        return Err(invalid(format!(
            "target->version_hex is {:#010x}, expected a CPython 3 PY_VERSION_HEX such as 0x030d00f0",
            t.version_hex
        )));
    }
    let free_threaded = t.flags & FTSHIM_LOADER_FREE_THREADED != 0;
    // SAFETY: the header requires NULL or a valid C string.
    let ext_suffix = match unsafe { c_bytes(t.ext_suffix) } {
        None => super::derive_ext_suffix((major, minor), free_threaded, false).ok_or_else(|| {
            invalid(format!("target->ext_suffix is NULL, but {}", ProcessTargetError::UnknownPlatform))
        })?,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) if s.starts_with('.') && s.len() > 1 => s.to_owned(),
            _ => {
                return Err(invalid(format!(
                    "target->ext_suffix is '{}', expected a UTF-8 suffix starting with '.' such as '.cpython-313t-x86_64-linux-gnu.so'",
                    String::from_utf8_lossy(bytes)
                )));
            }
        },
    };
    // SAFETY: as above.
    let exports = unsafe { c_bytes(t.exports_path) };
    let process = t.flags & FTSHIM_LOADER_PROCESS_SYMBOLS != 0;
    let symbols = match (exports, process) {
        (Some(_), true) => {
            return Err(invalid(
                "target->exports_path is set and FTSHIM_LOADER_PROCESS_SYMBOLS too: give one source of exports"
                    .to_owned(),
            ));
        }
        (Some(path), false) => export_file(PathBuf::from(OsStr::from_bytes(path)))
            .map_err(|why| invalid(format!("target->exports_path is unusable: {why}")))?,
        (None, true) => Symbols::Process,
        (None, false) => Symbols::Unknown,
    };
    Ok(Target { version: (major, minor), free_threaded, ext_suffix, symbols })
}

/// Checks the caller's report struct and empties it. `None`: too small to write into.
fn start(report: &mut ftshim_loader_report) -> Option<()> {
    if report.size < std::mem::size_of::<ftshim_loader_report>() {
        return None;
    }
    reset(report);
    report._ftshim_private = std::ptr::null_mut();
    Some(())
}

/// The empty report's counts and status (the texts are handled by the caller).
fn reset(report: &mut ftshim_loader_report) {
    report.status = FTSHIM_OK;
    report.reason_count = 0;
    report.inconclusive_count = 0;
    report.evidence = 0;
}

fn fill(
    out: &mut ftshim_loader_report,
    status: ftshim_status,
    details: Details,
    evidence: u32,
) -> ftshim_status {
    out.status = status;
    out.reason_count = u32::try_from(details.reasons.len()).unwrap_or(u32::MAX);
    out.inconclusive_count = u32::try_from(details.inconclusive.len()).unwrap_or(u32::MAX);
    out.evidence = evidence;
    out._ftshim_private = Box::into_raw(Box::new(details)).cast();
    status
}

fn fail(out: &mut ftshim_loader_report, f: Failure) -> ftshim_status {
    let details = Details {
        reasons: vec![(f.refusal.code.as_cstr(), c_text(&f.refusal.message))],
        inconclusive: vec![],
    };
    fill(out, f.status, details, 0)
}

/// Fills the caller's report from a Rust one: its verdict's status, every reason and note as users
/// read them, and the evidence bits.
fn fill_from(out: &mut ftshim_loader_report, report: &Report) -> ftshim_status {
    let reasons: Vec<(&'static CStr, CString)> =
        report.refusals.iter().map(|r| (r.code.as_cstr(), c_text(&report.about(&r.message)))).collect();
    let inconclusive = report.notes().iter().map(|s| c_text(s)).collect();
    let evidence = report.evidence.as_ref().map_or(0, |ev| {
        FTSHIM_LOADER_EVIDENCE_ELF
            | if ev.ft_markers.is_empty() { 0 } else { FTSHIM_LOADER_EVIDENCE_FT }
            | if ev.gil_markers.is_empty() { 0 } else { FTSHIM_LOADER_EVIDENCE_GIL }
    });
    fill(out, report.verdict().status(), Details { reasons, inconclusive }, evidence)
}

/// The path and target of an inspect/open call, or the failure explaining why there are none.
///
/// # Safety
/// As the header requires of `path` and `target`.
unsafe fn arguments(
    path: *const c_char,
    target: *const ftshim_loader_target,
) -> Result<(PathBuf, Target), Failure> {
    // SAFETY: the caller's contract.
    let path = unsafe { c_bytes(path) }.ok_or_else(|| null("path"))?;
    let path = PathBuf::from(OsStr::from_bytes(path));
    // SAFETY: the caller's contract.
    let target = unsafe { target_from(target) }?;
    Ok((path, target))
}

/// The private details of a report filled by libftshim_loader, if any.
///
/// # Safety
/// `report._ftshim_private` is NULL or was set by `fill` and not yet cleared.
unsafe fn details(report: &ftshim_loader_report) -> Option<&Details> {
    if report.size < std::mem::size_of::<ftshim_loader_report>() {
        return None;
    }
    // SAFETY: the caller's contract: NULL or a live Box<Details> owned by this report.
    unsafe { report._ftshim_private.cast::<Details>().as_ref() }
}

export! {
    /// `ftshim_loader_inspect` — see include/ftshim_loader.h.
    pub unsafe fn ftshim_loader_inspect(
        path: *const c_char,
        target: *const ftshim_loader_target,
        report: *mut ftshim_loader_report,
    ) -> ftshim_status {
        let out = try_mut!(report);
        if start(out).is_none() {
            return FTSHIM_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: the header's contract for path and target.
        let (path, target) = match unsafe { arguments(path, target) } {
            Ok(args) => args,
            Err(f) => return fail(out, f),
        };
        fill_from(out, &super::inspect(&path, &target))
    }

    /// `ftshim_loader_open` — see include/ftshim_loader.h.
    pub unsafe fn ftshim_loader_open(
        path: *const c_char,
        target: *const ftshim_loader_target,
        report: *mut ftshim_loader_report,
        init: *mut Option<InitFn>,
    ) -> ftshim_status {
        let out = try_mut!(report);
        if start(out).is_none() {
            return FTSHIM_ERR_INVALID_ARGUMENT;
        }
        if init.is_null() {
            return fail(out, null("init"));
        }
        let init = try_mut!(init);
        *init = None;
        // SAFETY: the header's contract for path and target.
        let (path, target) = match unsafe { arguments(path, target) } {
            Ok(args) => args,
            Err(f) => return fail(out, f),
        };
        // SAFETY: the header states that opening runs the library's initialisers, which the
        // caller accepts by calling this function.
        match unsafe { super::open(&path, &target) } {
            Ok(module) => {
                *init = Some(*module.init());
                // Dropping the handle does not unload: the library was opened RTLD_NODELETE,
                // so the init function stays valid for the life of the process.
                fill_from(out, &module.report)
            }
            // A dlopen failure is the report's refusal (verdict DlopenFailed: FTSHIM_ERR_DLOPEN).
            Err(err) => fill_from(out, err.report()),
        }
    }

    /// `ftshim_loader_report_reason` — see include/ftshim_loader.h.
    pub unsafe fn ftshim_loader_report_reason(
        report: *const ftshim_loader_report,
        index: u32,
        code: *mut *const c_char,
        message: *mut *const c_char,
    ) -> ftshim_status {
        let report = try_ref!(report);
        // SAFETY: the header's contract: the report was filled by libftshim_loader or is empty.
        let Some((c, m)) = (unsafe { details(report) }).and_then(|d| d.reasons.get(index as usize)) else {
            return FTSHIM_ERR_INVALID_ARGUMENT;
        };
        if !code.is_null() {
            // SAFETY: non-NULL; the caller's contract makes it writable.
            unsafe { code.write(c.as_ptr()) };
        }
        if !message.is_null() {
            // SAFETY: as above.
            unsafe { message.write(m.as_ptr()) };
        }
        FTSHIM_OK
    }

    /// `ftshim_loader_report_inconclusive` — see include/ftshim_loader.h.
    pub unsafe fn ftshim_loader_report_inconclusive(
        report: *const ftshim_loader_report,
        index: u32,
        message: *mut *const c_char,
    ) -> ftshim_status {
        let report = try_ref!(report);
        let message = try_mut!(message);
        // SAFETY: the header's contract: the report was filled by libftshim_loader or is empty.
        let Some(m) = (unsafe { details(report) }).and_then(|d| d.inconclusive.get(index as usize)) else {
            return FTSHIM_ERR_INVALID_ARGUMENT;
        };
        *message = m.as_ptr();
        FTSHIM_OK
    }

    /// `ftshim_loader_report_clear` — see include/ftshim_loader.h.
    pub unsafe fn ftshim_loader_report_clear(report: *mut ftshim_loader_report) -> ftshim_status {
        let report = try_mut!(report);
        if report.size < std::mem::size_of::<ftshim_loader_report>() {
            return FTSHIM_ERR_INVALID_ARGUMENT;
        }
        let private = std::mem::replace(&mut report._ftshim_private, std::ptr::null_mut());
        if !private.is_null() {
            // SAFETY: set by `fill` from Box::into_raw and, being replaced by NULL above, freed once.
            drop(unsafe { Box::from_raw(private.cast::<Details>()) });
        }
        reset(report);
        FTSHIM_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftshim_boundary::status::FTSHIM_ERR_REFUSED;

    fn cpath(path: &std::path::Path) -> CString {
        CString::new(path.as_os_str().as_bytes()).unwrap()
    }

    fn empty_report() -> ftshim_loader_report {
        ftshim_loader_report {
            size: std::mem::size_of::<ftshim_loader_report>(),
            status: FTSHIM_OK,
            reason_count: 0,
            inconclusive_count: 0,
            evidence: 0,
            _ftshim_private: std::ptr::null_mut(),
        }
    }

    fn reasons(report: &ftshim_loader_report) -> Vec<(String, String)> {
        (0..report.reason_count)
            .map(|i| {
                let (mut c, mut m) = (std::ptr::null(), std::ptr::null());
                // SAFETY: the report was filled by libftshim_loader; the out pointers are valid.
                assert_eq!(unsafe { ftshim_loader_report_reason(report, i, &mut c, &mut m) }, FTSHIM_OK);
                // SAFETY: libftshim_loader hands out NUL-terminated strings that live until clear.
                let text = |p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
                (text(c), text(m))
            })
            .collect()
    }

    #[test]
    fn explicit_targets_are_validated_and_every_failure_has_a_reason() {
        let exe = cpath(&std::env::current_exe().unwrap());
        let sfx = c".cpython-313t-x86_64-linux-gnu.so";
        let mut target = ftshim_loader_target {
            size: std::mem::size_of::<ftshim_loader_target>(),
            version_hex: 0x030d05f0,
            flags: FTSHIM_LOADER_FREE_THREADED | 0x80,
            ext_suffix: sfx.as_ptr(),
            exports_path: std::ptr::null(),
        };
        let mut report = empty_report();
        // SAFETY: all pointers are valid for the call.
        let status = unsafe { ftshim_loader_inspect(exe.as_ptr(), &target, &mut report) };
        assert_eq!(status, FTSHIM_ERR_INVALID_ARGUMENT);
        assert_eq!(report.status, status);
        assert_eq!(
            reasons(&report),
            vec![(
                "invalid-argument".to_owned(),
                "target->flags has unknown bits 0x80 (known: FTSHIM_LOADER_FREE_THREADED, FTSHIM_LOADER_PROCESS_SYMBOLS)"
                    .to_owned()
            )]
        );
        // SAFETY: the report was filled by libftshim_loader.
        assert_eq!(unsafe { ftshim_loader_report_clear(&mut report) }, FTSHIM_OK);
        assert!(report._ftshim_private.is_null() && report.reason_count == 0);

        target.flags = FTSHIM_LOADER_FREE_THREADED;
        // SAFETY: as above.
        let status = unsafe { ftshim_loader_inspect(exe.as_ptr(), &target, &mut report) };
        assert_eq!(status, FTSHIM_ERR_REFUSED);
        let got = reasons(&report);
        assert_eq!(got.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["suffix-mismatch", "no-init"]);
        assert_eq!(report.evidence, FTSHIM_LOADER_EVIDENCE_ELF);
        assert_eq!(report.inconclusive_count, 1);
        let mut m = std::ptr::null();
        // SAFETY: valid report and out pointer.
        let out_of_range = unsafe { ftshim_loader_report_inconclusive(&report, 1, &mut m) };
        assert_eq!(out_of_range, FTSHIM_ERR_INVALID_ARGUMENT);
        // SAFETY: as above.
        assert_eq!(unsafe { ftshim_loader_report_inconclusive(&report, 0, &mut m) }, FTSHIM_OK);
        // SAFETY: as above.
        unsafe { ftshim_loader_report_clear(&mut report) };

        // NULL path, short target, NULL report, short report.
        // SAFETY: NULL and short structs are exactly what is being tested; nothing is read past size.
        unsafe {
            assert_eq!(
                ftshim_loader_inspect(std::ptr::null(), &target, &mut report),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            assert_eq!(reasons(&report), vec![("invalid-argument".to_owned(), "path is NULL".to_owned())]);
            ftshim_loader_report_clear(&mut report);
            target.size = 8;
            assert_eq!(
                ftshim_loader_inspect(exe.as_ptr(), &target, &mut report),
                FTSHIM_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                reasons(&report)[0].1,
                "target->size is 8, expected at least 32 (sizeof(ftshim_loader_target) in ABI 1.0)"
            );
            ftshim_loader_report_clear(&mut report);
            assert_eq!(
                ftshim_loader_inspect(exe.as_ptr(), &target, std::ptr::null_mut()),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            let mut short = empty_report();
            short.size = 8;
            assert_eq!(ftshim_loader_inspect(exe.as_ptr(), &target, &mut short), FTSHIM_ERR_INVALID_ARGUMENT);
            assert!(short._ftshim_private.is_null());
            assert_eq!(ftshim_loader_report_clear(std::ptr::null_mut()), FTSHIM_ERR_NULL_ARGUMENT);
        }
    }

    #[test]
    fn a_path_is_raw_bytes_not_utf8() {
        // A path that is not UTF-8 is a path like any other (no invalid-argument): here, one that
        // names nothing, so the I/O verdict, with the bytes written as `\xff` escapes.
        let target = ftshim_loader_target {
            size: std::mem::size_of::<ftshim_loader_target>(),
            version_hex: 0x030d05f0,
            flags: FTSHIM_LOADER_FREE_THREADED,
            ext_suffix: c".cpython-313t-x86_64-linux-gnu.so".as_ptr(),
            exports_path: std::ptr::null(),
        };
        let path = c"/nonexistent-ftshim/\xff\xfe.cpython-313t-x86_64-linux-gnu.so";
        let mut report = empty_report();
        // SAFETY: all pointers are valid for the call.
        let status = unsafe { ftshim_loader_inspect(path.as_ptr(), &target, &mut report) };
        assert_eq!(status, ftshim_boundary::status::FTSHIM_ERR_IO);
        let got = reasons(&report);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "not-found");
        assert_eq!(
            got[0].1,
            "/nonexistent-ftshim/\\xff\\xfe.cpython-313t-x86_64-linux-gnu.so: cannot read: expected a file, found nothing at this path (No such file or directory (os error 2))"
        );
        // SAFETY: filled by libftshim_loader.
        unsafe { ftshim_loader_report_clear(&mut report) };
    }

    #[test]
    fn the_running_process_without_python_is_no_runtime() {
        let exe = cpath(&std::env::current_exe().unwrap());
        let mut report = empty_report();
        // SAFETY: valid pointers; NULL target means the running process.
        let status = unsafe { ftshim_loader_inspect(exe.as_ptr(), std::ptr::null(), &mut report) };
        assert_eq!(status, FTSHIM_ERR_NO_RUNTIME);
        assert_eq!(
            reasons(&report),
            vec![(
                "no-runtime".to_owned(),
                "target is NULL (the running process), but no CPython runtime in this process: symbol Py_Version (CPython >= 3.11) not found in the global scope".to_owned()
            )]
        );
        // SAFETY: filled by libftshim_loader.
        unsafe { ftshim_loader_report_clear(&mut report) };
    }

    #[test]
    fn the_layouts_are_the_abi_1_0_ones() {
        assert_eq!(std::mem::size_of::<ftshim_loader_target>(), 32);
        assert_eq!(std::mem::size_of::<ftshim_loader_report>(), 32);
        assert_eq!(std::mem::offset_of!(ftshim_loader_report, _ftshim_private), 24);
        assert_eq!(std::mem::offset_of!(ftshim_loader_target, exports_path), 24);
    }
}
