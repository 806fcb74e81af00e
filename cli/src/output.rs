//! Shared output pieces: JSON forms of a target and a report, and the text form of a report.

use ftshim_loader::Report;
use ftshim_loader::describe::Interpreter;
use serde_json::{Value, json};

/// `"accepted"`, `"refused"` or `"unreadable"` (the file's bytes could not be had).
pub fn verdict(report: &Report) -> &'static str {
    if report.io_failed() {
        "unreadable"
    } else if report.accepted() {
        "accepted"
    } else {
        "refused"
    }
}

/// The target interpreter as JSON.
pub fn target_json(interp: &Interpreter) -> Value {
    let t = interp.target();
    json!({
        "python": interp.executable.display().to_string(),
        "version": format!("{}.{}", t.version.0, t.version.1),
        "free_threaded": t.free_threaded,
        "ext_suffix": t.ext_suffix,
        "exports_file": interp.exports_file.display().to_string(),
    })
}

/// One inspected file as JSON: verdict, every reason (code and message), the inconclusive
/// notes and the build evidence.
pub fn report_json(report: &Report) -> Value {
    json!({
        "path": report.path.display().to_string(),
        "module": report.module,
        "verdict": verdict(report),
        "reasons": report.refusals.iter().map(|r| json!({"code": r.code.as_str(), "message": report.about(&r.message)})).collect::<Vec<_>>(),
        "inconclusive": report.notes(),
        "evidence": report.evidence.as_ref().map(|ev| json!({
            "ft_markers": ev.ft_markers,
            "gil_markers": ev.gil_markers,
            "python_imports": ev.python_imports.len(),
            "init_exports": ev.exports.iter().filter(|e| e.starts_with("PyInit_")).collect::<Vec<_>>(),
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
