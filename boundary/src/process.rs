//! The probe of the running process: is a CPython there, which version, is it free-threaded.
//!
//! Neither library links libpython. Both answer these questions the same way, by looking symbols
//! up in the process's global scope (`dlsym(RTLD_DEFAULT, …)`): `Py_Version` (exported since
//! 3.11) and the exports only a free-threaded build has.
//!
//! The runtime calls [`host`] and [`lookup`], which neither allocate nor panic: libftshim's
//! reachable code is kept free of both, so that a module linking `libftshim.a` statically does
//! not also carry Rust's panic and backtrace machinery (abi-tests/tests/sizes.rs holds it to that).

use std::ffi::{CStr, CString, c_ulong, c_void};

/// Exports that exist only in free-threaded builds; any one of them marks the process as FT.
pub const FT_ONLY_EXPORTS: &[&CStr] = &[c"_Py_DecRefShared", c"PyUnstable_Module_SetGIL"];

/// The address `name` resolves to in the running process's global scope, if any. Does not
/// allocate.
pub fn lookup(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT only searches the already-loaded objects' symbol tables.
    // (A GNU indirect function would have its resolver run, but CPython exports none.)
    let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!addr.is_null()).then_some(addr)
}

/// True when `name` resolves in the running process's global scope (false for a name with a NUL
/// byte, which no symbol has). Allocates the C string: for the loader, not the runtime.
pub fn in_global_scope(name: &str) -> bool {
    CString::new(name).ok().is_some_and(|c| lookup(&c).is_some())
}

/// The CPython found in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// `Py_Version`: `PY_VERSION_HEX` of the running interpreter, e.g. `0x030D05F0`.
    pub version_hex: u32,
    /// True on a free-threaded (`Py_GIL_DISABLED`) build.
    pub free_threaded: bool,
}

impl Host {
    /// `(major, minor)`.
    pub fn version(&self) -> (u8, u8) {
        ((self.version_hex >> 24) as u8, (self.version_hex >> 16) as u8)
    }
}

/// The CPython in this process (read afresh; callers cache it), or `None` when no CPython 3.11+
/// is loaded in the global scope. Does not allocate.
pub fn host() -> Option<Host> {
    let version = lookup(c"Py_Version")?.cast::<c_ulong>();
    // SAFETY: Py_Version is `const unsigned long Py_Version` in CPython >= 3.11: the address of an
    // immutable, readable value in the loaded libpython (or executable).
    let version_hex = unsafe { version.read() } as u32;
    let free_threaded = FT_ONLY_EXPORTS.iter().any(|name| lookup(name).is_some());
    Some(Host { version_hex, free_threaded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_without_python_has_no_host() {
        assert_eq!(host(), None);
        assert!(in_global_scope("malloc"));
        assert!(lookup(c"malloc").is_some());
        assert!(!in_global_scope("no such symbol"));
        assert!(!in_global_scope("nul\0inside"));
    }
}
