//! The loader refuses a GIL build carrying the free-threaded tag, and opens an accepted module.

use std::ffi::OsStr;

use ftshim_abi_tests::{build_extension, corpus, ftshim_cli, interpreters, scratch};
use ftshim_loader::{self as loader, Code, OpenError};

#[test]
fn a_gil_build_renamed_to_the_cp313t_suffix_is_refused() {
    let all = interpreters();
    let dir = scratch("loader-renamed-gil");
    let gil_module = build_extension("counter", &all.gil313, &dir);
    let renamed = dir.join(format!("counter{}", all.ft.ext_suffix));
    std::fs::copy(&gil_module, &renamed).unwrap();

    let (code, stdout, stderr) = ftshim_cli(&[
        OsStr::new("check"),
        OsStr::new("--python"),
        all.ft.executable.as_os_str(),
        renamed.as_os_str(),
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let expected = format!(
        "REFUSE {path}\n  [gil-build] {path}: built for a GIL interpreter, target is free-threaded 3.13: expected a free-threaded build (undefined symbols such as _Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL), found GIL-only references (_Py_Dealloc) and none of those\n",
        path = renamed.display()
    );
    assert!(stdout.contains(&expected), "got:\n{stdout}\nwanted:\n{expected}");
    assert!(stdout.ends_with("0 accepted, 1 refused, 0 unreadable\n"), "{stdout}");

    // The same file under its own GIL name is refused for its name too, with both values named.
    let (code, stdout, _) = ftshim_cli(&[
        OsStr::new("check"),
        OsStr::new("--python"),
        all.ft.executable.as_os_str(),
        gil_module.as_os_str(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(&format!(
            "  [suffix-mismatch] {}: file name must end with the target interpreter's EXT_SUFFIX: expected '.cpython-313t-x86_64-linux-gnu.so', found '.cpython-313-x86_64-linux-gnu.so'\n",
            gil_module.display()
        )),
        "{stdout}"
    );

    // The library refuses it without loading it.
    // SAFETY: the file is refused before dlopen, so none of its code runs.
    match unsafe { loader::open(&renamed, &all.ft.target()) } {
        Err(OpenError::Refused(report)) => assert_eq!(report.codes(), vec![Code::GilBuild]),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a GIL build was opened for the free-threaded target"),
    }
}

#[test]
fn usage_and_io_errors_exit_2() {
    let ft = &interpreters().ft;
    let (code, _, stderr) =
        ftshim_cli(&[OsStr::new("check"), OsStr::new("--python"), ft.executable.as_os_str()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("required arguments were not provided"), "{stderr}");
    let missing = scratch("loader-io").join("nothing.cpython-313t-x86_64-linux-gnu.so");
    let (code, _, stderr) = ftshim_cli(&[
        OsStr::new("check"),
        OsStr::new("--python"),
        ft.executable.as_os_str(),
        missing.as_os_str(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "ftshim check: [not-found] {}: cannot read: expected a file, found nothing at this path (No such file or directory (os error 2))\n",
            missing.display()
        )
    );
}

#[test]
fn an_accepted_module_is_opened_and_its_init_function_returned() {
    let ft = &interpreters().ft;
    let dir = scratch("loader-open");
    let module = build_extension("counter", ft, &dir);
    // The module's Py* symbols must resolve at RTLD_NOW.
    corpus::libpython_global(ft);
    // SAFETY: the module is our own example; its initialisers are the C runtime's only.
    let opened = unsafe { loader::open(&module, &ft.target()) }.unwrap_or_else(|e| panic!("{e}"));
    assert!(opened.report.accepted());
    assert_eq!(opened.report.module, "counter");
    let init = opened.init();
    // The pointer handed back is PyInit_counter inside that very file.
    // SAFETY: Dl_info is plain data; all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables for the given address.
    let found = unsafe { libc::dladdr(*init as *const libc::c_void, &mut info) };
    assert_ne!(found, 0, "dladdr does not know the init pointer");
    // SAFETY: dladdr succeeded, so the name is a NUL-terminated string owned by the loader.
    let sym = unsafe { std::ffi::CStr::from_ptr(info.dli_sname) };
    // SAFETY: as above.
    let file = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    assert_eq!(sym.to_str().unwrap(), "PyInit_counter");
    // Opened through its descriptor: the dynamic linker knows it as /proc/self/fd/N, a descriptor
    // the loader keeps open, so the name still leads to the file; the kernel's map names the file.
    let name = file.to_str().unwrap();
    assert!(name.starts_with("/proc/self/fd/"), "{name}");
    assert_eq!(std::fs::canonicalize(name).unwrap(), std::fs::canonicalize(&module).unwrap());
    assert_eq!(corpus::mapped_file(*init as usize), Some(std::fs::canonicalize(&module).unwrap()));
    // libftshim.so.1, which the module finds through its RUNPATH $ORIGIN, came from beside it.
    let beside = std::fs::canonicalize(module.with_file_name("libftshim.so.1")).unwrap();
    assert!(corpus::mapped_files().contains(&beside), "{} is not mapped", beside.display());
    assert!(opened.report.evidence.as_ref().unwrap().ft_markers.contains(&"_Py_DecRefShared".to_owned()));
}
