//! Versioning — the `Versioning` section of `include/ftshim_loader.h`.
//!
//! The numbers come from the header itself (read by build.rs), so they are written once.

use std::ffi::c_char;

use ftshim_boundary::status::{describe, ftshim_status};

#[path = "../../boundary/src/abi_version.rs"]
#[allow(dead_code)]
mod abi_version;

/// `FTSHIM_LOADER_ABI_VERSION_MAJOR` from the header.
pub const ABI_MAJOR: u32 = abi_version::parse(env!("FTSHIM_ABI_MAJOR"));
/// `FTSHIM_LOADER_ABI_VERSION_MINOR` from the header.
pub const ABI_MINOR: u32 = abi_version::parse(env!("FTSHIM_ABI_MINOR"));
/// `FTSHIM_LOADER_ABI_VERSION`: `(MAJOR << 16) | MINOR`.
pub const ABI_VERSION: u32 = (ABI_MAJOR << 16) | ABI_MINOR;
/// The shared library's file name and SONAME, from the major version.
pub const SONAME: &str = concat!("libftshim_loader.so.", env!("FTSHIM_ABI_MAJOR"));

ftshim_boundary::export! {
    /// `ftshim_loader_abi_version` — see include/ftshim_loader.h.
    pub unsafe fn ftshim_loader_abi_version() -> u32 {
        ABI_VERSION
    }

    /// `ftshim_loader_status_str` — see include/ftshim_loader.h.
    pub unsafe fn ftshim_loader_status_str(status: ftshim_status) -> *const c_char {
        describe(status).as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exported_version_is_the_headers() {
        // SAFETY: no arguments, no preconditions.
        assert_eq!(unsafe { ftshim_loader_abi_version() }, (1 << 16));
        assert_eq!(SONAME, "libftshim_loader.so.1");
        // SAFETY: returns a static NUL-terminated string.
        let ok = unsafe { std::ffi::CStr::from_ptr(ftshim_loader_status_str(ftshim_status(0))) };
        assert_eq!(ok, c"ok");
    }
}
