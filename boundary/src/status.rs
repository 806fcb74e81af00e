//! Status codes — `include/ftshim_status.h`, shared by both libraries' headers.

#![allow(non_camel_case_types)]

use std::ffi::CStr;
use std::fmt;

/// `ftshim_status` in the header: an `int32_t`. A transparent newtype so that the export macro
/// can tell a status (NULL → `FTSHIM_ERR_NULL_ARGUMENT`) from other C `int` returns.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ftshim_status(pub i32);

impl fmt::Display for ftshim_status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Success.
pub const FTSHIM_OK: ftshim_status = ftshim_status(0);
/// A required pointer argument was NULL.
pub const FTSHIM_ERR_NULL_ARGUMENT: ftshim_status = ftshim_status(-1);
/// No supported CPython runtime in this process.
pub const FTSHIM_ERR_NO_RUNTIME: ftshim_status = ftshim_status(-2);
/// End on critical-section storage with no active begin.
pub const FTSHIM_ERR_NOT_ACTIVE: ftshim_status = ftshim_status(-3);
/// Unlock of a mutex that is not locked.
pub const FTSHIM_ERR_NOT_LOCKED: ftshim_status = ftshim_status(-4);
/// Trylock found the mutex held.
pub const FTSHIM_ERR_BUSY: ftshim_status = ftshim_status(-5);
/// The object may be referenced from other threads.
pub const FTSHIM_ERR_SHARED: ftshim_status = ftshim_status(-6);
/// The object is a str (intern it instead).
pub const FTSHIM_ERR_STR: ftshim_status = ftshim_status(-7);
/// Not available on this interpreter or platform.
pub const FTSHIM_ERR_UNSUPPORTED: ftshim_status = ftshim_status(-8);
/// An argument is outside its documented range.
pub const FTSHIM_ERR_INVALID_ARGUMENT: ftshim_status = ftshim_status(-9);
/// Loader: the module was refused.
pub const FTSHIM_ERR_REFUSED: ftshim_status = ftshim_status(-10);
/// Loader: the file could not be read.
pub const FTSHIM_ERR_IO: ftshim_status = ftshim_status(-11);
/// Loader: dlopen or dlsym failed after acceptance.
pub const FTSHIM_ERR_DLOPEN: ftshim_status = ftshim_status(-12);
/// Checked mode: the thread already holds the mutex it locks.
pub const FTSHIM_ERR_WOULD_DEADLOCK: ftshim_status = ftshim_status(-13);
/// Not the calling thread's innermost open section (out of order, or another thread's).
pub const FTSHIM_ERR_OUT_OF_ORDER: ftshim_status = ftshim_status(-14);
/// A panic was caught at the boundary.
pub const FTSHIM_ERR_INTERNAL: ftshim_status = ftshim_status(-99);

/// Every status with its header name and description, in header order. The tests check this
/// table against `include/ftshim_status.h`, so the two cannot drift.
pub const STATUSES: &[(ftshim_status, &str, &CStr)] = &[
    (FTSHIM_OK, "FTSHIM_OK", c"ok"),
    (FTSHIM_ERR_NULL_ARGUMENT, "FTSHIM_ERR_NULL_ARGUMENT", c"null argument"),
    (FTSHIM_ERR_NO_RUNTIME, "FTSHIM_ERR_NO_RUNTIME", c"no supported CPython runtime in this process"),
    (FTSHIM_ERR_NOT_ACTIVE, "FTSHIM_ERR_NOT_ACTIVE", c"no active critical section in this storage"),
    (FTSHIM_ERR_NOT_LOCKED, "FTSHIM_ERR_NOT_LOCKED", c"mutex is not locked"),
    (FTSHIM_ERR_BUSY, "FTSHIM_ERR_BUSY", c"mutex is held by another owner"),
    (FTSHIM_ERR_SHARED, "FTSHIM_ERR_SHARED", c"object may be referenced from other threads"),
    (FTSHIM_ERR_STR, "FTSHIM_ERR_STR", c"str objects are made immortal by interning, not by ftshim"),
    (FTSHIM_ERR_UNSUPPORTED, "FTSHIM_ERR_UNSUPPORTED", c"not supported on this interpreter or platform"),
    (FTSHIM_ERR_INVALID_ARGUMENT, "FTSHIM_ERR_INVALID_ARGUMENT", c"argument outside its documented range"),
    (FTSHIM_ERR_REFUSED, "FTSHIM_ERR_REFUSED", c"module refused by the loader"),
    (FTSHIM_ERR_IO, "FTSHIM_ERR_IO", c"file could not be read"),
    (FTSHIM_ERR_DLOPEN, "FTSHIM_ERR_DLOPEN", c"dlopen or dlsym failed"),
    (
        FTSHIM_ERR_WOULD_DEADLOCK,
        "FTSHIM_ERR_WOULD_DEADLOCK",
        c"the thread already holds this mutex (checked mode)",
    ),
    (
        FTSHIM_ERR_OUT_OF_ORDER,
        "FTSHIM_ERR_OUT_OF_ORDER",
        c"not the calling thread's innermost open section (ended out of order or on another thread)",
    ),
    (FTSHIM_ERR_INTERNAL, "FTSHIM_ERR_INTERNAL", c"internal error in libftshim (caught panic)"),
];

/// The description of `status` (what `ftshim_status_str` and `ftshim_loader_status_str` return).
pub fn describe(status: ftshim_status) -> &'static CStr {
    STATUSES.iter().find(|(code, _, _)| *code == status).map_or(c"unknown ftshim status", |(_, _, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_text_and_unknown_values_are_named() {
        for (code, _, text) in STATUSES {
            assert_eq!(describe(*code), *text);
        }
        assert_eq!(describe(ftshim_status(12345)), c"unknown ftshim status");
        assert_eq!(describe(ftshim_status(-12345)), c"unknown ftshim status");
    }
}
