//! The counter example carried through all three pillars on every interpreter: compiled against
//! include/ftshim.h, accepted by `ftshim check`, imported, and hammered by two threads.

use std::ffi::OsStr;

use ftshim_abi_tests::{Interpreter, build_extension, ftshim_cli, interpreters, run_counter_stress, scratch};

const THREADS: u32 = 2;
const INCREMENTS: u32 = 200_000;
const CONTROL_INCREMENTS: u32 = 5_000_000;

/// Builds, checks and hammers the counter on `interp`; returns the directory it was built in.
fn counter_end_to_end(label: &str, interp: &Interpreter) -> std::path::PathBuf {
    let dir = scratch(&format!("counter-{label}"));
    let module = build_extension("counter", interp, &dir);

    let (code, stdout, stderr) = ftshim_cli(&[
        OsStr::new("check"),
        OsStr::new("--python"),
        interp.executable.as_os_str(),
        module.as_os_str(),
    ]);
    assert_eq!(code, 0, "ftshim check refused {}:\n{stdout}{stderr}", module.display());
    assert!(stdout.contains(&format!("ACCEPT {}", module.display())), "{stdout}");
    // What the loader reads back from the slot array the header's helpers built.
    if interp.free_threaded {
        assert!(
            stdout.contains("\n  GIL freedom declared: yes (Py_mod_gil slot is Py_MOD_GIL_NOT_USED)\n"),
            "{stdout}"
        );
    }
    let abi_line = format!(
        "\n  PyABIInfo: version 1.0, flags {}, build 0x",
        if interp.free_threaded { "FREETHREADED" } else { "GIL" }
    );
    assert_eq!(stdout.contains(&abi_line), interp.version >= (3, 15), "{label}: {stdout}");

    let run = run_counter_stress(interp, &dir, THREADS, INCREMENTS, false);
    assert_eq!(run.int("expected"), 400_000);
    assert_eq!(run.int("observed"), 400_000, "lost updates under the critical section on {label}");
    assert_eq!(run.values["module"], module.display().to_string(), "imported a different module");
    let ft = i64::from(interp.free_threaded);
    assert_eq!(run.int("free_threaded"), ft);
    // On 3.13t the GIL is off before and must stay off after importing the module
    // (Py_mod_gil = Py_MOD_GIL_NOT_USED); on GIL builds it is always on.
    for key in ["gil_enabled_before_import", "gil_enabled_after_import", "gil_enabled_at_end"] {
        assert_eq!(run.int(key), 1 - ft, "{key} on {label}");
    }
    assert!(!run.stderr.contains("global interpreter lock"), "import re-enabled the GIL: {}", run.stderr);
    println!(
        "{label}: {} threads x {INCREMENTS} increments -> {} in {} s",
        THREADS,
        run.int("observed"),
        run.values["seconds"]
    );
    dir
}

#[test]
fn counter_on_free_threaded_313t() {
    let ft = &interpreters().ft;
    let dir = counter_end_to_end("3.13t", ft);

    // The control: increments with no critical section. Lost updates are likely on a
    // free-threaded build but not guaranteed, so they are reported, not asserted. 200,000 unlocked
    // increments finish before the second thread is scheduled, so the control runs longer. The
    // module is the one counter_end_to_end just built.
    let run = run_counter_stress(ft, &dir, THREADS, CONTROL_INCREMENTS, true);
    let (expected, observed) = (run.int("expected"), run.int("observed"));
    assert_eq!(expected, i64::from(THREADS * CONTROL_INCREMENTS));
    // Racy read-modify-write increments can erase each other's work (a thread that read v writes
    // v+1 over the other's increments), so the count can fall below one thread's share: the only
    // hard bounds are these. (A run observed 4,885,591 of 10,000,000.)
    assert!(observed > 0 && observed <= expected, "impossible count {observed}");
    println!(
        "3.13t control without critical section ({THREADS} threads x {CONTROL_INCREMENTS}): expected {expected}, observed {observed}, lost updates {}",
        expected - observed
    );
}

#[test]
fn counter_on_gil_313() {
    counter_end_to_end("3.13", &interpreters().gil313);
}

#[test]
fn counter_on_gil_311() {
    counter_end_to_end("3.11", &interpreters().py311);
}

/// GIL 3.12, 3.14, 3.15 and any extra interpreters from `FTSHIM_EXTRA_PYTHONS` (a 3.14t, say).
#[test]
fn counter_on_every_other_interpreter() {
    for (label, interp) in &interpreters().more {
        counter_end_to_end(label, interp);
    }
}
