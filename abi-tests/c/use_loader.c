/* Uses every declaration and macro of ftshim_loader.h; compiled (not run) by
 * tests/compile_matrix.rs as C99, C11 and C++17 with gcc and clang, warnings as errors, with NO
 * Python include path: the loader header must not need Python.h. Valid C and C++. */
#include "ftshim_loader.h"

#include <stdio.h>

int use_loader(const char *path, const char *libpython);

int
use_loader(const char *path, const char *libpython)
{
    ftshim_loader_target target = {sizeof(ftshim_loader_target), 0x030d05f0u,
                                   FTSHIM_LOADER_FREE_THREADED, ".cpython-313t-x86_64-linux-gnu.so",
                                   libpython};
    ftshim_loader_report report = {sizeof(ftshim_loader_report), FTSHIM_OK, 0u, 0u, 0u, NULL};
    ftshim_loader_init_fn init = NULL;
    const char *code = NULL;
    const char *message = NULL;
    uint32_t i;
    uint32_t version = ftshim_loader_abi_version();
    ftshim_status st;
    if ((version >> 16) != FTSHIM_LOADER_ABI_VERSION_MAJOR || version < FTSHIM_LOADER_ABI_VERSION) {
        return -1;
    }
    target.flags |= FTSHIM_LOADER_PROCESS_SYMBOLS;
    target.flags &= ~FTSHIM_LOADER_PROCESS_SYMBOLS;
    st = ftshim_loader_inspect(path, &target, &report);
    printf("%s evidence elf=%d ft=%d gil=%d\n", ftshim_loader_status_str(st),
           (report.evidence & FTSHIM_LOADER_EVIDENCE_ELF) != 0,
           (report.evidence & FTSHIM_LOADER_EVIDENCE_FT) != 0,
           (report.evidence & FTSHIM_LOADER_EVIDENCE_GIL) != 0);
    for (i = 0; i < report.reason_count; i++) {
        if (ftshim_loader_report_reason(&report, i, &code, &message) == FTSHIM_OK) {
            printf("[%s] %s\n", code, message);
        }
    }
    for (i = 0; i < report.inconclusive_count; i++) {
        if (ftshim_loader_report_inconclusive(&report, i, &message) == FTSHIM_OK) {
            printf("%s\n", message);
        }
    }
    (void)ftshim_loader_report_clear(&report);
    st = ftshim_loader_open(path, NULL, &report, &init);
    (void)ftshim_loader_report_clear(&report);
    if (st == FTSHIM_ERR_REFUSED || st == FTSHIM_ERR_IO || st == FTSHIM_ERR_DLOPEN ||
        st == FTSHIM_ERR_NO_RUNTIME || st == FTSHIM_ERR_INVALID_ARGUMENT ||
        st == FTSHIM_ERR_NULL_ARGUMENT || st == FTSHIM_ERR_INTERNAL) {
        return (int)st;
    }
    return init != NULL ? 0 : 1;
}
