//! `ftshim` — checks native Python modules against an interpreter's ABI before anything loads
//! them, audits installed extension modules, and installs an import guard.
//!
//! Exit status of `check` and `audit`: 0 everything accepted, 1 anything refused (for `audit
//! --import`, also: an import failed, crashed, timed out or re-enabled the GIL), 2 usage error or
//! I/O error (including any file whose bytes could not be read, which wins over 1), 3 nothing to
//! check (no extension module in what was given). A closed output pipe ends the command by
//! SIGPIPE (status 141 in a shell), never with a panic.

mod audit;
mod check;
mod findings;
mod guard;
mod output;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ftshim_loader::describe;

use crate::output::Format;
use crate::target::{Chosen, Named};

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
    /// Inspect extension module files and wheels (no code in them runs; wheels are read in
    /// memory) and say whether the target interpreter may load each module. Exit 0: all
    /// accepted; 1: any refused; 2: usage or I/O error (a file that cannot be read); 3: no
    /// extension module in the files given.
    Check {
        #[command(flatten)]
        against: Against,
        #[command(flatten)]
        format: FormatArgs,
        /// Extension module files and wheels (.whl) to check.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Inspect every extension module and wheel under the directories (default: the
    /// interpreter's lib-dynload and site-packages, grouped by installed distribution) and print
    /// a table and a summary. Exit 0: all accepted (and, with --import, all imported with the GIL
    /// still off); 1: anything refused or failed; 2: usage or I/O error; 3: no extension module.
    Audit {
        #[command(flatten)]
        against: Against,
        #[command(flatten)]
        format: FormatArgs,
        /// Also import each accepted module in a child interpreter and report import errors and
        /// whether the GIL stayed disabled (the Py_mod_gil question). Needs a real interpreter:
        /// not with --target.
        #[arg(long, conflicts_with = "target")]
        import: bool,
        /// Seconds each --import child may take before it is killed.
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
        /// Directories to search (recursively), or wheel files.
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Install or remove the opt-in import guard in an interpreter's site-packages.
    Guard {
        #[command(subcommand)]
        action: GuardAction,
    },
}

/// The interpreter `check` and `audit` judge files for: a real one (`--python`), or one described
/// by name (`--target`, optionally with `--exports`).
#[derive(clap::Args)]
struct Against {
    /// Target interpreter executable [default: $FTSHIM_PYTHON, else python3.13t on PATH]
    #[arg(long, value_name = "PY", conflicts_with = "target")]
    python: Option<PathBuf>,
    /// Check for CPython VERSION[t] without running it (3.14t, 3.15t, 3.13, ...): build and
    /// version from the string, EXT_SUFFIX derived for this platform. The undefined-symbol
    /// check needs --exports; without it that check is reported as inconclusive.
    #[arg(long, value_name = "VERSION[t]")]
    target: Option<Named>,
    /// With --target: the libpython (or, for a static build, the executable) of a real
    /// CPython of that version and build, whose exports the undefined symbols must resolve in.
    #[arg(long, value_name = "PATH", requires = "target")]
    exports: Option<PathBuf>,
}

/// `--format`, and `--json` (its alias for `--format json`).
#[derive(clap::Args)]
struct FormatArgs {
    /// Output format: text, json (schema in docs/loader.md), sarif (2.1.0) or junit (XML).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

impl FormatArgs {
    fn chosen(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }
}

#[derive(Subcommand)]
enum GuardAction {
    /// Install the guard: a .pth file that puts a finder in front of the extension-module
    /// loader, so a module the loader refuses raises ImportError with the reasons. Installing
    /// again replaces the same files.
    Install {
        /// The interpreter whose site-packages receives the guard.
        #[arg(long, value_name = "PY", required = true)]
        python: PathBuf,
        /// libftshim_loader.so.1 to copy into the guard [default: ../lib/libftshim_loader.so.1
        /// relative to this executable's directory].
        #[arg(long, value_name = "PATH")]
        loader_lib: Option<PathBuf>,
    },
    /// Remove everything `guard install` put into the interpreter's site-packages.
    Uninstall {
        /// The interpreter whose site-packages holds the guard.
        #[arg(long, value_name = "PY", required = true)]
        python: PathBuf,
    },
    /// Say whether the guard is installed and active in the interpreter.
    Status {
        /// The interpreter to ask.
        #[arg(long, value_name = "PY", required = true)]
        python: PathBuf,
    },
}

/// Exit status 1: something was refused (or failed to import under `audit --import`).
pub const EXIT_REFUSED: u8 = 1;
/// Exit status 2: usage or I/O error.
pub const EXIT_USAGE: u8 = 2;
/// Exit status 3: nothing to check (no extension module in the files or directories given).
pub const EXIT_NOTHING: u8 = 3;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing to a closed pipe (`ftshim audit | head -1`) would panic
    // in println!. Restore the default: the command ends quietly, killed by SIGPIPE (a shell
    // reports status 141), as cat, grep and every other Unix filter do.
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match Cli::parse().command {
        Command::Check { against, format, paths } => check::run(chosen(against), format.chosen(), &paths),
        Command::Audit { against, format, import, timeout, dirs } => {
            audit::run(chosen(against), format.chosen(), import.then_some(timeout), &dirs)
        }
        Command::Guard { action } => match action {
            GuardAction::Install { python, loader_lib } => guard::install(&python, loader_lib),
            GuardAction::Uninstall { python } => guard::uninstall(&python),
            GuardAction::Status { python } => guard::status(&python),
        },
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

/// The target: `--target` (with `--exports`), else the interpreter `--python` (or its defaults)
/// names, described; the error is ready to print.
fn chosen(Against { python, target, exports }: Against) -> Result<Chosen, String> {
    match target {
        Some(named) => Chosen::named(named, exports),
        None => interpreter(python).map(|i| Chosen::Described(Box::new(i))),
    }
}

/// Resolves and describes the target interpreter; the error is ready to print.
fn interpreter(python: Option<PathBuf>) -> Result<describe::Interpreter, String> {
    target_interpreter(python).and_then(|p| describe::describe(&p).map_err(|e| e.to_string()))
}
