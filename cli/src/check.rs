//! `ftshim check`: inspect the given files for the target interpreter.

use std::path::PathBuf;
use std::process::ExitCode;

use ftshim_loader as loader;
use serde_json::json;

use crate::EXIT_USAGE;
use crate::output::{Tally, report_details, report_json, report_slots, verdict_word};
use crate::target::Chosen;

/// Runs `ftshim check`. Exit: 0 all accepted, 1 any refused, 2 usage error or any file unreadable.
pub fn run(chosen: Result<Chosen, String>, as_json: bool, paths: &[PathBuf]) -> ExitCode {
    let interp = match chosen {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ftshim check: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let target = interp.target();
    let reports: Vec<loader::Report> = paths.iter().map(|p| loader::inspect(p, &target)).collect();
    let tally = Tally::of(&reports);
    let Tally { accepted, refused, unreadable } = tally;
    if as_json {
        let doc = json!({
            "target": interp.json(),
            "files": reports.iter().map(report_json).collect::<Vec<_>>(),
            "summary": {"accepted": accepted, "refused": refused, "unreadable": unreadable},
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values always serialise"));
    } else {
        println!("{}", interp.line());
        for report in &reports {
            let word = verdict_word(report.verdict());
            print!(
                "{word} {}\n{}{}",
                report.path.display(),
                report_details(report),
                report_slots(report, target.free_threaded)
            );
        }
        println!("{accepted} accepted, {refused} refused, {unreadable} unreadable");
    }
    for report in reports.iter().filter(|r| r.io_failed()) {
        for r in report.refusals.iter().filter(|r| r.code.is_io()) {
            eprintln!("ftshim check: [{}] {}", r.code, report.about(&r.message));
        }
    }
    tally.exit_code(false, false)
}
