//! `ftshim audit`: every extension module under some directories, inspected for the target
//! interpreter and, with `--import`, imported in a child interpreter.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use ftshim_loader::child::Running;
use ftshim_loader::describe::Interpreter;
use ftshim_loader::escaped;
use serde_json::{Value, json};

use crate::findings::{Findings, Imported, Module};
use crate::output::{self, Format, report_details, wheel_details};
use crate::target::Chosen;
use crate::{EXIT_NOTHING, EXIT_USAGE};

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

/// Runs `ftshim audit` (exit status: docs/loader.md, "Exit status").
pub fn run(
    chosen: Result<Chosen, String>,
    format: Format,
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
        let wheel_file = root.is_file() && ftshim_loader::wheel::is_wheel(root);
        if !root.is_dir() && !wheel_file {
            eprintln!("ftshim audit: {}: not a directory or a wheel (.whl) file", escaped(root));
            return ExitCode::from(EXIT_USAGE);
        }
    }

    let mut progress = Progress::new();
    let host = chosen.host();
    let mut f = Findings::default();
    for (i, root) in roots.iter().enumerate() {
        progress.tick("inspecting", i, roots.len());
        if root.is_dir() {
            f.add_tree(root, &target, &host);
        } else {
            f.add_file(root, &target, &host);
        }
    }
    // `--import` conflicts with `--target` (clap), so there is an interpreter when it is given.
    if let (Some(secs), Some(interp)) = (import_timeout, chosen.interpreter()) {
        let accepted: Vec<usize> = (0..f.modules.len())
            .filter(|&i| f.modules[i].report.accepted() && f.modules[i].root.is_some())
            .collect();
        for (n, &i) in accepted.iter().enumerate() {
            progress.tick("importing", n, accepted.len());
            let imported = import_in_child(interp, &f.modules[i], Duration::from_secs(secs));
            f.modules[i].import = Some(imported);
        }
    }
    progress.finish();

    let t = f.tally();
    let inconclusive = f.modules.iter().filter(|m| !m.report.inconclusive.is_empty()).count();
    let imports: Vec<&Imported> = f.modules.iter().filter_map(|m| m.import.as_ref()).collect();
    let import_count = |s: &str| imports.iter().filter(|i| i.status == s).count();
    let gil_reenabled = imports.iter().filter(|i| i.gil_reenabled).count();

    let doc = || {
        let mut extra = json!({
            "skipped": f
                .skipped
                .iter()
                .map(|s| {
                    let mut v = output::path_object("path", &s.path);
                    v["why"] = json!(s.why);
                    v
                })
                .collect::<Vec<_>>(),
            "errors": f.errors,
            "summary": {
                "inconclusive": inconclusive,
                "skipped": f.skipped.len(),
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
        output::put_paths(&mut extra, "dirs", &roots);
        output::document("audit", &chosen, &f, "modules", extra)
    };
    if !output::print_machine(format, "audit", doc, &f) {
        print_table(&chosen, &roots, &f, import_timeout.is_some());
        for e in &f.errors {
            println!("error: {}", escaped(e));
        }
        let dirs = roots.len();
        println!(
            "\naudited {} extension modules in {dirs} {}: {} accepted, {} refused, {} unreadable ({inconclusive} with inconclusive notes); skipped {} other shared libraries",
            f.modules.len(),
            if dirs == 1 { "directory" } else { "directories" },
            t.accepted,
            t.refused,
            t.unreadable,
            f.skipped.len()
        );
        if !f.wheels.is_empty() {
            println!("{}", t.wheels_line(f.wheels.len()));
        }
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
    let code = f.exit_code(!f.errors.is_empty());
    if code == EXIT_NOTHING {
        eprintln!(
            "ftshim audit: nothing to audit: no extension modules in {}",
            roots.iter().map(escaped).collect::<Vec<_>>().join(", ")
        );
    }
    ExitCode::from(code)
}

fn print_table(chosen: &Chosen, roots: &[PathBuf], f: &Findings, imported: bool) {
    let entries = &f.modules;
    println!("{}", chosen.line());
    for root in roots {
        println!("searched: {}", escaped(root));
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
                vec![escaped(&e.name), escaped(&e.tag), e.report.verdict().as_str().to_owned(), reason];
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
    let noteworthy: Vec<&Module> = entries
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
        print!("{}:\n{}", escaped(&e.name), report_details(&e.report));
        if let Some(i) = &e.import {
            if let Some(err) = &i.error {
                println!("  (import) {}", escaped(err));
            }
            for w in i.warnings.iter().filter(|_| i.gil_reenabled || i.status != "ok") {
                println!("  (import warning) {}", escaped(w));
            }
        }
    }
    for (i, w) in f.wheels.iter().enumerate() {
        if i == 0 {
            println!("\nwheels:");
        }
        let modules = f.modules.iter().filter(|m| m.wheel == Some(i)).count();
        print!("{}", wheel_details(w, modules));
    }
    if !f.distributions.is_empty() || f.modules.iter().any(|m| m.distribution.is_none()) {
        println!("\ndistributions:");
    }
    for (i, d) in f.distributions.iter().enumerate() {
        let n = f.modules.iter().filter(|m| m.distribution == Some(i)).count();
        let failed = f.modules.iter().filter(|m| m.distribution == Some(i) && m.failed()).count();
        println!(
            "  {}: {} ({n} extension modules, {failed} refused or failed)",
            escaped(format!("{} {}", d.name, d.version)),
            f.distribution_verdict(i)
        );
    }
    for m in f.modules.iter().filter(|m| m.distribution.is_none()) {
        let verdict =
            if m.failed() && m.report.accepted() { "import-failed" } else { m.report.verdict().as_str() };
        println!("  (no distribution) {}: {verdict}", escaped(&m.name));
    }
}

/// Imports module `name` through its package — its search root first on `sys.path`, its
/// top-level package imported first — in a fresh child interpreter (`-B`: no bytecode written),
/// checks that the module imported is the file at `path`, and reports the GIL state before and
/// after, every warning, and any error. Runs with `-I` (no
/// user site, no PYTHON* variables) and without `PYTHON_GIL`, so the GIL state is the one the
/// module leaves.
const IMPORT_CHILD: &str = include_str!("audit/import_child.py");

fn import_in_child(interp: &Interpreter, module: &Module, timeout: Duration) -> Imported {
    let (name, path) = (&module.name, &module.report.path);
    let root = module.root.as_deref().unwrap_or(Path::new("."));
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
    cmd.args(["-I", "-B"]).arg("-c").arg(IMPORT_CHILD).arg(name).arg(root).arg(path).env_remove("PYTHON_GIL");
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
