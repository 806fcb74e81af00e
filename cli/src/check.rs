//! `ftshim check`: inspect the given files (modules and wheels) for the target interpreter.

use std::path::PathBuf;
use std::process::ExitCode;

use ftshim_loader::escaped;
use serde_json::json;

use crate::EXIT_USAGE;
use crate::findings::Findings;
use crate::output::{self, Format, report_details, report_slots, verdict_word, wheel_details};
use crate::target::Chosen;

/// Runs `ftshim check` (exit status: docs/loader.md, "Exit status").
pub fn run(chosen: Result<Chosen, String>, format: Format, paths: &[PathBuf]) -> ExitCode {
    let interp = match chosen {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ftshim check: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let target = interp.target();
    let host = interp.host();
    let mut f = Findings::default();
    for p in paths {
        f.add_file(p, &target, &host);
    }
    let t = f.tally();
    let doc = || output::document("check", &interp, &f, "files", json!({}));
    if !output::print_machine(format, "check", doc, &f) {
        println!("{}", interp.line());
        for (i, w) in f.wheels.iter().enumerate() {
            let modules = f.modules.iter().filter(|m| m.wheel == Some(i)).count();
            print!("{}", wheel_details(w, modules));
        }
        for m in &f.modules {
            let word = verdict_word(m.report.verdict());
            print!(
                "{word} {}\n{}{}",
                escaped(&m.report.path),
                report_details(&m.report),
                report_slots(&m.report, target.free_threaded)
            );
        }
        print!("{} accepted, {} refused, {} unreadable", t.accepted, t.refused, t.unreadable);
        if !f.wheels.is_empty() {
            print!("; {}", t.wheels_line(f.wheels.len()));
        }
        println!();
    }
    for m in f.modules.iter().filter(|m| m.report.io_failed()) {
        for r in m.report.refusals.iter().filter(|r| r.code.is_io()) {
            eprintln!("ftshim check: [{}] {}", r.code, m.report.about(&r.message));
        }
    }
    for w in &f.wheels {
        for r in w.refusals.iter().filter(|r| r.code.is_io()) {
            eprintln!("ftshim check: [{}] {}", r.code, w.about(&r.message));
        }
    }
    let code = f.exit_code(false);
    if code == crate::EXIT_NOTHING {
        eprintln!(
            "ftshim check: nothing to check: no extension modules in {}",
            paths.iter().map(escaped).collect::<Vec<_>>().join(", ")
        );
    }
    ExitCode::from(code)
}
