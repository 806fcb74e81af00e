//! Critical sections — the `Critical sections` section of `include/ftshim.h` (the functions; the
//! macros compile to CPython's own code and do not come here).
//!
//! The caller's 64-byte `ftshim_critical_section` holds CPython's `PyCriticalSection` or
//! `PyCriticalSection2` at offset 0, where CPython links it into the thread's stack of sections,
//! and a state word in the last slot that says which kind of section is active, so that `end`
//! calls the matching CPython function and `end` on storage that was never begun is reported
//! instead of corrupting the thread's section stack.
//!
//! One-object sections on 3.13t take a direct path (`begin_direct`, `end_direct`): the same
//! steps as CPython 3.13's inline section code, done here, so the exported pair costs about what
//! CPython's own functions do (docs/benchmarks.md). Such a section also records the thread state
//! and thread that began it (words 4 and 5), from which `end` tells that it is the thread's
//! innermost without a thread-local lookup. Everything off that path (contention, checked mode,
//! the other kinds, GIL builds, 3.14t/3.15t) goes through CPython's functions.

#![allow(non_camel_case_types)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering::*};

use crate::checked;
use crate::mutex::ftshim_mutex;
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
/// One-object section held through CPython (ends with `PyCriticalSection_End`).
const ACTIVE_ONE: usize = MAGIC + 1;
/// Two-object section held through CPython (ends with `PyCriticalSection2_End`, as
/// [`ACTIVE_TWO_MUTEX`] does).
const ACTIVE_TWO: usize = MAGIC + 2;
/// Mutex section held through CPython.
const ACTIVE_MUTEX: usize = MAGIC + 3;
/// Two-mutex section held through CPython (ABI 1.1).
const ACTIVE_TWO_MUTEX: usize = MAGIC + 4;
/// A section "held" on a GIL build, where sections are no-ops.
const ACTIVE_NOOP: usize = MAGIC + 5;
/// One-object section begun on the direct path ([`runtime::Direct`], 3.13t): CPython's own
/// `PyCriticalSection` at offset 0 as CPython's inline code fills it, and in [`BEGUN_TSTATE`] and
/// [`BEGUN_THREAD`] who began it; CPython's `PyCriticalSection_End` can end it too. Not `MAGIC`
/// based: a sign-extended 32-bit value, which x86-64 stores and compares as an immediate, one
/// instruction each on the hottest path (as unlikely in stale storage as any other fixed word).
const ACTIVE_ONE_DIRECT: usize = 0xffff_ffff_f75b_0007;
/// Word holding the `PyThreadState *` that began an [`ACTIVE_ONE_DIRECT`] section.
const BEGUN_TSTATE: usize = 4;
/// Word holding the thread pointer ([`thread_pointer`]) of the thread that began it.
const BEGUN_THREAD: usize = 5;
/// `_Py_CRITICAL_SECTION_INACTIVE`, the tag of a suspended section (layout.rs checks it).
pub const CRITICAL_SECTION_INACTIVE: usize = 0x1;

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

    /// `ftshim_critical_section_begin` on the direct path: what CPython 3.13's inline
    /// `_PyCriticalSection_Begin` does (pycore_critical_section.h) — lock `op`'s `ob_mutex` with
    /// one compare-and-swap and push the section on the thread's stack — so that the exported
    /// function costs what CPython's own `PyCriticalSection_Begin` does instead of adding a call
    /// layer to it. Anything else (a contended mutex, no thread state) is CPython's function.
    /// Also records the thread state and thread, which let [`Self::end_direct`] check that the
    /// section is the thread's innermost without a thread-local lookup.
    ///
    /// # Safety
    /// `op` is a live object and the calling thread has an attached thread state (the header's
    /// preconditions); the storage stays put until the end.
    #[inline(always)]
    unsafe fn begin_direct(&mut self, d: &runtime::Direct, op: *mut PyObject) -> ftshim_status {
        // SAFETY: `op` is a live object; `ob_mutex` is its one-byte PyMutex at FT_OB_MUTEX
        // (layout-checked), only ever accessed atomically.
        let m = unsafe { &*op.cast::<u8>().add(crate::immortal::layout::FT_OB_MUTEX).cast::<AtomicU8>() };
        if m.compare_exchange(0, 1, SeqCst, Relaxed).is_err() {
            return self.begin_one(op);
        }
        self.storage[1] = m.as_ptr() as usize;
        // SAFETY: PyThreadState_GetUnchecked has no preconditions.
        let tstate = unsafe { (d.tstate)() };
        if tstate.is_null() {
            return self.begin_without_thread_state();
        }
        // SAFETY: `tstate` is this thread's attached thread state; `critical_section` is at
        // DIRECT_TSTATE_CRITICAL_SECTION in 3.13 (layout-checked) and only this thread writes it.
        let top = unsafe { tstate.cast::<u8>().add(runtime::DIRECT_TSTATE_CRITICAL_SECTION).cast::<usize>() };
        // The order and values of CPython's `_PyCriticalSection_BeginMutex`: `_cs_mutex` (above),
        // `_cs_prev`, then the thread's top.
        // SAFETY: as above.
        self.storage[0] = unsafe { top.read() };
        // SAFETY: as above.
        unsafe { top.write(self as *mut Self as usize) };
        self.storage[BEGUN_TSTATE] = tstate as usize;
        self.storage[BEGUN_THREAD] = thread_pointer();
        self.storage[STATE] = ACTIVE_ONE_DIRECT;
        FTSHIM_OK
    }

    /// [`Self::begin_direct`] locked `storage[1]`, the object's mutex, and then found no thread
    /// state (against the header's precondition): unlock it, and do what CPython's function does.
    #[cold]
    #[inline(never)]
    fn begin_without_thread_state(&mut self) -> ftshim_status {
        let m = self.storage[1];
        // SAFETY: begin_direct stored the object's mutex, which this call locked.
        let _ = unsafe { &*(m as *const ftshim_mutex) }.unlock();
        self.begin_one((m - crate::immortal::layout::FT_OB_MUTEX) as *mut PyObject)
    }

    /// `ftshim_critical_section_begin` off the direct path, through CPython's function.
    #[inline(never)]
    fn begin_one(&mut self, op: *mut PyObject) -> ftshim_status {
        // SAFETY: storage is 64 bytes, pointer-aligned, and stays put until end (caller's
        // contract); PyCriticalSection (16 B) fits at offset 0; `op` is live and a thread state
        // is attached (caller's contract).
        self.begin(ACTIVE_ONE, [std::ptr::null_mut(); 2], |s, storage| unsafe { (s.begin)(storage, op) })
    }

    /// `ftshim_critical_section_end` off the direct path.
    #[inline(never)]
    fn end_general(&mut self, state: usize) -> ftshim_status {
        if let (ACTIVE_ONE..=ACTIVE_TWO_MUTEX | ACTIVE_ONE_DIRECT, Some(s)) =
            (state, runtime::fast_sections())
        {
            return self.end_cpython(state, s);
        }
        self.end_slow(state)
    }

    /// `ftshim_critical_section_end` of an [`ACTIVE_ONE_DIRECT`] section on the direct path: what
    /// CPython 3.13's inline `_PyCriticalSection_End` does when the mutex has no parked waiter
    /// (including resuming the section below when it is suspended). False (nothing done)
    /// whenever that or one of the checks does not hold; the caller then takes the general path,
    /// which reads the thread state and hands the rest to CPython.
    ///
    /// Innermost-ness without a thread-local lookup: the section is the top of the stack of the
    /// thread state that began it, untagged (so that thread state is attached: detaching tags
    /// the top inactive), and the calling thread is the one that began it (its thread pointer,
    /// unique among live threads) — so that thread state is the calling thread's.
    #[inline(always)]
    fn end_direct(&mut self) -> bool {
        let me = self as *mut Self as usize;
        if self.storage[BEGUN_THREAD] != thread_pointer() {
            return false;
        }
        let top =
            (self.storage[BEGUN_TSTATE] as *mut u8).wrapping_add(runtime::DIRECT_TSTATE_CRITICAL_SECTION);
        let top = top.cast::<usize>();
        // SAFETY: this thread began the section with this thread state, which is alive while the
        // thread is (the header's precondition: sections end on the thread that began them,
        // before it exits); its `critical_section` is only written by this thread.
        if unsafe { top.read() } != me {
            return false;
        }
        // SAFETY: `_cs_mutex` is the live object's one-byte mutex locked by begin.
        let m = unsafe { &*(self.storage[1] as *const AtomicU8) };
        if m.compare_exchange(1, 0, SeqCst, Relaxed).is_err() {
            return false;
        }
        // CPython's `_PyCriticalSection_Pop`.
        let prev = self.storage[0];
        // SAFETY: as above.
        unsafe { top.write(prev) };
        self.storage[STATE] = 0;
        if prev & CRITICAL_SECTION_INACTIVE != 0 {
            resume(self.storage[BEGUN_TSTATE]);
        }
        true
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
        let active = (ACTIVE_ONE..=ACTIVE_NOOP).contains(&state) || state == ACTIVE_ONE_DIRECT;
        if !active || !checked::on() {
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
        let end = if matches!(state, ACTIVE_TWO | ACTIVE_TWO_MUTEX) { s.end2 } else { s.end };
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
            ACTIVE_ONE..=ACTIVE_TWO_MUTEX | ACTIVE_ONE_DIRECT => {
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
        if let Some(d) = runtime::fast_direct() {
            // SAFETY: the header's preconditions, which begin_direct's are.
            return unsafe { cs.begin_direct(d, op) };
        }
        cs.begin_one(op)
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
        // Only a section begun while checked mode was off is direct, and the checker never
        // saw it begin, so its end needs no checked-mode test.
        if state == ACTIVE_ONE_DIRECT && cs.end_direct() {
            return FTSHIM_OK;
        }
        cs.end_general(state)
    }
}

/// The end of a direct section uncovered a suspended one: CPython's `_PyCriticalSection_Resume`
/// re-takes it, as at the end of CPython's own `_PyCriticalSection_Pop`.
#[cold]
#[inline(never)]
fn resume(tstate: usize) {
    // A direct section was begun, so the runtime is resolved with a direct path.
    if let Some(d) = runtime::direct() {
        // SAFETY: `tstate` is the calling thread's attached thread state (see end_direct), whose
        // top section is suspended.
        unsafe { (d.resume)(tstate as *mut c_void) };
    }
}

/// A value unique to the calling thread among live threads, read without a call: the thread
/// pointer (x86-64: `%fs:0`, which the psABI's TLS layout makes the thread control block's own
/// address; AArch64: `TPIDR_EL0`), else `pthread_self()`.
#[inline(always)]
fn thread_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: usize;
        // SAFETY: reads the word at %fs:0, which glibc and musl point at the TCB itself on every
        // thread (the x86-64 TLS ABI's requirement); no memory is written.
        unsafe {
            std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags))
        };
        tp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let tp: usize;
        // SAFETY: reads the thread pointer register; no memory is touched.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nostack, nomem, preserves_flags))
        };
        tp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() as usize }
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
