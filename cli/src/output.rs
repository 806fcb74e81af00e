//! The output formats of `check` and `audit` (`--format text|json|sarif|junit`), all rendered from
//! one [`Findings`]: the JSON document (versioned, `schema_version`), SARIF 2.1.0 for code
//! scanning, JUnit XML for test reports, and the pieces of the text forms.
//!
//! One module's JSON is built in one place ([`module_json`], from [`report_json`]); SARIF and JUnit
//! take their results from the same refusals, so a new report field is one line in
//! [`report_json`].

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ftshim_loader::wheel::Wheel;
use ftshim_loader::{Code, Report, Verdict, escaped, is_export_symbol, is_init_symbol};
use serde_json::{Map, Value, json};

use crate::findings::{Findings, Module};
use crate::target::Chosen;

/// The version of the JSON document (`schema_version`): 2 added wheels, distributions, the
/// command name and this field (version 1 had none of them). Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text (check: one verdict a file; audit: a table).
    Text,
    /// One JSON document (schema in docs/loader.md).
    Json,
    /// SARIF 2.1.0, one rule per code, for GitHub code scanning.
    Sarif,
    /// JUnit XML, one testcase per module.
    Junit,
}

/// `ACCEPT`, `REFUSE` or `UNREADABLE`: the verdict as `check` prints it before each path.
pub fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Accepted => "ACCEPT",
        Verdict::Refused | Verdict::DlopenFailed => "REFUSE",
        Verdict::IoFailed => "UNREADABLE",
    }
}

/// Sets `key` in the JSON object `v` to `path` as text (lossy when it is not UTF-8) and, exactly
/// when it is not UTF-8, `<key>_hex` to its bytes in lower-case hex, from which the path is
/// recovered exactly. The one way a path enters the JSON document.
pub fn put_path(v: &mut Value, key: &str, path: &Path) {
    let bytes = path.as_os_str().as_bytes();
    if let Value::Object(map) = v {
        map.insert(key.to_owned(), json!(String::from_utf8_lossy(bytes)));
        if std::str::from_utf8(bytes).is_err() {
            map.insert(format!("{key}_hex"), json!(hex(bytes)));
        }
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An object holding `path` under `key` ([`put_path`]).
pub fn path_object(key: &str, path: &Path) -> Value {
    let mut v = Value::Object(Map::new());
    put_path(&mut v, key, path);
    v
}

/// A list of paths as JSON: `key` the texts and, when any is not UTF-8, `<key>_hex` the hex of each
/// (`null` for those that are UTF-8), merged into `v`.
pub fn put_paths(v: &mut Value, key: &str, paths: &[impl AsRef<Path>]) {
    let bytes: Vec<&[u8]> = paths.iter().map(|p| p.as_ref().as_os_str().as_bytes()).collect();
    v[key] = bytes.iter().map(|b| json!(String::from_utf8_lossy(b))).collect();
    if bytes.iter().any(|b| std::str::from_utf8(b).is_err()) {
        v[format!("{key}_hex")] = bytes
            .iter()
            .map(|b| if std::str::from_utf8(b).is_err() { json!(hex(b)) } else { Value::Null })
            .collect();
    }
}

/// One inspected file as JSON: verdict, every reason (code and message), the inconclusive
/// notes and the build evidence. The one place a report's fields are serialised.
pub fn report_json(report: &Report) -> Value {
    let mut v = json!({
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
            "init_exports": ev.exports.iter().filter(|e| is_init_symbol(e)).collect::<Vec<_>>(),
            "export_exports": ev.exports.iter().filter(|e| is_export_symbol(e)).collect::<Vec<_>>(),
            "needed": ev.dynamic.needed,
        })),
    });
    put_path(&mut v, "path", &report.path);
    v
}

/// One module as JSON: [`report_json`] plus its dotted name, tag, wheel, distribution and import.
pub fn module_json(f: &Findings, m: &Module) -> Value {
    let mut v = report_json(&m.report);
    v["module"] = json!(m.name);
    v["tag"] = json!(m.tag);
    match m.wheel {
        Some(w) => put_path(&mut v, "wheel", &f.wheels[w].path),
        None => v["wheel"] = Value::Null,
    }
    v["distribution"] = json!(m.distribution.map(|d| &f.distributions[d].name));
    v["import"] = match &m.import {
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

/// The dotted names of the modules `which` selects.
fn names(f: &Findings, which: impl Fn(&Module) -> bool) -> Vec<String> {
    f.modules.iter().filter(|m| which(m)).map(|m| m.name.clone()).collect()
}

fn wheel_json(f: &Findings, index: usize, w: &Wheel) -> Value {
    let mut v = json!({
        "verdict": w.verdict().as_str(),
        "tags": w.tags,
        "reasons": w
            .refusals
            .iter()
            .map(|r| json!({"code": r.code.as_str(), "message": w.about(&r.message)}))
            .collect::<Vec<_>>(),
        "modules": names(f, |m| m.wheel == Some(index)),
        "libraries": w.libraries,
    });
    put_path(&mut v, "path", &w.path);
    v
}

/// The JSON document of `command`: `schema_version`, `command`, `target`, the modules under
/// `modules_key` (`files` for check, `modules` for audit), `wheels`, `distributions` and
/// `summary`; `extra` fields are merged in at the top.
pub fn document(command: &str, chosen: &Chosen, f: &Findings, modules_key: &str, extra: Value) -> Value {
    let t = f.tally();
    let mut doc = json!({
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "target": chosen.json(),
        "wheels": f.wheels.iter().enumerate().map(|(i, w)| wheel_json(f, i, w)).collect::<Vec<_>>(),
        "distributions": f.distributions.iter().enumerate().map(|(i, d)| json!({
            "name": d.name,
            "version": d.version,
            "verdict": f.distribution_verdict(i),
            "modules": names(f, |m| m.distribution == Some(i)),
        })).collect::<Vec<_>>(),
        "summary": {
            "modules": f.modules.len(),
            "accepted": t.accepted,
            "refused": t.refused,
            "unreadable": t.unreadable,
            "wheels": f.wheels.len(),
            "wheels_refused": t.wheels_refused,
            "wheels_unreadable": t.wheels_unreadable,
        },
    });
    doc[modules_key] = f.modules.iter().map(|m| module_json(f, m)).collect();
    if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
        for (k, v) in extra {
            if k == "summary" {
                if let (Some(Value::Object(s)), Value::Object(more)) = (doc.get_mut("summary"), v) {
                    s.extend(more);
                }
            } else {
                doc.insert(k, v);
            }
        }
    }
    doc
}

/// The reasons and notes of a report, indented, one a line (escaped by [`Report::about`]).
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

/// A wheel's own line and reasons (text form, [`escaped`]).
pub fn wheel_details(w: &Wheel, modules: usize) -> String {
    let mut out = format!(
        "{} wheel {} (tags: {}; {modules} extension modules)\n",
        verdict_word(w.verdict()),
        escaped(&w.path),
        if w.tags.is_empty() { "none".to_owned() } else { escaped(w.tags.join(", ")) }
    );
    for r in &w.refusals {
        out.push_str(&format!("  [{}] {}\n", r.code, w.about(&r.message)));
    }
    out
}

/// Rules that are not loader codes: what `audit --import` finds.
const IMPORT_RULES: &[(&str, &str)] = &[
    ("import-error", "the module raised an exception when imported in a child interpreter"),
    ("import-crashed", "the child interpreter died of a signal while importing the module"),
    ("import-timeout", "importing the module did not finish within the time limit"),
    ("gil-reenabled", "importing the module re-enabled the GIL (no Py_mod_gil / PyUnstable_Module_SetGIL)"),
];

/// A file path as a SARIF `uri`: relative to the current directory when under it (what code
/// scanning resolves against the checkout), else a `file://` URI; its bytes percent-encoded, so a
/// path that is not UTF-8 stays a valid URI that decodes to the exact path.
fn uri(path: &std::path::Path) -> String {
    let cwd = std::env::current_dir().ok();
    let (rel, scheme) = match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) => (rel.to_path_buf(), ""),
        None => (std::path::absolute(path).unwrap_or_else(|_| path.to_owned()), "file://"),
    };
    let mut out = String::from(scheme);
    for &b in rel.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SARIF 2.1.0 log: one run, one rule per loader code (and per `--import` finding), one
/// result per refusal, located at the file (a wheel member at its wheel, the member named in the
/// message).
pub fn sarif(f: &Findings) -> Value {
    let mut rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "name": c.as_str(),
                "shortDescription": {"text": code_summary(*c)},
                "helpUri": "https://example.invalid/ftshim/docs/loader.md#checks-and-codes",
                "defaultConfiguration": {"level": "error"},
            })
        })
        .collect();
    rules.extend(IMPORT_RULES.iter().map(|(id, text)| {
        json!({
            "id": id,
            "name": id,
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": "error"},
        })
    }));
    let rule_index = |id: &str| {
        Code::ALL
            .iter()
            .position(|c| c.as_str() == id)
            .or_else(|| IMPORT_RULES.iter().position(|(r, _)| *r == id).map(|i| i + Code::ALL.len()))
            .unwrap_or(0)
    };
    let result = |id: &str, text: String, file: &std::path::Path| {
        json!({
            "ruleId": id,
            "ruleIndex": rule_index(id),
            "level": "error",
            "message": {"text": text},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri(file)}}}],
        })
    };
    let mut results = Vec::new();
    for w in &f.wheels {
        for r in &w.refusals {
            results.push(result(r.code.as_str(), w.about(&r.message), &w.path));
        }
    }
    for m in &f.modules {
        let file = m.wheel.map_or(m.report.path.as_path(), |w| f.wheels[w].path.as_path());
        for r in &m.report.refusals {
            results.push(result(r.code.as_str(), m.report.about(&r.message), file));
        }
        if let Some(i) = &m.import {
            let id = match i.status {
                "error" => Some("import-error"),
                "crashed" => Some("import-crashed"),
                "timeout" => Some("import-timeout"),
                _ => None,
            };
            if let Some(id) = id {
                let text = escaped(format!("importing {}: {}", m.name, i.error.clone().unwrap_or_default()));
                results.push(result(id, text, file));
            }
            if i.gil_reenabled {
                let text =
                    escaped(format!("importing {} re-enabled the GIL: {}", m.name, i.warnings.join("; ")));
                results.push(result("gil-reenabled", text, file));
            }
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "ftshim",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/ftshim",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

/// The first sentence of a code's documentation, for SARIF rule descriptions.
fn code_summary(code: Code) -> &'static str {
    match code {
        Code::NotFound => "nothing exists at the path",
        Code::DanglingSymlink => "the path is a symbolic link whose target does not exist",
        Code::NotRegularFile => "the path is not a regular file",
        Code::Unreadable => "the file cannot be opened or read",
        Code::SuffixMismatch => "the file name does not carry an ABI tag the target imports",
        Code::ModuleName => "the module name in the file name is not UTF-8: CPython cannot import it",
        Code::EmptyFile => "the file has no bytes",
        Code::NotElf => "the file is not ELF",
        Code::Truncated => "the file is shorter than its ELF headers say",
        Code::ElfClass => "the ELF class is not this machine's",
        Code::ElfEndian => "the ELF byte order is not this machine's",
        Code::ElfMachine => "the ELF machine is not this machine's",
        Code::ElfType => "the ELF type is not a shared object",
        Code::ElfMalformed => "the ELF headers or dynamic symbols cannot be parsed",
        Code::NoInit => "no entry point is exported",
        Code::InitMismatch => "no entry point is the one CPython looks up for the file's module name",
        Code::GilBuild => "built for a GIL interpreter, the target is free-threaded",
        Code::FtBuild => "built for a free-threaded interpreter, the target is a GIL build",
        Code::UnresolvedSymbol => "undefined Py* symbols the target interpreter does not export",
        Code::UnknownSlot => "the module's slot array uses a slot ID the target does not know",
        Code::AbiInfo => "the module's PyABIInfo fails the target's PyABIInfo_Check",
        Code::LibraryNotFound => "a needed library is found nowhere the dynamic linker looks",
        Code::UndefinedSymbol => "undefined symbols no library it needs nor the interpreter defines",
        Code::Mistagged => "the wheel's tags, the file name's tag and the build evidence disagree",
        Code::WheelTag => "the target installs none of the wheel's tags",
        Code::WheelMalformed => "the wheel cannot be read as one",
        Code::FileChanged => "the file changed while it was inspected or opened",
        Code::DlopenFailed => "dlopen or dlsym failed",
        Code::InvalidArgument => "an argument is NULL or out of range",
        Code::NoRuntime => "the process has no usable CPython",
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to write these: replaced.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML (every name, path and message [`escaped`]): one testsuite named `ftshim <command>`, one testcase per module (classname: its
/// wheel, distribution or directory), a `<failure>` per refused or failed module (type: the
/// first code), an `<error>` when its bytes could not be read; a refused wheel with no module
/// is a testcase of its own.
pub fn junit(command: &str, f: &Findings) -> String {
    let mut cases = String::new();
    let (mut failures, mut errors, mut tests) = (0, 0, 0);
    for w in &f.wheels {
        if w.refusals.is_empty() {
            continue;
        }
        tests += 1;
        let text: Vec<String> =
            w.refusals.iter().map(|r| format!("[{}] {}", r.code, w.about(&r.message))).collect();
        let kind = if w.refusals.iter().any(|r| r.code.is_io()) { "error" } else { "failure" };
        if kind == "error" {
            errors += 1
        } else {
            failures += 1
        }
        cases.push_str(&format!(
            concat!(
                "    <testcase classname=\"{}\" name=\"(wheel)\" file=\"{}\">\n",
                "      <{kind} type=\"{}\" message=\"{}\">{}</{kind}>\n    </testcase>\n"
            ),
            xml_escape(&escaped(&w.path)),
            xml_escape(&escaped(&w.path)),
            w.refusals[0].code,
            xml_escape(&text[0]),
            xml_escape(&text.join("\n")),
            kind = kind,
        ));
    }
    for m in &f.modules {
        tests += 1;
        let class = match (m.wheel, m.distribution, &m.root) {
            (Some(w), _, _) => escaped(&f.wheels[w].path),
            (None, Some(d), _) => {
                escaped(format!("{} {}", f.distributions[d].name, f.distributions[d].version))
            }
            (None, None, Some(root)) => escaped(root),
            _ => m.report.path.parent().map(escaped).unwrap_or_default(),
        };
        let mut lines: Vec<String> = m
            .report
            .refusals
            .iter()
            .map(|r| format!("[{}] {}", r.code, m.report.about(&r.message)))
            .collect();
        let mut kind_code = m.report.refusals.first().map(|r| r.code.as_str().to_owned());
        if let Some(i) = &m.import {
            if i.status != "ok" {
                lines.push(format!("[import-{}] {}", i.status, escaped(i.error.clone().unwrap_or_default())));
                kind_code.get_or_insert_with(|| format!("import-{}", i.status));
            }
            if i.gil_reenabled {
                lines.push(format!("[gil-reenabled] {}", escaped(i.warnings.join("; "))));
                kind_code.get_or_insert_with(|| "gil-reenabled".to_owned());
            }
        }
        let body = match kind_code {
            None => String::new(),
            Some(code) => {
                let kind = if m.report.io_failed() { "error" } else { "failure" };
                if kind == "error" {
                    errors += 1
                } else {
                    failures += 1
                }
                format!(
                    "\n      <{kind} type=\"{}\" message=\"{}\">{}</{kind}>\n    ",
                    xml_escape(&code),
                    xml_escape(&lines[0]),
                    xml_escape(&lines.join("\n"))
                )
            }
        };
        cases.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\">{body}</testcase>\n",
            xml_escape(&class),
            xml_escape(&escaped(&m.name)),
            xml_escape(&escaped(&m.report.path)),
        ));
    }
    let counts = format!("tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\"");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ftshim\" {counts}>\n  \
         <testsuite name=\"ftshim {command}\" {counts}>\n{cases}  </testsuite>\n</testsuites>"
    )
}

/// Prints `f` in `format` (text is the caller's); `true` when it printed.
pub fn print_machine(format: Format, command: &str, doc: impl FnOnce() -> Value, f: &Findings) -> bool {
    match format {
        Format::Text => return false,
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&doc()).expect("JSON values always serialise"))
        }
        Format::Sarif => {
            println!("{}", serde_json::to_string_pretty(&sarif(f)).expect("JSON values always serialise"))
        }
        Format::Junit => println!("{}", junit(command, f)),
    }
    true
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
