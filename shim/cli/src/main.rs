//! `ftshim` — checks native Python modules against an interpreter's ABI before anything loads them.
//!
//! Exit status: 0 every file accepted, 1 any refused, 2 usage or I/O error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ftshim::loader::{self, describe};

#[derive(Parser)]
#[command(
    name = "ftshim",
    version,
    about = "Check native Python modules against an interpreter's ABI before loading them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect extension module files (no code in them runs) and say whether the target
    /// interpreter may load each one. Exit 0: all accepted; 1: any refused; 2: usage/I/O error.
    Check {
        /// Target interpreter executable [default: $FTSHIM_PYTHON, else python3.13t on PATH]
        #[arg(long, value_name = "PY")]
        python: Option<PathBuf>,
        /// Extension module files to check.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { python, paths } => check(python, &paths),
    }
}

/// The interpreter to check against: `--python`, else `$FTSHIM_PYTHON`, else `python3.13t` on PATH.
fn target_interpreter(python: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = python {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os("FTSHIM_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3.13t"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "no target interpreter: pass --python PY, set FTSHIM_PYTHON, or put python3.13t on PATH"
                .to_owned()
        })
}

fn check(python: Option<PathBuf>, paths: &[PathBuf]) -> ExitCode {
    let interp =
        match target_interpreter(python).and_then(|p| describe::describe(&p).map_err(|e| e.to_string())) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("ftshim check: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
    let target = interp.target();
    println!(
        "target: {} (CPython {}.{}, {}, EXT_SUFFIX {})",
        interp.executable.display(),
        target.version.0,
        target.version.1,
        if target.free_threaded { "free-threaded" } else { "GIL" },
        target.ext_suffix
    );
    let (mut refused, mut io_errors) = (0usize, 0usize);
    for path in paths {
        match loader::inspect(path, &target) {
            Ok(report) => {
                print_report(path, &report);
                if !report.accepted() {
                    refused += 1;
                }
            }
            Err(e) => {
                eprintln!("ftshim check: {e}");
                io_errors += 1;
            }
        }
    }
    println!("{} accepted, {refused} refused, {io_errors} unreadable", paths.len() - refused - io_errors);
    if io_errors > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if refused > 0 {
        ExitCode::from(EXIT_REFUSED)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_report(path: &Path, report: &loader::Report) {
    let verdict = if report.accepted() { "ACCEPT" } else { "REFUSE" };
    println!("{verdict} {}", path.display());
    for r in &report.refusals {
        println!("  [{}] {}", r.code, r.message);
    }
    for note in &report.inconclusive {
        println!("  (inconclusive) {note}");
    }
}
