//! Versioning — the `Versioning` section of `include/ftshim.h`.
//!
//! The numbers come from the header itself (read by build.rs), so they are written once.

#[path = "../../boundary/src/abi_version.rs"]
#[allow(dead_code)]
mod abi_version;

/// `FTSHIM_ABI_VERSION_MAJOR` from the header.
pub const ABI_MAJOR: u32 = abi_version::parse(env!("FTSHIM_ABI_MAJOR"));
/// `FTSHIM_ABI_VERSION_MINOR` from the header.
pub const ABI_MINOR: u32 = abi_version::parse(env!("FTSHIM_ABI_MINOR"));
/// `FTSHIM_ABI_VERSION`: `(MAJOR << 16) | MINOR`.
pub const ABI_VERSION: u32 = (ABI_MAJOR << 16) | ABI_MINOR;
/// The shared library's file name and SONAME, from the major version.
pub const SONAME: &str = concat!("libftshim.so.", env!("FTSHIM_ABI_MAJOR"));

ftshim_boundary::export! {
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
        assert_eq!(unsafe { ftshim_abi_version() }, (1 << 16) | 1);
        assert_eq!((ABI_MAJOR, ABI_MINOR), (1, 1));
        assert_eq!(SONAME, "libftshim.so.1");
    }
}
