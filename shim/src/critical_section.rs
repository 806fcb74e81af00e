//! Critical sections — the `Critical sections` section of `include/ftshim.h` (the functions; the
//! macros compile to CPython's own code and do not come here).
//!
//! The caller's 64-byte `ftshim_critical_section` holds CPython's `PyCriticalSection` or
//! `PyCriticalSection2` at offset 0, where CPython links it into the thread's stack of sections,
//! and a state word in the last slot that says which kind of section is active, so that `end`
//! calls the matching CPython function and `end` on storage that was never begun is reported
//! instead of corrupting the thread's section stack.

#![allow(non_camel_case_types)]

use std::ffi::c_void;

use crate::checked;
use crate::runtime::{self, Begin2Mutex, Innermost, PyMutex, PyObject, Sections};
use crate::status::{
    FTSHIM_ERR_NO_RUNTIME, FTSHIM_ERR_NOT_ACTIVE, FTSHIM_ERR_OUT_OF_ORDER, FTSHIM_ERR_WOULD_DEADLOCK,
    FTSHIM_OK, ftshim_status,
};

/// `ftshim_critical_section` in the header: 8 pointer-sized words, contents private.
#[repr(C)]
pub struct ftshim_critical_section {
    storage: [usize; 8],
}

/// Index of the state word; CPython's struct (at most 3 words in 3.13) occupies the words before.
const STATE: usize = 7;
/// The state word of an active section is `MAGIC + kind`; anything else (zero after an end,
/// whatever uninitialised storage holds) is "not active".
const MAGIC: usize = 0x6674_7368_696d_0000; // "ftshim\0\0"
/// One-object section held through CPython (odd kinds end with `PyCriticalSection_End`).
const ACTIVE_ONE: usize = MAGIC + 1;
/// Two-object section held through CPython (even kinds end with `PyCriticalSection2_End`).
const ACTIVE_TWO: usize = MAGIC + 2;
/// Mutex section held through CPython.
const ACTIVE_MUTEX: usize = MAGIC + 3;
/// Two-mutex section held through CPython (ABI 1.1).
const ACTIVE_TWO_MUTEX: usize = MAGIC + 4;
/// A section "held" on a GIL build, where sections are no-ops.
const ACTIVE_NOOP: usize = MAGIC + 5;

impl ftshim_critical_section {
    fn cpython_storage(&mut self) -> *mut c_void {
        self.storage.as_mut_ptr().cast()
    }

    /// Marks the section active with `kind` and runs `begin` with CPython's sections, or marks it
    /// a no-op on a GIL build. The fast path is [`runtime::fast_sections`]: resolved, free-threaded,
    /// checked mode off.
    #[inline(always)]
    fn begin(
        &mut self,
        kind: usize,
        mutexes: [*mut PyMutex; 2],
        begin: impl FnOnce(&Sections, *mut c_void),
    ) -> ftshim_status {
        if let Some(sections) = runtime::fast_sections() {
            self.storage[STATE] = kind;
            begin(sections, self.cpython_storage());
            return FTSHIM_OK;
        }
        self.begin_slow(kind, mutexes, begin)
    }

    #[inline(always)]
    fn begin_unchecked(&mut self, kind: usize, begin: impl FnOnce(&Sections, *mut c_void)) -> ftshim_status {
        match runtime::sections() {
            Ok(Some(sections)) => {
                self.storage[STATE] = kind;
                begin(sections, self.cpython_storage());
            }
            Ok(None) => self.storage[STATE] = ACTIVE_NOOP,
            Err(_) => return FTSHIM_ERR_NO_RUNTIME,
        }
        FTSHIM_OK
    }

    /// [`Self::begin`] off its fast path: the first call, a GIL build, or checked mode, where the
    /// mutexes' lock order is recorded and a mutex this thread holds through `ftshim_mutex_lock`
    /// is refused (`FTSHIM_ERR_WOULD_DEADLOCK`); the section joins the thread's stack so that
    /// `end` can tell the order ([`checked`]).
    #[cold]
    #[inline(never)]
    fn begin_slow(
        &mut self,
        kind: usize,
        mutexes: [*mut PyMutex; 2],
        begin: impl FnOnce(&Sections, *mut c_void),
    ) -> ftshim_status {
        if !checked::on() {
            return self.begin_unchecked(kind, begin);
        }
        let ms = mutexes.map(|m| m as usize);
        for m in ms.into_iter().filter(|m| *m != 0) {
            if checked::before_lock(m).is_err() {
                return FTSHIM_ERR_WOULD_DEADLOCK;
            }
        }
        let status = self.begin_unchecked(kind, begin);
        if status == FTSHIM_OK {
            checked::section_begun(self as *mut Self as usize, ms);
        }
        status
    }

    /// The calling thread's innermost section as CPython records it (`PyThreadState`'s tagged
    /// `critical_section`), untagged; 0 without a thread state.
    #[inline(always)]
    fn cpython_innermost(top: Innermost) -> usize {
        // SAFETY: PyThreadState_GetUnchecked has no preconditions; a non-NULL result is the live
        // thread state of this thread, `offset` its `critical_section` field (layout-checked).
        let tagged = unsafe {
            let ts = (top.tstate)();
            if ts.is_null() { 0 } else { ts.cast::<u8>().add(top.offset).cast::<usize>().read() }
        };
        tagged & !runtime::CRITICAL_SECTION_TAGS
    }

    /// Checked mode, before an end of an active section in state `state`: true (reported) when
    /// it is not the thread's innermost section — by CPython's record when there is one (the
    /// same reading `end` makes, here on the cold path), else by the checker's own stack.
    #[cold]
    #[inline(never)]
    fn end_refused_by_checker(&mut self, state: usize) -> bool {
        if !checked::on() || !(ACTIVE_ONE..=ACTIVE_NOOP).contains(&state) {
            return false;
        }
        let innermost = match state {
            ACTIVE_NOOP => None,
            _ => runtime::sections().ok().flatten().and_then(|s| s.innermost).map(Self::cpython_innermost),
        };
        checked::section_ending(self as *mut Self as usize, innermost).is_err()
    }

    /// Ends a section CPython began (`state` one of its kinds), unless it is not the calling
    /// thread's innermost one: CPython's end pops whatever is on top of the thread's stack, so
    /// ending any other section would unlink (and later unlock) the wrong one.
    #[inline(always)]
    fn end_cpython(&mut self, state: usize, s: &Sections) -> ftshim_status {
        if s.innermost.is_some_and(|top| Self::cpython_innermost(top) != self as *mut Self as usize) {
            return FTSHIM_ERR_OUT_OF_ORDER;
        }
        self.storage[STATE] = 0;
        let end = if (state - MAGIC) % 2 == 0 { s.end2 } else { s.end };
        // SAFETY: the state word said CPython began a section of this kind in this storage.
        unsafe { end(self.cpython_storage()) };
        FTSHIM_OK
    }

    /// `ftshim_critical_section_end` off its fast path: checked mode, a GIL build's no-op
    /// section, storage that is not an active section.
    #[cold]
    #[inline(never)]
    fn end_slow(&mut self, state: usize) -> ftshim_status {
        if checked::maybe() && self.end_refused_by_checker(state) {
            return FTSHIM_ERR_OUT_OF_ORDER;
        }
        match state {
            ACTIVE_ONE..=ACTIVE_TWO_MUTEX => {
                // A CPython kind was recorded, so the runtime resolved with sections.
                let Ok(Some(s)) = runtime::sections() else { return FTSHIM_ERR_NO_RUNTIME };
                self.end_cpython(state, s)
            }
            ACTIVE_NOOP => {
                self.storage[STATE] = 0;
                FTSHIM_OK
            }
            _ => FTSHIM_ERR_NOT_ACTIVE,
        }
    }
}

ftshim_boundary::export! {
    /// `ftshim_critical_section_begin` — see include/ftshim.h.
    pub unsafe fn ftshim_critical_section_begin(
        cs: *mut ftshim_critical_section,
        op: *mut PyObject,
    ) -> ftshim_status {
        let cs = ftshim_boundary::try_mut!(cs);
        let op = ftshim_boundary::try_nonnull!(op);
        // SAFETY: storage is 64 bytes, pointer-aligned, and stays put until end (caller's
        // contract); PyCriticalSection (16 B) fits at offset 0; `op` is live and a thread state
        // is attached (caller's contract).
        cs.begin(ACTIVE_ONE, [std::ptr::null_mut(); 2], |s, storage| unsafe { (s.begin)(storage, op) })
    }

    /// `ftshim_critical_section2_begin` — see include/ftshim.h.
    pub unsafe fn ftshim_critical_section2_begin(
        cs: *mut ftshim_critical_section,
        a: *mut PyObject,
        b: *mut PyObject,
    ) -> ftshim_status {
        let cs = ftshim_boundary::try_mut!(cs);
        let a = ftshim_boundary::try_nonnull!(a);
        let b = ftshim_boundary::try_nonnull!(b);
        // SAFETY: as in ftshim_critical_section_begin; PyCriticalSection2 (24 B) fits.
        cs.begin(ACTIVE_TWO, [std::ptr::null_mut(); 2], |s, storage| unsafe { (s.begin2)(storage, a, b) })
    }

    /// `ftshim_critical_section_begin_mutex` — see include/ftshim.h.
    pub unsafe fn ftshim_critical_section_begin_mutex(
        cs: *mut ftshim_critical_section,
        m: *mut PyMutex,
    ) -> ftshim_status {
        let cs = ftshim_boundary::try_mut!(cs);
        let m = ftshim_boundary::try_nonnull!(m);
        // SAFETY: as in ftshim_critical_section_begin; `m` is a live one-byte mutex with
        // PyMutex's layout that stays put while the section is held (caller's contract).
        cs.begin(ACTIVE_MUTEX, [m, std::ptr::null_mut()], |s, storage| unsafe { (s.begin_mutex)(storage, m) })
    }

    /// `ftshim_critical_section2_begin_mutex` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_critical_section2_begin_mutex(
        cs: *mut ftshim_critical_section,
        m1: *mut PyMutex,
        m2: *mut PyMutex,
    ) -> ftshim_status {
        let cs = ftshim_boundary::try_mut!(cs);
        let m1 = ftshim_boundary::try_nonnull!(m1);
        let m2 = ftshim_boundary::try_nonnull!(m2);
        // SAFETY: as in ftshim_critical_section_begin_mutex, for both mutexes; PyCriticalSection2
        // (24 B) fits in the storage.
        cs.begin(ACTIVE_TWO_MUTEX, [m1, m2], |s, storage| unsafe { begin2_mutex(s.begin2_mutex, storage, m1, m2) })
    }

    /// `ftshim_critical_section_end` — see include/ftshim.h.
    pub unsafe fn ftshim_critical_section_end(cs: *mut ftshim_critical_section) -> ftshim_status {
        let cs = ftshim_boundary::try_mut!(cs);
        let state = cs.storage[STATE];
        if let (ACTIVE_ONE..=ACTIVE_TWO_MUTEX, Some(s)) = (state, runtime::fast_sections()) {
            return cs.end_cpython(state, s);
        }
        cs.end_slow(state)
    }
}

/// Offset of `PyCriticalSection2._cs_mutex2` (after the base `{uintptr_t _cs_prev; PyMutex
/// *_cs_mutex;}`); abi-tests/tests/layout.rs checks it against the real headers.
pub const CS2_MUTEX2_OFFSET: usize = 2 * std::mem::size_of::<usize>();

/// Begins a two-mutex section in `storage` as CPython 3.14's `PyCriticalSection2_BeginMutex`
/// does: the same mutex twice is one lock, otherwise the lower address is locked first.
///
/// # Safety
/// `storage` is at least a `PyCriticalSection2`, pointer-aligned, and stays put until the end;
/// both mutexes are live and stay put; a thread state is attached.
unsafe fn begin2_mutex(how: Begin2Mutex, storage: *mut c_void, m1: *mut PyMutex, m2: *mut PyMutex) {
    match how {
        // SAFETY: the caller's contract is this function's.
        Begin2Mutex::Public(begin) => unsafe { begin(storage, m1, m2) },
        Begin2Mutex::Slow { one, two } => {
            if m1 == m2 {
                // SAFETY: CPython's End2 unlocks `_cs_mutex2` only when it is not NULL; the
                // one-mutex slow path then fills the base and pushes the section.
                unsafe {
                    storage
                        .cast::<u8>()
                        .add(CS2_MUTEX2_OFFSET)
                        .cast::<*mut PyMutex>()
                        .write(std::ptr::null_mut());
                    one(storage, m1);
                }
            } else {
                let (lo, hi) = if (m2 as usize) < (m1 as usize) { (m2, m1) } else { (m1, m2) };
                // SAFETY: distinct mutexes in address order, neither locked by this call yet.
                unsafe { two(storage, lo, hi, 0) };
            }
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
        let mut m: PyMutex = 0;
        // SAFETY: NULL and inactive storage are exactly what these calls must reject.
        unsafe {
            assert_eq!(ftshim_critical_section_begin(std::ptr::null_mut(), obj), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(
                ftshim_critical_section_begin(&mut cs, std::ptr::null_mut()),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ftshim_critical_section2_begin(&mut cs, obj, std::ptr::null_mut()),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ftshim_critical_section2_begin(&mut cs, std::ptr::null_mut(), obj),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ftshim_critical_section_begin_mutex(&mut cs, std::ptr::null_mut()),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            assert_eq!(ftshim_critical_section_end(std::ptr::null_mut()), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_critical_section_end(&mut cs), FTSHIM_ERR_NOT_ACTIVE);
            assert_eq!(
                ftshim_critical_section2_begin_mutex(&mut cs, &mut m, std::ptr::null_mut()),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ftshim_critical_section2_begin_mutex(&mut cs, std::ptr::null_mut(), &mut m),
                FTSHIM_ERR_NULL_ARGUMENT
            );
            // No Python in the unit-test process.
            assert_eq!(ftshim_critical_section_begin(&mut cs, obj), FTSHIM_ERR_NO_RUNTIME);
            assert_eq!(ftshim_critical_section_begin_mutex(&mut cs, &mut m), FTSHIM_ERR_NO_RUNTIME);
            assert_eq!(ftshim_critical_section_end(&mut cs), FTSHIM_ERR_NOT_ACTIVE);
        }
        assert_eq!(std::mem::size_of::<ftshim_critical_section>(), 64);
    }
}
