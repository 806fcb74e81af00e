/*
 * ftshim.h — one C API for critical sections, per-object locks and immortal objects on
 * free-threaded (PEP 703, "3.13t") and ordinary GIL builds of CPython.
 *
 * This header is the API reference. Every declaration says what it does on a free-threaded
 * (FT) build and on a GIL build, its thread-safety, its preconditions and its statuses.
 *
 * Include it after <Python.h> is available on the include path; it includes <Python.h> itself
 * and ftshim_status.h (the status codes). Link with -lftshim (libftshim.so.1, or libftshim.a).
 * libftshim does not link against any libpython: at first use it resolves what it needs from the
 * running interpreter, so one libftshim serves every supported interpreter (CPython 3.11 and
 * later, GIL or free-threaded). It contains no loader: checking module files before dlopen is
 * libftshim_loader's job (ftshim_loader.h), which no extension needs to link.
 *
 * ABI policy (docs/abi-policy.md): the ABI is versioned MAJOR.MINOR and append-only. A binary
 * built against ABI MAJOR.m works with every libftshim of the same MAJOR and a minor >= m.
 */
#ifndef FTSHIM_H
#define FTSHIM_H

#include <Python.h>
#include <stdint.h>

#include "ftshim_status.h"

/* Checked mode (see "Checked mode" below): compiled with -DFTSHIM_CHECKED, every section and
 * mutex operation goes through libftshim, so its checker sees them all. */
#if defined(FTSHIM_CHECKED) && !defined(FTSHIM_NO_INLINE)
#  define FTSHIM_NO_INLINE 1
#endif

/* The hottest functions below (sections, mutex lock/unlock) are declared with GCC's `noplt`
 * where it exists: a call from position-independent code then jumps through the GOT entry
 * directly instead of through a PLT stub, one jump fewer per call (the symbol is then bound when
 * the module is loaded, which CPython's RTLD_NOW does anyway). Other compilers ignore it. */
#if defined(__has_attribute)
#  if __has_attribute(noplt)
#    define FTSHIM__NOPLT __attribute__((noplt))
#  endif
#endif
#ifndef FTSHIM__NOPLT
#  define FTSHIM__NOPLT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Versioning
 * ------------------------------------------------------------------------------------------ */

/* The ABI version this header describes. The single source of truth: libftshim's build reads
 * these two lines, and a test checks every other copy against them. */
#define FTSHIM_ABI_VERSION_MAJOR 1
#define FTSHIM_ABI_VERSION_MINOR 1

/* Both parts in one number: (MAJOR << 16) | MINOR. */
#define FTSHIM_ABI_VERSION \
    ((uint32_t)(((uint32_t)FTSHIM_ABI_VERSION_MAJOR << 16) | (uint32_t)FTSHIM_ABI_VERSION_MINOR))

/* Returns the ABI version of the libftshim actually loaded, as (MAJOR << 16) | MINOR.
 * Compare it with FTSHIM_ABI_VERSION (the header you compiled against): compatible when the
 * majors are equal and the library's minor is >= the header's. Never fails; needs no Python
 * thread state; thread-safe. */
uint32_t ftshim_abi_version(void);

/* Call from your module's exec slot (or PyInit) before using anything else in ftshim:
 * returns 0 when the loaded libftshim can serve this header (same major, library minor >= the
 * header's), else sets ImportError naming both versions and returns -1. Needs an attached
 * thread state (it may raise). Header-only (static inline): not a libftshim export. */
static inline int
ftshim_check_abi_version(void)
{
    uint32_t lib = ftshim_abi_version();
    if ((lib >> 16) != FTSHIM_ABI_VERSION_MAJOR || lib < FTSHIM_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "ftshim ABI mismatch: this module was compiled against ftshim ABI %u.%u, "
                     "but the loaded libftshim provides ABI %u.%u (needs the same major and "
                     "a minor >= %u)",
                     (unsigned)FTSHIM_ABI_VERSION_MAJOR, (unsigned)FTSHIM_ABI_VERSION_MINOR,
                     (unsigned)(lib >> 16), (unsigned)(lib & 0xffffu),
                     (unsigned)FTSHIM_ABI_VERSION_MINOR);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Status codes
 *
 * Every fallible function returns an ftshim_status (int32_t): FTSHIM_OK (0) or a negative
 * FTSHIM_ERR_* code, defined with their meanings in ftshim_status.h (shared with the loader's
 * header). There is no global "last error": the status is the whole answer.
 * ------------------------------------------------------------------------------------------ */

/* A static, NUL-terminated English description of a status ("ok", "null argument", ...).
 * Unknown values give "unknown ftshim status". Never returns NULL; thread-safe. */
const char *ftshim_status_str(ftshim_status status);

/* ------------------------------------------------------------------------------------------
 * Critical sections
 *
 * Free-threaded builds: these are CPython's own critical sections. The lock is taken, the
 * section is pushed on the calling thread's stack of sections, and every held section is
 * released whenever the thread blocks (I/O, Py_BEGIN_ALLOW_THREADS, a contended lock) and the
 * top-most one re-taken on resume — CPython's deadlock avoidance. Two-object sections lock the
 * lower address first, and the same object twice only once. Never lock an object's ob_mutex
 * yourself (cpython gh-125053).
 * GIL builds: no-ops, exactly like CPython's Py_BEGIN_CRITICAL_SECTION there; the GIL already
 * serialises the code (and is released while a thread blocks, like the sections above).
 *
 * A section protects only the code between two points where its thread may be suspended. Any
 * call into Python code inside it (a callback, __eq__/__hash__ of a key, a __del__ run by a
 * decref, an allocation that triggers the GC) can block or can be stopped by another thread's
 * stop-the-world (gc.collect() on another thread is enough); the section is then released and
 * other threads run in the object. Measured on python3.13t: two threads each making 600 updates
 * from Python code inside a section on one object lost 600, 551, 273, 0 and 0 of the 1200 in
 * five runs while a third thread looped gc.collect(), and none without it.
 * So: do not call Python code inside a section whose invariant must hold across the call; read
 * and write the state, leave the section, then call out. When state must stay consistent while
 * Python code runs, hold an ftshim_mutex instead (below): a held mutex stays held while its
 * thread blocks or is stopped, and a waiter releases the GIL / detaches, so it cannot deadlock
 * against stop-the-world (extensions/cache computes under its mutex this way).
 *
 * Two ways to use them:
 *  - the statement macros (FTSHIM_BEGIN_CRITICAL_SECTION ... FTSHIM_END_CRITICAL_SECTION),
 *    which compile to CPython's own code where it exists: the same cost as the native
 *    Py_BEGIN_CRITICAL_SECTION, because on a free-threaded build they are it; on every GIL
 *    build a bare block (that still evaluates its arguments); under Py_LIMITED_API the functions
 *    below, except that a 3.15+ limited API target (abi3 3.15, abi3t) uses CPython's own
 *    stable-ABI object sections. (The mutex form on 3.13t, which CPython has no macro for, calls CPython's exported
 *    _PyCriticalSection_BeginSlow and PyCriticalSection_End directly, like the function does.)
 *  - the functions, with caller-provided storage, for callers that cannot use the macros (other
 *    languages, code generators, the limited API). They act on whatever interpreter is running.
 *    On 3.13t the one-object begin/end do CPython 3.13's own section code inside libftshim (a
 *    compare-and-swap on the object's lock, a push on the thread's stack of sections) rather
 *    than calling CPython's functions: a begin+end pair costs 1.14x the macro's instructions
 *    there (docs/benchmarks.md). Contention, and every other kind and version, go through
 *    CPython's own functions.
 *
 * Preconditions for both: the calling thread has an attached Python thread state (it holds the
 * GIL on a GIL build); objects are live; sections end in the reverse order they began, on the
 * thread that began them; the storage stays at the same address, untouched, from begin to end
 * (CPython links it into the thread's list of sections). Storage needs no initialisation. Do not
 * `return`, `goto` or `break` out of a macro block: the section would stay held.
 * ------------------------------------------------------------------------------------------ */

/* Caller-provided storage for one critical section of any kind: 64 bytes, pointer-aligned.
 * Larger than any known CPython layout (PyCriticalSection2 is 24 bytes on 64-bit 3.13t), so
 * later CPython versions fit without an ABI break. Contents are private. */
typedef struct ftshim_critical_section {
    uintptr_t _ftshim_private[8];
} ftshim_critical_section;

/* A one-byte mutex, zero-initialised = unlocked (see "Per-object mutex" below). Declared here
 * because critical sections can be taken on one. */
typedef struct ftshim_mutex {
    uint8_t _bits; /* private: bit 0 locked, bit 1 has parked waiters (PyMutex's layout) */
} ftshim_mutex;

/* Begins a critical section on `op`. FT: locks op's per-object mutex, blocking if needed (and
 * then suspends the thread's other sections, as CPython does). GIL: locks nothing.
 * Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT (cs or op NULL: nothing done);
 * FTSHIM_ERR_NO_RUNTIME (no CPython in the process: nothing done). */
FTSHIM__NOPLT ftshim_status ftshim_critical_section_begin(ftshim_critical_section *cs, PyObject *op);

/* Begins a critical section on two objects (for operations that touch both, like a transfer).
 * FT: CPython's two-object section: locks the lower address first, `a == b` locks once.
 * GIL: locks nothing. Statuses: as ftshim_critical_section_begin (any of cs, a, b NULL gives
 * FTSHIM_ERR_NULL_ARGUMENT). */
FTSHIM__NOPLT ftshim_status ftshim_critical_section2_begin(ftshim_critical_section *cs, PyObject *a, PyObject *b);

/* Begins a critical section on an ftshim_mutex instead of an object's own lock, for state that
 * is not one Python object (a module-level table, a C struct shared by several objects).
 * FT 3.14+: CPython's PyCriticalSection_BeginMutex. FT 3.13 (which has no public form): the
 * same thing through CPython's exported slow path _PyCriticalSection_BeginSlow, which pushes
 * the section on the thread's stack and then locks the mutex with PyMutex_Lock — so it is
 * suspended while the thread blocks and re-taken on resume exactly like an object's section.
 * GIL builds (3.11-3.13): locks nothing, as CPython 3.14's BeginMutex does on a GIL build. So on
 * a GIL build a mutex section does NOT exclude a thread that holds the same mutex through
 * ftshim_mutex_lock and has released the GIL (for I/O or Python code); pick one of the two ways
 * for each mutex. Statuses: as ftshim_critical_section_begin. */
FTSHIM__NOPLT ftshim_status ftshim_critical_section_begin_mutex(ftshim_critical_section *cs, ftshim_mutex *m);

/* ABI 1.1. Begins a critical section on two ftshim_mutexes (state guarded by two mutexes, such as
 * a transfer between two tables). FT 3.14+: CPython's PyCriticalSection2_BeginMutex. FT 3.13
 * (which has no public form): the same operation from CPython's exported slow paths, as 3.14
 * builds it: `m1 == m2` locks once (_PyCriticalSection_BeginSlow), otherwise the lower address is
 * locked first (_PyCriticalSection2_BeginSlow), so two threads taking the same pair in opposite
 * orders cannot deadlock, and the section is suspended while the thread blocks like any other.
 * GIL builds: locks nothing (as ftshim_critical_section_begin_mutex). End it with
 * ftshim_critical_section_end. Statuses: as ftshim_critical_section_begin (any of cs, m1, m2
 * NULL gives FTSHIM_ERR_NULL_ARGUMENT). */
FTSHIM__NOPLT ftshim_status ftshim_critical_section2_begin_mutex(ftshim_critical_section *cs, ftshim_mutex *m1, ftshim_mutex *m2);

/* Ends the section of any kind begun on `cs`. Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT
 * (cs NULL); FTSHIM_ERR_NOT_ACTIVE (cs holds no active section: nothing released);
 * FTSHIM_ERR_OUT_OF_ORDER (ABI 1.1: `cs` is not the calling thread's innermost open section —
 * one begun after it is still open, or it was begun on another thread; nothing released; checked
 * on free-threaded 3.13-3.15, and in checked mode on every build). In checked mode the mutex forms of begin also return FTSHIM_ERR_WOULD_DEADLOCK
 * (nothing begun) for a mutex the thread holds through ftshim_mutex_lock. */
FTSHIM__NOPLT ftshim_status ftshim_critical_section_end(ftshim_critical_section *cs);

/* Statement macros, the counterparts of CPython's Py_BEGIN_CRITICAL_SECTION family:
 *
 *     FTSHIM_BEGIN_CRITICAL_SECTION(self);          FTSHIM_BEGIN_CRITICAL_SECTION2(a, b);
 *     self->value++;                                a->balance -= n; b->balance += n;
 *     FTSHIM_END_CRITICAL_SECTION();                FTSHIM_END_CRITICAL_SECTION2();
 *
 *     FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(&table->mutex);
 *     ...
 *     FTSHIM_END_CRITICAL_SECTION_MUTEX();
 *
 *     FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(&from->mutex, &to->mutex);     (ABI 1.1)
 *     ...
 *     FTSHIM_END_CRITICAL_SECTION2_MUTEX();
 *
 * Each BEGIN opens a C block that its END closes, so they pair up in one scope. */
#if defined(Py_LIMITED_API) || defined(FTSHIM_CHECKED)
/* Limited API and checked mode: the functions, which act on whatever interpreter runs the
 * module. */
#  define FTSHIM__BEGIN_WITH(call)             \
    {                                          \
        ftshim_critical_section _ftshim_cs;    \
        (void)(call)
#  define FTSHIM__END()                                 \
        (void)ftshim_critical_section_end(&_ftshim_cs); \
    }
#  define FTSHIM_BEGIN_CRITICAL_SECTION(op) \
    FTSHIM__BEGIN_WITH(ftshim_critical_section_begin(&_ftshim_cs, (PyObject *)(op)))
#  define FTSHIM_END_CRITICAL_SECTION() FTSHIM__END()
#  define FTSHIM_BEGIN_CRITICAL_SECTION2(a, b) \
    FTSHIM__BEGIN_WITH(ftshim_critical_section2_begin(&_ftshim_cs, (PyObject *)(a), (PyObject *)(b)))
#  define FTSHIM_END_CRITICAL_SECTION2() FTSHIM__END()
#  define FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(m) \
    FTSHIM__BEGIN_WITH(ftshim_critical_section_begin_mutex(&_ftshim_cs, (m)))
#  define FTSHIM_END_CRITICAL_SECTION_MUTEX() FTSHIM__END()
#  define FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(m1, m2) \
    FTSHIM__BEGIN_WITH(ftshim_critical_section2_begin_mutex(&_ftshim_cs, (m1), (m2)))
#  define FTSHIM_END_CRITICAL_SECTION2_MUTEX() FTSHIM__END()
#  if !defined(FTSHIM_CHECKED) && Py_LIMITED_API + 0 >= 0x030F0000 && defined(Py_BEGIN_CRITICAL_SECTION2)
/* Limited API 3.15+ (abi3, and abi3t — PEP 803): object sections are CPython's own stable-ABI
 * PyCriticalSection_Begin/End and PyCriticalSection2_Begin/End (no-ops on GIL builds), with no
 * libftshim call. PyMutex is not in the limited API, so the mutex forms stay the functions. */
#    undef FTSHIM_BEGIN_CRITICAL_SECTION
#    undef FTSHIM_END_CRITICAL_SECTION
#    undef FTSHIM_BEGIN_CRITICAL_SECTION2
#    undef FTSHIM_END_CRITICAL_SECTION2
#    define FTSHIM_BEGIN_CRITICAL_SECTION(op) Py_BEGIN_CRITICAL_SECTION(op)
#    define FTSHIM_END_CRITICAL_SECTION() Py_END_CRITICAL_SECTION()
#    define FTSHIM_BEGIN_CRITICAL_SECTION2(a, b) Py_BEGIN_CRITICAL_SECTION2(a, b)
#    define FTSHIM_END_CRITICAL_SECTION2() Py_END_CRITICAL_SECTION2()
#  endif
#elif !defined(Py_GIL_DISABLED)
/* GIL builds (3.11+): sections are no-ops, as on every GIL build. The arguments are still
 * evaluated (CPython 3.13's bare `{` would leave a parameter used only here unused). */
#  define FTSHIM_BEGIN_CRITICAL_SECTION(op) { (void)(op);
#  define FTSHIM_END_CRITICAL_SECTION() }
#  define FTSHIM_BEGIN_CRITICAL_SECTION2(a, b) { (void)(a); (void)(b);
#  define FTSHIM_END_CRITICAL_SECTION2() }
#  define FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(m) { (void)(m);
#  define FTSHIM_END_CRITICAL_SECTION_MUTEX() }
#  define FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(m1, m2) { (void)(m1); (void)(m2);
#  define FTSHIM_END_CRITICAL_SECTION2_MUTEX() }
#else
/* Free-threaded CPython 3.13+: CPython's own sections. */
#  define FTSHIM_BEGIN_CRITICAL_SECTION(op) Py_BEGIN_CRITICAL_SECTION(op)
#  define FTSHIM_END_CRITICAL_SECTION() Py_END_CRITICAL_SECTION()
#  define FTSHIM_BEGIN_CRITICAL_SECTION2(a, b) Py_BEGIN_CRITICAL_SECTION2(a, b)
#  define FTSHIM_END_CRITICAL_SECTION2() Py_END_CRITICAL_SECTION2()
#  if defined(Py_BEGIN_CRITICAL_SECTION_MUTEX)
#    define FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(m) Py_BEGIN_CRITICAL_SECTION_MUTEX((PyMutex *)(m))
#    define FTSHIM_END_CRITICAL_SECTION_MUTEX() Py_END_CRITICAL_SECTION()
#  else
/* 3.13t has no public BeginMutex; its exported slow path is the same operation (push the section
 * on the thread's stack, then PyMutex_Lock) and is what 3.14's PyCriticalSection_BeginMutex
 * falls back to. Declared here exactly as CPython 3.13's internal header declares it. */
PyAPI_FUNC(void) _PyCriticalSection_BeginSlow(PyCriticalSection *c, PyMutex *m);
#    define FTSHIM_BEGIN_CRITICAL_SECTION_MUTEX(m)                                \
    {                                                                             \
        PyCriticalSection _ftshim_cs;                                             \
        _PyCriticalSection_BeginSlow(&_ftshim_cs, (PyMutex *)(m))
#    define FTSHIM_END_CRITICAL_SECTION_MUTEX() \
        PyCriticalSection_End(&_ftshim_cs);     \
    }
#  endif
#  if defined(Py_BEGIN_CRITICAL_SECTION2_MUTEX)
#    define FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(m1, m2) \
        Py_BEGIN_CRITICAL_SECTION2_MUTEX((PyMutex *)(m1), (PyMutex *)(m2))
#    define FTSHIM_END_CRITICAL_SECTION2_MUTEX() Py_END_CRITICAL_SECTION2()
#  else
/* 3.13t: what 3.14's PyCriticalSection2_BeginMutex does, from the two exported slow paths
 * (declared as CPython 3.13's internal header declares them). */
PyAPI_FUNC(void) _PyCriticalSection2_BeginSlow(PyCriticalSection2 *c, PyMutex *m1, PyMutex *m2,
                                               int is_m1_locked);
static inline void
ftshim__critical_section2_begin_mutex(PyCriticalSection2 *c, PyMutex *m1, PyMutex *m2)
{
    if (m1 == m2) {
        c->_cs_mutex2 = NULL;
        _PyCriticalSection_BeginSlow(&c->_cs_base, m1);
    } else if ((uintptr_t)m2 < (uintptr_t)m1) {
        _PyCriticalSection2_BeginSlow(c, m2, m1, 0);
    } else {
        _PyCriticalSection2_BeginSlow(c, m1, m2, 0);
    }
}
#    define FTSHIM_BEGIN_CRITICAL_SECTION2_MUTEX(m1, m2)                                       \
    {                                                                                         \
        PyCriticalSection2 _ftshim_cs2;                                                       \
        ftshim__critical_section2_begin_mutex(&_ftshim_cs2, (PyMutex *)(m1), (PyMutex *)(m2))
#    define FTSHIM_END_CRITICAL_SECTION2_MUTEX() \
        PyCriticalSection2_End(&_ftshim_cs2);    \
    }
#  endif
#endif

/* ------------------------------------------------------------------------------------------
 * Per-object mutex
 *
 * ftshim_mutex (declared above) is one byte, zero-initialised = unlocked, and embeddable in an
 * object struct. It must not be moved or copied while locked or waited on. Not re-entrant: a
 * thread that locks a mutex it holds deadlocks.
 * CPython 3.13+ (GIL or FT): bit-compatible with PyMutex; contended locking is CPython's own
 * PyMutex_Lock (spins briefly, then parks and detaches the thread state: releases the GIL on a
 * GIL build, lets stop-the-world proceed on FT).
 * CPython 3.11/3.12: implemented by libftshim on the same bit layout: a bounded spin, then the
 * thread sleeps on a futex chosen by the mutex's address, with the GIL released — so a thread
 * holding the mutex can still run Python code while others wait; no unbounded busy-wait. Each
 * copy of libftshim has its own wait table: two statically linked copies must not share one
 * mutex there (docs/porting.md).
 * Locking without an attached thread state (inside Py_BEGIN_ALLOW_THREADS) is allowed.
 *
 * The uncontended paths are inline in this header (one compare-and-swap, the cost of
 * PyMutex_Lock). Contention calls CPython's own PyMutex_Lock/PyMutex_Unlock directly when the
 * module is compiled for 3.13+ without the limited API (no libftshim code involved), and
 * libftshim otherwise (3.11/3.12, Py_LIMITED_API). The exported functions of the same names do
 * the whole job for callers that cannot use the header; define FTSHIM_NO_INLINE to make the
 * names below call them, or call them as (ftshim_mutex_lock)(m).
 * ------------------------------------------------------------------------------------------ */

/* Static initialiser: `static ftshim_mutex m = FTSHIM_MUTEX_INIT;` (zeroed memory is the same). */
#define FTSHIM_MUTEX_INIT {0}

/* ABI 1.1. Initialises `m` to unlocked, for memory that is not zeroed (objects from
 * PyObject_New, malloc). Only on a mutex no thread is using or waiting for. Statuses: FTSHIM_OK;
 * FTSHIM_ERR_NULL_ARGUMENT. */
ftshim_status ftshim_mutex_init(ftshim_mutex *m);

/* Locks `m`, waiting as described above. Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT;
 * FTSHIM_ERR_WOULD_DEADLOCK (checked mode only: the calling thread holds it; nothing done). */
FTSHIM__NOPLT ftshim_status ftshim_mutex_lock(ftshim_mutex *m);

/* Unlocks `m` and wakes one waiter if any. Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT;
 * FTSHIM_ERR_NOT_LOCKED (it was not locked: nothing changed). Ownership is not recorded: unlock
 * from the thread that locked it. */
FTSHIM__NOPLT ftshim_status ftshim_mutex_unlock(ftshim_mutex *m);

/* Locks `m` if it is free, never waits. Statuses: FTSHIM_OK (now held); FTSHIM_ERR_BUSY (held by
 * someone, including the calling thread: nothing changed); FTSHIM_ERR_NULL_ARGUMENT. */
FTSHIM__NOPLT ftshim_status ftshim_mutex_trylock(ftshim_mutex *m);

/* 1 if `m` is locked at the moment of the call, 0 if not (and 0 for NULL). A snapshot, for
 * assertions and diagnostics; another thread may change it right after. */
int ftshim_mutex_is_locked(const ftshim_mutex *m);

#if !defined(FTSHIM_NO_INLINE) && (defined(__GNUC__) || defined(__clang__))
#  define FTSHIM__LIKELY(x) __builtin_expect(!!(x), 1)

/* The contended paths. CPython 3.13+ (non-limited API): CPython's exported PyMutex_Lock /
 * PyMutex_Unlock, called directly, so a module built for 3.13+ needs no libftshim code for the
 * mutex at all. CPython's headers define PyMutex_Lock as an object-like macro for an inline
 * wrapper whose fast path the caller has just tried, so the exported functions are declared here
 * under ftshim's own names bound to CPython's symbols (asm labels). Older versions and the
 * limited API: libftshim's exports. */
#  if !defined(Py_LIMITED_API) && PY_VERSION_HEX >= 0x030D0000
#    define FTSHIM__STR2(x) #x
#    define FTSHIM__STR(x) FTSHIM__STR2(x)
PyAPI_FUNC(void) ftshim__PyMutex_Lock(PyMutex *m) __asm__(FTSHIM__STR(__USER_LABEL_PREFIX__) "PyMutex_Lock");
PyAPI_FUNC(void) ftshim__PyMutex_Unlock(PyMutex *m) __asm__(FTSHIM__STR(__USER_LABEL_PREFIX__) "PyMutex_Unlock");
#    define FTSHIM__MUTEX_LOCK_SLOW(m) (ftshim__PyMutex_Lock((PyMutex *)(m)), FTSHIM_OK)
#    define FTSHIM__MUTEX_UNLOCK_SLOW(m)                                                    \
        ((__atomic_load_n(&(m)->_bits, __ATOMIC_RELAXED) & 1u) == 0                         \
             ? FTSHIM_ERR_NOT_LOCKED                                                        \
             : (ftshim__PyMutex_Unlock((PyMutex *)(m)), FTSHIM_OK))
#  else
#    define FTSHIM__MUTEX_LOCK_SLOW(m) ftshim_mutex_lock(m)
#    define FTSHIM__MUTEX_UNLOCK_SLOW(m) ftshim_mutex_unlock(m)
#  endif

static inline ftshim_status
ftshim_mutex_lock_inline(ftshim_mutex *m)
{
    uint8_t expected = 0;
    if (FTSHIM__LIKELY(m != NULL) &&
        FTSHIM__LIKELY(__atomic_compare_exchange_n(&m->_bits, &expected, (uint8_t)1, 0,
                                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))) {
        return FTSHIM_OK;
    }
    if (m == NULL) {
        return FTSHIM_ERR_NULL_ARGUMENT;
    }
    return FTSHIM__MUTEX_LOCK_SLOW(m);
}

static inline ftshim_status
ftshim_mutex_unlock_inline(ftshim_mutex *m)
{
    uint8_t expected = 1;
    if (FTSHIM__LIKELY(m != NULL) &&
        FTSHIM__LIKELY(__atomic_compare_exchange_n(&m->_bits, &expected, (uint8_t)0, 0,
                                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED))) {
        return FTSHIM_OK;
    }
    if (m == NULL) {
        return FTSHIM_ERR_NULL_ARGUMENT;
    }
    return FTSHIM__MUTEX_UNLOCK_SLOW(m);
}

static inline ftshim_status
ftshim_mutex_trylock_inline(ftshim_mutex *m)
{
    if (m == NULL) {
        return FTSHIM_ERR_NULL_ARGUMENT;
    }
    uint8_t bits = __atomic_load_n(&m->_bits, __ATOMIC_RELAXED);
    while ((bits & 1u) == 0) {
        if (__atomic_compare_exchange_n(&m->_bits, &bits, (uint8_t)(bits | 1u), 1,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return FTSHIM_OK;
        }
    }
    return FTSHIM_ERR_BUSY;
}

static inline int
ftshim_mutex_is_locked_inline(const ftshim_mutex *m)
{
    return m != NULL && (__atomic_load_n(&m->_bits, __ATOMIC_RELAXED) & 1u) != 0;
}

static inline ftshim_status
ftshim_mutex_init_inline(ftshim_mutex *m)
{
    if (m == NULL) {
        return FTSHIM_ERR_NULL_ARGUMENT;
    }
    __atomic_store_n(&m->_bits, (uint8_t)0, __ATOMIC_RELEASE);
    return FTSHIM_OK;
}

#  define ftshim_mutex_lock(m) ftshim_mutex_lock_inline(m)
#  define ftshim_mutex_unlock(m) ftshim_mutex_unlock_inline(m)
#  define ftshim_mutex_trylock(m) ftshim_mutex_trylock_inline(m)
#  define ftshim_mutex_is_locked(m) ftshim_mutex_is_locked_inline(m)
#  define ftshim_mutex_init(m) ftshim_mutex_init_inline(m)
#endif

/* ------------------------------------------------------------------------------------------
 * Declaring GIL freedom (ABI 1.1)
 *
 * A free-threaded CPython re-enables the GIL for the whole process (with a RuntimeWarning) when
 * it imports an extension module that does not declare it can run without the GIL. Declare it
 * once per module, the same way on every build:
 *
 *   multi-phase init (PyModuleDef_Init):     static PyModuleDef_Slot slots[] = {
 *                                                {Py_mod_exec, (void *)my_exec},
 *                                                FTSHIM_MOD_GIL_NOT_USED_SLOT
 *                                                {0, NULL}};
 *   single-phase init (PyModule_Create):     m = PyModule_Create(&def);
 *                                            if (m == NULL ||
 *                                                ftshim_module_set_gil_not_used(m) != FTSHIM_OK) ...
 * ------------------------------------------------------------------------------------------ */

/* A slot-array entry `{Py_mod_gil, Py_MOD_GIL_NOT_USED},` where the headers have Py_mod_gil
 * (3.13+; GIL builds accept and ignore it), and nothing elsewhere (3.11, 3.12, limited API
 * targets before 3.13 — 3.15's headers define Py_mod_gil for them but not its values). Note the
 * trailing comma is part of the expansion. */
#if defined(Py_mod_gil) && defined(Py_MOD_GIL_NOT_USED)
#  define FTSHIM_MOD_GIL_NOT_USED_SLOT {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#else
#  define FTSHIM_MOD_GIL_NOT_USED_SLOT
#endif

/* The module's ABI information (CPython 3.15, PyABIInfo / Py_mod_abi): 3.15 checks it on import
 * and refuses a module built for the other build or a newer stable ABI with a clear ImportError
 * instead of a crash. `FTSHIM_ABI_INFO_VAR(name);` at file scope declares CPython's default
 * PyABIInfo for this compilation (PyABIInfo_VAR: GIL or free-threaded, stable ABI or not, as the
 * headers are configured); FTSHIM_MOD_ABI_SLOT(name) is the slot-array entry
 * `{Py_mod_abi, &name},`. Before 3.15 (and for limited API targets before 3.15) the slot expands
 * to nothing and the declaration to an unused typedef: CPython 3.14 and older raise SystemError
 * for a slot ID they do not know, so the slot must not be there.
 *
 *   FTSHIM_ABI_INFO_VAR(abi_info);
 *   static PyModuleDef_Slot slots[] = {
 *       FTSHIM_MOD_ABI_SLOT(abi_info)
 *       {Py_mod_exec, (void *)my_exec},
 *       FTSHIM_MOD_GIL_NOT_USED_SLOT
 *       {0, NULL}};
 *
 * `ftshim check` reads both back from the built file (docs/loader.md). */
#if defined(Py_mod_abi) && defined(PyABIInfo_VAR)
#  define FTSHIM_ABI_INFO_VAR(name) PyABIInfo_VAR(name)
#  define FTSHIM_MOD_ABI_SLOT(name) {Py_mod_abi, (void *)&(name)},
#else
#  define FTSHIM_ABI_INFO_VAR(name) typedef int ftshim__no_abi_info_##name
#  define FTSHIM_MOD_ABI_SLOT(name)
#endif

/* Declares that the single-phase module `module` (from PyModule_Create) does not need the GIL.
 * FT: CPython's PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED). GIL builds: nothing to
 * declare. Needs an attached thread state. Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT;
 * FTSHIM_ERR_INVALID_ARGUMENT (FT: `module` is not a module object; CPython has set a Python
 * exception); FTSHIM_ERR_NO_RUNTIME (function form only). Compiled without the limited API the
 * header does this inline (no libftshim call); define FTSHIM_NO_INLINE or call
 * (ftshim_module_set_gil_not_used)(m) for the export. */
ftshim_status ftshim_module_set_gil_not_used(PyObject *module);

#if !defined(FTSHIM_NO_INLINE) && !defined(Py_LIMITED_API)
static inline ftshim_status
ftshim_module_set_gil_not_used_inline(PyObject *module)
{
    if (module == NULL) {
        return FTSHIM_ERR_NULL_ARGUMENT;
    }
#  if defined(Py_GIL_DISABLED)
    return PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED) == 0 ? FTSHIM_OK
                                                                       : FTSHIM_ERR_INVALID_ARGUMENT;
#  else
    return FTSHIM_OK;
#  endif
}
#  define ftshim_module_set_gil_not_used(m) ftshim_module_set_gil_not_used_inline(m)
#endif

/* ------------------------------------------------------------------------------------------
 * Immortal objects
 *
 * An immortal object is never deallocated, and Py_INCREF/Py_DECREF on it write nothing: two
 * threads sharing it no longer fight over its refcount (on 3.13t ~20x cheaper under contention).
 * Use it for module-level constants and shared singletons that live as long as the process.
 * ------------------------------------------------------------------------------------------ */

/* Makes `op` immortal. Needs an attached thread state.
 * FT 3.13t: untracks it from the GC, then writes CPython's immortal refcount fields
 *   (ob_tid = 0, ob_ref_local = UINT32_MAX, ob_ref_shared = 0) — only when no other thread can
 *   touch its refcount: it must be owned by the calling thread (created by it) and have no
 *   shared references (no other thread ever took one). Otherwise FTSHIM_ERR_SHARED and nothing
 *   changes. The check cannot see a borrowed pointer another thread is about to incref: call it
 *   before the object is published (e.g. in the module's exec slot).
 * GIL 3.12/3.13: untracks it from the GC and sets CPython's immortal refcount (UINT32_MAX), as
 *   CPython's own _Py_SetImmortal does. The GIL makes it safe whoever holds references.
 * GIL 3.11 (no immortal objects in CPython): *pins* it: untracks it from the GC and adds 2^60 to
 *   its refcount, so it is never freed; Py_INCREF/DECREF still write (no contention win there).
 * 3.14+ (since ABI 1.1; ABI 1.0 returned FTSHIM_ERR_UNSUPPORTED there): the same checks (str;
 *   on FT the ownership rule above), then CPython's exported _Py_SetImmortal (untrack + immortal
 *   fields). Not 3.15's PyUnstable_SetImmortal, which also demands a uniquely referenced object.
 * Statuses: FTSHIM_OK (also when already immortal); FTSHIM_ERR_NULL_ARGUMENT; FTSHIM_ERR_STR
 * (a str: intern it instead); FTSHIM_ERR_SHARED (FT only, see above); FTSHIM_ERR_UNSUPPORTED
 * (an FT platform whose thread id libftshim cannot read); FTSHIM_ERR_NO_RUNTIME. */
ftshim_status ftshim_object_set_immortal(PyObject *op);

/* 1 if `op` is immortal, 0 if not; a negative status for NULL (FTSHIM_ERR_NULL_ARGUMENT) or no
 * runtime / an unsupported version. 3.12+: CPython's own test (so None, small ints, interned
 * strings are immortal too; on 3.14+ CPython's PyUnstable_IsImmortal). 3.11: 1 only for objects
 * pinned by ftshim_object_set_immortal (refcount >= 2^59). Thread-safe (a relaxed read on
 * 3.11-3.13). */
int ftshim_object_is_immortal(PyObject *op);

/* ------------------------------------------------------------------------------------------
 * Early exit from a section (header only)
 *
 * Never `return` out of a section macro's block: the section would stay held. Instead of
 * splitting the function by hand, run the body as a function inside the section; every
 * `return` in it leaves the section:
 *
 *   static PyObject *lookup_locked(PyObject *self, void *key) {
 *       PyObject *v = find(self, key);
 *       if (v == NULL) return Py_NewRef(Py_None);     miss: returns early, section ends
 *       return Py_NewRef(v);
 *   }
 *   ... return ftshim_with_critical_section(self, lookup_locked, key);
 *
 * The two-object form locks both as FTSHIM_BEGIN_CRITICAL_SECTION2 does. Compiled with the
 * macros, so it costs what they cost.
 * ------------------------------------------------------------------------------------------ */
static inline PyObject *
ftshim_with_critical_section(PyObject *op, PyObject *(*body)(PyObject *, void *), void *arg)
{
    PyObject *result;
    FTSHIM_BEGIN_CRITICAL_SECTION(op);
    result = body(op, arg);
    FTSHIM_END_CRITICAL_SECTION();
    return result;
}

static inline PyObject *
ftshim_with_critical_section2(PyObject *a, PyObject *b, PyObject *(*body)(PyObject *, PyObject *, void *),
                              void *arg)
{
    PyObject *result;
    FTSHIM_BEGIN_CRITICAL_SECTION2(a, b);
    result = body(a, b, arg);
    FTSHIM_END_CRITICAL_SECTION2();
    return result;
}

/* ------------------------------------------------------------------------------------------
 * Checked mode (ABI 1.1)
 *
 * A lock checker for porting: turn it on without changing code, run your tests, read what it
 * found. Off (the default), each checked function pays one relaxed load and a branch, and
 * code compiled without FTSHIM_CHECKED keeps its inline paths.
 *   - Turn it on: FTSHIM_CHECKED=1 in the environment (read once, at the first lock or section
 *     through libftshim; "abort" aborts after the first report, for CI; "0"/"off" or unset: off),
 *     or ftshim_checked_set_mode(). Compile with -DFTSHIM_CHECKED so that the header's macros and
 *     inline paths go through libftshim too; otherwise only the calls that reach libftshim are
 *     seen (the function forms, contended paths).
 *   - What it finds, each reported once to stderr, as a Python RuntimeWarning when the thread has
 *     an attached thread state (a warning turned into an error is cleared; stderr has it), and
 *     in ftshim_checked_findings():
 *       FTSHIM_CHECKED_LOCK_ORDER   a cycle in the lock-order graph of mutexes (ftshim_mutex_lock
 *                                   and mutex sections), found when the closing edge is first
 *                                   taken, even if the run never deadlocks. locks[0] held,
 *                                   locks[1] taken.
 *       FTSHIM_CHECKED_SELF_DEADLOCK a thread locks (or begins a mutex section on) a mutex it holds
 *                                   through ftshim_mutex_lock: FTSHIM_ERR_WOULD_DEADLOCK is
 *                                   returned instead of hanging. locks[0] the mutex.
 *       FTSHIM_CHECKED_WRONG_THREAD a mutex unlocked by a thread other than the one that locked it.
 *       FTSHIM_CHECKED_OUT_OF_ORDER a section ended while one begun after it is still open
 *                                   (locks[0] its storage, locks[1] the open one): not ended,
 *                                   FTSHIM_ERR_OUT_OF_ORDER is returned (CPython would unlink
 *                                   the newer section too).
 *       FTSHIM_CHECKED_LEFT_HELD    a thread exited holding mutexes or sections (checked at
 *                                   thread exit; not for the main thread, whose exit runs no
 *                                   thread-local destructors).
 *       FTSHIM_CHECKED_OVERFLOW     a fixed table is full (32 held per thread, 1024 order edges,
 *                                   64 findings); later events are not checked.
 *   - Limits: object sections (not mutexes) are checked for order of ending only: CPython
 *     suspends them when a thread blocks, so they cannot deadlock. A section left open by a
 *     `return` out of a macro block is seen when an outer section ends or the thread exits, not
 *     when the function returns. Mutexes locked before checking was turned on are not known.
 * ------------------------------------------------------------------------------------------ */
#define FTSHIM_CHECKED_OFF 0
#define FTSHIM_CHECKED_REPORT 1
#define FTSHIM_CHECKED_ABORT 2

#define FTSHIM_CHECKED_LOCK_ORDER 1
#define FTSHIM_CHECKED_SELF_DEADLOCK 2
#define FTSHIM_CHECKED_WRONG_THREAD 3
#define FTSHIM_CHECKED_OUT_OF_ORDER 4
#define FTSHIM_CHECKED_LEFT_HELD 5
#define FTSHIM_CHECKED_OVERFLOW 6

/* One finding: its kind, the locks involved (mutex addresses; section storage addresses for
 * section findings), and the thread (Linux thread id) that found it. 48 bytes on 64-bit. */
typedef struct ftshim_checked_finding {
    int32_t kind;
    uint32_t count; /* how many of locks[] are used */
    uintptr_t locks[4];
    uint64_t thread;
} ftshim_checked_finding;

/* The current mode: FTSHIM_CHECKED_OFF, _REPORT or _ABORT (reads the environment the first
 * time). */
int ftshim_checked_mode(void);

/* Sets the mode. FTSHIM_OK; FTSHIM_ERR_INVALID_ARGUMENT for another value. */
ftshim_status ftshim_checked_set_mode(int mode);

/* Copies up to `max` findings, oldest first, into `out` (may be NULL when max is 0) and returns
 * how many were recorded. Thread-safe. */
uint32_t ftshim_checked_findings(ftshim_checked_finding *out, uint32_t max);

/* Forgets the findings, the lock-order graph and the owners (not the threads' held stacks).
 * FTSHIM_OK. */
ftshim_status ftshim_checked_clear(void);

/* A finding kind's description ("lock-order inversion", ...); "unknown finding kind" else. */
const char *ftshim_checked_kind_str(int kind);


#ifdef __cplusplus
}
#endif

#endif /* FTSHIM_H */
