//! Declaring GIL freedom — the `Declaring GIL freedom` section of `include/ftshim.h` (ABI 1.1).
//!
//! A free-threaded CPython re-enables the GIL for the whole process when it imports a module that
//! does not declare that it can run without it. Multi-phase modules declare it with the
//! `Py_mod_gil` slot (the header's `FTSHIM_MOD_GIL_NOT_USED_SLOT`); single-phase modules call
//! `PyUnstable_Module_SetGIL`, which only FT builds export — this is that call for every build.

use std::ffi::c_void;

use crate::runtime::{self, PyObject};
use crate::status::{FTSHIM_ERR_INVALID_ARGUMENT, FTSHIM_ERR_NO_RUNTIME, FTSHIM_OK, ftshim_status};

/// CPython's `Py_MOD_GIL_NOT_USED`: `(void *)1`.
const PY_MOD_GIL_NOT_USED: *mut c_void = std::ptr::without_provenance_mut(1);

ftshim_boundary::export! {
    /// `ftshim_module_set_gil_not_used` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_module_set_gil_not_used(module: *mut PyObject) -> ftshim_status {
        let module = ftshim_boundary::try_nonnull!(module);
        let Ok(rt) = runtime::get() else { return FTSHIM_ERR_NO_RUNTIME };
        match rt.module_set_gil {
            // SAFETY: `module` is a live object and a thread state is attached (the header's
            // contract); CPython checks that it is a module and raises otherwise.
            Some(set_gil) => match unsafe { set_gil(module, PY_MOD_GIL_NOT_USED) } {
                0 => FTSHIM_OK,
                _ => FTSHIM_ERR_INVALID_ARGUMENT,
            },
            None => FTSHIM_OK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::FTSHIM_ERR_NULL_ARGUMENT;

    #[test]
    fn null_and_no_runtime() {
        // SAFETY: NULL is rejected first; without a runtime nothing is dereferenced.
        unsafe {
            assert_eq!(ftshim_module_set_gil_not_used(std::ptr::null_mut()), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_module_set_gil_not_used(8usize as *mut PyObject), FTSHIM_ERR_NO_RUNTIME);
        }
    }
}
