//! What `check` and `audit` found, gathered once and rendered by every format: the extension
//! modules (loose files and wheel members), the wheels they came in, the installed distributions
//! they belong to, and what was passed over.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ftshim_loader::linkage::{self, Host, normalize};
use ftshim_loader::wheel::{self, Wheel};
use ftshim_loader::{self as loader, Report, Target, Verdict};

use crate::{EXIT_NOTHING, EXIT_REFUSED, EXIT_USAGE};

/// What importing one module in a child interpreter did.
pub struct Imported {
    /// "ok", "error", "crashed" or "timeout".
    pub status: &'static str,
    /// `sys._is_gil_enabled()` after the import (None before 3.13).
    pub gil_after: Option<bool>,
    /// The GIL was off before the import and on after it.
    pub gil_reenabled: bool,
    /// The exception, signal or timeout, in one sentence.
    pub error: Option<String>,
    /// Every warning the import raised.
    pub warnings: Vec<String>,
    /// How long the import took.
    pub seconds: f64,
}

/// One extension module found.
pub struct Module {
    /// Dotted name (`pkg.sub.mod`): relative to the directory searched, or to the wheel's root.
    pub name: String,
    /// The ABI tag in its file name (`cpython-313t-x86_64-linux-gnu`, `abi3`, `(none)`).
    pub tag: String,
    /// The inspection.
    pub report: Report,
    /// With `audit --import`: what importing it did.
    pub import: Option<Imported>,
    /// The directory its top-level package is imported from (`None` inside a wheel).
    pub root: Option<PathBuf>,
    /// Index into [`Findings::wheels`] when it is a wheel's member.
    pub wheel: Option<usize>,
    /// Index into [`Findings::distributions`] when an installed distribution's RECORD, or its
    /// wheel, names it.
    pub distribution: Option<usize>,
}

impl Module {
    /// Refused, or (with `--import`) failed to import or re-enabled the GIL.
    pub fn failed(&self) -> bool {
        !self.report.accepted() || self.import.as_ref().is_some_and(|i| i.status != "ok" || i.gil_reenabled)
    }
}

/// An installed distribution (a `*.dist-info` with a RECORD) or the distribution a wheel holds.
pub struct Distribution {
    /// Project name, as in the dist-info directory's or the wheel's name.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// A file passed over, and why.
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it is not an extension module.
    pub why: String,
}

/// Everything found.
#[derive(Default)]
pub struct Findings {
    /// Every module, in the order found.
    pub modules: Vec<Module>,
    /// Every wheel, in the order found.
    pub wheels: Vec<Wheel>,
    /// Every distribution a module belongs to.
    pub distributions: Vec<Distribution>,
    /// Shared libraries that are not extension modules.
    pub skipped: Vec<Skipped>,
    /// Directories that could not be listed.
    pub errors: Vec<String>,
}

/// How many modules got each verdict, and how many wheels were refused or unreadable as such.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Modules accepted.
    pub accepted: usize,
    /// Modules refused.
    pub refused: usize,
    /// Modules whose bytes could not be had.
    pub unreadable: usize,
    /// Wheels refused (the wheel itself or any module in it).
    pub wheels_refused: usize,
    /// Wheels that could not be read at all.
    pub wheels_unreadable: usize,
}

impl Tally {
    /// `N wheels: N refused, N unreadable` (the text outputs' wheel summary).
    pub fn wheels_line(&self, wheels: usize) -> String {
        format!("{wheels} wheels: {} refused, {} unreadable", self.wheels_refused, self.wheels_unreadable)
    }
}

impl Findings {
    /// Inspects one file given by name: a wheel (by its `.whl` name) or a module (any other name).
    pub fn add_file(&mut self, path: &Path, target: &Target, host: &Host) {
        if wheel::is_wheel(path) {
            self.add_wheel(path, target, host);
        } else {
            let mut report = loader::inspect(path, target);
            linkage::check(&mut report, host, None);
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let (tag, _) = loader::name_tag(&file, target);
            let name = report.module.clone();
            self.push(name, tag, report, None, None);
        }
    }

    fn push(
        &mut self,
        name: String,
        tag: String,
        report: Report,
        root: Option<PathBuf>,
        wheel: Option<usize>,
    ) {
        self.modules.push(Module { name, tag, report, import: None, root, wheel, distribution: None });
    }

    /// Inspects a wheel and each module in it.
    fn add_wheel(&mut self, path: &Path, target: &Target, host: &Host) {
        let inspected = wheel::inspect_wheel(path, target, host);
        let index = self.wheels.len();
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let mut parts = file.splitn(3, '-');
        let distribution = match (parts.next(), parts.next()) {
            (Some(name), Some(version)) => Some(self.distribution(name, version)),
            _ => None,
        };
        for report in &inspected.modules {
            let inside = report.path.strip_prefix(path).unwrap_or(&report.path);
            let mut dotted: Vec<String> = inside
                .parent()
                .map(|p| p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            dotted.push(report.module.clone());
            let member =
                report.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let (tag, _) = loader::name_tag(&member, target);
            self.push(dotted.join("."), tag, report.clone(), None, Some(index));
            if let Some(last) = self.modules.last_mut() {
                last.distribution = distribution;
            }
        }
        self.wheels.push(inspected);
    }

    fn distribution(&mut self, name: &str, version: &str) -> usize {
        match self.distributions.iter().position(|d| d.name == name && d.version == version) {
            Some(i) => i,
            None => {
                self.distributions.push(Distribution { name: name.to_owned(), version: version.to_owned() });
                self.distributions.len() - 1
            }
        }
    }

    /// Every extension module and wheel under `root` (recursively), each module named relative
    /// to `root` and assigned to the distribution whose `*.dist-info/RECORD` in `root` lists it.
    pub fn add_tree(&mut self, root: &Path, target: &Target, host: &Host) {
        let records = self.records(root);
        let mut candidates = Vec::new();
        walk(root, &mut Vec::new(), &mut candidates, &mut self.skipped, &mut self.errors);
        for (path, package) in candidates {
            if wheel::is_wheel(&path) {
                self.add_wheel(&path, target, host);
                continue;
            }
            let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let (tag, named) = loader::name_tag(&file_name, target);
            let mut report = loader::inspect(&path, target);
            if !named && !loader::exports_entry_point(&report) {
                // A bare `.so` (or another name with no Python tag) is an extension module only
                // if it exports an init function; other shared libraries are passed over.
                self.skipped.push(Skipped {
                    path,
                    why: "no Python ABI tag in its name and no PyInit_* or PyModExport_* export: not an extension module"
                        .into(),
                });
                continue;
            }
            linkage::check(&mut report, host, None);
            let mut dotted = package.clone();
            dotted.push(report.module.clone());
            let distribution = records.get(&normalize(&path)).map(|(n, v)| self.distribution(n, v));
            self.push(dotted.join("."), tag, report, Some(root.to_owned()), None);
            if let Some(last) = self.modules.last_mut() {
                last.distribution = distribution;
            }
        }
    }

    /// The files each `*.dist-info/RECORD` directly in `root` lists, to their distribution's name
    /// and version.
    fn records(&self, root: &Path) -> HashMap<PathBuf, (String, String)> {
        let mut map = HashMap::new();
        let Ok(entries) = std::fs::read_dir(root) else { return map };
        let mut infos: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "dist-info"))
            .collect();
        infos.sort();
        for info in infos {
            let Ok(record) = std::fs::read_to_string(info.join("RECORD")) else { continue };
            let stem = info.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let (name, version) = stem.split_once('-').unwrap_or((stem.as_str(), ""));
            for line in record.lines() {
                if let Some(file) = record_path(line).filter(|f| f.ends_with(".so")) {
                    map.insert(normalize(&root.join(file)), (name.to_owned(), version.to_owned()));
                }
            }
        }
        map
    }

    /// The verdict counts.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for m in &self.modules {
            match m.report.verdict() {
                Verdict::Accepted => t.accepted += 1,
                Verdict::Refused | Verdict::DlopenFailed => t.refused += 1,
                Verdict::IoFailed => t.unreadable += 1,
            }
        }
        for w in &self.wheels {
            match w.verdict() {
                Verdict::IoFailed => t.wheels_unreadable += 1,
                Verdict::Refused | Verdict::DlopenFailed => t.wheels_refused += 1,
                Verdict::Accepted => {}
            }
        }
        t
    }

    /// The verdict on distribution `index`: "refused" when a module of it is refused,
    /// "import-failed" when one failed to import or re-enabled the GIL, else "accepted".
    pub fn distribution_verdict(&self, index: usize) -> &'static str {
        let mods = self.modules.iter().filter(|m| m.distribution == Some(index));
        let mut verdict = "accepted";
        for m in mods {
            if !m.report.accepted() {
                return "refused";
            }
            if m.failed() {
                verdict = "import-failed";
            }
        }
        verdict
    }

    /// The exit status (docs/loader.md, "Exit status"): 2 when anything was unreadable or
    /// `usage_error`; else 1 when anything was refused or failed to import; else 3 when there
    /// was no extension module at all; else 0.
    pub fn exit_code(&self, usage_error: bool) -> u8 {
        let t = self.tally();
        if t.unreadable > 0 || t.wheels_unreadable > 0 || usage_error {
            EXIT_USAGE
        } else if t.refused > 0 || t.wheels_refused > 0 || self.modules.iter().any(Module::failed) {
            EXIT_REFUSED
        } else if self.modules.is_empty() {
            EXIT_NOTHING
        } else {
            0
        }
    }
}

/// The path field of a RECORD line (CSV: quoted when it holds a comma).
fn record_path(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        return None;
    }
    line.split(',').next().filter(|p| !p.is_empty()).map(str::to_owned)
}

/// Collects files under `dir` whose names end in `.so` or `.whl`, with their package path.
/// Symbolic links to directories are not followed (no loops); `__pycache__` is skipped.
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
        } else if name.ends_with(".so") || name.ends_with(".whl") {
            if kind.is_symlink() && path.is_dir() {
                skipped.push(Skipped { path, why: "symbolic link to a directory: not followed".into() });
            } else {
                out.push((path, package.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines() {
        assert_eq!(record_path("numpy/a.so,sha256=x,12").as_deref(), Some("numpy/a.so"));
        assert_eq!(record_path("\"a,b.so\",,").as_deref(), Some("a,b.so"));
        assert_eq!(record_path("\"a\"\"b\",,").as_deref(), Some("a\"b"));
        assert_eq!(record_path(""), None);
    }
}
