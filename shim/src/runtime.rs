//! Finds the host interpreter's entry points once, from the running process.
//!
//! libftshim links against no libpython. At first use it opens the process's global symbol scope
//! (`dlopen(NULL)`, libloading's `Library::this()`), reads `Py_Version` (exported since 3.11) and
//! detects a free-threaded build by an FT-only export, then keeps the CPython functions it needs
//! as plain function pointers. The result is cached for the life of the process.

use std::ffi::{c_ulong, c_void};

use libloading::os::unix::Library;
use once_cell::sync::OnceCell;

/// CPython's `PyObject`, opaque here: libftshim never reads object memory through this type.
#[repr(C)]
pub struct PyObject {
    _opaque: [u8; 0],
}

/// `void PyCriticalSection_Begin(PyCriticalSection *c, PyObject *op)` (3.13+).
pub type CsBeginFn = unsafe extern "C" fn(*mut c_void, *mut PyObject);
/// `void PyCriticalSection_End(PyCriticalSection *c)` (3.13+).
pub type CsEndFn = unsafe extern "C" fn(*mut c_void);

/// Exports that exist only in free-threaded builds; any one of them marks the process as FT.
pub const FT_ONLY_EXPORTS: &[&str] = &["_Py_DecRefShared", "PyUnstable_Module_SetGIL"];

/// What libftshim knows about the interpreter it runs in.
#[derive(Debug)]
pub struct Runtime {
    /// `Py_Version`: `PY_VERSION_HEX` of the running interpreter, e.g. `0x030D05F0`.
    pub version_hex: u32,
    /// True on a free-threaded (`Py_GIL_DISABLED`) build.
    pub free_threaded: bool,
    /// CPython's critical-section functions; `Some` only on FT builds, the only place they act.
    pub critical_section: Option<(CsBeginFn, CsEndFn)>,
    /// Keeps the handle open for as long as the pointers above are used (the process lifetime).
    _process: Library,
}

impl Runtime {
    /// `(major, minor)` of the running interpreter.
    pub fn version(&self) -> (u8, u8) {
        ((self.version_hex >> 24) as u8, (self.version_hex >> 16) as u8)
    }
}

/// Why no runtime could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// `Py_Version` is not in the process's global scope: no CPython >= 3.11 loaded globally.
    NoPython,
    /// A CPython is there but one of the entry points its version must have is missing.
    MissingExport {
        /// The symbol that was looked up.
        symbol: &'static str,
        /// `Py_Version` of the interpreter found.
        version_hex: u32,
    },
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeError::NoPython => write!(
                f,
                "no CPython runtime in this process: symbol Py_Version (CPython >= 3.11) not found in the global scope"
            ),
            RuntimeError::MissingExport { symbol, version_hex } => write!(
                f,
                "CPython {version_hex:#010x} in this process does not export {symbol}, which that version must have"
            ),
        }
    }
}

impl std::error::Error for RuntimeError {}

static RUNTIME: OnceCell<Result<Runtime, RuntimeError>> = OnceCell::new();

/// The running interpreter, resolved on first call. Cheap after that (one acquire load).
#[inline]
pub fn get() -> Result<&'static Runtime, &'static RuntimeError> {
    RUNTIME.get_or_init(resolve).as_ref()
}

/// Looks up `name` in `lib`, copying out the value of the symbol (a function pointer or an
/// address). `T` must be a pointer-sized type matching the symbol's real type.
///
/// # Safety
/// `T` must be the correct type for the symbol `name`.
unsafe fn lookup<T: Copy>(lib: &Library, name: &str) -> Option<T> {
    let cname = format!("{name}\0");
    // SAFETY: the caller guarantees T is the symbol's type; the value is copied out and stays
    // valid because `lib` (the whole process) is never unloaded.
    unsafe { lib.get::<T>(cname.as_bytes()).ok().map(|sym| *sym) }
}

fn resolve() -> Result<Runtime, RuntimeError> {
    let process = Library::this();
    // SAFETY: Py_Version is `const unsigned long Py_Version` in CPython >= 3.11; the symbol's
    // address is what dlsym returns, so the lookup type is a pointer to c_ulong.
    let version_ptr = unsafe { lookup::<*const c_ulong>(&process, "Py_Version") }
        .filter(|p| !p.is_null())
        .ok_or(RuntimeError::NoPython)?;
    // SAFETY: the pointer is Py_Version's address in the loaded libpython: readable, immutable.
    let version_hex = unsafe { version_ptr.read() } as u32;
    let free_threaded = FT_ONLY_EXPORTS.iter().any(|name| {
        // SAFETY: only presence is tested; the address is never used.
        unsafe { lookup::<*const c_void>(&process, name) }.is_some_and(|p| !p.is_null())
    });
    let critical_section = if free_threaded {
        let missing = |symbol| RuntimeError::MissingExport { symbol, version_hex };
        // SAFETY: the signatures match CPython 3.13's declarations of these functions.
        let begin = unsafe { lookup::<CsBeginFn>(&process, "PyCriticalSection_Begin") }
            .ok_or_else(|| missing("PyCriticalSection_Begin"))?;
        // SAFETY: as above.
        let end = unsafe { lookup::<CsEndFn>(&process, "PyCriticalSection_End") }
            .ok_or_else(|| missing("PyCriticalSection_End"))?;
        Some((begin, end))
    } else {
        None
    };
    Ok(Runtime { version_hex, free_threaded, critical_section, _process: process })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_without_python_reports_no_runtime() {
        // The unit-test binary links no libpython, so there is no Py_Version to find.
        assert_eq!(get().unwrap_err(), &RuntimeError::NoPython);
        assert_eq!(
            RuntimeError::NoPython.to_string(),
            "no CPython runtime in this process: symbol Py_Version (CPython >= 3.11) not found in the global scope"
        );
    }
}
