//! The loader's corpus: every accepted and refused file, with exact codes and messages, through
//! the library and the CLI; no file may crash or hang the checker.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ftshim_abi_tests::corpus::{self, Corpus};
use ftshim_abi_tests::{artifacts, interpreters, output_within, python_command};
use ftshim_loader::{self as loader, Code, OpenError};
use serde_json::Value;

fn corpus() -> &'static Corpus {
    static CELL: OnceLock<Corpus> = OnceLock::new();
    CELL.get_or_init(|| corpus::build("loader-corpus"))
}

fn codes(report: &loader::Report) -> Vec<&'static str> {
    report.refusals.iter().map(|r| r.code.as_str()).collect()
}

fn message(report: &loader::Report, code: &str) -> String {
    report
        .refusals
        .iter()
        .find(|r| r.code.as_str() == code)
        .map(|r| report.about(&r.message))
        .unwrap_or_default()
}

fn case(label: &str) -> PathBuf {
    corpus()
        .refused
        .iter()
        .find(|c| c.label == label)
        .unwrap_or_else(|| panic!("no case {label}"))
        .path
        .clone()
}

#[test]
fn every_corpus_file_is_refused_with_its_exact_codes() {
    let target = interpreters().ft.target();
    for case in &corpus().refused {
        let report = loader::inspect(&case.path, &target);
        assert_eq!(codes(&report), case.codes, "{}: {:#?}", case.label, report.refusals);
        let io = case.codes.iter().all(|c| Code::ALL.iter().any(|k| k.as_str() == *c && k.is_io()));
        assert_eq!(report.io_failed(), io, "{}", case.label);
        for message in report.messages() {
            assert!(
                message.starts_with(&format!("{}: ", case.path.display())),
                "{}: {}",
                case.label,
                message
            );
        }
    }
}

/// The four files glibc's loader refuses although their headers are otherwise in order: the
/// loader refuses each with the field and the rule, and dlopen (ctypes, in python3.13t) refuses
/// each too — the check is what the dynamic loader checks, no more.
#[test]
fn what_glibc_refuses_is_refused_with_the_field_named() {
    let target = interpreters().ft.target();
    let cases = [
        (
            "elf-osabi",
            "OS ABI ELFOSABI_SYSV (0) or ELFOSABI_GNU (3), the ones glibc's loader accepts, found EI_OSABI 9",
        ),
        ("elf-version", "e_version 1 (EV_CURRENT), found e_version 0"),
        (
            "elf-no-phdrs",
            "program headers (e_phnum > 0): without them glibc's loader has nothing to map, found e_phnum 0",
        ),
        (
            "elf-phnum-xnum",
            "e_phnum below 0xffff (PN_XNUM, an extended count glibc's loader does not read), found e_phnum 0xffff",
        ),
    ];
    let mut paths = Vec::new();
    for (label, expected) in cases {
        let path = case(label);
        let got = message(&loader::inspect(&path, &target), "elf-malformed");
        assert_eq!(got, format!("{}: malformed ELF file: expected {expected}", path.display()), "{label}");
        paths.push(path);
    }
    // dlopen through ctypes in python3.13t (its main thread: an 8 MiB stack, see the probe in
    // open_refuses_every_corpus_file_without_loading_it), all four files in one process.
    let script = "import ctypes, sys\nfor p in sys.argv[1:]:\n    try:\n        ctypes.CDLL(p)\n        print('loaded')\n    except OSError:\n        print('refused')";
    let mut args = vec!["-c", script];
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(shown.iter().map(String::as_str));
    let mut cmd = python_command(&interpreters().ft.executable, Path::new("/nonexistent"), &args);
    let out = output_within(&mut cmd, Duration::from_secs(60), "dlopen of the four files");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "refused\n".repeat(4), "glibc loaded one of them");
}

#[test]
fn the_refusal_messages_name_the_rule_the_expected_and_the_found_value() {
    let target = interpreters().ft.target();
    let ft_len = std::fs::metadata(&corpus().ft_counter).unwrap().len();
    let check = |label: &str, code: &str, expected: String| {
        let path = case(label);
        let got = message(&loader::inspect(&path, &target), code);
        assert_eq!(got, format!("{}: {expected}", path.display()), "{label}");
    };
    check(
        "gil-renamed",
        "gil-build",
        "built for a GIL interpreter, target is free-threaded 3.13: expected a free-threaded build (undefined symbols such as _Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL), found GIL-only references (_Py_Dealloc) and none of those".into(),
    );
    check(
        "limited-abi3",
        "suffix-mismatch",
        "file name must end with the target interpreter's EXT_SUFFIX: expected '.cpython-313t-x86_64-linux-gnu.so', found '.abi3.so', which carries no free-threaded ABI tag, and the file's symbols do not prove a free-threaded build (none of _Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL)".into(),
    );
    check(
        "wrong-suffix",
        "suffix-mismatch",
        "file name must end with the target interpreter's EXT_SUFFIX: expected '.cpython-313t-x86_64-linux-gnu.so', found '.cpython-313-x86_64-linux-gnu.so'".into(),
    );
    check(
        "init-mismatch",
        "init-mismatch",
        "must export the init function named after the file: expected 'PyInit_other', found 'PyInit_counter'"
            .into(),
    );
    check(
        "no-init",
        "no-init",
        "must export the init function named after the file: expected 'PyInit_noinit', found no PyInit_* export".into(),
    );
    check(
        "not-elf",
        "not-elf",
        "not a loadable ELF shared object: expected the ELF magic 7f 45 4c 46, found 23 21 2f 62".into(),
    );
    check(
        "empty",
        "empty-file",
        "not a loadable ELF shared object: expected an ELF file, found an empty file (0 bytes)".into(),
    );
    check(
        "truncated-3",
        "truncated",
        "truncated ELF file: expected at least 16 bytes (the ELF identification), found 3".into(),
    );
    check(
        "truncated-40",
        "truncated",
        "truncated ELF file: expected at least 64 bytes (the 64-bit ELF header), found 40".into(),
    );
    check(
        &format!("truncated-{}", ft_len - 1),
        "truncated",
        format!(
            "truncated ELF file: expected at least {ft_len} bytes (the section header table), found {}",
            ft_len - 1
        ),
    );
    check(
        "elf-class",
        "elf-class",
        "wrong ELF class: expected ELFCLASS64 (64-bit) (this machine), found ELFCLASS32 (32-bit)".into(),
    );
    check(
        "elf-endian",
        "elf-endian",
        "wrong ELF byte order: expected ELFDATA2LSB (little-endian) (this machine), found ELFDATA2MSB (big-endian)".into(),
    );
    check(
        "elf-machine",
        "elf-machine",
        "wrong ELF machine: expected EM_X86_64 (62) (this machine), found EM_AARCH64 (183)".into(),
    );
    check(
        "elf-type",
        "elf-type",
        "wrong ELF type: expected ET_DYN (shared object), found ET_EXEC (executable)".into(),
    );
    let unresolved = message(&loader::inspect(&case("unresolved"), &target), "unresolved-symbol");
    let prefix = format!(
        "{}: every undefined Py*/_Py* symbol must be exported by the target interpreter: expected all ",
        case("unresolved").display()
    );
    let suffix = format!(
        " to resolve in {}, found 1 missing: PyUnstable_IsImmortal",
        interpreters().ft.exports_file.display()
    );
    assert!(unresolved.starts_with(&prefix) && unresolved.ends_with(&suffix), "{unresolved}");
    check("directory", "not-regular-file", "cannot read: expected a regular file, found a directory".into());
    check(
        "fifo",
        "not-regular-file",
        "cannot read: expected a regular file, found a FIFO (named pipe)".into(),
    );
    let gone = corpus().dir.join("nowhere").join(case("dangling").file_name().unwrap());
    check(
        "dangling",
        "dangling-symlink",
        format!(
            "cannot read: expected a file, found a symbolic link to '{}', which does not exist",
            gone.display()
        ),
    );
    check(
        "missing",
        "not-found",
        "cannot read: expected a file, found nothing at this path (No such file or directory (os error 2))"
            .into(),
    );
    check(
        "through-file",
        "not-found",
        "cannot read: expected a file, found a path through something that is not a directory (Not a directory (os error 20))".into(),
    );
}

#[test]
fn the_free_threaded_interpreters_own_modules_and_the_examples_are_accepted() {
    let all = interpreters();
    let target = all.ft.target();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&all.ft.lib_dynload)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(&all.ft.ext_suffix))
        .collect();
    names.sort();
    assert_eq!(names.len(), 77, "python3.13t's lib-dynload: {names:#?}");
    for path in names.iter().chain(&corpus().accepted) {
        let report = loader::inspect(path, &target);
        assert!(report.accepted(), "{}: {:#?}", path.display(), report.refusals);
    }
    // The FT build renamed .so / .abi3.so is accepted on its evidence, and the report says what
    // that does not prove.
    for path in &corpus().accepted[1..] {
        let report = loader::inspect(path, &target);
        let tail = &path.file_name().unwrap().to_string_lossy()["counter".len()..];
        assert_eq!(
            report.notes(),
            vec![format!(
                "{}: '{tail}' is not the target's EXT_SUFFIX '{}'; accepted because the undefined symbols prove a free-threaded build (_Py_DecRefShared, _Py_MergeZeroLocalRefcount), which does not prove the minor version it was built for",
                path.display(),
                all.ft.ext_suffix
            )]
        );
    }
    // Each GIL build is accepted by its own interpreter.
    for (interp, module) in [(&all.gil313, &corpus().gil_counter), (&all.py311, &corpus().py311_counter)] {
        let report = loader::inspect(module, &interp.target());
        assert!(report.accepted(), "{}: {:#?}", module.display(), report.refusals);
    }
}

#[test]
fn a_gil_target_refuses_the_free_threaded_build_and_the_symbols_it_lacks() {
    let all = interpreters();
    let dir = corpus().dir.join("cases/ft-for-gil");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("counter{}", all.gil313.ext_suffix));
    std::fs::copy(&corpus().ft_counter, &path).unwrap();
    let report = loader::inspect(&path, &all.gil313.target());
    assert_eq!(codes(&report), ["ft-build", "unresolved-symbol"]);
    assert_eq!(
        message(&report, "ft-build"),
        format!(
            "{}: built for a free-threaded interpreter, target is GIL 3.13: expected no free-threaded symbols, found _Py_DecRefShared, _Py_MergeZeroLocalRefcount",
            path.display()
        )
    );
    let unresolved = message(&report, "unresolved-symbol");
    assert!(
        unresolved.ends_with(&format!(
            " to resolve in {}, found 2 missing: _Py_DecRefShared, _Py_MergeZeroLocalRefcount",
            all.gil313.exports_file.display()
        )),
        "{unresolved}"
    );
}

#[test]
fn an_unreadable_file_is_reported_as_unreadable_even_as_root() {
    // Root reads a mode-000 file anyway (CAP_DAC_OVERRIDE). A thread whose file-system uid is
    // `nobody` has no such capability, and setfsuid changes only the calling thread's credentials.
    let dir = std::env::temp_dir().join(format!("ftshim-unreadable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join(format!("counter{}", interpreters().ft.ext_suffix));
    std::fs::copy(&corpus().ft_counter, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let target = interpreters().ft.target();
    let (p, t) = (path.clone(), target.clone());
    let report = std::thread::spawn(move || {
        const NOBODY: libc::uid_t = 65534;
        // SAFETY: setfsuid only changes this thread's file-system uid; it is restored below.
        unsafe { libc::setfsuid(NOBODY) };
        // SAFETY: as above; a second call returns the current fsuid, proving the switch.
        let now = unsafe { libc::setfsuid(NOBODY) };
        let report = loader::inspect(&p, &t);
        // SAFETY: restores root's file-system uid for this (soon finished) thread.
        unsafe { libc::setfsuid(0) };
        (now, report)
    })
    .join()
    .unwrap();
    assert_eq!(report.0, 65534, "setfsuid did not take effect");
    let report = report.1;
    assert_eq!(codes(&report), ["unreadable"]);
    assert_eq!(
        report.messages()[0],
        format!(
            "{}: cannot read: expected a readable file, found: Permission denied (os error 13)",
            path.display()
        )
    );
    // Root on this thread still reads it: the file itself is fine.
    assert!(loader::inspect(&path, &target).accepted());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn open_refuses_every_corpus_file_without_loading_it() {
    let target = interpreters().ft.target();
    for case in &corpus().refused {
        // SAFETY: every one of these files is refused before dlopen, so none of its code runs.
        match unsafe { loader::open(&case.path, &target) } {
            Err(OpenError::Io(r) | OpenError::Refused(r)) => {
                assert_eq!(codes(&r), case.codes, "{}", case.label)
            }
            Err(e) => panic!("{}: expected a refusal, got {e}", case.label),
            Ok(_) => panic!("{}: a refused file was opened", case.label),
        }
    }
    // None of them is loaded: dlopen(RTLD_NOLOAD) finds only libraries already in the process.
    // (Only for regular files: glibc's dlopen opens the path even with RTLD_NOLOAD, and opening
    // the FIFO would block, which is exactly why the inspector opens with O_NONBLOCK.)
    // On a thread with a 16 MiB stack: glibc's dlopen reads elf-phnum-xnum's 0xffff program
    // headers (3.6 MB) onto the stack before it looks for a loaded copy, which overflows a test
    // thread's 2 MiB one (measured: python3.13t, threading.stack_size(2 MiB), ctypes.CDLL with
    // RTLD_NOLOAD exits by SIGSEGV) — one more reason the inspector refuses it before dlopen.
    let probe = std::thread::Builder::new().stack_size(16 << 20).spawn(|| {
        for case in corpus().refused.iter().filter(|c| c.path.is_file()) {
            let c = std::ffi::CString::new(case.path.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: RTLD_NOLOAD never loads anything (no initialiser runs); it only looks up.
            let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
            assert!(handle.is_null(), "{} is loaded in the test process", case.path.display());
        }
    });
    probe.expect("spawn the probe thread").join().expect("the RTLD_NOLOAD probe");
}

fn cli(args: &[&OsStr], paths: &[PathBuf]) -> (i32, String, String) {
    let mut cmd = Command::new(&artifacts().cli);
    cmd.args(args).args(paths);
    let out = output_within(&mut cmd, Duration::from_secs(60), "ftshim check over the corpus");
    assert!(out.status.code().is_some(), "ftshim died: {:?}", out.status);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_cli_checks_the_whole_corpus_at_once_without_crashing_or_hanging() {
    let ft = &interpreters().ft;
    let py = ft.executable.as_os_str();
    let all: Vec<PathBuf> = corpus().refused.iter().map(|c| c.path.clone()).collect();
    let (code, stdout, stderr) =
        cli(&[OsStr::new("check"), OsStr::new("--json"), OsStr::new("--python"), py], &all);
    assert_eq!(code, 2, "I/O cases make it exit 2: {stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), all.len());
    for (file, case) in files.iter().zip(&corpus().refused) {
        assert_eq!(file["path"], case.path.display().to_string());
        let got: Vec<&str> =
            file["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
        assert_eq!(got, case.codes, "{}", case.label);
    }
    let io = ["directory", "dangling", "fifo", "missing", "through-file"].len();
    assert_eq!(doc["summary"]["unreadable"], io);
    assert_eq!(doc["summary"]["refused"], all.len() - io);
    assert_eq!(doc["summary"]["accepted"], 0);
    assert_eq!(doc["target"]["ext_suffix"], ft.ext_suffix.as_str());

    // Only content refusals: exit 1. Only accepted files: exit 0. The FIFO alone: exit 2.
    let content: Vec<PathBuf> = corpus()
        .refused
        .iter()
        .filter(|c| c.codes.iter().all(|code| Code::ALL.iter().any(|k| k.as_str() == *code && !k.is_io())))
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(content.len(), all.len() - io);
    let (code, stdout, _) = cli(&[OsStr::new("check"), OsStr::new("--python"), py], &content);
    assert_eq!(code, 1);
    assert!(stdout.ends_with(&format!("0 accepted, {} refused, 0 unreadable\n", content.len())), "{stdout}");
    let (code, stdout, _) = cli(&[OsStr::new("check"), OsStr::new("--python"), py], &corpus().accepted);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.ends_with("3 accepted, 0 refused, 0 unreadable\n"), "{stdout}");
    let fifo = case("fifo");
    let (code, stdout, stderr) =
        cli(&[OsStr::new("check"), OsStr::new("--python"), py], std::slice::from_ref(&fifo));
    assert_eq!(code, 2);
    let line = format!(
        "[not-regular-file] {}: cannot read: expected a regular file, found a FIFO (named pipe)",
        fifo.display()
    );
    assert!(stdout.contains(&format!("UNREADABLE {}\n  {line}\n", fifo.display())), "{stdout}");
    assert_eq!(stderr, format!("ftshim check: {line}\n"));
}

#[test]
fn the_documentation_lists_every_code() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/loader.md")).unwrap();
    for code in Code::ALL {
        assert!(docs.contains(&format!("| `{code}` |")), "docs/loader.md has no table row for `{code}`");
    }
}
