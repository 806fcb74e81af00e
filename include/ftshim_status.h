/*
 * ftshim_status.h — the status codes shared by both ftshim libraries: libftshim (ftshim.h) and
 * libftshim_loader (ftshim_loader.h). Needs no Python.h; included by both headers, so a file may
 * include either or both.
 */
#ifndef FTSHIM_STATUS_H
#define FTSHIM_STATUS_H

#include <stdint.h>

/* The ftshim release these headers ship with, as "MAJOR.MINOR.PATCH": the Cargo workspace, the
 * Python package (ftshim.__version__), the wheel, ftshim.pc and the CMake package carry the same
 * number (abi-tests/tests/packaging.rs checks them). Not the ABI version (FTSHIM_ABI_VERSION,
 * FTSHIM_LOADER_ABI_VERSION): a release that adds nothing to the ABI changes only this. */
#define FTSHIM_VERSION "0.1.0"

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
 * is too small, or an unknown flag bit). Nothing was done. */
#define FTSHIM_ERR_INVALID_ARGUMENT (-9)
/* Loader: the module was refused; the report lists every reason. Nothing was loaded. */
#define FTSHIM_ERR_REFUSED (-10)
/* Loader: the file could not be read; the report says why. Nothing was loaded. */
#define FTSHIM_ERR_IO (-11)
/* Loader: the module was accepted but dlopen or dlsym failed; the report carries the text. */
#define FTSHIM_ERR_DLOPEN (-12)
/* Checked mode only (ABI 1.1): the calling thread already holds this mutex through
 * ftshim_mutex_lock, so locking it would never return. Nothing was locked; the finding was
 * reported. */
#define FTSHIM_ERR_WOULD_DEADLOCK (-13)
/* ABI 1.1: the section is not the calling thread's innermost open one — a section begun after it
 * is still open (end that one first), or it was begun on another thread. Nothing was ended.
 * Free-threaded 3.13-3.15 always; GIL builds (where sections are no-ops) in checked mode only. */
#define FTSHIM_ERR_OUT_OF_ORDER (-14)
/* A Rust panic inside libftshim was caught at the boundary. This is a bug in libftshim; the
 * operation did not complete. */
#define FTSHIM_ERR_INTERNAL (-99)

#endif /* FTSHIM_STATUS_H */
