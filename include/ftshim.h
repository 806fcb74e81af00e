/*
 * ftshim.h — one C API for critical sections, per-object locks and immortal objects on
 * free-threaded (PEP 703, "3.13t") and ordinary GIL builds of CPython.
 *
 * This header is the API reference. Every declaration says what it does on a free-threaded
 * (FT) build and on a GIL build, its thread-safety, its preconditions and its statuses.
 *
 * Include it after <Python.h> is available on the include path; it includes <Python.h> itself.
 * Link with -lftshim (libftshim.so.1, or libftshim.a). libftshim does not link against any
 * libpython: at first use it resolves what it needs from the running interpreter, so one
 * libftshim serves every supported interpreter (CPython 3.11 and later, GIL or free-threaded).
 *
 * ABI policy (docs/abi-policy.md): the ABI is versioned MAJOR.MINOR and append-only. A binary
 * built against ABI MAJOR.m works with every libftshim of the same MAJOR and a minor >= m.
 */
#ifndef FTSHIM_H
#define FTSHIM_H

#include <Python.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Versioning
 * ------------------------------------------------------------------------------------------ */

/* The ABI version this header describes. The single source of truth: libftshim's build reads
 * these two lines, and a test checks every other copy against them. */
#define FTSHIM_ABI_VERSION_MAJOR 1
#define FTSHIM_ABI_VERSION_MINOR 0

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
 * Every fallible function returns one of these. There is no global "last error": the status is
 * the whole answer. Negative values are errors; FTSHIM_OK is 0.
 * ------------------------------------------------------------------------------------------ */

typedef int32_t ftshim_status;

/* Success. */
#define FTSHIM_OK 0
/* A required pointer argument was NULL. Nothing was done. */
#define FTSHIM_ERR_NULL_ARGUMENT (-1)
/* No supported CPython runtime was found in this process (libftshim resolves CPython's entry
 * points from the running process; CPython 3.11 or later must be loaded and exported globally). */
#define FTSHIM_ERR_NO_RUNTIME (-2)
/* An end call was given critical-section storage that no matching begin initialised (or that
 * was already ended). Nothing was released. */
#define FTSHIM_ERR_NOT_ACTIVE (-3)
/* ftshim_mutex_unlock on a mutex that is not locked. Nothing was changed (CPython's own
 * PyMutex_Unlock would abort the process here). */
#define FTSHIM_ERR_NOT_LOCKED (-4)
/* ftshim_mutex_trylock found the mutex held. Nothing was changed. */
#define FTSHIM_ERR_BUSY (-5)
/* The object may be referenced from other threads (free-threaded build: not owned by the calling
 * thread, or it has shared references), so its refcount cannot be rewritten safely. Nothing was
 * changed. */
#define FTSHIM_ERR_SHARED (-6)
/* The object is a str: make strings immortal by interning them (sys.intern /
 * PyUnicode_InternInPlace), which CPython manages itself. Nothing was changed. */
#define FTSHIM_ERR_STR (-7)
/* The operation is not available on this interpreter or platform. Nothing was changed. */
#define FTSHIM_ERR_UNSUPPORTED (-8)
/* An argument has a value outside its documented range (for example a struct whose size field
 * is too small, or a path that is not valid UTF-8). Nothing was done. */
#define FTSHIM_ERR_INVALID_ARGUMENT (-9)
/* Loader: the module was refused; the report lists every reason. Nothing was loaded. */
#define FTSHIM_ERR_REFUSED (-10)
/* Loader: the file could not be read; the report says why. Nothing was loaded. */
#define FTSHIM_ERR_IO (-11)
/* Loader: the module was accepted but dlopen or dlsym failed; the report carries the text. */
#define FTSHIM_ERR_DLOPEN (-12)
/* A Rust panic inside libftshim was caught at the boundary. This is a bug in libftshim; the
 * operation did not complete. */
#define FTSHIM_ERR_INTERNAL (-99)

/* A static, NUL-terminated English description of a status ("ok", "null argument", ...).
 * Unknown values give "unknown ftshim status". Never returns NULL; thread-safe. */
const char *ftshim_status_str(ftshim_status status);

/* ------------------------------------------------------------------------------------------
 * Critical sections
 *
 * FT builds: these are CPython's own critical sections (PyCriticalSection_Begin/End): the
 * per-object lock is taken, the section is pushed on the calling thread's stack of sections,
 * and it is released whenever the thread blocks (I/O, Py_BEGIN_ALLOW_THREADS, a contended lock)
 * and re-taken on resume, which is how CPython avoids deadlock. Never lock an object's ob_mutex
 * yourself (cpython gh-125053).
 * GIL builds: no-ops, exactly like CPython's Py_BEGIN_CRITICAL_SECTION there; the GIL already
 * serialises the code.
 *
 * Preconditions: the calling thread has an attached Python thread state (it holds the GIL on a
 * GIL build); `op` is a live object; the storage stays at the same address, untouched, from
 * begin to end (CPython links it into the thread's list of sections), and sections end in the
 * reverse order they began. Storage does not need initialising.
 * ------------------------------------------------------------------------------------------ */

/* Caller-provided storage for one critical section: 64 bytes, pointer-aligned. Larger than any
 * known CPython layout (PyCriticalSection2 is 24 bytes on 64-bit 3.13t) so that later CPython
 * versions fit without an ABI break. Contents are private. */
typedef struct ftshim_critical_section {
    uintptr_t _ftshim_private[8];
} ftshim_critical_section;

/* Begins a critical section on `op`. FT: locks op's per-object mutex (may block, and then
 * releases the thread's other sections as CPython does). GIL: records the section, locks nothing.
 * Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT (cs or op NULL: nothing done);
 * FTSHIM_ERR_NO_RUNTIME (no CPython in the process: nothing done). */
ftshim_status ftshim_critical_section_begin(ftshim_critical_section *cs, PyObject *op);

/* Ends the section begun on `cs`. Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT (cs NULL);
 * FTSHIM_ERR_NOT_ACTIVE (cs holds no active section: nothing released). */
ftshim_status ftshim_critical_section_end(ftshim_critical_section *cs);

/* Statement macros, the counterpart of Py_BEGIN_CRITICAL_SECTION / Py_END_CRITICAL_SECTION:
 *
 *     FTSHIM_BEGIN_CRITICAL_SECTION(self);
 *     self->value++;
 *     FTSHIM_END_CRITICAL_SECTION();
 *
 * They open and close a C block, so they must pair up in the same scope. Do not `return`,
 * `goto` or `break` out of the block: the section would stay held. The status of begin is
 * ignored: with a non-NULL op and a running interpreter it cannot fail. */
#define FTSHIM_BEGIN_CRITICAL_SECTION(op)                                 \
    {                                                                     \
        ftshim_critical_section _ftshim_cs;                               \
        (void)ftshim_critical_section_begin(&_ftshim_cs, (PyObject *)(op))

#define FTSHIM_END_CRITICAL_SECTION()                \
        (void)ftshim_critical_section_end(&_ftshim_cs); \
    }

#ifdef __cplusplus
}
#endif

#endif /* FTSHIM_H */
