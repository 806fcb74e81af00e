/*
 * ftshim_loader.h — the C API of libftshim_loader: check a native CPython extension module
 * against a target interpreter *before* dlopen, from the file alone, and open it only if nothing
 * refuses it.
 *
 * This header is the API reference. It needs no Python.h and compiles as C99, C11 and C++: the
 * loader is for tools (the ftshim CLI, the import guard, a packager's own program), which may
 * have no Python at all. Link with -lftshim_loader (libftshim_loader.so.1, or
 * libftshim_loader.a). It is a separate library from libftshim, the runtime extensions link:
 * no extension carries an ELF parser for untrusted files.
 *
 * ABI policy (docs/abi-policy.md): versioned MAJOR.MINOR, append-only, independent of libftshim's
 * version. A binary built against loader ABI MAJOR.m works with every libftshim_loader of the
 * same MAJOR and a minor >= m.
 */
#ifndef FTSHIM_LOADER_H
#define FTSHIM_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "ftshim_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Versioning
 * ------------------------------------------------------------------------------------------ */

/* The loader ABI version this header describes. The single source of truth: libftshim_loader's
 * build reads these two lines, and a test checks every other copy against them. */
#define FTSHIM_LOADER_ABI_VERSION_MAJOR 1
#define FTSHIM_LOADER_ABI_VERSION_MINOR 0

/* Both parts in one number: (MAJOR << 16) | MINOR. */
#define FTSHIM_LOADER_ABI_VERSION                                               \
    ((uint32_t)(((uint32_t)FTSHIM_LOADER_ABI_VERSION_MAJOR << 16) |             \
                (uint32_t)FTSHIM_LOADER_ABI_VERSION_MINOR))

/* Returns the ABI version of the libftshim_loader actually loaded, as (MAJOR << 16) | MINOR.
 * Compatible with this header when the majors are equal and the library's minor is >= the
 * header's. Never fails; thread-safe. */
uint32_t ftshim_loader_abi_version(void);

/* A static, NUL-terminated English description of a status (the same texts as libftshim's
 * ftshim_status_str). Unknown values give "unknown ftshim status". Never returns NULL. */
const char *ftshim_loader_status_str(ftshim_status status);

/* ------------------------------------------------------------------------------------------
 * Loader
 *
 * Checks a native extension module against a target interpreter from the file alone, then
 * (ftshim_loader_open) opens it only if nothing refuses it. Inspection maps the file read-only
 * and parses its name, ELF identification and headers and dynamic symbol table; none of its code
 * runs. The checks, every reason code and what static evidence does and does not prove are in
 * docs/loader.md.
 *
 * Works the same in FT and GIL processes, and in processes with no Python at all when the target
 * is described explicitly. Needs no Python thread state (nothing here calls into CPython) and is
 * thread-safe: there is no global error state; reasons go into the caller's report.
 *
 * Reports: the caller owns the ftshim_loader_report struct (its first field is its size; later
 * ABI versions only append fields). libftshim_loader allocates the texts behind it; read them with
 * ftshim_loader_report_reason / _inconclusive and release them with ftshim_loader_report_clear.
 *
 *     ftshim_loader_report report = {sizeof report};   // size set, every other field zero
 *     ftshim_status st = ftshim_loader_inspect(path, NULL, &report);
 *     for (uint32_t i = 0; i < report.reason_count; i++) {
 *         const char *code, *message;
 *         ftshim_loader_report_reason(&report, i, &code, &message);
 *         fprintf(stderr, "[%s] %s\n", code, message);
 *     }
 *     ftshim_loader_report_clear(&report);
 *
 * A report passed to inspect or open must be empty (zero-initialised past `size`, or cleared):
 * those functions overwrite it without freeing, so a report filled earlier and not cleared leaks
 * its texts (nothing else goes wrong).
 * ------------------------------------------------------------------------------------------ */

/* ftshim_loader_target.flags: the target is a free-threaded (Py_GIL_DISABLED) build. */
#define FTSHIM_LOADER_FREE_THREADED 0x1u
/* ftshim_loader_target.flags: check the module's undefined Py* symbols against this process's
 * global symbol scope (dlsym; use it when the target is the interpreter running this process). */
#define FTSHIM_LOADER_PROCESS_SYMBOLS 0x2u

/* An explicitly described target interpreter. Pass NULL instead to mean "the interpreter running
 * this process": version from Py_Version, free-threading from its FT-only exports, EXT_SUFFIX
 * derived from those and the platform triplet (plus "d" for a debug build), exports looked up in
 * the process (FTSHIM_ERR_NO_RUNTIME when the process has no CPython 3.11+). */
typedef struct ftshim_loader_target {
    /* sizeof(ftshim_loader_target); at least the ABI 1.0 size (32 on 64-bit platforms). Fields
     * a newer header appends past what this libftshim_loader knows are not read. */
    size_t size;
    /* PY_VERSION_HEX of the target; its major (must be 3) and minor are used. */
    uint32_t version_hex;
    /* FTSHIM_LOADER_* bits; unknown bits are FTSHIM_ERR_INVALID_ARGUMENT. */
    uint32_t flags;
    /* The target's EXT_SUFFIX (importlib.machinery.EXTENSION_SUFFIXES[0]), e.g.
     * ".cpython-313t-x86_64-linux-gnu.so", UTF-8, starting with '.'; NULL derives it from
     * version_hex, the FREE_THREADED flag and the platform triplet. */
    const char *ext_suffix;
    /* Path of the target's libpython (shared build) or executable (static build): its dynamic
     * exports are what the module's undefined Py* symbols are checked against (read once per
     * process and path). A path that cannot be read or exports no CPython C API is
     * FTSHIM_ERR_INVALID_ARGUMENT, naming the path and why (and is read again on the next call).
     * NULL: no such file; then FTSHIM_LOADER_PROCESS_SYMBOLS decides, and without it the check
     * is reported as inconclusive. Setting both is invalid. */
    const char *exports_path;
} ftshim_loader_target;

/* ftshim_loader_report.evidence: the file parsed as ELF and its dynamic symbols were read. */
#define FTSHIM_LOADER_EVIDENCE_ELF 0x1u
/* ftshim_loader_report.evidence: it references free-threaded refcounting (_Py_DecRefShared, ...). */
#define FTSHIM_LOADER_EVIDENCE_FT 0x2u
/* ftshim_loader_report.evidence: it references GIL-build refcounting (_Py_Dealloc). */
#define FTSHIM_LOADER_EVIDENCE_GIL 0x4u

/* What an inspection found. Set `size` before the call; libftshim_loader fills the rest. */
typedef struct ftshim_loader_report {
    /* sizeof(ftshim_loader_report); smaller than the ABI 1.0 size (32 on 64-bit platforms) is
     * FTSHIM_ERR_INVALID_ARGUMENT and nothing is written. */
    size_t size;
    /* The status the call returned (FTSHIM_OK: accepted / opened). */
    ftshim_status status;
    /* Reasons, each a stable code and a message naming the file, the rule, the expected and the
     * found value: every refusal when refused; the one cause for any other non-OK status
     * (code "invalid-argument", "no-runtime" or "dlopen-failed"); 0 when accepted. */
    uint32_t reason_count;
    /* Notes on what static evidence could not decide (the file may still be accepted). */
    uint32_t inconclusive_count;
    /* FTSHIM_LOADER_EVIDENCE_* bits. */
    uint32_t evidence;
    /* libftshim_loader's; NULL when empty. Release with ftshim_loader_report_clear. */
    void *_ftshim_private;
} ftshim_loader_report;

/* Inspects the module file at `path` (a NUL-terminated file system path) for `target` (NULL: the
 * running interpreter) without loading it: nothing in the file runs. Statuses: FTSHIM_OK
 * (accepted; inconclusive notes may remain); FTSHIM_ERR_REFUSED (the report lists every reason);
 * FTSHIM_ERR_IO (the file's bytes could not be had: missing, dangling link, directory, FIFO,
 * unreadable; a FIFO never blocks); FTSHIM_ERR_NULL_ARGUMENT (report NULL: nothing written; path
 * NULL: reason "invalid-argument"); FTSHIM_ERR_INVALID_ARGUMENT (report->size too small: nothing
 * written; a bad target field: the reason names it); FTSHIM_ERR_NO_RUNTIME (target NULL and no
 * CPython 3.11+ in the process). The file is opened once and read with bounded reads, never
 * mapped: a file truncated or rewritten by another process while it is inspected is
 * FTSHIM_ERR_REFUSED with the one reason "file-changed" (naming the sizes and times), never a
 * signal. */
ftshim_status ftshim_loader_inspect(const char *path, const ftshim_loader_target *target, ftshim_loader_report *report);

/* The type of a module's PyInit_<name>: `PyObject *PyInit_<name>(void)`. Spelled with CPython's
 * struct tag (PyObject is `struct _object`) so that this header needs no Python.h and still agrees
 * with it when both are included. */
typedef struct _object *(*ftshim_loader_init_fn)(void);

/* Opens the file at `path` once, inspects it like ftshim_loader_inspect through that descriptor
 * and, only if it is accepted, loads that same descriptor with dlopen("/proc/self/fd/N",
 * RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) and stores its PyInit_<name> (PyInitU_<punycode> for a
 * name that is not ASCII, PEP 489) in *init: replacing the path meanwhile cannot change what is
 * loaded. Libraries the module finds through its own $ORIGIN are loaded first from its real
 * directory. The descriptor stays open for the life of the process (one per module file;
 * opening the same file again reuses it), and dladdr reports the module as /proc/self/fd/N.
 * Opening runs the library's initialisers: inspection rules out the ABI mismatches in
 * docs/loader.md, not arbitrary constructor code. The library is never unloaded (as CPython
 * never unloads extension modules), so *init stays valid for the life of the process. *init is
 * set to NULL first, and stays NULL on any failure. Statuses: as ftshim_loader_inspect, plus
 * FTSHIM_ERR_REFUSED with code "file-changed" when the file changed during inspection, before
 * dlopen, while dlopen loaded it (its initialisers have then run; it stays loaded but is not
 * handed out) or since this process loaded it before; FTSHIM_ERR_DLOPEN (accepted, but not
 * opened: reason "dlopen-failed" carries dlerror's text, or says why it cannot be loaded
 * through its descriptor, e.g. no /proc; the path is never used instead);
 * FTSHIM_ERR_NULL_ARGUMENT when init is NULL. */
ftshim_status ftshim_loader_open(const char *path, const ftshim_loader_target *target, ftshim_loader_report *report, ftshim_loader_init_fn *init);

/* Reads reason `index` (0 <= index < report->reason_count): *code gets its stable code (such as
 * "gil-build") and *message its text; either out pointer may be NULL to skip it. The strings
 * belong to the report and stay valid until ftshim_loader_report_clear. Statuses: FTSHIM_OK;
 * FTSHIM_ERR_NULL_ARGUMENT (report NULL); FTSHIM_ERR_INVALID_ARGUMENT (index out of range, or an
 * empty report: outputs untouched). */
ftshim_status ftshim_loader_report_reason(const ftshim_loader_report *report, uint32_t index, const char **code, const char **message);

/* Reads inconclusive note `index` (0 <= index < report->inconclusive_count) into *message, valid
 * until ftshim_loader_report_clear. Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT (report or
 * message NULL); FTSHIM_ERR_INVALID_ARGUMENT (index out of range: *message untouched). */
ftshim_status ftshim_loader_report_inconclusive(const ftshim_loader_report *report, uint32_t index, const char **message);

/* Releases the texts behind `report` and empties it (counts, evidence and status zero) so it can
 * be reused. Clearing an empty report does nothing. Do not use strings read from it afterwards.
 * Statuses: FTSHIM_OK; FTSHIM_ERR_NULL_ARGUMENT; FTSHIM_ERR_INVALID_ARGUMENT (size too small). */
ftshim_status ftshim_loader_report_clear(ftshim_loader_report *report);

#ifdef __cplusplus
}
#endif

#endif /* FTSHIM_LOADER_H */
