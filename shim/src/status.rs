//! Status codes — the `Status codes` section of `include/ftshim.h` (the codes themselves are in
//! `include/ftshim_status.h`, shared with the loader, and in `ftshim_boundary::status`).

use std::ffi::c_char;

pub use ftshim_boundary::status::*;

ftshim_boundary::export! {
    /// `ftshim_status_str` — see include/ftshim.h.
    pub unsafe fn ftshim_status_str(status: ftshim_status) -> *const c_char {
        describe(status).as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn the_export_returns_the_tables_text() {
        for (code, _, text) in STATUSES {
            // SAFETY: ftshim_status_str returns a static NUL-terminated string.
            assert_eq!(unsafe { CStr::from_ptr(ftshim_status_str(*code)) }, *text);
        }
        // SAFETY: as above.
        let got = unsafe { CStr::from_ptr(ftshim_status_str(ftshim_status(12345))) };
        assert_eq!(got, c"unknown ftshim status");
    }
}
