//! Per-object mutex — the `Per-object mutex` section of `include/ftshim.h`.
//!
//! `ftshim_mutex` has PyMutex's layout (one byte: bit 0 locked, bit 1 has parked waiters). The
//! header inlines the uncontended compare-and-swap; these exports do the whole job for callers
//! that cannot use the header, and the contended part for everyone:
//! - CPython 3.13+ (GIL or FT): CPython's own `PyMutex_Lock` / `PyMutex_Unlock`.
//! - CPython 3.11/3.12, or no Python in the process: libftshim's implementation on the same bits,
//!   parking_lot's raw-mutex algorithm (bounded spin, then park keyed by the mutex address),
//!   releasing the GIL while parked so the holder can run Python code.

#![allow(non_camel_case_types)]

use std::ffi::c_int;
use std::sync::atomic::{AtomicU8, Ordering::*};

use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};

use ftshim_boundary::Snapshot;

use crate::runtime::{self, GilApi};
use crate::status::{FTSHIM_ERR_BUSY, FTSHIM_ERR_NOT_LOCKED, FTSHIM_OK, ftshim_status};

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

    /// Locks, waiting as documented in the header.
    pub fn lock(&self) {
        if self.bits.compare_exchange(0, LOCKED, Acquire, Relaxed).is_ok() {
            return;
        }
        match runtime::get() {
            Ok(rt) => match rt.pymutex {
                // SAFETY: the byte has PyMutex's layout and stays put while used (caller's contract).
                Some(api) => unsafe { (api.lock)(self.as_pymutex()) },
                None => self.lock_slow(rt.gil.as_ref()),
            },
            Err(_) => self.lock_slow(None),
        }
    }

    /// Unlocks; `FTSHIM_ERR_NOT_LOCKED` (nothing changed) when it was not locked.
    pub fn unlock(&self) -> ftshim_status {
        if self.bits.compare_exchange(LOCKED, 0, Release, Relaxed).is_ok() {
            return FTSHIM_OK;
        }
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

    fn key(&self) -> usize {
        self as *const Self as usize
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
            // Release the GIL while parked: the holder may need it to finish and unlock.
            let released = gil.and_then(|g| g.release_if_held().map(|r| (g, r)));
            // SAFETY: the callbacks neither panic nor call into the parking lot; the key is this
            // mutex's address, unique while it is in use.
            unsafe {
                parking_lot_core::park(
                    self.key(),
                    || self.bits.load(Relaxed) == LOCKED | PARKED,
                    || {},
                    |_, _| {},
                    DEFAULT_PARK_TOKEN,
                    None,
                );
            }
            if let Some((g, r)) = released {
                g.reacquire(r);
            }
            spins = 0;
            state = self.bits.load(Relaxed);
        }
    }

    fn unlock_slow(&self) {
        // Only the PARKED bit can be set besides LOCKED; without it, a plain release suffices.
        if self.bits.compare_exchange(LOCKED, 0, Release, Relaxed).is_ok() {
            return;
        }
        // SAFETY: the callback does not panic or call into the parking lot; same key as park.
        unsafe {
            parking_lot_core::unpark_one(self.key(), |result| {
                self.bits.store(if result.have_more_threads { PARKED } else { 0 }, Release);
                DEFAULT_UNPARK_TOKEN
            });
        }
    }
}

impl Default for ftshim_mutex {
    fn default() -> Self {
        Self::new()
    }
}

ftshim_boundary::export! {
    /// `ftshim_mutex_lock` — see include/ftshim.h.
    pub unsafe fn ftshim_mutex_lock(m: *mut ftshim_mutex) -> ftshim_status {
        ftshim_boundary::try_ref!(m).lock();
        FTSHIM_OK
    }

    /// `ftshim_mutex_unlock` — see include/ftshim.h.
    pub unsafe fn ftshim_mutex_unlock(m: *mut ftshim_mutex) -> ftshim_status {
        ftshim_boundary::try_ref!(m).unlock()
    }

    /// `ftshim_mutex_trylock` — see include/ftshim.h.
    pub unsafe fn ftshim_mutex_trylock(m: *mut ftshim_mutex) -> ftshim_status {
        ftshim_boundary::try_ref!(m).try_lock()
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
        }
        assert_eq!(std::mem::size_of::<ftshim_mutex>(), 1);
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
