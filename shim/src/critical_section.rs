//! Critical sections — the `Critical sections` section of `include/ftshim.h`.
//!
//! The caller's 64-byte `ftshim_critical_section` holds CPython's `PyCriticalSection` (or
//! `PyCriticalSection2`) at offset 0, where CPython links it into the thread's stack of sections,
//! and a state word in the last slot that says which kind of section is active, so that `end`
//! on storage that was never begun is reported instead of corrupting the thread's section stack.

#![allow(non_camel_case_types)]

use std::ffi::c_void;

use crate::ffi::{ffi_export, try_mut, try_nonnull};
use crate::runtime::{self, PyObject};
use crate::status::{FTSHIM_ERR_NO_RUNTIME, FTSHIM_ERR_NOT_ACTIVE, FTSHIM_OK, ftshim_status};

/// `ftshim_critical_section` in the header: 8 pointer-sized words, contents private.
#[repr(C)]
pub struct ftshim_critical_section {
    storage: [usize; 8],
}

/// Index of the state word; CPython's struct occupies the words before it.
const STATE: usize = 7;
/// State: a 1-object section is held through CPython (FT build).
const ACTIVE_CPYTHON: usize = 0x6674_7368_696d_4331; // "ftshimC1"
/// State: a section is "held" on a GIL build, where sections are no-ops.
const ACTIVE_NOOP: usize = 0x6674_7368_696d_4e31; // "ftshimN1"

ffi_export! {
    /// `ftshim_critical_section_begin` — see include/ftshim.h.
    pub unsafe fn ftshim_critical_section_begin(
        cs: *mut ftshim_critical_section,
        op: *mut PyObject,
    ) -> ftshim_status {
        let cs = try_mut!(cs);
        let op = try_nonnull!(op);
        let Ok(rt) = runtime::get() else { return FTSHIM_ERR_NO_RUNTIME };
        match rt.critical_section {
            Some((begin, _)) => {
                cs.storage[STATE] = ACTIVE_CPYTHON;
                // SAFETY: storage is 64 bytes, pointer-aligned, and stays put until end (caller's
                // contract); CPython's PyCriticalSection (16 B) fits at offset 0. `op` is a live
                // object and a thread state is attached (caller's contract).
                unsafe { begin(cs.storage.as_mut_ptr().cast::<c_void>(), op) };
            }
            None => cs.storage[STATE] = ACTIVE_NOOP,
        }
        FTSHIM_OK
    }

    /// `ftshim_critical_section_end` — see include/ftshim.h.
    pub unsafe fn ftshim_critical_section_end(cs: *mut ftshim_critical_section) -> ftshim_status {
        let cs = try_mut!(cs);
        match cs.storage[STATE] {
            ACTIVE_CPYTHON => {
                cs.storage[STATE] = 0;
                let end = match runtime::get() {
                    Ok(runtime::Runtime { critical_section: Some((_, end)), .. }) => *end,
                    // begin only records ACTIVE_CPYTHON after resolving these pointers.
                    _ => return FTSHIM_ERR_NO_RUNTIME,
                };
                // SAFETY: the storage holds a section CPython began (state word says so).
                unsafe { end(cs.storage.as_mut_ptr().cast::<c_void>()) };
                FTSHIM_OK
            }
            ACTIVE_NOOP => {
                cs.storage[STATE] = 0;
                FTSHIM_OK
            }
            _ => FTSHIM_ERR_NOT_ACTIVE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::FTSHIM_ERR_NULL_ARGUMENT;

    #[test]
    fn null_arguments_and_inactive_storage_are_reported() {
        let mut cs = ftshim_critical_section { storage: [0; 8] };
        let obj = 8usize as *mut PyObject; // never dereferenced: the NULL checks come first
        // SAFETY: NULL and inactive storage are exactly what these calls must reject.
        unsafe {
            assert_eq!(ftshim_critical_section_begin(std::ptr::null_mut(), obj), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(
                ftshim_critical_section_begin(&mut cs, std::ptr::null_mut()),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            assert_eq!(ftshim_critical_section_end(std::ptr::null_mut()), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_critical_section_end(&mut cs), FTSHIM_ERR_NOT_ACTIVE);
            // No Python in the unit-test process.
            assert_eq!(ftshim_critical_section_begin(&mut cs, obj), FTSHIM_ERR_NO_RUNTIME);
            assert_eq!(ftshim_critical_section_end(&mut cs), FTSHIM_ERR_NOT_ACTIVE);
        }
        assert_eq!(std::mem::size_of::<ftshim_critical_section>(), 64);
    }
}
