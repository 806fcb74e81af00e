//! What libftshim (the runtime) and libftshim_loader share at their edges, written once:
//!
//! - [`export!`]: the one boundary macro every exported C function of either library goes
//!   through. It adds `#[unsafe(no_mangle)] extern "C"`, runs the body inside `catch_unwind`, and
//!   lets the *return type* decide what a caught panic and a NULL argument give (the
//!   [`FfiReturn`] trait), so no export special-cases itself. An unwind that escapes anyway hits a
//!   guard whose `Drop` aborts: no unwind ever reaches C.
//! - [`status`]: `ftshim_status` and its codes (`include/ftshim_status.h`).
//! - [`process`]: the probe of the running process (is a CPython there, which version, is it
//!   free-threaded), by symbol lookup in the global scope — never by linking libpython.
//!
//! This crate has no exports of its own and is not shipped: it is compiled into both libraries.

pub mod process;
pub mod status;

use std::ffi::{c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use status::ftshim_status;

/// What an export returns when its body panicked, and when a required pointer argument is NULL.
/// Implemented per C return type: the return type decides, not the export.
pub trait FfiReturn: Sized {
    /// The value handed to C after a caught panic.
    fn on_panic() -> Self;
    /// The value handed to C when [`try_ref!`] & co. find a NULL argument.
    fn on_null() -> Self;
}

impl FfiReturn for ftshim_status {
    fn on_panic() -> Self {
        status::FTSHIM_ERR_INTERNAL
    }
    fn on_null() -> Self {
        status::FTSHIM_ERR_NULL_ARGUMENT
    }
}

impl FfiReturn for u32 {
    /// Only infallible getters (version numbers) return `u32`: there is no value left to report
    /// a panic with, so the process is stopped rather than lied to. No such function takes a
    /// pointer, so `on_null` is never used.
    fn on_panic() -> Self {
        abort_with("an ftshim function that cannot report errors panicked")
    }
    fn on_null() -> Self {
        abort_with("an ftshim function that takes no pointer reported a NULL pointer")
    }
}

impl FfiReturn for *const c_char {
    /// Static strings: NULL after a panic (the header documents it) and for NULL input.
    fn on_panic() -> Self {
        std::ptr::null()
    }
    fn on_null() -> Self {
        std::ptr::null()
    }
}

/// A C `int` that is a yes/no snapshot (`ftshim_mutex_is_locked`): NULL reads as "no" (0), as the
/// header documents; a panic, which has no honest yes/no answer, aborts.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot(pub c_int);

impl FfiReturn for Snapshot {
    fn on_panic() -> Self {
        abort_with("an ftshim yes/no query panicked")
    }
    fn on_null() -> Self {
        Snapshot(0)
    }
}

/// Prints `why` to stderr and aborts the process. The last resort: only for panics that cannot
/// be reported through a return value, and for an unwind that escaped `catch_unwind`.
///
/// Written with `write(2)` and `abort(3)` directly, not `eprintln!`/`format!`: those can panic
/// themselves, and anything that can panic here would keep Rust's panic hook and backtrace
/// symbolizer (≈300 KB) alive in every module that links `libftshim.a` statically.
pub fn abort_with(why: &str) -> ! {
    // Both libraries use this, so the prefix names the project rather than one library.
    for part in [&b"ftshim: fatal: "[..], why.as_bytes(), b"\n"] {
        // SAFETY: writes the bytes of a live slice to fd 2; a closed or broken stderr just fails.
        let _ = unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    // SAFETY: abort(3) has no preconditions and does not return.
    unsafe { libc::abort() }
}

/// Aborts the process if dropped during an unwind that escaped `catch_unwind`.
pub struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        abort_with("a panic unwound through the FFI boundary");
    }
}

/// Runs `f`, catching any panic (see the crate docs). Used by [`export!`]; not API.
#[inline(always)]
pub fn boundary<R: FfiReturn>(f: impl FnOnce() -> R) -> R {
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
/// `#[unsafe(no_mangle)]`, `extern "C"` and the panic boundary. Inside the body, [`try_ref!`],
/// [`try_mut!`] and [`try_nonnull!`] return the return type's [`FfiReturn::on_null`].
///
/// An item written `pub unsafe naked fn` is a naked function whose body is one `naked_asm!`: its
/// whole code is assembly, which cannot panic, so it gets no boundary, and it must do the NULL
/// check itself (returning what [`FfiReturn::on_null`] gives for its return type). Its callees
/// must be `extern "C"` functions that cannot unwind. For the few hottest paths only
/// (`shim/src/mutex.rs`). Naked functions carry no DWARF, so libabigail sees them as ELF symbols
/// without a signature (tests/abi_check.rs checks that no other export lacks one).
#[macro_export]
macro_rules! export {
    () => {};
    (
        $(#[$attr:meta])*
        pub unsafe naked fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $(#[$attr])*
        ///
        /// # Safety
        /// The preconditions written for this function in its header: every non-NULL pointer is
        /// valid for the access described there.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret $body
        $crate::export! { $($rest)* }
    };
    (
        $(#[$attr:meta])*
        pub unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $(#[$attr])*
        ///
        /// # Safety
        /// The preconditions written for this function in its header: every non-NULL pointer is
        /// valid for the access described there.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $crate::boundary(move || -> $ret { $body })
        }
        $crate::export! { $($rest)* }
    };
}

/// `try_mut!(ptr)`: borrows `*ptr` exclusively, or returns the export's
/// [`FfiReturn::on_null`] when `ptr` is NULL. Only inside [`export!`] bodies.
#[macro_export]
macro_rules! try_mut {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::FfiReturn::on_null();
        }
        // SAFETY: non-NULL checked above; validity and exclusivity are the caller's contract
        // (the header of the export).
        unsafe { &mut *ptr }
    }};
}

/// `try_ref!(ptr)`: borrows `*ptr` shared (for memory other threads may use at the same time,
/// such as a mutex), or returns the export's [`FfiReturn::on_null`]. Only inside [`export!`].
#[macro_export]
macro_rules! try_ref {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::FfiReturn::on_null();
        }
        // SAFETY: non-NULL checked above; validity is the caller's contract (the header).
        unsafe { &*ptr }
    }};
}

/// `try_nonnull!(ptr)`: returns the export's [`FfiReturn::on_null`] when `ptr` is NULL, else
/// evaluates to `ptr` unchanged (for pointers passed on, not dereferenced here).
#[macro_export]
macro_rules! try_nonnull {
    ($ptr:expr) => {{
        let ptr = $ptr;
        if ptr.is_null() {
            return $crate::FfiReturn::on_null();
        }
        ptr
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{FTSHIM_ERR_NULL_ARGUMENT, FTSHIM_OK};

    #[test]
    fn a_panic_becomes_the_return_types_value() {
        let status: ftshim_status = boundary(|| panic!("boom"));
        assert_eq!(status, status::FTSHIM_ERR_INTERNAL);
        let status: ftshim_status = boundary(|| FTSHIM_OK);
        assert_eq!(status, FTSHIM_OK);
        let ptr: *const c_char = boundary(|| panic!("boom"));
        assert!(ptr.is_null());
    }

    fn deref_status(p: *const u8) -> ftshim_status {
        boundary(move || {
            let _ = try_ref!(p);
            FTSHIM_OK
        })
    }

    fn deref_snapshot(p: *const u8) -> Snapshot {
        boundary(move || Snapshot(c_int::from(*try_ref!(p) != 0)))
    }

    #[test]
    fn a_null_argument_becomes_the_return_types_value() {
        assert_eq!(deref_status(std::ptr::null()), FTSHIM_ERR_NULL_ARGUMENT);
        assert_eq!(deref_status(&1), FTSHIM_OK);
        assert_eq!(deref_snapshot(std::ptr::null()), Snapshot(0));
        assert_eq!(deref_snapshot(&1), Snapshot(1));
    }
}
