//! Checked mode — the `Checked mode` section of `include/ftshim.h` (ABI 1.1).
//!
//! Off unless `FTSHIM_CHECKED` is set in the environment (read once, at the first lock or section
//! through libftshim) or [`ftshim_checked_set_mode`] turns it on. Off, every checked export pays
//! one relaxed load and a branch. On, libftshim keeps, without allocating:
//! - per thread, the stack of what it holds: mutexes (`ftshim_mutex_lock`/`trylock`) and
//!   sections begun through the functions (the header routes its macros and inline paths here when
//!   compiled with `-DFTSHIM_CHECKED`);
//! - one lock-order graph over mutexes (edges "B taken while holding A", with the thread), in
//!   which every new edge is searched for a cycle — an inversion is found the first time it is
//!   possible, even when the run never deadlocks;
//! - the owner of each mutex locked while checking.
//!
//! Findings are recorded (read with [`ftshim_checked_findings`]), written to stderr once each and,
//! where the thread has an attached thread state, raised as a Python `RuntimeWarning`; in `abort`
//! mode the process aborts after the report. A re-lock by the owner returns
//! `FTSHIM_ERR_WOULD_DEADLOCK` instead of hanging.

#![allow(non_camel_case_types)]

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering::*};

use ftshim_boundary::Snapshot;

use crate::mutex::ftshim_mutex;
use crate::runtime;
use crate::status::{FTSHIM_ERR_INVALID_ARGUMENT, FTSHIM_OK, ftshim_status};

/// `FTSHIM_CHECKED_OFF`.
pub const MODE_OFF: u8 = 0;
/// `FTSHIM_CHECKED_REPORT`: record, print, warn.
pub const MODE_REPORT: u8 = 1;
/// `FTSHIM_CHECKED_ABORT`: report, then abort.
pub const MODE_ABORT: u8 = 2;
/// The environment has not been read yet.
const MODE_UNREAD: u8 = 0xff;

static MODE: AtomicU8 = AtomicU8::new(MODE_UNREAD);

/// `FTSHIM_CHECKED_LOCK_ORDER`: a cycle in the lock-order graph.
pub const KIND_LOCK_ORDER: i32 = 1;
/// `FTSHIM_CHECKED_SELF_DEADLOCK`: a thread locks a mutex it holds.
pub const KIND_SELF_DEADLOCK: i32 = 2;
/// `FTSHIM_CHECKED_WRONG_THREAD`: a thread unlocks a mutex another thread locked.
pub const KIND_WRONG_THREAD: i32 = 3;
/// `FTSHIM_CHECKED_OUT_OF_ORDER`: a section ended while a later one is still open.
pub const KIND_OUT_OF_ORDER: i32 = 4;
/// `FTSHIM_CHECKED_LEFT_HELD`: a thread exited holding mutexes or sections.
pub const KIND_LEFT_HELD: i32 = 5;
/// `FTSHIM_CHECKED_OVERFLOW`: a table is full; later events are not checked.
pub const KIND_OVERFLOW: i32 = 6;

/// Every kind with its name, in header order (tests check it against the header).
pub const KINDS: &[(i32, &str, &CStr)] = &[
    (KIND_LOCK_ORDER, "FTSHIM_CHECKED_LOCK_ORDER", c"lock-order inversion"),
    (KIND_SELF_DEADLOCK, "FTSHIM_CHECKED_SELF_DEADLOCK", c"self-deadlock"),
    (KIND_WRONG_THREAD, "FTSHIM_CHECKED_WRONG_THREAD", c"unlock by a thread that does not hold it"),
    (KIND_OUT_OF_ORDER, "FTSHIM_CHECKED_OUT_OF_ORDER", c"section ended out of order"),
    (KIND_LEFT_HELD, "FTSHIM_CHECKED_LEFT_HELD", c"held at thread exit"),
    (KIND_OVERFLOW, "FTSHIM_CHECKED_OVERFLOW", c"checker table full"),
];

/// `ftshim_checked_finding` in the header.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ftshim_checked_finding {
    /// `FTSHIM_CHECKED_*`.
    pub kind: i32,
    /// How many of `locks` are used.
    pub count: u32,
    /// The locks (mutex addresses; section storage for section findings), see the header.
    pub locks: [usize; 4],
    /// The thread (Linux TID) whose call found it.
    pub thread: u64,
}

const NO_FINDING: ftshim_checked_finding =
    ftshim_checked_finding { kind: 0, count: 0, locks: [0; 4], thread: 0 };

/// The call must not go on: a finding was reported (self-deadlock, out-of-order end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

/// Might checking be on? One relaxed load: false only once the environment was read and said
/// off. The exports test this and leave the rest to a cold path that calls [`on`], so that their
/// fast paths stay as they were (`make bench` counts the instructions).
#[inline(always)]
pub fn maybe() -> bool {
    MODE.load(Relaxed) != MODE_OFF
}

/// The mode was stored (SeqCst), or the runtime was resolved: the fast paths that fold the off
/// switch into loads they make anyway follow it — the critical-section functions' published
/// pointers ([`runtime::fast_paths_open`]) and the mutex functions' expected values
/// ([`crate::mutex::fast_paths_open`]). They are opened only while the mode reads off (an unread
/// environment counts as on) and the mode is read again afterwards: two threads changing it at
/// once cannot leave them open while it is on.
pub(crate) fn fast_paths_follow_mode() {
    let open = |open: bool| {
        runtime::fast_paths_open(open);
        crate::mutex::fast_paths_open(open);
    };
    let off = || MODE.load(SeqCst) == MODE_OFF;
    open(off());
    if !off() {
        open(false);
    }
}

/// Is checking on? Reads the environment the first time.
#[inline(always)]
pub fn on() -> bool {
    let mode = MODE.load(Relaxed);
    mode != MODE_OFF && (mode != MODE_UNREAD || read_env() != MODE_OFF)
}

#[cold]
fn read_env() -> u8 {
    // SAFETY: getenv with a NUL-terminated name; the result is read at once, before any setenv
    // from this library (there is none).
    let value = unsafe { libc::getenv(c"FTSHIM_CHECKED".as_ptr()) };
    let mode = if value.is_null() {
        MODE_OFF
    } else {
        // SAFETY: getenv returns a NUL-terminated string.
        match unsafe { CStr::from_ptr(value) }.to_bytes() {
            b"" | b"0" | b"off" => MODE_OFF,
            b"abort" => MODE_ABORT,
            _ => MODE_REPORT,
        }
    };
    let _ = MODE.compare_exchange(MODE_UNREAD, mode, SeqCst, SeqCst);
    fast_paths_follow_mode();
    MODE.load(SeqCst)
}

/// What a thread holds.
#[derive(Clone, Copy)]
enum Held {
    /// A mutex from `ftshim_mutex_lock`/`trylock`.
    Mutex(usize),
    /// A section begun through the functions, by its storage; with its mutexes (0: none).
    Section { storage: usize, mutexes: [usize; 2] },
}

const MAX_HELD: usize = 32;

struct ThreadState {
    held: UnsafeCell<([Option<Held>; MAX_HELD], usize)>,
}

/// At thread exit (a pthread key destructor, registered when the thread first holds something):
/// reports what the thread still holds. Not a Rust thread-local destructor: registering one can
/// panic, which would link Rust's panic machinery into modules that link libftshim.a.
extern "C" fn at_thread_exit(_: *mut libc::c_void) {
    let mut locks = [0usize; 4];
    let mut count = 0;
    let _ = with_held(|held, depth| {
        for h in held.iter().take(*depth).flatten() {
            if let Some(slot) = locks.get_mut(count) {
                *slot = match h {
                    Held::Mutex(m) => *m,
                    Held::Section { storage, .. } => *storage,
                };
                count += 1;
            }
        }
        *depth = 0;
    });
    if count > 0 {
        report(KIND_LEFT_HELD, locks.get(..count).unwrap_or(&[]), None);
    }
}

/// The pthread key whose destructor is [`at_thread_exit`]: 0 not made yet, 1 being made, else
/// key + 2.
static EXIT_KEY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Makes sure [`at_thread_exit`] runs when this thread exits.
fn watch_thread_exit() {
    let key = loop {
        match EXIT_KEY.compare_exchange(0, 1, Acquire, Acquire) {
            Ok(_) => {
                let mut key: libc::pthread_key_t = 0;
                // SAFETY: a valid out-pointer and an extern "C" destructor that does not unwind.
                let made = unsafe { libc::pthread_key_create(&mut key, Some(at_thread_exit)) } == 0;
                let value = if made { key as usize + 2 } else { usize::MAX };
                EXIT_KEY.store(value, Release);
                break value;
            }
            Err(1) => std::hint::spin_loop(),
            Err(v) => break v,
        }
    };
    if key != usize::MAX {
        // SAFETY: a key made above; any non-NULL value makes the destructor run at exit.
        unsafe {
            libc::pthread_setspecific((key - 2) as libc::pthread_key_t, std::ptr::dangling::<libc::c_void>())
        };
    }
}

thread_local! {
    static THREAD: ThreadState = const { ThreadState { held: UnsafeCell::new(([None; MAX_HELD], 0)) } };
}

/// Runs `f` on this thread's stack of held locks (`None` while the thread is being torn down).
fn with_held<R>(f: impl FnOnce(&mut [Option<Held>; MAX_HELD], &mut usize) -> R) -> Option<R> {
    THREAD
        .try_with(|t| {
            // SAFETY: only this thread touches its state, and no call here re-enters `with_held`.
            let (held, depth) = unsafe { &mut *t.held.get() };
            f(held, depth)
        })
        .ok()
}

fn holds_mutex(m: usize) -> bool {
    with_held(|held, depth| {
        held.iter().take(*depth).flatten().any(|h| matches!(h, Held::Mutex(x) if *x == m))
    })
    .unwrap_or(false)
}

/// The mutexes this thread holds (locked or through sections), oldest first.
fn held_mutexes() -> ([usize; MAX_HELD * 2], usize) {
    let mut out = [0usize; MAX_HELD * 2];
    let mut n = 0;
    let _ = with_held(|held, depth| {
        for h in held.iter().take(*depth).flatten() {
            let ms: &[usize] = match h {
                Held::Mutex(m) => std::slice::from_ref(m),
                Held::Section { mutexes, .. } => mutexes,
            };
            for &m in ms.iter().filter(|m| **m != 0) {
                if let Some(slot) = out.get_mut(n) {
                    *slot = m;
                    n += 1;
                }
            }
        }
    });
    (out, n)
}

fn push(h: Held) {
    watch_thread_exit();
    let overflow = with_held(|held, depth| match held.get_mut(*depth) {
        Some(slot) => {
            *slot = Some(h);
            *depth += 1;
            false
        }
        None => true,
    });
    if overflow == Some(true) {
        report_once_overflow();
    }
}

/// Removes the newest entry matching `is` (with `only_if_newest`, only when it is the newest
/// section); returns whether it was the newest section (always true for mutexes, which may be
/// released in any order) and the newest section's storage.
fn remove(is: impl Fn(&Held) -> bool, only_if_newest: bool) -> Option<(bool, usize)> {
    with_held(|held, depth| {
        let live = held.get_mut(..*depth)?;
        let at = live.iter().rposition(|h| h.as_ref().is_some_and(&is))?;
        let newest_section = live.iter().rev().flatten().find_map(|h| match h {
            Held::Section { storage, .. } => Some(*storage),
            Held::Mutex(_) => None,
        });
        let was_newest = live.get(at).and_then(|h| h.as_ref()).is_some_and(|h| match h {
            Held::Section { storage, .. } => Some(*storage) == newest_section,
            Held::Mutex(_) => true,
        });
        if only_if_newest && !was_newest {
            return Some((false, newest_section.unwrap_or(0)));
        }
        // Close the gap.
        live.get_mut(at..)?.rotate_left(1);
        if let Some(last) = live.last_mut() {
            *last = None;
        }
        *depth -= 1;
        Some((was_newest, newest_section.unwrap_or(0)))
    })
    .flatten()
}

const MAX_EDGES: usize = 1024;
const MAX_OWNERS: usize = 1024;
const MAX_FINDINGS: usize = 64;

/// The global part: the lock-order graph, the owners, the findings.
struct Global {
    /// `(held, taken, thread)`: `taken` was locked while `held` was held.
    edges: [(usize, usize, u64); MAX_EDGES],
    nedges: usize,
    /// `(mutex, owner thread)`, open addressing; 0 is free, 1 a tombstone.
    owners: [(usize, u64); MAX_OWNERS],
    findings: [ftshim_checked_finding; MAX_FINDINGS],
    nfindings: usize,
    overflow_reported: bool,
}

/// The global part behind libftshim's own mutex (not `std::sync::Mutex`: its poisoning consults
/// the panic count, which would link Rust's panic machinery into every module that links
/// libftshim.a; tests/sizes.rs). Held only for table updates, never across a report. A waiter
/// parks as any `ftshim_mutex` waiter does (releasing the GIL on 3.11/3.12).
struct Locked {
    mutex: ftshim_mutex,
    value: UnsafeCell<Global>,
}

// SAFETY: `value` is only reached through a `GlobalGuard`, which exists only while `mutex` is held.
unsafe impl Sync for Locked {}

struct GlobalGuard(&'static Locked);

impl Deref for GlobalGuard {
    type Target = Global;
    fn deref(&self) -> &Global {
        // SAFETY: the guard holds the mutex.
        unsafe { &*self.0.value.get() }
    }
}

impl DerefMut for GlobalGuard {
    fn deref_mut(&mut self) -> &mut Global {
        // SAFETY: the guard holds the mutex, and this is its only borrow.
        unsafe { &mut *self.0.value.get() }
    }
}

impl Drop for GlobalGuard {
    fn drop(&mut self) {
        let _ = self.0.mutex.unlock();
    }
}

static GLOBAL: Locked = Locked {
    mutex: ftshim_mutex::new(),
    value: UnsafeCell::new(Global {
        edges: [(0, 0, 0); MAX_EDGES],
        nedges: 0,
        owners: [(0, 0); MAX_OWNERS],
        findings: [NO_FINDING; MAX_FINDINGS],
        nfindings: 0,
        overflow_reported: false,
    }),
};

fn global() -> GlobalGuard {
    let _ = GLOBAL.mutex.lock();
    GlobalGuard(&GLOBAL)
}

fn tid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

impl Global {
    /// A path `from` →* `to` in the graph: up to 3 nodes after `from` (ending with `to` when
    /// the path is that short), how many, and the thread of its first edge.
    fn path(&self, from: usize, to: usize) -> Option<([usize; 3], usize, u64)> {
        const NONE: usize = usize::MAX;
        let edges = self.edges.get(..self.nedges)?;
        // Breadth-first over edges; parent[i] is the edge that reached edge i's start.
        let mut parent = [NONE; MAX_EDGES];
        let mut seen = [false; MAX_EDGES];
        let mut queue = [0usize; MAX_EDGES];
        let (mut head, mut tail) = (0usize, 0usize);
        let mut node = from;
        let mut from_edge = NONE;
        loop {
            for (i, &(a, b, _)) in edges.iter().enumerate() {
                if a != node || seen.get(i).copied().unwrap_or(true) {
                    continue;
                }
                *seen.get_mut(i)? = true;
                *parent.get_mut(i)? = from_edge;
                if b == to {
                    // Walk back to the first edge, keeping the nodes in path order.
                    let mut chain = [0usize; MAX_EDGES];
                    let mut len = 0;
                    let mut e = i;
                    while e != NONE {
                        *chain.get_mut(len)? = e;
                        len += 1;
                        e = *parent.get(e)?;
                    }
                    let first = edges.get(*chain.get(len - 1)?)?;
                    let mut nodes = [0usize; 3];
                    let shown = len.min(3);
                    for (k, slot) in nodes.iter_mut().take(shown).enumerate() {
                        *slot = edges.get(*chain.get(len - 1 - k)?)?.1;
                    }
                    return Some((nodes, shown, first.2));
                }
                *queue.get_mut(tail)? = i;
                tail += 1;
            }
            if head == tail {
                return None;
            }
            from_edge = *queue.get(head)?;
            head += 1;
            node = edges.get(from_edge)?.1;
        }
    }

    /// Keeps `f` while there is room (its report on stderr is made either way).
    fn record(&mut self, f: ftshim_checked_finding) {
        if let Some(slot) = self.findings.get_mut(self.nfindings) {
            *slot = f;
            self.nfindings += 1;
        }
    }

    fn owner_slot(&mut self, m: usize) -> Option<&mut (usize, u64)> {
        let start = (m >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) % MAX_OWNERS;
        let mut free = None;
        for k in 0..MAX_OWNERS {
            let i = (start + k) % MAX_OWNERS;
            match self.owners.get(i)?.0 {
                x if x == m => return self.owners.get_mut(i),
                0 => {
                    let i = free.unwrap_or(i);
                    return self.owners.get_mut(i);
                }
                1 if free.is_none() => free = Some(i),
                _ => {}
            }
        }
        free.and_then(|i| self.owners.get_mut(i))
    }
}

/// A fixed buffer that formats without allocating and without `core::fmt` (whose dynamic calls
/// could unwind as far as the compiler knows, which would keep Rust's panic machinery in modules
/// linking libftshim.a). Text past its size is cut.
struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Line {
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let room = self.buf.len().saturating_sub(self.len + 1);
        let n = b.len().min(room);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + n), b.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// `v` in base `radix` (10 or 16), without prefix.
    fn number(&mut self, mut v: u64, radix: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b"0123456789abcdef".get((v % radix) as usize).copied().unwrap_or(b'?');
            }
            v /= radix;
            if v == 0 || at == 0 {
                break;
            }
        }
        self.bytes(digits.get(at..).unwrap_or(&[]))
    }

    fn dec(&mut self, v: u64) -> &mut Self {
        self.number(v, 10)
    }

    fn hex(&mut self, v: usize) -> &mut Self {
        self.str("0x").number(v as u64, 16)
    }
}

/// `0x...` and, for a lock in a loaded object, ` (symbol+0xoff)` or ` (in file)`.
fn describe(out: &mut Line, addr: usize) {
    out.hex(addr);
    let mut info: libc::Dl_info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the loaded objects' tables; `info` is a valid out-pointer.
    if unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } == 0 {
        return; // not in a loaded object: heap or stack
    }
    if !info.dli_sname.is_null() {
        // SAFETY: dli_sname is a NUL-terminated symbol name owned by the loaded object.
        let name = unsafe { CStr::from_ptr(info.dli_sname) }.to_bytes();
        let off = addr.wrapping_sub(info.dli_saddr as usize);
        out.str(" (").bytes(name);
        if off != 0 {
            out.str("+").hex(off);
        }
        out.str(")");
    } else if !info.dli_fname.is_null() {
        // A static variable: name the object it is in.
        // SAFETY: dli_fname is the NUL-terminated path of the loaded object.
        let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
        let file = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
        out.str(" (in ").bytes(file).str(")");
    }
}

/// A finding kind's description (what `ftshim_checked_kind_str` returns).
fn kind_description(kind: i32) -> &'static CStr {
    KINDS.iter().find(|(k, _, _)| *k == kind).map_or(c"unknown finding kind", |(_, _, d)| d)
}

/// Records a finding, prints it, warns in Python, and aborts in abort mode. `earlier` is the
/// other side of an inversion: `(thread, path)`.
fn report(kind: i32, locks: &[usize], earlier: Option<(u64, &[usize])>) {
    let me = tid();
    let mut f = ftshim_checked_finding { kind, count: 0, locks: [0; 4], thread: me };
    for (slot, &l) in f.locks.iter_mut().zip(locks) {
        *slot = l;
        f.count += 1;
    }
    global().record(f);
    let mut line = Line { buf: [0; 1024], len: 0 };
    line.str("ftshim checked: ").bytes(kind_description(kind).to_bytes()).str(": thread ").dec(me);
    match kind {
        KIND_LOCK_ORDER => {
            line.str(" takes mutex ");
            describe(&mut line, locks.last().copied().unwrap_or(0));
            line.str(" while holding ");
            describe(&mut line, locks.first().copied().unwrap_or(0));
            if let Some((thread, path)) = earlier {
                line.str("; thread ").dec(thread).str(" took them in the other order (");
                for (i, &m) in path.iter().enumerate() {
                    line.str(if i == 0 { "" } else { " -> " });
                    describe(&mut line, m);
                }
                line.str(")");
            }
        }
        _ => {
            for (i, &l) in locks.iter().enumerate() {
                line.str(if i == 0 { ": " } else { ", " });
                describe(&mut line, l);
            }
        }
    }
    line.str("\n");
    // SAFETY: writes initialised bytes of a live buffer to fd 2.
    let _ = unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
    if MODE.load(Relaxed) == MODE_ABORT {
        ftshim_boundary::abort_with("FTSHIM_CHECKED=abort: a finding was reported (above)");
    }
    if let Some(b) = line.buf.get_mut(line.len.saturating_sub(1)) {
        *b = 0; // the newline becomes the C string's end
    }
    warn(&line.buf);
}

/// `warnings.warn(message, RuntimeWarning)` when this thread has an attached thread state and no
/// exception is pending; a warning turned into an error is cleared (the report is on stderr).
fn warn(message: &[u8; 1024]) {
    type Check = unsafe extern "C" fn() -> c_int;
    type Occurred = unsafe extern "C" fn() -> *mut libc::c_void;
    type WarnEx = unsafe extern "C" fn(*mut libc::c_void, *const c_char, isize) -> c_int;
    type Clear = unsafe extern "C" fn();
    // SAFETY: each type transcribes the named CPython function's C declaration;
    // PyExc_RuntimeWarning is a `PyObject *` variable, looked up as its address.
    let found = unsafe {
        (
            runtime::lookup::<Check>(c"PyGILState_Check"),
            runtime::lookup::<Occurred>(c"PyErr_Occurred"),
            runtime::lookup::<WarnEx>(c"PyErr_WarnEx"),
            runtime::lookup::<Clear>(c"PyErr_Clear"),
            runtime::lookup::<*mut *mut libc::c_void>(c"PyExc_RuntimeWarning"),
        )
    };
    let (Some(check), Some(occurred), Some(warn_ex), Some(clear), Some(category)) = found else { return };
    // SAFETY: the thread state is attached when PyGILState_Check says so, which the calls after
    // it need; `message` is NUL-terminated (report() ends it).
    unsafe {
        if check() != 1 || !occurred().is_null() {
            return;
        }
        if warn_ex(category.read(), message.as_ptr().cast(), 1) < 0 {
            clear();
        }
    }
}

fn report_once_overflow() {
    let first = {
        let mut g = global();
        !std::mem::replace(&mut g.overflow_reported, true)
    };
    if first {
        report(KIND_OVERFLOW, &[], None);
    }
}

/// Before locking `m` (or beginning a section on it): `Err(Reported)` when this thread already holds
/// it through `ftshim_mutex_lock` (the lock would never return); otherwise adds the lock-order
/// edges from every mutex held and reports a cycle the first time one closes.
#[cold]
#[inline(never)]
pub fn before_lock(m: usize) -> Result<(), Reported> {
    if holds_mutex(m) {
        report(KIND_SELF_DEADLOCK, &[m], None);
        return Err(Reported);
    }
    let (held, n) = held_mutexes();
    let me = tid();
    for &h in held.get(..n).unwrap_or(&[]) {
        if h == m {
            continue; // the same mutex through a section: CPython's sections re-enter it
        }
        let found = {
            let mut g = global();
            let known = g.edges.get(..g.nedges).is_some_and(|e| e.iter().any(|(a, b, _)| *a == h && *b == m));
            if known {
                None
            } else {
                let cycle = g.path(m, h);
                let slot = g.nedges;
                match g.edges.get_mut(slot) {
                    Some(e) => {
                        *e = (h, m, me);
                        g.nedges += 1;
                    }
                    None => {
                        drop(g);
                        report_once_overflow();
                        return Ok(());
                    }
                }
                cycle
            }
        };
        if let Some((nodes, len, thread)) = found {
            // The cycle: m -> ... -> h taken earlier, h -> m now.
            let mut path = [m, 0, 0, 0];
            for (slot, node) in path.iter_mut().skip(1).zip(nodes.iter().take(len)) {
                *slot = *node;
            }
            report(KIND_LOCK_ORDER, &[h, m], Some((thread, path.get(..=len).unwrap_or(&[]))));
        }
    }
    Ok(())
}

/// After `m` was locked by `ftshim_mutex_lock`/`trylock`.
#[cold]
#[inline(never)]
pub fn locked(m: usize) {
    push(Held::Mutex(m));
    let me = tid();
    if let Some(slot) = global().owner_slot(m) {
        *slot = (m, me);
    }
}

/// Before unlocking `m`: reports an unlock by a thread that does not hold it (when the owner is
/// known) and forgets it.
#[cold]
#[inline(never)]
pub fn unlocking(m: usize) {
    let mine = remove(|h| matches!(h, Held::Mutex(x) if *x == m), false).is_some();
    let owner = {
        let mut g = global();
        g.owner_slot(m).and_then(|slot| {
            let owner = (slot.0 == m).then_some(slot.1);
            if slot.0 == m {
                *slot = (1, 0);
            }
            owner
        })
    };
    if let (false, Some(owner)) = (mine, owner)
        && owner != tid()
    {
        report(KIND_WRONG_THREAD, &[m], None);
    }
}

/// After a section began in `storage` (on `mutexes`, 0 for none).
#[cold]
#[inline(never)]
pub fn section_begun(storage: usize, mutexes: [usize; 2]) {
    push(Held::Section { storage, mutexes });
}

/// Before the section in `storage` ends: `Err(Reported)`, reported, when it is not the calling
/// thread's innermost open section — CPython would unlink the newer one too, so it must not end.
/// `cpython_innermost` is that section as CPython records it, when it can be read (free-threaded
/// builds: it also sees sections begun through CPython's own macros); otherwise (GIL builds) the
/// checker's own stack decides. On success the section leaves the checker's stack.
#[cold]
#[inline(never)]
pub fn section_ending(storage: usize, cpython_innermost: Option<usize>) -> Result<(), Reported> {
    let is = |h: &Held| matches!(h, Held::Section { storage: s, .. } if *s == storage);
    let newest = match cpython_innermost {
        Some(top) if top != storage => top,
        Some(_) => {
            remove(is, false);
            return Ok(());
        }
        None => match remove(is, true) {
            Some((false, newest)) => newest,
            _ => return Ok(()),
        },
    };
    report(KIND_OUT_OF_ORDER, &[storage, newest], None);
    Err(Reported)
}

ftshim_boundary::export! {
    /// `ftshim_checked_mode` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_checked_mode() -> Snapshot {
        on();
        Snapshot(c_int::from(MODE.load(Relaxed)))
    }

    /// `ftshim_checked_set_mode` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_checked_set_mode(mode: c_int) -> ftshim_status {
        match u8::try_from(mode) {
            Ok(m @ (MODE_OFF | MODE_REPORT | MODE_ABORT)) => {
                MODE.store(m, SeqCst);
                fast_paths_follow_mode();
                FTSHIM_OK
            }
            _ => FTSHIM_ERR_INVALID_ARGUMENT,
        }
    }

    /// `ftshim_checked_findings` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_checked_findings(out: *mut ftshim_checked_finding, max: u32) -> u32 {
        let g = global();
        let recorded = g.findings.get(..g.nfindings).unwrap_or(&[]);
        if !out.is_null() {
            for (i, f) in recorded.iter().take(max as usize).enumerate() {
                // SAFETY: `out` has room for `max` findings (caller's contract); i < max.
                unsafe { out.add(i).write(*f) };
            }
        }
        u32::try_from(recorded.len()).unwrap_or(u32::MAX)
    }

    /// `ftshim_checked_clear` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_checked_clear() -> ftshim_status {
        let mut g = global();
        g.nfindings = 0;
        g.nedges = 0;
        g.overflow_reported = false;
        g.owners = [(0, 0); MAX_OWNERS];
        FTSHIM_OK
    }

    /// `ftshim_checked_kind_str` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_checked_kind_str(kind: c_int) -> *const c_char {
        kind_description(kind).as_ptr()
    }
}
