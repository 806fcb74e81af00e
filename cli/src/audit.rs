//! `ftshim audit`: every extension module under some directories, inspected for the target
//! interpreter and, with `--import`, imported in a child interpreter.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use ftshim_loader::child::Running;
use ftshim_loader::describe::Interpreter;
use ftshim_loader::{self as loader, Report, Target};
use serde_json::{Value, json};

use crate::EXIT_USAGE;
use crate::output::{Tally, report_details, report_json};
use crate::target::Chosen;

/// One extension module found.
struct Entry {
    /// Dotted name relative to the directory searched (`pkg.sub.mod`).
    module: String,
    /// The ABI tag in its file name (`cpython-313t-x86_64-linux-gnu`, `abi3`, `(none)`).
    tag: String,
    report: Report,
    import: Option<Imported>,
}

/// What importing one module in a child interpreter did.
struct Imported {
    /// "ok", "error", "crashed" or "timeout".
    status: &'static str,
    /// `sys._is_gil_enabled()` after the import (None before 3.13).
    gil_after: Option<bool>,
    /// The GIL was off before the import and on after it.
    gil_reenabled: bool,
    error: Option<String>,
    warnings: Vec<String>,
    seconds: f64,
}

/// A file passed over, and why.
struct Skipped {
    path: PathBuf,
    why: String,
}

/// Prints progress to stderr once the audit has taken more than a moment (1 s), at most a few
/// times a second; on a terminal it rewrites one line and erases it at the end.
struct Progress {
    start: Instant,
    last: Option<Instant>,
    tty: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress { start: Instant::now(), last: None, tty: std::io::stderr().is_terminal() }
    }

    fn tick(&mut self, what: &str, done: usize, total: usize) {
        let now = Instant::now();
        if now.duration_since(self.start) < Duration::from_secs(1) {
            return;
        }
        let every = if self.tty { Duration::from_millis(200) } else { Duration::from_secs(2) };
        if self.last.is_some_and(|last| now.duration_since(last) < every) {
            return;
        }
        self.last = Some(now);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[Kaudit: {what} {done}/{total}");
        } else {
            let _ = writeln!(err, "audit: {what} {done}/{total}");
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty && self.last.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

/// Runs `ftshim audit`.
pub fn run(
    chosen: Result<Chosen, String>,
    as_json: bool,
    import_timeout: Option<u64>,
    dirs: &[PathBuf],
) -> ExitCode {
    let chosen = match chosen {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ftshim audit: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let target = chosen.target();
    let roots: Vec<PathBuf> = if !dirs.is_empty() {
        dirs.to_vec()
    } else if let Some(interp) = chosen.interpreter() {
        let mut roots = vec![interp.lib_dynload.clone()];
        for site in &interp.site_packages {
            if site.is_dir() && !roots.contains(site) {
                roots.push(site.clone());
            }
        }
        roots
    } else {
        eprintln!(
            "ftshim audit: with --target, name the directories to audit (there is no interpreter to take lib-dynload and site-packages from)"
        );
        return ExitCode::from(EXIT_USAGE);
    };
    for root in &roots {
        if !root.is_dir() {
            eprintln!("ftshim audit: {}: not a directory", root.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }

    let mut progress = Progress::new();
    let mut candidates = Vec::new();
    let mut skipped = Vec::new();
    let mut walk_errors = Vec::new();
    for root in &roots {
        walk(root, &mut Vec::new(), &mut candidates, &mut skipped, &mut walk_errors);
    }
    let mut entries = Vec::new();
    let total = candidates.len();
    for (i, (path, package)) in candidates.into_iter().enumerate() {
        progress.tick("inspecting", i, total);
        let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let (tag, named) = tag_of(&file_name, &target);
        let report = loader::inspect(&path, &target);
        if !named {
            // A bare `.so` (or another name with no Python tag) is an extension module only if
            // it exports an init function; other shared libraries are passed over.
            let has_init = report.evidence.as_ref().is_some_and(|ev| {
                ev.exports.iter().any(|e| e.starts_with("PyInit_") || e.starts_with("PyModExport_"))
            });
            if !has_init {
                skipped.push(Skipped {
                    path,
                    why: "no Python ABI tag in its name and no PyInit_* or PyModExport_* export: not an extension module"
                        .into(),
                });
                continue;
            }
        }
        let mut module = package.clone();
        module.push(report.module.clone());
        entries.push(Entry { module: module.join("."), tag, report, import: None });
    }
    // `--import` conflicts with `--target` (clap), so there is an interpreter when it is given.
    if let (Some(secs), Some(interp)) = (import_timeout, chosen.interpreter()) {
        let accepted: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].report.accepted()).collect();
        for (n, &i) in accepted.iter().enumerate() {
            progress.tick("importing", n, accepted.len());
            let e = &entries[i];
            let imported = import_in_child(interp, &e.module, &e.report.path, Duration::from_secs(secs));
            entries[i].import = Some(imported);
        }
    }
    progress.finish();

    let tally = Tally::of(entries.iter().map(|e| &e.report));
    let Tally { accepted, refused, unreadable } = tally;
    let inconclusive = entries.iter().filter(|e| !e.report.inconclusive.is_empty()).count();
    let imports: Vec<&Imported> = entries.iter().filter_map(|e| e.import.as_ref()).collect();
    let import_count = |s: &str| imports.iter().filter(|i| i.status == s).count();
    let gil_reenabled = imports.iter().filter(|i| i.gil_reenabled).count();
    let import_failed = imports.len() - import_count("ok");

    if as_json {
        let doc = json!({
            "target": chosen.json(),
            "dirs": roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>(),
            "modules": entries.iter().map(entry_json).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|s| json!({"path": s.path.display().to_string(), "why": s.why})).collect::<Vec<_>>(),
            "errors": walk_errors,
            "summary": {
                "modules": entries.len(),
                "accepted": accepted,
                "refused": refused,
                "unreadable": unreadable,
                "inconclusive": inconclusive,
                "skipped": skipped.len(),
                "imported": import_timeout.map(|_| json!({
                    "total": imports.len(),
                    "ok": import_count("ok"),
                    "error": import_count("error"),
                    "crashed": import_count("crashed"),
                    "timeout": import_count("timeout"),
                    "gil_reenabled": gil_reenabled,
                })),
            },
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values always serialise"));
    } else {
        print_table(&chosen, &roots, &entries, import_timeout.is_some());
        for e in &walk_errors {
            println!("error: {e}");
        }
        println!(
            "\naudited {} extension modules in {} {}: {accepted} accepted, {refused} refused, {unreadable} unreadable ({inconclusive} with inconclusive notes); skipped {} other shared libraries",
            entries.len(),
            roots.len(),
            if roots.len() == 1 { "directory" } else { "directories" },
            skipped.len()
        );
        if import_timeout.is_some() {
            println!(
                "imported {} accepted modules in child interpreters: {} ok, {} import errors, {} crashed, {} timed out; GIL re-enabled by {gil_reenabled}",
                imports.len(),
                import_count("ok"),
                import_count("error"),
                import_count("crashed"),
                import_count("timeout")
            );
        }
    }
    tally.exit_code(!walk_errors.is_empty(), import_failed > 0 || gil_reenabled > 0)
}

/// Collects files under `dir` whose names end in `.so`, with their package path. Symbolic links
/// to directories are not followed (no loops); `__pycache__` is skipped.
fn walk(
    dir: &Path,
    package: &mut Vec<String>,
    out: &mut Vec<(PathBuf, Vec<String>)>,
    skipped: &mut Vec<Skipped>,
    errors: &mut Vec<String>,
) {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).collect::<Vec<_>>(),
        Err(e) => {
            errors.push(format!("{}: cannot list: {e}", dir.display()));
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if name != "__pycache__" {
                package.push(name);
                walk(&path, package, out, skipped, errors);
                package.pop();
            }
        } else if name.ends_with(".so") && name.contains('.') {
            if kind.is_symlink() && path.is_dir() {
                skipped.push(Skipped { path, why: "symbolic link to a directory: not followed".into() });
            } else {
                out.push((path, package.clone()));
            }
        }
    }
}

/// The tag in a file name (between the module name and `.so`) and whether the name carries a
/// Python ABI tag at all (an `EXT_SUFFIX`, `abi3`, `cpython-*` or `pypy*`).
fn tag_of(file_name: &str, target: &Target) -> (String, bool) {
    let tail = file_name.find('.').map_or("", |i| &file_name[i..]);
    if tail == ".so" {
        return ("(none)".to_owned(), false);
    }
    let tag = tail.strip_prefix('.').and_then(|t| t.strip_suffix(".so")).unwrap_or(tail).to_owned();
    let named = tail == target.ext_suffix
        || tag == "abi3"
        || tag == "abi3t"
        || tag.starts_with("abi3-")
        || tag.starts_with("abi3t-")
        || tag.starts_with("cpython-")
        || tag.starts_with("pypy");
    (tag, named)
}

fn entry_json(e: &Entry) -> Value {
    let mut v = report_json(&e.report);
    v["module"] = json!(e.module);
    v["tag"] = json!(e.tag);
    v["import"] = match &e.import {
        None => Value::Null,
        Some(i) => json!({
            "status": i.status,
            "gil_enabled_after": i.gil_after,
            "gil_reenabled": i.gil_reenabled,
            "error": i.error,
            "warnings": i.warnings,
            "seconds": i.seconds,
        }),
    };
    v
}

fn print_table(chosen: &Chosen, roots: &[PathBuf], entries: &[Entry], imported: bool) {
    println!("{}", chosen.line());
    for root in roots {
        println!("searched: {}", root.display());
    }
    println!();
    let ft = chosen.target().free_threaded;
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let reason = if e.report.accepted() {
                "-".to_owned()
            } else {
                e.report.refusals.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(", ")
            };
            let mut row =
                vec![e.module.clone(), e.tag.clone(), e.report.verdict().as_str().to_owned(), reason];
            if imported {
                let (status, gil) = match &e.import {
                    None => ("-".to_owned(), "-".to_owned()),
                    Some(i) => (
                        i.status.to_owned(),
                        match (ft, i.gil_after, i.gil_reenabled) {
                            (false, _, _) | (_, None, _) => "n/a".to_owned(),
                            (true, Some(_), true) => "ON (re-enabled by this module)".to_owned(),
                            (true, Some(true), false) => "ON".to_owned(),
                            (true, Some(false), false) => "off".to_owned(),
                        },
                    ),
                };
                row.push(status);
                row.push(gil);
            }
            row
        })
        .collect();
    let mut header = vec!["MODULE", "TAG", "VERDICT", "REASON"];
    if imported {
        header.extend(["IMPORT", "GIL"]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    println!("{}", line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()));
    for row in &rows {
        println!("{}", line(row));
    }
    let noteworthy: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            !e.report.refusals.is_empty()
                || !e.report.inconclusive.is_empty()
                || e.import.as_ref().is_some_and(|i| i.status != "ok" || i.gil_reenabled)
        })
        .collect();
    if !noteworthy.is_empty() {
        println!("\ndetails:");
    }
    for e in noteworthy {
        print!("{}:\n{}", e.module, report_details(&e.report));
        if let Some(i) = &e.import {
            if let Some(err) = &i.error {
                println!("  (import) {err}");
            }
            for w in i.warnings.iter().filter(|_| i.gil_reenabled || i.status != "ok") {
                println!("  (import warning) {w}");
            }
        }
    }
}

/// Loads exactly `path` as module `name` in a fresh child interpreter (`-B`: no bytecode written)
/// and reports the GIL state before and after, every warning, and any error. Runs with `-I` (no
/// user site, no PYTHON* variables) and without `PYTHON_GIL`, so the GIL state is the one the
/// module leaves.
const IMPORT_CHILD: &str = include_str!("audit/import_child.py");

fn import_in_child(interp: &Interpreter, name: &str, path: &Path, timeout: Duration) -> Imported {
    let start = Instant::now();
    let failed = |status, error: String| Imported {
        status,
        gil_after: None,
        gil_reenabled: false,
        error: Some(error),
        warnings: vec![],
        seconds: start.elapsed().as_secs_f64(),
    };
    let mut cmd = Command::new(&interp.executable);
    cmd.args(["-I", "-B"]).arg("-c").arg(IMPORT_CHILD).arg(name).arg(path).env_remove("PYTHON_GIL");
    // Both pipes are drained while the child runs, so a chatty module cannot block on a full pipe.
    let running = match Running::spawn(&mut cmd) {
        Ok(r) => r,
        Err(e) => return failed("error", format!("cannot run {}: {e}", interp.executable.display())),
    };
    let run = match running.wait_within(timeout) {
        Ok(run) => run,
        Err(e) => return failed("error", format!("waiting for the child: {e}")),
    };
    if run.timed_out {
        return failed("timeout", format!("timed out after {} s; killed", timeout.as_secs()));
    }
    let (status, stdout, stderr) =
        (run.status, String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        let tail: String = stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        return failed(
            "crashed",
            format!("the child interpreter died of signal {signal} while importing ({tail})"),
        );
    }
    let Some(line) = stdout.lines().rev().find_map(|l| l.strip_prefix("FTSHIM-AUDIT ")) else {
        return failed(
            "error",
            format!("the child interpreter exited with {status} without a result: {}", stderr.trim()),
        );
    };
    let Ok(res) = serde_json::from_str::<Value>(line) else {
        return failed("error", format!("unparsable result from the child: {line}"));
    };
    let gil_before = res["gil_before"].as_bool();
    let gil_after = res["gil_after"].as_bool();
    let error = res["error"].as_str().map(str::to_owned);
    Imported {
        status: if error.is_some() { "error" } else { "ok" },
        gil_after,
        gil_reenabled: gil_before == Some(false) && gil_after == Some(true),
        error,
        warnings: res["warnings"]
            .as_array()
            .map(|a| a.iter().filter_map(|w| w.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        seconds: res["seconds"].as_f64().unwrap_or_else(|| start.elapsed().as_secs_f64()),
    }
}
