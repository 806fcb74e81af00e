//! Versioning — the `Versioning` section of `include/ftshim.h`.
//!
//! The numbers come from the header itself (read by build.rs), so they are written once.

use crate::ffi::ffi_export;

/// `FTSHIM_ABI_VERSION_MAJOR` from the header.
pub const ABI_MAJOR: u32 = parse(env!("FTSHIM_ABI_MAJOR"));
/// `FTSHIM_ABI_VERSION_MINOR` from the header.
pub const ABI_MINOR: u32 = parse(env!("FTSHIM_ABI_MINOR"));
/// `FTSHIM_ABI_VERSION`: `(MAJOR << 16) | MINOR`.
pub const ABI_VERSION: u32 = (ABI_MAJOR << 16) | ABI_MINOR;

const fn parse(s: &str) -> u32 {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "ABI version part is not a decimal number");
        n = n * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    n
}

ffi_export! {
    /// `ftshim_abi_version` — see include/ftshim.h.
    pub unsafe fn ftshim_abi_version() -> u32 {
        ABI_VERSION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exported_version_is_the_headers() {
        // SAFETY: no arguments, no preconditions.
        assert_eq!(unsafe { ftshim_abi_version() }, (1 << 16));
        assert_eq!((ABI_MAJOR, ABI_MINOR), (1, 0));
    }
}
