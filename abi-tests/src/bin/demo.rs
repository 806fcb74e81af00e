//! `make run`: build the counter example against include/ftshim.h for the free-threaded
//! interpreter, check it with the loader, run the threaded demo on python3.13t and report.

use std::ffi::OsStr;
use std::process::ExitCode;
use std::time::Instant;

use ftshim_abi_tests::{build_extension, ftshim_cli, interpreters, run_counter_stress, scratch};

const THREADS: u32 = 2;
const INCREMENTS: u32 = 200_000;

fn main() -> ExitCode {
    let t0 = Instant::now();
    let ft = &interpreters().ft;
    let dir = scratch("demo");
    let module = build_extension("counter", ft, &dir);
    println!("built    {}", module.display());

    let (code, stdout, stderr) = ftshim_cli(&[
        OsStr::new("check"),
        OsStr::new("--python"),
        ft.executable.as_os_str(),
        module.as_os_str(),
    ]);
    print!("{}", stdout.lines().map(|l| format!("check    {l}\n")).collect::<String>());
    eprint!("{stderr}");
    if code != 0 {
        eprintln!("ftshim check refused the example (exit {code})");
        return ExitCode::FAILURE;
    }

    let run = run_counter_stress(ft, &dir, THREADS, INCREMENTS, false);
    let (expected, observed) = (run.int("expected"), run.int("observed"));
    let gil = |key| {
        if run.int(key) == 0 { "disabled" } else { "ENABLED" }
    };
    println!();
    println!("ftshim demo report");
    println!("  interpreter      {} (CPython {})", ft.executable.display(), run.values["version"]);
    println!("  free-threaded    {}", if ft.free_threaded { "yes (Py_GIL_DISABLED=1)" } else { "no" });
    println!(
        "  GIL              {} before import, {} after import, {} at end",
        gil("gil_enabled_before_import"),
        gil("gil_enabled_after_import"),
        gil("gil_enabled_at_end")
    );
    println!("  loader checks    passed ({})", module.file_name().unwrap().to_string_lossy());
    println!(
        "  threads          {THREADS} x {INCREMENTS} increments, each under FTSHIM_BEGIN_CRITICAL_SECTION"
    );
    println!(
        "  count            expected {expected} == observed {observed}: {}",
        if expected == observed { "OK" } else { "LOST UPDATES" }
    );
    println!("  threaded run     {} s", run.values["seconds"]);
    println!("  total            {:.2} s (build, check, run)", t0.elapsed().as_secs_f64());
    let gil_off = run.int("gil_enabled_at_end") == 0;
    if expected == observed && gil_off { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
