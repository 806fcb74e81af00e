//! Shared output pieces: the verdict counts and exit status, JSON forms of a target and a report,
//! and the text form of a report.

use std::process::ExitCode;

use ftshim_loader::{Report, Verdict};
use serde_json::{Value, json};

use crate::{EXIT_REFUSED, EXIT_USAGE};

/// How many reports got each verdict ([`Report::verdict`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// [`Verdict::Accepted`].
    pub accepted: usize,
    /// [`Verdict::Refused`] (and [`Verdict::DlopenFailed`], which only `open` gives: not loadable).
    pub refused: usize,
    /// [`Verdict::IoFailed`]: the file's bytes could not be had.
    pub unreadable: usize,
}

impl Tally {
    /// Counts the verdicts of `reports`.
    pub fn of<'a>(reports: impl IntoIterator<Item = &'a Report>) -> Tally {
        let mut tally = Tally::default();
        for report in reports {
            match report.verdict() {
                Verdict::Accepted => tally.accepted += 1,
                Verdict::Refused | Verdict::DlopenFailed => tally.refused += 1,
                Verdict::IoFailed => tally.unreadable += 1,
            }
        }
        tally
    }

    /// The exit status of `check` and `audit`: 2 when a file was unreadable or `usage_error`, else
    /// 1 when a file was refused or `failed`, else 0.
    pub fn exit_code(&self, usage_error: bool, failed: bool) -> ExitCode {
        if self.unreadable > 0 || usage_error {
            ExitCode::from(EXIT_USAGE)
        } else if self.refused > 0 || failed {
            ExitCode::from(EXIT_REFUSED)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// `ACCEPT`, `REFUSE` or `UNREADABLE`: the verdict as `check` prints it before each path.
pub fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Accepted => "ACCEPT",
        Verdict::Refused | Verdict::DlopenFailed => "REFUSE",
        Verdict::IoFailed => "UNREADABLE",
    }
}

/// One inspected file as JSON: verdict, every reason (code and message), the inconclusive
/// notes and the build evidence.
pub fn report_json(report: &Report) -> Value {
    json!({
        "path": report.path.display().to_string(),
        "module": report.module,
        "verdict": report.verdict().as_str(),
        "reasons": report.refusals.iter().map(|r| json!({"code": r.code.as_str(), "message": report.about(&r.message)})).collect::<Vec<_>>(),
        "inconclusive": report.notes(),
        "entry": report.entry.as_ref().map(|e| json!({"kind": e.kind(), "symbol": e.symbol()})),
        "gil_free": report.gil.as_ref().map(|g| json!({"declared": g.as_str(), "because": g.because()})),
        "abi_info": report.abi_info.map(|i| json!({
            "major": i.major, "minor": i.minor, "flags": i.flags, "flag_names": i.flag_names(),
            "build_version": i.build_version, "abi_version": i.abi_version,
        })),
        "evidence": report.evidence.as_ref().map(|ev| json!({
            "ft_markers": ev.ft_markers,
            "gil_markers": ev.gil_markers,
            "python_imports": ev.python_imports.len(),
            "init_exports": ev.exports.iter().filter(|e| e.starts_with("PyInit_")).collect::<Vec<_>>(),
            "export_exports": ev.exports.iter().filter(|e| e.starts_with("PyModExport_")).collect::<Vec<_>>(),
        })),
    })
}

/// The reasons and notes of a report, indented, one a line.
pub fn report_details(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.refusals {
        out.push_str(&format!("  [{}] {}\n", r.code, report.about(&r.message)));
    }
    for note in &report.notes() {
        out.push_str(&format!("  (inconclusive) {note}\n"));
    }
    out
}

/// What the module's slot array says, one line each: whether it declares GIL freedom (shown for
/// free-threaded targets, where it matters) and its `PyABIInfo` (when it has one).
pub fn report_slots(report: &Report, free_threaded: bool) -> String {
    let mut out = String::new();
    if let (true, Some(gil)) = (free_threaded, &report.gil) {
        out.push_str(&format!("  GIL freedom declared: {} ({})\n", gil.as_str(), gil.because()));
    }
    if let Some(i) = report.abi_info {
        out.push_str(&format!(
            "  PyABIInfo: version {}.{}, flags {}, build {:#x}, abi {:#x}\n",
            i.major,
            i.minor,
            i.flag_names(),
            i.build_version,
            i.abi_version
        ));
    }
    out
}
