//! Per-object mutex — the `Per-object mutex` section of `include/ftshim.h`.
//!
//! `ftshim_mutex` has PyMutex's layout (one byte: bit 0 locked, bit 1 has parked waiters). The
//! header inlines the uncontended compare-and-swap; these exports do the whole job for callers
//! that cannot use the header, and the contended part for everyone:
//! - CPython 3.13+ (GIL or FT): CPython's own `PyMutex_Lock` / `PyMutex_Unlock`.
//! - CPython 3.11/3.12, or no Python in the process: libftshim's implementation on the same bits
//!   ([`wait`]): a bounded spin, then the thread sleeps on a futex chosen by the mutex's address,
//!   with the GIL released so the holder can run Python code.

#![allow(non_camel_case_types)]

use std::ffi::c_int;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering::*};

use ftshim_boundary::Snapshot;

use crate::checked;
use crate::runtime::{self, GilApi};
use crate::status::{
    FTSHIM_ERR_BUSY, FTSHIM_ERR_NOT_LOCKED, FTSHIM_ERR_WOULD_DEADLOCK, FTSHIM_OK, ftshim_status,
};

/// `ftshim_mutex` in the header.
#[repr(transparent)]
pub struct ftshim_mutex {
    bits: AtomicU8,
}

const LOCKED: u8 = 1;
const PARKED: u8 = 2;
/// Spins before parking (CPython spins 40 times on FT builds).
const SPIN_LIMIT: u32 = 40;

impl ftshim_mutex {
    /// An unlocked mutex.
    pub const fn new() -> Self {
        ftshim_mutex { bits: AtomicU8::new(0) }
    }

    fn as_pymutex(&self) -> *mut runtime::PyMutex {
        self.bits.as_ptr()
    }

    /// Locks, waiting as documented in the header. The uncontended path is one compare-and-swap;
    /// everything else is out of line, so the exported function's fast path needs no stack frame.
    #[inline(always)]
    pub fn lock(&self) -> ftshim_status {
        if self.bits.compare_exchange(0, LOCKED, Acquire, Relaxed).is_ok() {
            return FTSHIM_OK;
        }
        self.lock_contended()
    }

    /// Everything but the uncontended compare-and-swap, out of line so [`Self::lock`]'s fast path
    /// needs no stack frame; also where the exports' failed fast path goes ([`lock_cold`]).
    /// Handles every state, an unlocked mutex included. Always `FTSHIM_OK`.
    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> ftshim_status {
        match runtime::get() {
            Ok(rt) => match rt.pymutex {
                // SAFETY: the byte has PyMutex's layout and stays put while used (caller's contract).
                Some(api) => unsafe { (api.lock)(self.as_pymutex()) },
                None => self.lock_slow(rt.gil.as_ref()),
            },
            Err(_) => self.lock_slow(None),
        }
        FTSHIM_OK
    }

    /// [`Self::lock`] in checked mode: refuses a re-lock by the holder (`FTSHIM_ERR_WOULD_DEADLOCK`)
    /// and records the lock order ([`checked`]).
    #[cold]
    #[inline(never)]
    fn lock_checked(&self) -> ftshim_status {
        let addr = self.as_pymutex() as usize;
        if checked::before_lock(addr).is_err() {
            return FTSHIM_ERR_WOULD_DEADLOCK;
        }
        let status = self.lock();
        checked::locked(addr);
        status
    }

    /// [`Self::unlock`] in checked mode: forgets the holder, reporting an unlock by another thread.
    #[cold]
    #[inline(never)]
    fn unlock_checked(&self) -> ftshim_status {
        if self.is_locked() {
            checked::unlocking(self.as_pymutex() as usize);
        }
        self.unlock()
    }

    /// Unlocks; `FTSHIM_ERR_NOT_LOCKED` (nothing changed) when it was not locked.
    #[inline(always)]
    pub fn unlock(&self) -> ftshim_status {
        if self.bits.compare_exchange(LOCKED, 0, Release, Relaxed).is_ok() {
            return FTSHIM_OK;
        }
        self.unlock_contended()
    }

    /// Everything but the compare-and-swap from `LOCKED` to 0: parked waiters, or not locked.
    /// Also where the exports' failed fast path goes ([`unlock_cold`]); handles every state.
    #[cold]
    #[inline(never)]
    fn unlock_contended(&self) -> ftshim_status {
        if self.bits.load(Relaxed) & LOCKED == 0 {
            return FTSHIM_ERR_NOT_LOCKED;
        }
        match runtime::get().ok().and_then(|rt| rt.pymutex) {
            // SAFETY: the mutex is locked (checked above; only its holder may unlock it), so
            // CPython's unlock will not hit its "unlocking an unlocked mutex" fatal error.
            Some(api) => unsafe { (api.unlock)(self.as_pymutex()) },
            None => self.unlock_slow(),
        }
        FTSHIM_OK
    }

    /// Locks if free; `FTSHIM_ERR_BUSY` when held.
    pub fn try_lock(&self) -> ftshim_status {
        let mut bits = self.bits.load(Relaxed);
        while bits & LOCKED == 0 {
            match self.bits.compare_exchange_weak(bits, bits | LOCKED, Acquire, Relaxed) {
                Ok(_) => return FTSHIM_OK,
                Err(now) => bits = now,
            }
        }
        FTSHIM_ERR_BUSY
    }

    /// Whether bit 0 is set right now.
    pub fn is_locked(&self) -> bool {
        self.bits.load(Relaxed) & LOCKED != 0
    }

    fn lock_slow(&self, gil: Option<&GilApi>) {
        let mut spins = 0;
        let mut state = self.bits.load(Relaxed);
        loop {
            if state & LOCKED == 0 {
                match self.bits.compare_exchange_weak(state, state | LOCKED, Acquire, Relaxed) {
                    Ok(_) => return,
                    Err(now) => state = now,
                }
                continue;
            }
            if state & PARKED == 0 && spins < SPIN_LIMIT {
                spins += 1;
                std::hint::spin_loop();
                state = self.bits.load(Relaxed);
                continue;
            }
            if state & PARKED == 0
                && let Err(now) = self.bits.compare_exchange_weak(state, state | PARKED, Relaxed, Relaxed)
            {
                state = now;
                continue;
            }
            // Sleep until an unlock of a mutex in this bucket, unless the mutex changed after
            // the bucket's sequence was read. The GIL is released meanwhile: the holder may need
            // it to finish and unlock.
            let bucket = wait::bucket(self);
            let seq = bucket.load(SeqCst);
            if self.bits.load(SeqCst) == LOCKED | PARKED {
                let released = gil.and_then(|g| g.release_if_held().map(|r| (g, r)));
                wait::sleep(bucket, seq);
                if let Some((g, r)) = released {
                    g.reacquire(r);
                }
            }
            spins = 0;
            state = self.bits.load(Relaxed);
        }
    }

    fn unlock_slow(&self) {
        // Clears LOCKED and PARKED at once; every thread sleeping in this mutex's bucket is woken
        // and retries (a woken thread that must sleep again sets PARKED again).
        if self.bits.swap(0, SeqCst) & PARKED != 0 {
            wait::wake_all(wait::bucket(self));
        }
    }
}

/// Where libftshim's own mutex sleeps (CPython 3.11/3.12, which have no PyMutex): a fixed table of
/// futex words, one chosen by hashing the mutex's address. A waiter reads its bucket's sequence
/// number, re-checks the mutex, and sleeps only while the sequence is unchanged; an unlock that
/// found waiters bumps the sequence and wakes every sleeper of the bucket, each of which
/// re-checks its own mutex. So a wake-up is never lost, and a hash collision costs only a
/// spurious wake-up. No allocation, no thread-local state, nothing that can panic.
///
/// Each copy of libftshim has its own table: two statically linked copies must not share one
/// `ftshim_mutex` on 3.11/3.12 (docs/porting.md).
mod wait {
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

    const BUCKETS: usize = 64;
    static TABLE: [AtomicU32; BUCKETS] = [const { AtomicU32::new(0) }; BUCKETS];

    /// The bucket of the mutex at `m` (Fibonacci hashing of the address).
    pub(super) fn bucket<T>(m: &T) -> &'static AtomicU32 {
        let h = (m as *const T as usize as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        &TABLE[h as usize % BUCKETS]
    }

    /// Sleeps while `*bucket == seq` (returns at once if it is not), or spuriously.
    pub(super) fn sleep(bucket: &AtomicU32, seq: u32) {
        // SAFETY: FUTEX_WAIT on a live, aligned u32 with a NULL timeout only reads the word; any
        // result (woken, EAGAIN because the word changed, EINTR) leads the caller to re-check.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                bucket.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seq,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }

    /// Bumps the bucket's sequence and wakes every thread sleeping on it.
    pub(super) fn wake_all(bucket: &AtomicU32) {
        bucket.fetch_add(1, SeqCst);
        // SAFETY: FUTEX_WAKE on a live, aligned u32 touches no memory.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                bucket.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
            );
        }
    }
}

impl Default for ftshim_mutex {
    fn default() -> Self {
        Self::new()
    }
}

/// The exported lock/trylock fast path's compare-and-swap, as one word read from memory: the low
/// byte is the value expected in the mutex byte, the high byte the value stored there. While
/// checked mode may be on (and before the environment was read) the expected byte is [`NEVER`],
/// a value the mutex byte never holds, so every fast-path compare-and-swap fails and the call
/// goes to its out-of-line path, where the checker is. Loading the word costs the instructions
/// that would have put constants in registers, so checked mode being off costs the exported
/// functions nothing ([`fast_paths_open`] keeps the words in step with the mode).
///
/// One word rather than two bytes so that the x86-64 fast path ([`fast_path!`]) loads both
/// operands with one `movzwl`: expected in `%al`, stored in `%ah`.
static LOCK_WORD: AtomicU16 = AtomicU16::new(cas_word(NEVER, LOCKED));
/// See [`LOCK_WORD`]: expects `LOCKED`, stores 0 (unlock without parked waiters).
static UNLOCK_WORD: AtomicU16 = AtomicU16::new(cas_word(NEVER, 0));
/// Only bits 0 and 1 are ever set.
const NEVER: u8 = 0xff;

/// A [`LOCK_WORD`]-style word: `expect` in the low byte, `store` in the high byte.
const fn cas_word(expect: u8, store: u8) -> u16 {
    u16::from_le_bytes([expect, store])
}

/// Opens (checked mode off) or closes the exported fast paths ([`LOCK_WORD`]); only
/// [`checked::fast_paths_follow_mode`] calls it.
#[cold]
pub(crate) fn fast_paths_open(open: bool) {
    let expect = |value| if open { value } else { NEVER };
    LOCK_WORD.store(cas_word(expect(0), LOCKED), SeqCst);
    UNLOCK_WORD.store(cas_word(expect(LOCKED), 0), SeqCst);
}

/// The exported lock, unlock and trylock, on x86-64: each is this one sequence, written in
/// assembly because it is the whole function and the compiler's version of it is longer (it
/// materialises the stored byte and the zero status in registers of their own: 9 and 8
/// instructions for lock and unlock, against 7 and 7 here; docs/benchmarks.md).
///
/// NULL gives `FTSHIM_ERR_NULL_ARGUMENT`. Otherwise one `lock cmpxchg` of the mutex byte from the
/// word's low byte to its high byte ([`LOCK_WORD`]); success returns `FTSHIM_OK`, failure
/// tail-jumps to the `extern "C"` out-of-line path `$cold` with the argument still in `%rdi`.
/// Nothing here can panic, and the callees cannot unwind (see [`lock_cold`]). `@PLT` lets the
/// linker resolve the jump whether or not the callee is local; the word is a local symbol. A
/// `lock`ed instruction is a full barrier: at least the Acquire (lock) and Release (unlock) the
/// Rust fast path asks for.
#[cfg(all(target_arch = "x86_64", not(ftshim_portable_mutex)))]
macro_rules! fast_path {
    ($word:path, $cold:path) => {
        core::arch::naked_asm!(
            ".cfi_startproc",
            "test %rdi, %rdi",
            "je 2f",
            "movzwl {word}(%rip), %eax",
            "lock cmpxchg %ah, (%rdi)",
            "jne {cold}@PLT",
            "xor %eax, %eax",
            "ret",
            "2:",
            "mov ${null}, %eax",
            "ret",
            ".cfi_endproc",
            word = sym $word,
            cold = sym $cold,
            null = const crate::status::FTSHIM_ERR_NULL_ARGUMENT.0,
            options(att_syntax),
        )
    };
}
// `xor %eax, %eax` above is FTSHIM_OK.
const _: () = assert!(FTSHIM_OK.0 == 0);

/// The same fast path in Rust: the exports' body on every other architecture, and on x86-64 when
/// built with `--cfg ftshim_portable_mutex` (`make test` runs the unit tests that way too). The
/// compare-and-swap the word describes; `FTSHIM_OK`, or what `cold` returns when it failed.
#[cfg(any(not(target_arch = "x86_64"), ftshim_portable_mutex))]
#[inline(always)]
fn fast_path(
    m: &ftshim_mutex,
    word: &AtomicU16,
    success: std::sync::atomic::Ordering,
    cold: extern "C" fn(&ftshim_mutex) -> ftshim_status,
) -> ftshim_status {
    let [expect, store] = word.load(Relaxed).to_le_bytes();
    if m.bits.compare_exchange(expect, store, success, Relaxed).is_ok() {
        return FTSHIM_OK;
    }
    cold(m)
}

/// `ftshim_mutex_lock` after its compare-and-swap failed: contention, checked mode (or the mode
/// not read yet). `extern "C"`, so it cannot unwind (it has no panic path; one would abort): the
/// export can then reach it by a tail call with no unwind guard around it.
#[cold]
#[inline(never)]
extern "C" fn lock_cold(m: &ftshim_mutex) -> ftshim_status {
    if checked::on() {
        return m.lock_checked();
    }
    // Straight to the contended path: the export's compare-and-swap just failed, and another
    // one here would only take the cache line from the holder once more.
    m.lock_contended()
}

/// `ftshim_mutex_unlock` after its compare-and-swap failed: parked waiters, not locked, checked
/// mode (or the mode not read yet). `extern "C"` for the reason given at [`lock_cold`].
#[cold]
#[inline(never)]
extern "C" fn unlock_cold(m: &ftshim_mutex) -> ftshim_status {
    if checked::on() {
        return m.unlock_checked();
    }
    m.unlock_contended()
}

/// `ftshim_mutex_trylock` after its compare-and-swap failed: held, parked waiters, checked mode
/// (or the mode not read yet). In checked mode a successful trylock makes the thread the holder
/// (no lock-order edge: a trylock cannot deadlock). `extern "C"` as [`lock_cold`].
#[cold]
#[inline(never)]
extern "C" fn trylock_cold(m: &ftshim_mutex) -> ftshim_status {
    let status = m.try_lock();
    if status == FTSHIM_OK && checked::on() {
        checked::locked(m.as_pymutex() as usize);
    }
    status
}

#[cfg(all(target_arch = "x86_64", not(ftshim_portable_mutex)))]
ftshim_boundary::export! {
    /// `ftshim_mutex_lock` — see include/ftshim.h. Assembly: see [`fast_path!`].
    pub unsafe naked fn ftshim_mutex_lock(m: *mut ftshim_mutex) -> ftshim_status {
        fast_path!(LOCK_WORD, lock_cold)
    }

    /// `ftshim_mutex_unlock` — see include/ftshim.h. Assembly: see [`fast_path!`].
    pub unsafe naked fn ftshim_mutex_unlock(m: *mut ftshim_mutex) -> ftshim_status {
        fast_path!(UNLOCK_WORD, unlock_cold)
    }

    /// `ftshim_mutex_trylock` — see include/ftshim.h. Assembly: see [`fast_path!`].
    pub unsafe naked fn ftshim_mutex_trylock(m: *mut ftshim_mutex) -> ftshim_status {
        fast_path!(LOCK_WORD, trylock_cold)
    }
}

#[cfg(any(not(target_arch = "x86_64"), ftshim_portable_mutex))]
ftshim_boundary::export! {
    /// `ftshim_mutex_lock` — see include/ftshim.h.
    pub unsafe fn ftshim_mutex_lock(m: *mut ftshim_mutex) -> ftshim_status {
        fast_path(ftshim_boundary::try_ref!(m), &LOCK_WORD, Acquire, lock_cold)
    }

    /// `ftshim_mutex_unlock` — see include/ftshim.h.
    pub unsafe fn ftshim_mutex_unlock(m: *mut ftshim_mutex) -> ftshim_status {
        fast_path(ftshim_boundary::try_ref!(m), &UNLOCK_WORD, Release, unlock_cold)
    }

    /// `ftshim_mutex_trylock` — see include/ftshim.h.
    pub unsafe fn ftshim_mutex_trylock(m: *mut ftshim_mutex) -> ftshim_status {
        fast_path(ftshim_boundary::try_ref!(m), &LOCK_WORD, Acquire, trylock_cold)
    }
}

ftshim_boundary::export! {
    /// `ftshim_mutex_init` — see include/ftshim.h (ABI 1.1).
    pub unsafe fn ftshim_mutex_init(m: *mut ftshim_mutex) -> ftshim_status {
        ftshim_boundary::try_ref!(m).bits.store(0, Release);
        FTSHIM_OK
    }

    /// `ftshim_mutex_is_locked` — see include/ftshim.h.
    pub unsafe fn ftshim_mutex_is_locked(m: *const ftshim_mutex) -> Snapshot {
        Snapshot(c_int::from(ftshim_boundary::try_ref!(m).is_locked()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::FTSHIM_ERR_NULL_ARGUMENT;

    #[test]
    fn statuses_for_misuse_and_null() {
        let m = ftshim_mutex::new();
        let p = &m as *const ftshim_mutex as *mut ftshim_mutex;
        // SAFETY: `p` points at a live mutex; NULL is what the NULL checks must reject.
        unsafe {
            assert_eq!(ftshim_mutex_unlock(p), FTSHIM_ERR_NOT_LOCKED);
            assert_eq!(ftshim_mutex_is_locked(p), Snapshot(0));
            assert_eq!(ftshim_mutex_trylock(p), FTSHIM_OK);
            assert_eq!(ftshim_mutex_is_locked(p), Snapshot(1));
            assert_eq!(ftshim_mutex_trylock(p), FTSHIM_ERR_BUSY);
            assert_eq!(ftshim_mutex_unlock(p), FTSHIM_OK);
            assert_eq!(ftshim_mutex_unlock(p), FTSHIM_ERR_NOT_LOCKED);
            assert_eq!(ftshim_mutex_lock(p), FTSHIM_OK);
            assert_eq!(ftshim_mutex_unlock(p), FTSHIM_OK);
            let null = std::ptr::null_mut();
            assert_eq!(ftshim_mutex_lock(null), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_mutex_unlock(null), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_mutex_trylock(null), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_mutex_is_locked(null), Snapshot(0));
            assert_eq!(ftshim_mutex_init(null), FTSHIM_ERR_NULL_ARGUMENT);
            assert_eq!(ftshim_mutex_trylock(p), FTSHIM_OK);
            assert_eq!(ftshim_mutex_init(p), FTSHIM_OK);
            assert_eq!(ftshim_mutex_is_locked(p), Snapshot(0));
        }
        assert_eq!(std::mem::size_of::<ftshim_mutex>(), 1);
    }

    #[test]
    fn the_fast_path_words_open_once_the_mode_reads_off() {
        // No FTSHIM_CHECKED in the test environment and no unit test turns checked mode on.
        assert!(!checked::on());
        assert_eq!(LOCK_WORD.load(SeqCst).to_le_bytes(), [0, LOCKED]);
        assert_eq!(UNLOCK_WORD.load(SeqCst).to_le_bytes(), [LOCKED, 0]);
        fast_paths_open(false);
        assert_eq!(LOCK_WORD.load(SeqCst).to_le_bytes(), [NEVER, LOCKED]);
        assert_eq!(UNLOCK_WORD.load(SeqCst).to_le_bytes(), [NEVER, 0]);
        checked::fast_paths_follow_mode();
        assert_eq!(LOCK_WORD.load(SeqCst).to_le_bytes(), [0, LOCKED]);
    }

    /// The Rust fast path (other architectures; x86-64 under `--cfg ftshim_portable_mutex`):
    /// the compare-and-swap the word describes, or the cold path.
    #[cfg(any(not(target_arch = "x86_64"), ftshim_portable_mutex))]
    #[test]
    fn the_rust_fast_path_does_what_the_word_says() {
        const COLD: ftshim_status = ftshim_status(-99);
        extern "C" fn cold(_: &ftshim_mutex) -> ftshim_status {
            COLD
        }
        let m = ftshim_mutex::new();
        let word = |expect, store| AtomicU16::new(cas_word(expect, store));
        assert_eq!(fast_path(&m, &word(0, LOCKED), Acquire, cold), FTSHIM_OK);
        assert!(m.is_locked());
        assert_eq!(fast_path(&m, &word(0, LOCKED), Acquire, cold), COLD, "locked: the lock word's CAS fails");
        assert_eq!(fast_path(&m, &word(NEVER, 0), Release, cold), COLD, "closed: the CAS fails");
        assert!(m.is_locked());
        assert_eq!(fast_path(&m, &word(LOCKED, 0), Release, cold), FTSHIM_OK);
        assert!(!m.is_locked());
    }

    #[test]
    fn contended_increments_are_exact_through_the_parking_slow_path() {
        // No Python in this process: lock/unlock take libftshim's own slow path.
        const THREADS: usize = 4;
        const N: usize = 100_000;
        struct Shared {
            m: ftshim_mutex,
            value: std::cell::UnsafeCell<usize>,
        }
        // SAFETY: `value` is only accessed with `m` held.
        unsafe impl Sync for Shared {}
        let owned = Shared { m: ftshim_mutex::new(), value: std::cell::UnsafeCell::new(0) };
        let shared = &owned;
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..N {
                        shared.m.lock();
                        // SAFETY: the mutex is held.
                        unsafe { *shared.value.get() += 1 };
                        assert_eq!(shared.m.unlock(), FTSHIM_OK);
                    }
                });
            }
        });
        assert!(!owned.m.is_locked());
        assert_eq!(owned.m.bits.load(Relaxed), 0, "no PARKED bit left behind");
        assert_eq!(owned.value.into_inner(), THREADS * N);
    }
}
