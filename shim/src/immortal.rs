//! Immortal objects — the `Immortal objects` section of `include/ftshim.h`.
//!
//! CPython 3.14+ exports `_Py_SetImmortal` and `PyUnstable_IsImmortal`: libftshim applies its own
//! checks (no str; on FT, no object another thread may reference) and then calls them. CPython
//! 3.12/3.13 export no way to make an object immortal, so there libftshim writes the refcount
//! fields itself, exactly as CPython's internal `_Py_SetImmortal` does. Every offset and value it
//! relies on is in [`layout`], and abi-tests compares them with bindgen's view of each
//! interpreter's real headers (3.14t and 3.15t included: their FT header keeps 3.13t's offsets).

use std::ffi::c_void;
use std::sync::atomic::{AtomicIsize, AtomicU32, AtomicUsize, Ordering::Relaxed};

use crate::runtime::{self, ImmortalApi, PyObject, Runtime};
use crate::status::{
    FTSHIM_ERR_NO_RUNTIME, FTSHIM_ERR_SHARED, FTSHIM_ERR_STR, FTSHIM_ERR_UNSUPPORTED, FTSHIM_OK,
    ftshim_status,
};

/// The object-header layout facts libftshim relies on (64-bit platforms).
pub mod layout {
    /// FT 3.13t: `uintptr_t ob_tid` offset.
    pub const FT_OB_TID: usize = 0;
    /// FT 3.13t: `PyMutex ob_mutex` offset (the object's lock, which critical sections take).
    pub const FT_OB_MUTEX: usize = 10;
    /// FT 3.13t: `uint32_t ob_ref_local` offset.
    pub const FT_OB_REF_LOCAL: usize = 12;
    /// FT 3.13t: `Py_ssize_t ob_ref_shared` offset.
    pub const FT_OB_REF_SHARED: usize = 16;
    /// FT 3.13t: `PyTypeObject *ob_type` offset.
    pub const FT_OB_TYPE: usize = 24;
    /// FT 3.13t: `sizeof(PyObject)`.
    pub const FT_PYOBJECT_SIZE: usize = 32;
    /// GIL builds: `Py_ssize_t ob_refcnt` offset.
    pub const GIL_OB_REFCNT: usize = 0;
    /// GIL builds: `PyTypeObject *ob_type` offset.
    pub const GIL_OB_TYPE: usize = 8;
    /// GIL builds: `sizeof(PyObject)`.
    pub const GIL_PYOBJECT_SIZE: usize = 16;
    /// FT: `_Py_IMMORTAL_REFCNT_LOCAL`.
    pub const FT_IMMORTAL_REFCNT_LOCAL: u32 = u32::MAX;
    /// FT: `_Py_UNOWNED_TID`.
    pub const FT_UNOWNED_TID: usize = 0;
    /// GIL 3.12/3.13 on 64-bit: `_Py_IMMORTAL_REFCNT` (`UINT_MAX`).
    pub const GIL_IMMORTAL_REFCNT: isize = u32::MAX as isize;
    /// `Py_TPFLAGS_UNICODE_SUBCLASS`.
    pub const TPFLAGS_UNICODE_SUBCLASS: std::ffi::c_ulong = 1 << 28;
    /// 3.11 (no immortal objects): what `set_immortal` adds to pin an object.
    pub const PIN_BIAS_311: isize = 1 << 60;
    /// 3.11: a refcount at or above this reads as pinned.
    pub const PIN_THRESHOLD_311: isize = 1 << 59;

    // A pinned object stays pinned through 2^59 net decrefs and cannot overflow through 2^62
    // net increfs: far beyond what any program does.
    const _: () = assert!(PIN_BIAS_311 - PIN_THRESHOLD_311 >= 1 << 59 && PIN_BIAS_311 < isize::MAX / 4);
}

/// The calling thread's id as CPython's `_Py_ThreadId()` computes it (the thread pointer).
#[inline]
fn current_thread_id() -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let tid: usize;
        // SAFETY: reads the first word of the thread control block, which on x86-64 Linux is
        // the TCB's own address: what CPython's _Py_ThreadId reads with `movq %fs:0`.
        unsafe { std::arch::asm!("mov {}, fs:0", out(reg) tid, options(nostack, readonly, preserves_flags)) };
        Some(tid)
    }
    #[cfg(all(target_arch = "aarch64", target_os = "linux"))]
    {
        let tid: usize;
        // SAFETY: reads the thread pointer register, as CPython's _Py_ThreadId does.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) tid, options(nomem, nostack, preserves_flags))
        };
        Some(tid)
    }
    #[cfg(not(any(
        all(target_arch = "x86_64", target_os = "linux"),
        all(target_arch = "aarch64", target_os = "linux")
    )))]
    {
        None
    }
}

/// A field of the object header at `offset`, as an atomic (CPython itself reads these fields
/// with relaxed atomics on FT builds; on GIL builds the GIL orders every access).
///
/// # Safety
/// `op` is a live object and `offset` is the offset of a field of type `T` in its header.
unsafe fn field<T>(op: *mut PyObject, offset: usize) -> &'static T {
    // SAFETY: per the contract, the address is a live, aligned field of type T.
    unsafe { &*op.cast::<u8>().add(offset).cast::<T>() }
}

/// What build family the runtime is, for the layout to use.
enum Family {
    Ft313,
    Gil312Plus,
    Gil311,
    /// 3.14+: CPython's exported functions; FT or not.
    Exported(ImmortalApi, bool),
}

fn family(rt: &Runtime) -> Result<Family, ftshim_status> {
    if cfg!(not(target_pointer_width = "64")) {
        return Err(FTSHIM_ERR_UNSUPPORTED);
    }
    match (rt.version(), rt.free_threaded) {
        ((3, 13), true) => Ok(Family::Ft313),
        ((3, 12 | 13), false) => Ok(Family::Gil312Plus),
        ((3, 11), false) => Ok(Family::Gil311),
        _ => rt.immortal.map(|api| Family::Exported(api, rt.free_threaded)).ok_or(FTSHIM_ERR_UNSUPPORTED),
    }
}

/// # Safety
/// `op` is a live object; a thread state is attached.
unsafe fn is_immortal(op: *mut PyObject, family: &Family) -> bool {
    use layout::*;
    // SAFETY: offsets per family, checked against the headers by abi-tests.
    unsafe {
        match family {
            Family::Ft313 => {
                field::<AtomicU32>(op, FT_OB_REF_LOCAL).load(Relaxed) == FT_IMMORTAL_REFCNT_LOCAL
            }
            Family::Gil312Plus => (field::<AtomicIsize>(op, GIL_OB_REFCNT).load(Relaxed) as i32) < 0,
            Family::Gil311 => field::<AtomicIsize>(op, GIL_OB_REFCNT).load(Relaxed) >= PIN_THRESHOLD_311,
            Family::Exported(api, _) => (api.is)(op) != 0,
        }
    }
}

/// # Safety
/// `op` is a live object; a thread state is attached.
unsafe fn is_str(op: *mut PyObject, rt: &Runtime, family: &Family) -> bool {
    let ft = matches!(family, Family::Ft313 | Family::Exported(_, true));
    let offset = if ft { layout::FT_OB_TYPE } else { layout::GIL_OB_TYPE };
    // SAFETY: ob_type is a live type object pointer at that offset.
    let tp = unsafe { field::<AtomicUsize>(op, offset) }.load(Relaxed) as *mut c_void;
    // SAFETY: PyType_GetFlags takes any type object.
    let flags = unsafe { (rt.object.type_get_flags)(tp) };
    flags & layout::TPFLAGS_UNICODE_SUBCLASS != 0
}

/// # Safety
/// `op` is a live object; a thread state is attached; no other thread touches its refcount
/// (checked by the caller on FT builds).
unsafe fn untrack(op: *mut PyObject, rt: &Runtime) {
    // SAFETY: both functions accept any live object with an attached thread state.
    unsafe {
        if (rt.object.gc_is_tracked)(op) != 0 {
            (rt.object.gc_untrack)(op.cast());
        }
    }
}

/// # Safety
/// `op` is a live object; a thread state is attached.
unsafe fn set_immortal(op: *mut PyObject, rt: &Runtime) -> ftshim_status {
    use layout::*;
    let family = match family(rt) {
        Ok(f) => f,
        Err(status) => return status,
    };
    // SAFETY: `op` is live (caller's contract) and every offset is the family's layout.
    unsafe {
        if is_str(op, rt, &family) {
            return FTSHIM_ERR_STR;
        }
        if is_immortal(op, &family) {
            return FTSHIM_OK;
        }
        match family {
            Family::Ft313 => {
                if let Err(status) = owned_by_this_thread(op) {
                    return status;
                }
                let tid = field::<AtomicUsize>(op, FT_OB_TID);
                let shared = field::<AtomicIsize>(op, FT_OB_REF_SHARED);
                untrack(op, rt);
                tid.store(FT_UNOWNED_TID, Relaxed);
                field::<AtomicU32>(op, FT_OB_REF_LOCAL).store(FT_IMMORTAL_REFCNT_LOCAL, Relaxed);
                shared.store(0, Relaxed);
            }
            Family::Gil312Plus => {
                untrack(op, rt);
                field::<AtomicIsize>(op, GIL_OB_REFCNT).store(GIL_IMMORTAL_REFCNT, Relaxed);
            }
            Family::Gil311 => {
                untrack(op, rt);
                field::<AtomicIsize>(op, GIL_OB_REFCNT).fetch_add(PIN_BIAS_311, Relaxed);
            }
            Family::Exported(api, free_threaded) => {
                if free_threaded && let Err(status) = owned_by_this_thread(op) {
                    return status;
                }
                (api.set)(op);
            }
        }
    }
    FTSHIM_OK
}

/// ftshim's rule on free-threaded builds: the calling thread owns the object (`ob_tid`) and no
/// other thread ever took a reference (`ob_ref_shared == 0`); else `FTSHIM_ERR_SHARED`.
///
/// # Safety
/// `op` is a live object of a free-threaded build (the FT header layout); a thread state is
/// attached.
unsafe fn owned_by_this_thread(op: *mut PyObject) -> Result<(), ftshim_status> {
    let Some(me) = current_thread_id() else { return Err(FTSHIM_ERR_UNSUPPORTED) };
    // SAFETY: FT header offsets, checked against the headers by abi-tests; `op` is live.
    let (tid, shared) = unsafe {
        (field::<AtomicUsize>(op, layout::FT_OB_TID), field::<AtomicIsize>(op, layout::FT_OB_REF_SHARED))
    };
    if tid.load(Relaxed) != me || shared.load(Relaxed) != 0 {
        return Err(FTSHIM_ERR_SHARED);
    }
    Ok(())
}

ftshim_boundary::export! {
    /// `ftshim_object_set_immortal` — see include/ftshim.h.
    pub unsafe fn ftshim_object_set_immortal(op: *mut PyObject) -> ftshim_status {
        let op = ftshim_boundary::try_nonnull!(op);
        let Ok(rt) = runtime::get() else { return FTSHIM_ERR_NO_RUNTIME };
        // SAFETY: `op` is non-NULL and live with a thread state attached (caller's contract).
        unsafe { set_immortal(op, rt) }
    }

    /// `ftshim_object_is_immortal` — see include/ftshim.h. Returns 1 or 0 as the answer, else a
    /// negative status; so its NULL and panic values are a status's.
    pub unsafe fn ftshim_object_is_immortal(op: *mut PyObject) -> ftshim_status {
        let op = ftshim_boundary::try_nonnull!(op);
        let Ok(rt) = runtime::get() else { return FTSHIM_ERR_NO_RUNTIME };
        match family(rt) {
            // SAFETY: as above.
            Ok(f) => ftshim_status(i32::from(unsafe { is_immortal(op, &f) })),
            Err(status) => status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::FTSHIM_ERR_NULL_ARGUMENT;

    #[test]
    fn null_and_no_runtime_statuses() {
        let fake = 64usize as *mut PyObject; // never dereferenced: no runtime in this process
        // SAFETY: NULL is rejected before use; without a runtime nothing is dereferenced.
        unsafe {
            assert_eq!(ftshim_object_set_immortal(std::ptr::null_mut()), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_object_is_immortal(std::ptr::null_mut()), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_object_set_immortal(fake), FTSHIM_ERR_NO_RUNTIME);
            assert_eq!(ftshim_object_is_immortal(fake), FTSHIM_ERR_NO_RUNTIME);
        }
    }

    #[test]
    fn thread_ids_differ_between_threads_and_are_stable_within_one() {
        let here = current_thread_id().expect("supported platform");
        assert_eq!(current_thread_id(), Some(here));
        let there = std::thread::spawn(|| current_thread_id().unwrap()).join().unwrap();
        assert_ne!(here, there);
    }
}
