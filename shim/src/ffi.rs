//! The one boundary every export goes through.
//!
//! [`ffi_export!`] turns a Rust body into a `#[no_mangle] extern "C"` function whose body runs
//! inside [`std::panic::catch_unwind`]. A caught panic becomes the return type's
//! [`PanicValue::on_panic`] (for statuses, `FTSHIM_ERR_INTERNAL`); an unwind that escapes anyway
//! (a panic while dropping the panic payload) hits [`AbortOnUnwind`], whose `Drop` aborts —
//! no unwind ever reaches C. NULL checks are done by [`try_ref!`] / [`try_mut!`].

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::status::{FTSHIM_ERR_INTERNAL, ftshim_status};

/// What an export returns when its body panicked.
pub trait PanicValue {
    /// The value handed to C after a caught panic.
    fn on_panic() -> Self;
}

impl PanicValue for ftshim_status {
    fn on_panic() -> Self {
        FTSHIM_ERR_INTERNAL
    }
}

impl PanicValue for u32 {
    /// Only infallible getters return `u32`; a panic there is impossible in practice, and there
    /// is no status to report it with, so the process is stopped rather than lied to.
    fn on_panic() -> Self {
        abort_with("a libftshim function that cannot report errors panicked")
    }
}

impl<T> PanicValue for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
}

/// Prints `why` to stderr and aborts the process. The last resort: only for panics that cannot
/// be reported through a return value.
pub fn abort_with(why: &str) -> ! {
    eprintln!("libftshim: fatal: {why}");
    std::process::abort()
}

/// Aborts the process if dropped during an unwind that escaped `catch_unwind`.
pub struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        abort_with("a panic unwound through the FFI boundary");
    }
}

/// Runs `f`, catching any panic (see the module docs). Used by [`ffi_export!`]; not `pub` API.
#[inline(always)]
pub fn boundary<R: PanicValue>(f: impl FnOnce() -> R) -> R {
    let trap = AbortOnUnwind;
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        // Dropping the payload can itself panic; forget it instead of risking an unwind here.
        std::mem::forget(payload);
        R::on_panic()
    });
    std::mem::forget(trap);
    result
}

/// Defines exported C functions. Each item is written like a Rust `unsafe fn`; the macro adds
/// `#[unsafe(no_mangle)]`, `extern "C"` and the panic boundary.
macro_rules! ffi_export {
    ($(
        $(#[$attr:meta])*
        pub unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    )*) => {$(
        $(#[$attr])*
        ///
        /// # Safety
        /// The preconditions written for this function in `include/ftshim.h`: every non-NULL
        /// pointer is valid for the access described there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $crate::ffi::boundary(move || -> $ret { $body })
        }
    )*};
}
pub(crate) use ffi_export;

/// `try_ref!(ptr)`: borrows `*ptr`, or returns `FTSHIM_ERR_NULL_ARGUMENT` from the export.
/// The caller's safety contract (documented in the header) is that a non-NULL pointer is valid.
macro_rules! try_mut {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::status::FTSHIM_ERR_NULL_ARGUMENT;
        }
        // SAFETY: non-NULL checked above; validity and exclusivity are the caller's contract
        // (see include/ftshim.h).
        unsafe { &mut *ptr }
    }};
}
pub(crate) use try_mut;

/// `try_ref!(ptr)`: borrows `*ptr` shared (for memory other threads may use at the same time,
/// such as a mutex), or returns `FTSHIM_ERR_NULL_ARGUMENT` from the export.
macro_rules! try_ref {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::status::FTSHIM_ERR_NULL_ARGUMENT;
        }
        // SAFETY: non-NULL checked above; validity is the caller's contract (include/ftshim.h).
        unsafe { &*ptr }
    }};
}
pub(crate) use try_ref;

/// `try_nonnull!(ptr)`: returns `FTSHIM_ERR_NULL_ARGUMENT` from the export when `ptr` is NULL,
/// else evaluates to `ptr` unchanged (for pointers that are passed on, not dereferenced here).
macro_rules! try_nonnull {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::status::FTSHIM_ERR_NULL_ARGUMENT;
        }
        ptr
    }};
}
pub(crate) use try_nonnull;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::FTSHIM_OK;

    #[test]
    fn boundary_turns_a_panic_into_the_internal_status() {
        let status: ftshim_status = boundary(|| panic!("boom"));
        assert_eq!(status, FTSHIM_ERR_INTERNAL);
        let status: ftshim_status = boundary(|| FTSHIM_OK);
        assert_eq!(status, FTSHIM_OK);
        let ptr: *const u8 = boundary(|| panic!("boom"));
        assert!(ptr.is_null());
    }
}
