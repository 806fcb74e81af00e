//! Finds the host interpreter's entry points once, from the running process.
//!
//! libftshim links against no libpython. At first use it probes the process's global symbol
//! scope (`ftshim_boundary::process`: `Py_Version`, exported since 3.11, and the FT-only exports),
//! and keeps the CPython functions it needs as plain function pointers. The result is cached for
//! the life of the process.
//!
//! Nothing reachable from here allocates or can panic (no `OnceCell` with thread parking, no
//! `CString`): libftshim's code paths stay panic-free, so a module linking `libftshim.a`
//! statically does not carry Rust's panic and backtrace machinery (abi-tests/tests/sizes.rs).

use std::ffi::{c_int, c_ulong, c_void};

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use ftshim_boundary::process;

/// CPython's `PyObject`, opaque: only [`crate::immortal`] reads object memory, through offsets
/// that the tests check against the real headers.
#[repr(C)]
pub struct PyObject {
    _opaque: [u8; 0],
}

/// CPython's `PyMutex` (`struct { uint8_t _bits; }`), the same layout as `ftshim_mutex`.
pub type PyMutex = u8;

/// CPython's critical-section functions (3.13+, acting only on FT builds).
#[derive(Debug, Clone, Copy)]
pub struct Sections {
    /// The one-object section functions' direct path ([`crate::critical_section`]): `Some` on
    /// 3.13t only, the free-threaded version whose inline section code it transcribes and which
    /// runs here.
    pub direct: Option<Direct>,
    /// `PyCriticalSection_Begin(PyCriticalSection *, PyObject *)`.
    pub begin: unsafe extern "C" fn(*mut c_void, *mut PyObject),
    /// `PyCriticalSection_End(PyCriticalSection *)`; also ends a mutex section.
    pub end: unsafe extern "C" fn(*mut c_void),
    /// `PyCriticalSection2_Begin(PyCriticalSection2 *, PyObject *, PyObject *)`.
    pub begin2: unsafe extern "C" fn(*mut c_void, *mut PyObject, *mut PyObject),
    /// `PyCriticalSection2_End(PyCriticalSection2 *)`.
    pub end2: unsafe extern "C" fn(*mut c_void),
    /// `PyCriticalSection_BeginMutex(PyCriticalSection *, PyMutex *)` on 3.14+, else 3.13's
    /// exported `_PyCriticalSection_BeginSlow` with the same signature and effect (push the
    /// section on the thread's stack, then `PyMutex_Lock`).
    pub begin_mutex: unsafe extern "C" fn(*mut c_void, *mut PyMutex),
    /// Two-mutex sections (ABI 1.1).
    pub begin2_mutex: Begin2Mutex,
    /// How `end` finds the calling thread's innermost section, to refuse ending any other one.
    /// `None` on a version whose `PyThreadState` layout libftshim does not know (not checked).
    pub innermost: Option<Innermost>,
}

/// The calling thread's innermost critical section: `PyThreadState_GetUnchecked()` and the
/// offset of its `uintptr_t critical_section` (a tagged pointer to the top of the thread's stack
/// of sections), which `abi-tests/tests/layout.rs` checks against each header set.
#[derive(Debug, Clone, Copy)]
pub struct Innermost {
    /// `PyThreadState *PyThreadState_GetUnchecked(void)` (3.13+).
    pub tstate: unsafe extern "C" fn() -> *mut c_void,
    /// `offsetof(PyThreadState, critical_section)` for the running version.
    pub offset: usize,
}

/// What the direct path of the one-object section functions needs (3.13t).
#[derive(Debug, Clone, Copy)]
pub struct Direct {
    /// `PyThreadState *PyThreadState_GetUnchecked(void)`.
    pub tstate: unsafe extern "C" fn() -> *mut c_void,
    /// `void _PyCriticalSection_Resume(PyThreadState *)` (exported by 3.13t): re-takes the
    /// thread's top section after a pop uncovered a suspended one.
    pub resume: unsafe extern "C" fn(*mut c_void),
}

/// `offsetof(PyThreadState, critical_section)` on 3.13t, the only version with a [`Direct`]
/// path: the table's first entry (a const assertion checks it is 3.13's).
pub const DIRECT_TSTATE_CRITICAL_SECTION: usize = TSTATE_CRITICAL_SECTION[0].1;
const _: () = assert!(TSTATE_CRITICAL_SECTION[0].0.0 == 3 && TSTATE_CRITICAL_SECTION[0].0.1 == 13);

/// `offsetof(PyThreadState, critical_section)` on free-threaded builds, by `(major, minor)`:
/// 176 on 3.13t and 3.14t, 200 on 3.15t (layout.rs compiles `offsetof` against each header set).
pub const TSTATE_CRITICAL_SECTION: &[((u8, u8), usize)] = &[((3, 13), 176), ((3, 14), 176), ((3, 15), 200)];

/// The tag bits of `critical_section` (`_Py_CRITICAL_SECTION_INACTIVE | _TWO_MUTEXES`).
pub const CRITICAL_SECTION_TAGS: usize = 0x3;

/// How a two-mutex critical section begins.
#[derive(Debug, Clone, Copy)]
pub enum Begin2Mutex {
    /// 3.14+: `PyCriticalSection2_BeginMutex(PyCriticalSection2 *, PyMutex *, PyMutex *)`.
    Public(unsafe extern "C" fn(*mut c_void, *mut PyMutex, *mut PyMutex)),
    /// 3.13t, which has no public form: the two exported slow paths 3.14's function is built
    /// from, combined the same way by [`crate::critical_section`].
    Slow {
        /// `_PyCriticalSection_BeginSlow(PyCriticalSection *, PyMutex *)` (same mutex twice).
        one: unsafe extern "C" fn(*mut c_void, *mut PyMutex),
        /// `_PyCriticalSection2_BeginSlow(PyCriticalSection2 *, PyMutex *m1, PyMutex *m2, int
        /// is_m1_locked)`, with `m1 < m2`.
        two: unsafe extern "C" fn(*mut c_void, *mut PyMutex, *mut PyMutex, c_int),
    },
}

/// CPython's `PyMutex_Lock` / `PyMutex_Unlock` (exported functions, 3.13+).
#[derive(Debug, Clone, Copy)]
pub struct PyMutexApi {
    /// `PyMutex_Lock`: full lock including parking with the thread state detached.
    pub lock: unsafe extern "C" fn(*mut PyMutex),
    /// `PyMutex_Unlock`: must only be called on a locked mutex (CPython aborts otherwise).
    pub unlock: unsafe extern "C" fn(*mut PyMutex),
}

/// What libftshim's own mutex (3.11/3.12) needs to release the GIL while a thread waits.
#[derive(Debug, Clone, Copy)]
pub struct GilApi {
    /// `PyGILState_GetThisThreadState()`: this thread's thread state, or NULL.
    pub this_thread_state: unsafe extern "C" fn() -> *mut c_void,
    /// `_PyThreadState_UncheckedGet()`: the thread state holding the GIL now (3.11/3.12).
    pub current_holder: unsafe extern "C" fn() -> *mut c_void,
    /// `PyEval_SaveThread()`: releases the GIL, returns the thread state.
    pub save_thread: unsafe extern "C" fn() -> *mut c_void,
    /// `PyEval_RestoreThread(tstate)`: takes the GIL back.
    pub restore_thread: unsafe extern "C" fn(*mut c_void),
}

/// The thread state [`GilApi::release_if_held`] detached; only [`GilApi::reacquire`] uses it.
#[must_use = "the GIL must be taken back with GilApi::reacquire"]
pub struct Released(*mut c_void);

impl GilApi {
    /// Releases the GIL if the calling thread holds it; `Some` is to be handed to
    /// [`GilApi::reacquire`] on the same thread.
    pub fn release_if_held(&self) -> Option<Released> {
        // SAFETY: both functions only read the interpreter's thread-state bookkeeping and may be
        // called with or without the GIL.
        let (mine, holder) = unsafe { ((self.this_thread_state)(), (self.current_holder)()) };
        // SAFETY: the calling thread holds the GIL (its thread state is the current holder).
        (!mine.is_null() && mine == holder).then(|| Released(unsafe { (self.save_thread)() }))
    }

    /// Takes the GIL back after [`GilApi::release_if_held`] released it on this thread.
    pub fn reacquire(&self, saved: Released) {
        // SAFETY: `saved` holds the thread state PyEval_SaveThread returned on this thread.
        unsafe { (self.restore_thread)(saved.0) }
    }
}

/// Object-level functions the immortal-object code uses.
#[derive(Debug, Clone, Copy)]
pub struct ObjectApi {
    /// `PyObject_GC_IsTracked(op)`.
    pub gc_is_tracked: unsafe extern "C" fn(*mut PyObject) -> c_int,
    /// `PyObject_GC_UnTrack(op)`.
    pub gc_untrack: unsafe extern "C" fn(*mut c_void),
    /// `PyType_GetFlags(type)`.
    pub type_get_flags: unsafe extern "C" fn(*mut c_void) -> c_ulong,
}

/// CPython 3.14+'s exported immortal-object functions (GIL and FT builds alike).
#[derive(Debug, Clone, Copy)]
pub struct ImmortalApi {
    /// `void _Py_SetImmortal(PyObject *)`: untracks the object from the GC and writes the
    /// build's immortal refcount fields (exported since 3.14; 3.15 also has
    /// `PyUnstable_SetImmortal`, which additionally requires a uniquely referenced object).
    pub set: unsafe extern "C" fn(*mut PyObject),
    /// `int PyUnstable_IsImmortal(PyObject *)` (3.14+).
    pub is: unsafe extern "C" fn(*mut PyObject) -> c_int,
}

/// What libftshim knows about the interpreter it runs in.
#[derive(Debug)]
pub struct Runtime {
    /// `Py_Version`: `PY_VERSION_HEX` of the running interpreter, e.g. `0x030D05F0`.
    pub version_hex: u32,
    /// True on a free-threaded (`Py_GIL_DISABLED`) build.
    pub free_threaded: bool,
    /// CPython's critical sections; `Some` only on FT builds, the only place they act.
    pub sections: Option<Sections>,
    /// CPython's PyMutex functions; `Some` on 3.13+.
    pub pymutex: Option<PyMutexApi>,
    /// GIL release for libftshim's own mutex; `Some` on GIL builds before 3.13.
    pub gil: Option<GilApi>,
    /// Object functions (all supported versions).
    pub object: ObjectApi,
    /// CPython's own immortal-object functions (3.14+).
    pub immortal: Option<ImmortalApi>,
    /// `PyUnstable_Module_SetGIL(PyObject *module, void *gil)`: FT builds only (3.13+).
    pub module_set_gil: Option<unsafe extern "C" fn(*mut PyObject, *mut c_void) -> c_int>,
}

impl Runtime {
    /// `(major, minor)` of the running interpreter.
    pub fn version(&self) -> (u8, u8) {
        ((self.version_hex >> 24) as u8, (self.version_hex >> 16) as u8)
    }
}

/// Why no runtime could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// `Py_Version` is not in the process's global scope: no CPython >= 3.11 loaded globally.
    NoPython,
    /// A CPython is there but one of the entry points its version must have is missing.
    MissingExport {
        /// The symbol that was looked up.
        symbol: &'static CStr,
        /// `Py_Version` of the interpreter found.
        version_hex: u32,
    },
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeError::NoPython => write!(
                f,
                "no CPython runtime in this process: symbol Py_Version (CPython >= 3.11) not found in the global scope"
            ),
            RuntimeError::MissingExport { symbol, version_hex } => write!(
                f,
                "CPython {version_hex:#010x} in this process does not export {}, which that version must have",
                symbol.to_string_lossy()
            ),
        }
    }
}

impl std::error::Error for RuntimeError {}

/// The resolved runtime, written once. A hand-rolled once-cell: `once_cell`/`std::sync::OnceLock`
/// park waiting threads through `std::thread`, which can panic, and that would pull the panic
/// machinery into every static link. Initialisation is a few `dlsym` calls, so a thread that
/// finds another one initialising just yields until it is done.
struct Slot(UnsafeCell<MaybeUninit<Result<Runtime, RuntimeError>>>);

// SAFETY: the cell is written exactly once, by the thread that moved STATE from UNINIT to BUSY,
// before STATE becomes READY (release); it is read only after observing READY (acquire).
unsafe impl Sync for Slot {}

static SLOT: Slot = Slot(UnsafeCell::new(MaybeUninit::uninit()));
/// `&SLOT`'s CPython section table while checked mode is off, else null (and null on a GIL
/// build and before [`init`]): the critical-section functions' fast path is this one load
/// ([`fast_sections`]), which also tells them checked mode is off, so being off costs them
/// nothing. [`fast_paths_open`] keeps it in step with the mode.
static FAST: AtomicPtr<Sections> = AtomicPtr::new(std::ptr::null_mut());
/// `&SLOT`'s [`Direct`] path whenever [`FAST`] is published and the runtime has one (3.13t), else
/// null: `ftshim_critical_section_begin`'s fast path is this one load ([`fast_direct`]).
static FAST_DIRECT: AtomicPtr<Direct> = AtomicPtr::new(std::ptr::null_mut());
static STATE: AtomicU8 = AtomicU8::new(UNINIT);
const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;

/// The running interpreter, resolved on first call. Cheap after that (one acquire load).
#[inline]
pub fn get() -> Result<&'static Runtime, &'static RuntimeError> {
    if STATE.load(Ordering::Acquire) != READY {
        init();
    }
    // SAFETY: READY was observed (here or in init) with acquire ordering, so SLOT is written and
    // is never written again.
    unsafe { (*SLOT.0.get()).assume_init_ref() }.as_ref()
}

/// CPython's critical-section functions: `Ok(Some)` on a free-threaded build, `Ok(None)` on a GIL
/// build (sections are no-ops there), `Err` without a runtime. For the cold paths; the fast path
/// is [`fast_sections`].
#[cold]
#[inline(never)]
pub fn sections() -> Result<Option<&'static Sections>, &'static RuntimeError> {
    get().map(|rt| rt.sections.as_ref())
}

/// CPython's critical-section functions when they are resolved (a free-threaded build) and
/// checked mode is off; `None` otherwise — before the first call, on a GIL build, with checked
/// mode on — where callers take their cold path ([`sections`]). One acquire load.
#[inline(always)]
pub fn fast_sections() -> Option<&'static Sections> {
    // SAFETY: non-null only as a pointer to the `Sections` inside SLOT, which is never written
    // again once READY (see fast_paths_open).
    unsafe { FAST.load(Ordering::Acquire).as_ref() }
}

/// The direct path of `ftshim_critical_section_begin` ([`Direct`]) when it is resolved (3.13t)
/// and checked mode is off; `None` otherwise. One acquire load.
#[inline(always)]
pub fn fast_direct() -> Option<&'static Direct> {
    // SAFETY: non-null only as a pointer to the `Direct` inside SLOT, never written again.
    unsafe { FAST_DIRECT.load(Ordering::Acquire).as_ref() }
}

/// The runtime if it is resolved, without resolving it: `None` before [`init`] (and without a
/// CPython).
fn resolved() -> Option<&'static Runtime> {
    if STATE.load(Ordering::Acquire) != READY {
        return None;
    }
    // SAFETY: READY observed with acquire ordering: SLOT is written and never written again.
    unsafe { (*SLOT.0.get()).assume_init_ref() }.as_ref().ok()
}

/// The resolved runtime's direct section path ([`Direct`], 3.13t), whatever checked mode says;
/// `None` before the runtime is resolved. For ending sections the direct path began.
pub fn direct() -> Option<&'static Direct> {
    resolved()?.sections.as_ref()?.direct.as_ref()
}

/// Publishes [`FAST`] and [`FAST_DIRECT`] (`open`: checked mode is off) or withdraws them. Only
/// [`crate::checked::fast_paths_follow_mode`] calls it, which orders it with the mode. Never
/// resolves the runtime itself: before [`init`] there is nothing to publish, and init asks again.
#[cold]
pub(crate) fn fast_paths_open(open: bool) {
    fn ptr<T>(r: Option<&'static T>) -> *mut T {
        r.map_or(std::ptr::null_mut(), |r| std::ptr::from_ref(r).cast_mut())
    }
    let sections = resolved().filter(|_| open).and_then(|rt| rt.sections.as_ref());
    FAST.store(ptr(sections), Ordering::SeqCst);
    FAST_DIRECT.store(ptr(sections.and_then(|s| s.direct.as_ref())), Ordering::SeqCst);
}

#[cold]
#[inline(never)]
fn init() {
    match STATE.compare_exchange(UNINIT, BUSY, Ordering::Acquire, Ordering::Acquire) {
        Ok(_) => {
            let resolved = resolve();
            // SAFETY: this thread won the UNINIT -> BUSY transition, so it is the only writer,
            // and no reader looks at SLOT before READY is published below.
            unsafe { (*SLOT.0.get()).write(resolved) };
            STATE.store(READY, Ordering::Release);
            // Reads the environment if nobody has yet; then publishes what the mode allows.
            crate::checked::on();
            crate::checked::fast_paths_follow_mode();
        }
        Err(_) => {
            while STATE.load(Ordering::Acquire) != READY {
                std::thread::yield_now();
            }
        }
    }
}

/// Looks up `name` in the global scope as a value of type `T` (a function pointer).
///
/// # Safety
/// `T` must be the correct, pointer-sized type for the symbol `name`.
pub(crate) unsafe fn lookup<T: Copy>(name: &CStr) -> Option<T> {
    const { assert!(std::mem::size_of::<T>() == std::mem::size_of::<*mut c_void>()) };
    let addr = process::lookup(name)?;
    // SAFETY: the caller guarantees T is the symbol's (pointer-sized) type; the address stays
    // valid because libpython is never unloaded while the process runs Python.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&addr) })
}

/// Resolves `$name` as the type of the struct field it initialises, or fails with
/// `MissingExport`. Every use names a CPython function whose C signature the field's type copies.
macro_rules! require {
    ($version:expr, $name:literal) => {
        // SAFETY: each field type is a transcription of the named function's C declaration.
        unsafe { lookup($name) }
            .ok_or(RuntimeError::MissingExport { symbol: $name, version_hex: $version })?
    };
}

fn resolve() -> Result<Runtime, RuntimeError> {
    let host = process::host().ok_or(RuntimeError::NoPython)?;
    let (v, free_threaded) = (host.version_hex, host.free_threaded);
    let at_least_313 = v >= 0x030D_0000;
    let sections = if free_threaded {
        // SAFETY: both candidates are `void (PyCriticalSection *, PyMutex *)`.
        let begin_mutex = unsafe { lookup(c"PyCriticalSection_BeginMutex") }
            .map_or_else(|| Ok(require!(v, c"_PyCriticalSection_BeginSlow")), Ok)?;
        // SAFETY: the field types transcribe the C declarations named in Begin2Mutex's docs.
        let begin2_mutex = match unsafe { lookup(c"PyCriticalSection2_BeginMutex") } {
            Some(public) => Begin2Mutex::Public(public),
            None => Begin2Mutex::Slow {
                one: require!(v, c"_PyCriticalSection_BeginSlow"),
                two: require!(v, c"_PyCriticalSection2_BeginSlow"),
            },
        };
        let innermost = match TSTATE_CRITICAL_SECTION.iter().find(|(ver, _)| *ver == host.version()) {
            Some(&(_, offset)) => {
                Some(Innermost { tstate: require!(v, c"PyThreadState_GetUnchecked"), offset })
            }
            None => None,
        };
        let direct = match innermost {
            Some(top) if host.version() == (3, 13) => {
                Some(Direct { tstate: top.tstate, resume: require!(v, c"_PyCriticalSection_Resume") })
            }
            _ => None,
        };
        Some(Sections {
            direct,
            innermost,
            begin: require!(v, c"PyCriticalSection_Begin"),
            end: require!(v, c"PyCriticalSection_End"),
            begin2: require!(v, c"PyCriticalSection2_Begin"),
            end2: require!(v, c"PyCriticalSection2_End"),
            begin_mutex,
            begin2_mutex,
        })
    } else {
        None
    };
    let pymutex = if at_least_313 {
        Some(PyMutexApi { lock: require!(v, c"PyMutex_Lock"), unlock: require!(v, c"PyMutex_Unlock") })
    } else {
        None
    };
    let gil = if !at_least_313 {
        Some(GilApi {
            this_thread_state: require!(v, c"PyGILState_GetThisThreadState"),
            current_holder: require!(v, c"_PyThreadState_UncheckedGet"),
            save_thread: require!(v, c"PyEval_SaveThread"),
            restore_thread: require!(v, c"PyEval_RestoreThread"),
        })
    } else {
        None
    };
    let object = ObjectApi {
        gc_is_tracked: require!(v, c"PyObject_GC_IsTracked"),
        gc_untrack: require!(v, c"PyObject_GC_UnTrack"),
        type_get_flags: require!(v, c"PyType_GetFlags"),
    };
    let immortal = if v >= 0x030E_0000 {
        Some(ImmortalApi { set: require!(v, c"_Py_SetImmortal"), is: require!(v, c"PyUnstable_IsImmortal") })
    } else {
        None
    };
    let module_set_gil = if free_threaded { Some(require!(v, c"PyUnstable_Module_SetGIL")) } else { None };
    Ok(Runtime { version_hex: v, free_threaded, sections, pymutex, gil, object, immortal, module_set_gil })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_without_python_reports_no_runtime() {
        // The unit-test binary links no libpython, so there is no Py_Version to find.
        assert_eq!(get().unwrap_err(), &RuntimeError::NoPython);
        assert_eq!(
            RuntimeError::NoPython.to_string(),
            "no CPython runtime in this process: symbol Py_Version (CPython >= 3.11) not found in the global scope"
        );
    }
}
