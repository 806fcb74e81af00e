//! Hostile files against the loader (issue 11, items 2 and 3): a path swapped while `open` runs, a
//! file rewritten in place or truncated while it is inspected, descriptor numbers reused between
//! opens, `$ORIGIN` when the module is loaded through `/proc/self/fd/N`, and no `/proc` at all.
//!
//! The opens run in this test process (the Rust API, with python3.13t's libpython made global as
//! the interpreter would have it); the truncations and the `/proc`-less open run C programs through
//! the C API, in child processes, so a signal is seen as a signal.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ftshim_abi_tests::build::compiler;
use ftshim_abi_tests::corpus::{libpython_global, mapped_file, mapped_files, two_counter_builds};
use ftshim_abi_tests::{
    BuildOptions, Interpreter, artifacts, build_extension, c_program, interpreters, output_within, scratch,
    write_source,
};
use ftshim_loader::{self as loader, Code, OpenError};

const RUNS: usize = 1000;

/// `S.NNNNNNNNN`, as the loader writes times.
fn time(secs: i64, nanos: i64) -> String {
    format!("{secs}.{nanos:09}")
}

/// The address of an opened module's `PyInit_<name>`.
fn init_addr(module: &loader::Module) -> usize {
    *module.init() as usize
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|e| panic!("canonicalize {}: {e}", path.display()))
}

/// Loads libftshim.so.1 (which every counter build needs, by its RUNPATH `$ORIGIN`) so that opens
/// through a symbolic link's directory, which has no copy beside the link, find it by name.
fn libftshim_loaded() {
    let lib = artifacts().lib_dir.join("libftshim.so.1");
    // SAFETY: libftshim's initialisers only set up its own state.
    let opened = unsafe {
        libloading::os::unix::Library::open(
            Some(&lib),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE,
        )
    };
    opened.unwrap_or_else(|e| panic!("load {}: {e}", lib.display()));
}

/// 1000 opens of a path whose symbolic link another thread flips between the free-threaded and the
/// GIL build of `counter` as fast as it can. `open` resolves the path once, inspects the file it
/// opened and loads that descriptor, so each open hands out the free-threaded build or refuses the
/// GIL build (`gil-build`): never the GIL build, and the GIL build is never even mapped.
#[test]
fn a_symlink_swapped_while_open_runs_never_hands_out_the_gil_build() {
    let all = interpreters();
    let ft = &all.ft;
    libpython_global(ft);
    libftshim_loaded();
    let dir = scratch("loader-races-swap");
    let (ft_dir, gil_dir, links) = (dir.join("ft"), dir.join("gil"), dir.join("links"));
    for d in [&ft_dir, &gil_dir, &links] {
        std::fs::create_dir_all(d).unwrap();
    }
    let ft_module = build_extension("counter", ft, &ft_dir);
    let file_name = ft_module.file_name().unwrap().to_owned();
    let gil_module = gil_dir.join(&file_name);
    std::fs::copy(build_extension("counter", &all.gil313, &gil_dir), &gil_module).unwrap();
    let (ft_real, gil_real) = (canonical(&ft_module), canonical(&gil_module));

    // The swapper flips the link of the current run, GIL build then free-threaded build, until
    // told to stop; it counts its flips, and each run starts once the swapper flips its link.
    let current = Arc::new(AtomicUsize::new(usize::MAX));
    let flips = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (current, flips, stop) = (current.clone(), flips.clone(), stop.clone());
        let (links, name) = (links.clone(), file_name.clone());
        let targets = [gil_module.clone(), ft_module.clone()];
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let i = current.load(Ordering::Acquire);
                if i == usize::MAX {
                    std::hint::spin_loop();
                    continue;
                }
                let here = links.join(i.to_string());
                for target in &targets {
                    let tmp = here.join(".swap");
                    let _ = std::fs::remove_file(&tmp);
                    std::os::unix::fs::symlink(target, &tmp).unwrap();
                    std::fs::rename(&tmp, here.join(&name)).unwrap();
                    flips.fetch_add(1, Ordering::Release);
                }
            }
        })
    };
    let target = ft.target();
    let (mut opened_ft, mut refused_gil, mut wrong, mut other) = (0, 0, 0, Vec::new());
    for i in 0..RUNS {
        // A fresh path each time, as the dynamic linker would otherwise match the name it saw.
        let here = links.join(i.to_string());
        std::fs::create_dir_all(&here).unwrap();
        let link = here.join(&file_name);
        std::os::unix::fs::symlink(&ft_module, &link).unwrap();
        let seen = flips.load(Ordering::Acquire);
        current.store(i, Ordering::Release);
        while flips.load(Ordering::Acquire) < seen + 3 {
            std::hint::spin_loop();
        }
        // SAFETY: both builds are this repository's counter example; their initialisers are the
        // C runtime's only.
        match unsafe { loader::open(&link, &target) } {
            Ok(module) => match mapped_file(init_addr(&module)) {
                Some(f) if f == ft_real => opened_ft += 1,
                Some(f) if f == gil_real => wrong += 1,
                found => other.push(format!("run {i}: PyInit_counter handed out from {found:?}")),
            },
            Err(OpenError::Refused(report)) if report.codes() == [Code::GilBuild] => {
                assert_eq!(
                    report.messages(),
                    [format!(
                        "{}: built for a GIL interpreter, target is free-threaded 3.13: expected a free-threaded build (undefined symbols such as _Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL), found GIL-only references (_Py_Dealloc) and none of those",
                        link.display()
                    )]
                );
                refused_gil += 1;
            }
            Err(e) => other.push(format!("run {i}: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let flips = flips.load(Ordering::Acquire);
    println!(
        "{RUNS} opens racing {flips} symlink flips: {opened_ft} opened the free-threaded build, {refused_gil} refused the GIL build (gil-build), {wrong} handed out the GIL build"
    );
    assert_eq!(wrong, 0, "the GIL build was handed out");
    assert_eq!(other, Vec::<String>::new());
    assert_eq!(opened_ft + refused_gil, RUNS);
    // Both outcomes occurred: the swapper did race the opens.
    assert!(opened_ft > 0 && refused_gil > 0, "{opened_ft} opened, {refused_gil} refused");
    assert!(!mapped_files().contains(&gil_real), "the GIL build was mapped into the process");
}

/// A module opened twice is loaded once, through one kept descriptor; rewritten in place (same
/// inode, so the dynamic linker would hand back the copy it loaded before), it is refused.
#[test]
fn a_module_opened_again_is_reused_and_refused_once_rewritten_in_place() {
    let ft = &interpreters().ft;
    libpython_global(ft);
    let dir = scratch("loader-races-rewrite");
    let module = build_extension("counter", ft, &dir);
    let target = ft.target();
    // SAFETY: the counter example; its initialisers are the C runtime's only.
    let first = unsafe { loader::open(&module, &target) }.unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: as above.
    let again = unsafe { loader::open(&module, &target) }.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(init_addr(&first), init_addr(&again));
    // One descriptor kept for it, however often it is opened.
    let real = canonical(&module);
    let kept = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|to| *to == real)
        .count();
    assert_eq!(kept, 1);

    let before = std::fs::metadata(&module).unwrap();
    let bytes = std::fs::read(&module).unwrap();
    std::fs::OpenOptions::new().write(true).open(&module).unwrap().write_all_at(&bytes, 0).unwrap();
    let after = std::fs::metadata(&module).unwrap();
    assert_eq!((after.ino(), after.size()), (before.ino(), before.size()));
    // SAFETY: refused before any dlopen.
    match unsafe { loader::open(&module, &target) } {
        Err(OpenError::Refused(report)) => {
            assert_eq!(report.codes(), [Code::FileChanged]);
            assert_eq!(
                report.messages(),
                [format!(
                    "{}: the file changed since the loader opened it before in this process: expected it as it was then (size {} bytes, mtime {}, ctime {}), found mtime {}, ctime {}; the dynamic linker would hand back the copy loaded then, not the file inspected",
                    module.display(),
                    before.size(),
                    time(before.mtime(), before.mtime_nsec()),
                    time(before.ctime(), before.ctime_nsec()),
                    time(after.mtime(), after.mtime_nsec()),
                    time(after.ctime(), after.ctime_nsec()),
                )]
            );
        }
        Err(e) => panic!("expected file-changed, got {e}"),
        Ok(_) => panic!("a module rewritten in place since it was loaded was handed out"),
    }
}

/// Two files opened one after the other: had the loader closed the first descriptor, the second
/// file would get the same number, and the dynamic linker, matching the name
/// `/proc/self/fd/N`, would hand back the first module.
#[test]
fn files_opened_one_after_another_each_get_their_own_module() {
    let ft = &interpreters().ft;
    libpython_global(ft);
    let (a, b) = two_counter_builds("loader-races-reuse", ft);
    let target = ft.target();
    for path in [&a, &b, &a, &b] {
        // SAFETY: the counter example.
        let module = unsafe { loader::open(path, &target) }.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mapped_file(init_addr(&module)), Some(canonical(path)), "{}", path.display());
    }
}

/// `int <name>(void) { return <value>; }`.
fn marker(name: &str, value: u32) -> String {
    format!("int {name}(void);\nint {name}(void) {{ return {value}; }}\n")
}

/// Compiles `source` into the shared object `out` with the strict C configuration and `args`.
fn shared(ft: &Interpreter, source: &str, out: &Path, args: &[String]) {
    let src = out.with_extension("c");
    std::fs::write(&src, source).unwrap();
    let mut cmd = compiler(ft, &BuildOptions::default()).to_command();
    cmd.arg("-shared").arg(&src).arg("-o").arg(out).args(args);
    let run = output_within(&mut cmd, Duration::from_secs(120), "cc");
    assert!(run.status.success(), "{}: {}", out.display(), String::from_utf8_lossy(&run.stderr));
}

/// A module loaded through `/proc/self/fd/N` has `$ORIGIN` = `/proc/self/fd`: the libraries it
/// finds through its own `$ORIGIN` must come from its real directory, not from a later entry of
/// its search path (here a decoy directory holding libraries of the same names). With
/// `DT_RUNPATH` for its own `DT_NEEDED`; with `DT_RPATH` also for a library's library (the module's
/// `DT_RPATH` is inherited).
#[test]
fn libraries_found_through_origin_come_from_the_real_directory() {
    let ft = &interpreters().ft;
    libpython_global(ft);
    let dir = scratch("loader-races-origin");
    let decoy = dir.join("decoy");
    std::fs::create_dir_all(&decoy).unwrap();
    let soname = |name: &str| format!("-Wl,-soname,{name}");
    let target = ft.target();
    // (label, linker flag, library names: the module needs the first, which needs the second)
    for (label, dtags, libs) in [
        ("runpath", "-Wl,--enable-new-dtags", ["libftorigin_rp.so.1", ""]),
        ("rpath", "-Wl,--disable-new-dtags", ["libftorigin_p.so.1", "libftorigin_p2.so.1"]),
    ] {
        let home = dir.join(label);
        let lib_dir = home.join("libs");
        std::fs::create_dir_all(&lib_dir).unwrap();
        let [first, second] = libs;
        let fn_name = |lib: &str| lib.trim_start_matches("lib").split('.').next().unwrap().to_owned();
        if !second.is_empty() {
            for (d, value) in [(&lib_dir, 1), (&decoy, 2)] {
                shared(ft, &marker(&fn_name(second), value), &d.join(second), &[soname(second)]);
            }
        }
        for (d, value) in [(&lib_dir, 1), (&decoy, 2)] {
            let mut args = vec![soname(first)];
            let mut source = marker(&fn_name(first), value);
            if !second.is_empty() {
                // Calls the second (so it is needed), linked against the real one, and found at
                // run time only through the module's RPATH.
                let (f, g) = (fn_name(first), fn_name(second));
                source = format!(
                    "int {g}(void);\nint {f}(void);\nint {f}(void) {{ return {g}() == 1 ? {value} : 0; }}\n"
                );
                args.push(lib_dir.join(second).display().to_string());
            }
            shared(ft, &source, &d.join(first), &args);
        }
        let name = format!("origin_{label}");
        let module = home.join(format!("{name}{}", ft.ext_suffix));
        let source = format!(
            "#include <Python.h>\nint {f}(void);\nstatic struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, \"{name}\", NULL, 0, NULL, NULL, NULL, NULL, NULL}};\nPyMODINIT_FUNC PyInit_{name}(void) {{ return {f}() == 1 ? PyModule_Create(&def) : NULL; }}\n",
            f = fn_name(first)
        );
        let args = vec![
            lib_dir.join(first).display().to_string(),
            dtags.to_owned(),
            format!("-Wl,-rpath,$ORIGIN/libs:{}", decoy.display()),
        ];
        shared(ft, &source, &module, &args);
        // SAFETY: the module and its libraries are the tiny sources above.
        let opened = unsafe { loader::open(&module, &target) }.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(mapped_file(init_addr(&opened)), Some(canonical(&module)), "{label}");
        let mapped = mapped_files();
        for lib in libs.iter().filter(|l| !l.is_empty()) {
            assert!(
                mapped.contains(&canonical(&lib_dir.join(lib))),
                "{label}: {lib} not from {}",
                lib_dir.display()
            );
            assert!(
                !mapped.contains(&canonical(&decoy.join(lib))),
                "{label}: {lib} from the decoy directory"
            );
        }
    }
}

/// Opens one module through the C API and prints the descriptor number it will get, the status and
/// each reason.
const OPEN_ONE_C: &str = r#"#include "ftshim_loader.h"
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        return 2;
    }
    ftshim_loader_target target = {sizeof target, 0x030d00f0, FTSHIM_LOADER_FREE_THREADED, argv[2], NULL};
    ftshim_loader_report report = {sizeof report, 0, 0, 0, 0, NULL};
    int next = dup(0); /* the lowest free descriptor: the one open will get */
    close(next);
    ftshim_loader_init_fn init = NULL;
    ftshim_status st = ftshim_loader_open(argv[1], &target, &report, &init);
    printf("fd=%d status=%d init=%s\n", next, (int)st, init ? "set" : "NULL");
    for (uint32_t i = 0; i < report.reason_count; i++) {
        const char *code = NULL, *message = NULL;
        ftshim_loader_report_reason(&report, i, &code, &message);
        printf("[%s] %s\n", code, message);
    }
    ftshim_loader_report_clear(&report);
    return 0;
}
"#;

/// Without `/proc` (an empty tmpfs over it, in a private mount namespace), `open` cannot load
/// through the descriptor: it refuses, saying so, and does not fall back to the path.
#[test]
fn without_proc_open_refuses_and_does_not_fall_back_to_the_path() {
    let ft = &interpreters().ft;
    let dir = scratch("loader-races-noproc");
    let module = build_extension("counter", ft, &dir);
    let src = write_source(&dir, "open_one.c", OPEN_ONE_C);
    let exe = c_program(&src, ft, &dir, &["-lftshim_loader".to_owned()]);
    let mut cmd = Command::new("unshare");
    // Without /proc the dynamic linker cannot read /proc/self/exe to expand the program's own
    // $ORIGIN: its libraries are named by LD_LIBRARY_PATH instead.
    cmd.args(["--user", "--map-root-user", "--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /proc && exec \"$0\" \"$@\"")
        .arg(&exe)
        .arg(&module)
        .arg(&ft.ext_suffix)
        .env("LD_LIBRARY_PATH", &dir);
    let run = output_within(&mut cmd, Duration::from_secs(60), "open without /proc");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "unshare (user and mount namespaces) must work here: {}\n{stdout}{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let fd: u32 = stdout.split_once("fd=").and_then(|(_, r)| r.split(' ').next()?.parse().ok()).unwrap();
    assert_eq!(
        stdout,
        format!(
            "fd={fd} status=-12 init=NULL\n[dlopen-failed] {m}: accepted, but not opened: the loader opens a module through its descriptor, and /proc/self/fd/{fd} cannot be used (No such file or directory (os error 2)): is /proc mounted? It does not fall back to the path\n",
            m = module.display()
        )
    );
}

/// Truncates a copy of a module while a forked child inspects it through the C API, `runs` times,
/// each after a delay (from the start of the inspection) spread over twice the measured
/// inspection time; tallies how each child ended.
const TRUNCATE_C: &str = r#"#define _GNU_SOURCE
#include "ftshim_loader.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHORT 1000

static const char *work;
static const char *suffix;
static char *full;
static size_t full_len;
static long delay_ns;
static atomic_int ready, truncated;
static char expected_truncated[4096];

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void restore(void)
{
    int fd = open(work, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, full, full_len) != (ssize_t)full_len || close(fd) != 0) {
        perror("restore");
        exit(3);
    }
}

static ftshim_status inspect(ftshim_loader_report *report)
{
    ftshim_loader_target target = {sizeof target, 0x030d00f0, FTSHIM_LOADER_FREE_THREADED, suffix, NULL};
    report->size = sizeof *report;
    return ftshim_loader_inspect(work, &target, report);
}

static void *truncator(void *arg)
{
    (void)arg;
    atomic_store(&ready, 1);
    long long until = now_ns() + delay_ns;
    while (now_ns() < until) {
    }
    int fd = open(work, O_WRONLY);
    if (fd < 0 || ftruncate(fd, SHORT) != 0) {
        _exit(90);
    }
    close(fd);
    atomic_store(&truncated, 1);
    return NULL;
}

static void fmt_time(char *out, size_t n, struct timespec t)
{
    snprintf(out, n, "%lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
}

/* Whether `t` (seconds, nanoseconds) lies between `lo` and `hi`, inclusive. */
static int time_between(long long sec, long nsec, struct timespec lo, struct timespec hi)
{
    long long t = sec * 1000000000LL + nsec;
    return (long long)lo.tv_sec * 1000000000LL + lo.tv_nsec <= t && t <= (long long)hi.tv_sec * 1000000000LL + hi.tv_nsec;
}

/* Whether `message` is the file-changed message the truncation can cause. ftruncate changes the
 * size and the times, and the loader's fstat at open and at the end can each fall before, between
 * or after those writes. Its times need not be the before or after ones either: on this machine
 * (ext4, Linux 6.18) the loader has seen a time strictly between them (e.g. mtime .822600738
 * between .820285153 and .823725281: a coarse clock tick, written before the fine-grained time).
 * So: the exact sentence; an opened view with the size before or after and times between; a found
 * part naming, in the loader's order (size, mtime, ctime), at least one field and only fields that
 * differ from the opened view, each the size after or a time between. */
static int is_changed_message(const char *message, const struct stat *pre, const struct stat *post)
{
    char head[4096];
    snprintf(head, sizeof head,
             "%s: the file changed while it was inspected (nothing read from it is reported): expected it as it "
             "was opened (",
             work);
    size_t n = strlen(head);
    long long size, ms, cs;
    long mns, cns;
    int used = 0;
    if (strncmp(message, head, n) != 0 ||
        sscanf(message + n, "size %lld bytes, mtime %lld.%ld, ctime %lld.%ld), found %n", &size, &ms, &mns, &cs, &cns,
               &used) != 5 ||
        used == 0) {
        return 0;
    }
    if ((size != pre->st_size && size != post->st_size) || !time_between(ms, mns, pre->st_mtim, post->st_mtim) ||
        !time_between(cs, cns, pre->st_ctim, post->st_ctim)) {
        return 0;
    }
    const char *rest = message + n + used;
    int items = 0, last = 0;
    while (*rest) {
        long long v;
        long vns;
        int k = 0, field;
        if (sscanf(rest, "size %lld bytes%n", &v, &k) == 1 && k > 0) {
            field = 1;
            if (v != post->st_size || v == size) {
                return 0;
            }
        } else if (sscanf(rest, "mtime %lld.%ld%n", &v, &vns, &k) == 2 && k > 0) {
            field = 2;
            if (!time_between(v, vns, pre->st_mtim, post->st_mtim) || (v == ms && vns == mns)) {
                return 0;
            }
        } else if (sscanf(rest, "ctime %lld.%ld%n", &v, &vns, &k) == 2 && k > 0) {
            field = 3;
            if (!time_between(v, vns, pre->st_ctim, post->st_ctim) || (v == cs && vns == cns)) {
                return 0;
            }
        } else {
            return 0;
        }
        if (field <= last) {
            return 0;
        }
        last = field;
        items++;
        rest += k;
        if (strncmp(rest, ", ", 2) == 0) {
            rest += 2;
        } else if (*rest) {
            return 0;
        }
    }
    return items > 0;
}

/* Exit codes: 10 accepted (before the truncation), 11 refused as truncated (after it), 12
 * file-changed (during it, the exact message), 13 anything else (printed). */
static int child(const struct stat *pre)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, truncator, NULL) != 0) {
        return 3;
    }
    /* The delay counts from here: the inspection starts as the truncator starts waiting. */
    while (!atomic_load(&ready)) {
    }
    int before = atomic_load(&truncated);
    ftshim_loader_report report;
    memset(&report, 0, sizeof report);
    ftshim_status st = inspect(&report);
    pthread_join(thread, NULL);
    struct stat post;
    if (stat(work, &post) != 0) {
        return 3;
    }
    const char *code = "", *message = "";
    if (report.reason_count >= 1) {
        ftshim_loader_report_reason(&report, 0, &code, &message);
    }
    int verdict = 13;
    if (st == FTSHIM_OK && report.reason_count == 0 && !before) {
        verdict = 10;
    } else if (st == FTSHIM_ERR_REFUSED && report.reason_count == 1 && strcmp(code, "truncated") == 0 &&
               strcmp(message, expected_truncated) == 0) {
        verdict = 11;
    } else if (st == FTSHIM_ERR_REFUSED && report.reason_count == 1 && strcmp(code, "file-changed") == 0 &&
               is_changed_message(message, pre, &post)) {
        verdict = 12;
    }
    if (verdict == 13) {
        char pm[64], pc[64], qm[64], qc[64];
        fmt_time(pm, sizeof pm, pre->st_mtim);
        fmt_time(pc, sizeof pc, pre->st_ctim);
        fmt_time(qm, sizeof qm, post.st_mtim);
        fmt_time(qc, sizeof qc, post.st_ctim);
        printf("other: status %d, %u reasons, first [%s] %s (before: size %lld, mtime %s, ctime %s; after: size %lld, "
               "mtime %s, ctime %s)\n",
               (int)st, (unsigned)report.reason_count, code, message, (long long)pre->st_size, pm, pc,
               (long long)post.st_size, qm, qc);
    }
    ftshim_loader_report_clear(&report);
    fflush(stdout);
    return verdict;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        return 2;
    }
    const char *module = argv[1];
    work = argv[2];
    suffix = argv[3];
    int runs = atoi(argv[4]);
    FILE *f = fopen(module, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) {
        return 3;
    }
    full_len = (size_t)ftell(f);
    full = malloc(full_len);
    rewind(f);
    if (!full || fread(full, 1, full_len, f) != full_len) {
        return 3;
    }
    fclose(f);

    /* What the truncated file is refused with, read at rest. */
    ftshim_loader_report report;
    restore();
    if (truncate(work, SHORT) != 0) {
        return 3;
    }
    memset(&report, 0, sizeof report);
    const char *code = "", *message = "";
    if (inspect(&report) != FTSHIM_ERR_REFUSED || report.reason_count != 1 ||
        ftshim_loader_report_reason(&report, 0, &code, &message) != FTSHIM_OK || strcmp(code, "truncated") != 0) {
        printf("the truncated copy is not refused as truncated: [%s] %s\n", code, message);
        return 4;
    }
    snprintf(expected_truncated, sizeof expected_truncated, "%s", message);
    ftshim_loader_report_clear(&report);

    /* How long an inspection of the whole file takes in a freshly forked child, as in the runs
     * below (median of 21). */
    long long took[21];
    restore();
    for (int i = 0; i < 21; i++) {
        int fds[2];
        if (pipe(fds) != 0) {
            return 3;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            long long t0 = now_ns();
            memset(&report, 0, sizeof report);
            long long dt = inspect(&report) == FTSHIM_OK ? now_ns() - t0 : -1;
            _exit(write(fds[1], &dt, sizeof dt) == (ssize_t)sizeof dt ? 0 : 3);
        }
        int status;
        if (pid < 0 || read(fds[0], &took[i], sizeof took[i]) != (ssize_t)sizeof took[i] ||
            waitpid(pid, &status, 0) != pid || took[i] < 0) {
            printf("the whole copy is not accepted\n");
            return 4;
        }
        close(fds[0]);
        close(fds[1]);
    }
    for (int i = 0; i < 21; i++) {
        for (int j = i + 1; j < 21; j++) {
            if (took[j] < took[i]) {
                long long t = took[i];
                took[i] = took[j];
                took[j] = t;
            }
        }
    }
    long long median = took[10];

    int tally[4] = {0, 0, 0, 0}, signals = 0;
    for (int i = 0; i < runs; i++) {
        restore();
        struct stat pre;
        if (stat(work, &pre) != 0) {
            return 3;
        }
        delay_ns = (long)(2 * median * (i % 64) / 64);
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            return 3;
        }
        if (pid == 0) {
            _exit(child(&pre));
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            return 3;
        }
        if (WIFSIGNALED(status)) {
            signals++;
            printf("run %d: killed by signal %d (%s)\n", i, WTERMSIG(status), strsignal(WTERMSIG(status)));
        } else if (WIFEXITED(status) && WEXITSTATUS(status) >= 10 && WEXITSTATUS(status) <= 13) {
            tally[WEXITSTATUS(status) - 10]++;
        } else {
            printf("run %d: child exited %d\n", i, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            tally[3]++;
        }
    }
    printf("median inspection %lld ns\n", median);
    printf("runs=%d signals=%d accepted=%d truncated=%d changed=%d other=%d\n", runs, signals, tally[0], tally[1],
           tally[2], tally[3]);
    return 0;
}
"#;

/// 1000 truncations of a module while a child process inspects it through the C API: no child is
/// killed by a signal (the file is read with bounded `pread`s, never mapped), and each result is
/// exactly one of: accepted (the inspection ended before the truncation), `truncated` (it began
/// after), `file-changed` naming the sizes and times (they overlapped).
#[test]
fn truncations_during_inspection_are_refusals_never_signals() {
    let ft = &interpreters().ft;
    let dir = scratch("loader-races-truncate");
    let module = build_extension("counter", ft, &dir);
    let work = dir.join("work").join(module.file_name().unwrap());
    std::fs::create_dir_all(work.parent().unwrap()).unwrap();
    let src = write_source(&dir, "truncate.c", TRUNCATE_C);
    let exe = c_program(&src, ft, &dir, &["-lftshim_loader".to_owned(), "-lpthread".to_owned()]);
    let mut cmd = Command::new(&exe);
    cmd.arg(&module).arg(&work).arg(&ft.ext_suffix).arg(RUNS.to_string());
    let run = output_within(&mut cmd, Duration::from_secs(600), "the truncation program");
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(run.status.success(), "{}: {stdout}{}", run.status, String::from_utf8_lossy(&run.stderr));
    let summary = stdout.lines().last().unwrap_or_default();
    let counts = ftshim_abi_tests::parse_kv(summary.replace(' ', "\n").as_bytes());
    let n = |k: &str| {
        counts.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or_else(|| panic!("{k}: {stdout}"))
    };
    assert_eq!((n("runs"), n("signals"), n("other")), (RUNS, 0, 0), "{stdout}");
    assert_eq!(n("accepted") + n("truncated") + n("changed"), RUNS);
    // The truncations did land during inspections.
    assert!(n("changed") > 0, "no truncation overlapped an inspection: {stdout}");
}
