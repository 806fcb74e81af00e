/* Frozen with ABI 1.0: a tool built against the loader ABI 1.0 header. Usage:
 *   loader_check EXT_SUFFIX EXPORTS_PATH FILE...
 * prints, per file, "<status> <code>,<code>..." for a free-threaded CPython 3.13 target. */
#include "ftshim_loader.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    int i;
    uint32_t r;
    if (argc < 4) {
        return 2;
    }
    printf("loader %u.%u\n", (unsigned)(ftshim_loader_abi_version() >> 16),
           (unsigned)(ftshim_loader_abi_version() & 0xffffu));
    for (i = 3; i < argc; i++) {
        ftshim_loader_target target = {sizeof(ftshim_loader_target), 0x030d00f0u,
                                       FTSHIM_LOADER_FREE_THREADED, argv[1], argv[2]};
        ftshim_loader_report report = {sizeof(ftshim_loader_report), 0, 0u, 0u, 0u, NULL};
        ftshim_status st = ftshim_loader_inspect(argv[i], &target, &report);
        printf("%d", (int)st);
        for (r = 0; r < report.reason_count; r++) {
            const char *code = NULL;
            if (ftshim_loader_report_reason(&report, r, &code, NULL) == FTSHIM_OK) {
                printf("%s%s", r == 0 ? " " : ",", code);
            }
        }
        printf(" (%s)\n", ftshim_loader_status_str(st));
        if (ftshim_loader_report_clear(&report) != FTSHIM_OK) {
            return 3;
        }
    }
    return 0;
}
