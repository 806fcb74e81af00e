//! The interpreters recorded by scripts/setup.sh are what they claim to be.

use ftshim_abi_tests::{interpreters, run_python, scratch};

#[test]
fn the_free_threaded_interpreter_is_free_threaded_and_runs_without_the_gil() {
    let ft = &interpreters().ft;
    assert_eq!(ft.version, (3, 13));
    assert!(ft.free_threaded, "{} is not a Py_GIL_DISABLED build", ft.executable.display());
    assert!(ft.config().unwrap().is_free_threaded());
    assert_eq!(ft.ext_suffix, ".cpython-313t-x86_64-linux-gnu.so");
    let out = run_python(ft, &scratch("interp-ft"), &["-c", "import sys; print(sys._is_gil_enabled())"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "False",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_gil_interpreters_are_gil_builds_of_the_right_versions() {
    let all = interpreters();
    for (interp, version, suffix) in [
        (&all.gil313, (3, 13), ".cpython-313-x86_64-linux-gnu.so"),
        (&all.py311, (3, 11), ".cpython-311-x86_64-linux-gnu.so"),
    ] {
        assert_eq!(interp.version, version, "{}", interp.executable.display());
        assert!(!interp.free_threaded, "{}", interp.executable.display());
        assert_eq!(interp.ext_suffix, suffix);
        assert!(interp.include_dir.join("Python.h").is_file(), "{}", interp.include_dir.display());
    }
}
