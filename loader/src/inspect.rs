//! Inspection: everything decided from a file before any of its code could run — its name's ABI
//! tag, its module name, its ELF identification and headers, the entry point CPython calls
//! (`PyInit_<name>`, …: [`entry_symbols`]), the build evidence in its undefined symbols, and
//! whether the target exports every `Py*` symbol it needs.

use std::path::Path;

use object::ReadRef;

use crate::code::{Code, Refusal};
use crate::elf::{self, Evidence, FT_MARKERS, GIL_MARKERS};
use crate::file;
use crate::names::{entry_symbols, is_export_symbol, is_init_symbol, module_name, module_name_problem};
use crate::report::{Entry, Report};
use crate::slots;
use crate::target::Target;

/// The tag in a module's file name (between the module name and `.so`: `cpython-313t-x86_64-linux-gnu`,
/// `abi3`, or `(none)` for a bare `.so`), and whether the name carries a Python ABI tag at all (the
/// target's `EXT_SUFFIX`, `abi3`, `abi3t`, `cpython-*` or `pypy*`). A shared library whose name
/// carries none is an extension module only if it exports an entry point.
pub fn name_tag(file_name: &str, target: &Target) -> (String, bool) {
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

/// True when the ELF evidence shows an entry point of any name (`PyInit_*`, `PyModExport_*` or
/// their `U` forms).
pub fn exports_entry_point(report: &Report) -> bool {
    report
        .evidence
        .as_ref()
        .is_some_and(|ev| ev.exports.iter().any(|e| is_init_symbol(e) || is_export_symbol(e)))
}

/// Inspects `path` for `target` without running any of its code. The file is opened once and
/// read through bounded reads ([`file`](crate::file)); a path that yields no bytes (missing,
/// dangling link, directory, FIFO, unreadable) is reported with an I/O code
/// ([`Report::io_failed`]), never by blocking or panicking, and a file that changes while it is
/// read is reported as `file-changed`, never by a signal.
pub fn inspect(path: &Path, target: &Target) -> Report {
    match file::open(path) {
        Ok(source) => inspect_source(path, &source, target),
        Err(unreadable) => unreadable_report(path, target, unreadable),
    }
}

/// Inspects the file opened as `source` (named `path`): [`inspect_bytes`] on its bytes, then
/// [`Source::settle`](file::Source::settle). When a read failed or the file changed while it
/// was read, nothing read from it is reported: the report's one refusal says what happened.
pub(crate) fn inspect_source(path: &Path, source: &file::Source, target: &Target) -> Report {
    let mut report = inspect_data(path, source, target);
    if let Err(refusal) = source.settle() {
        return if refusal.code.is_io() {
            unreadable_report(path, target, refusal)
        } else {
            bare_report(path, vec![refusal])
        };
    }
    if source.over_budget() {
        report.refusals.push(Refusal::new(
            Code::ElfMalformed,
            "malformed ELF file: expected tables that can be read in at most twice the file's size and 16 MiB, found overlapping ones that need more".to_owned(),
        ));
    }
    report
}

/// The report on a file whose bytes could not be had: the name's check (without evidence) and
/// the I/O refusal, after `cannot read: `.
pub(crate) fn unreadable_report(path: &Path, target: &Target, unreadable: Refusal) -> Report {
    let mut refusals = Vec::new();
    if let Err(why) = check_suffix(path, target, None) {
        refusals.push(Refusal::new(Code::SuffixMismatch, why));
    }
    refusals.push(unreadable.reading());
    bare_report(path, refusals)
}

/// A report with `refusals` and nothing read from the file.
fn bare_report(path: &Path, refusals: Vec<Refusal>) -> Report {
    Report {
        path: path.to_owned(),
        module: module_name(path),
        refusals,
        evidence: None,
        inconclusive: Vec::new(),
        entry: None,
        gil: None,
        abi_info: None,
    }
}

/// Checks the file name's ABI tag. `Ok(Some(note))` when accepted on the strength of the
/// symbols rather than the name; `Err(sentence)` when refused.
fn check_suffix(path: &Path, target: &Target, ev: Option<&Evidence>) -> Result<Option<String>, String> {
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let sfx = &target.ext_suffix;
    let rule = "file name must end with the target interpreter's EXT_SUFFIX";
    let Some(dot) = file_name.find('.') else {
        return Err(format!("{rule}: expected '{sfx}', found '(none)'"));
    };
    let tail = &file_name[dot..];
    if dot == 0 {
        return Err(format!("{rule}: expected '<module>{sfx}', found '{file_name}' with no module name"));
    }
    if tail == sfx {
        return Ok(None);
    }
    let has_ft = ev.is_some_and(|e| !e.ft_markers.is_empty());
    let has_gil_only = ev.is_some_and(|e| e.ft_markers.is_empty() && !e.gil_markers.is_empty());
    let proof_note = |what: &str, markers: &[String]| {
        format!(
            "'{tail}' is not the target's EXT_SUFFIX '{sfx}'; accepted because the undefined symbols prove a {what} build ({}), which does not prove the minor version it was built for",
            markers.join(", ")
        )
    };
    // What CPython itself would import for this target (`EXTENSION_SUFFIXES`).
    let listed = target.extension_suffixes().iter().any(|s| s == tail);
    let (major, minor) = target.version;
    let abi_tag = |abi: &str| {
        tail == format!(".{abi}.so") || target.triplet().is_some_and(|t| tail == format!(".{abi}-{t}.so"))
    };
    match (tail, target.free_threaded) {
        (".abi3.so" | ".so", true) if listed && has_ft => {
            Ok(Some(proof_note("free-threaded", &ev.map(|e| e.ft_markers.clone()).unwrap_or_default())))
        }
        (".abi3.so" | ".so", true) if listed => Err(format!(
            "{rule}: expected '{sfx}', found '{tail}', which carries no free-threaded ABI tag, and the file's symbols do not prove a free-threaded build (none of {})",
            FT_MARKERS.join(", ")
        )),
        (".so", false) if has_gil_only => {
            Ok(Some(proof_note("GIL", &ev.map(|e| e.gil_markers.clone()).unwrap_or_default())))
        }
        (".so", false) => Err(format!(
            "{rule}: expected '{sfx}', found '.so', which carries no ABI tag, and the file's symbols do not prove a GIL build ({} without free-threaded symbols)",
            GIL_MARKERS.join(", ")
        )),
        // The stable ABI suffixes the target lists: abi3 on GIL builds, abi3t from 3.15.
        _ if listed => Ok(None),
        _ if target.free_threaded && target.version >= (3, 15) && abi_tag("abi3") => Err(format!(
            "{rule}: expected '{sfx}', '.abi3t.so'{} or '.so', found '{tail}': free-threaded {major}.{minor} no longer imports abi3 files (cpython gh-146636); the free-threaded stable ABI is abi3t (PEP 803)",
            target.triplet().map(|t| format!(", '.abi3t-{t}.so'")).unwrap_or_default()
        )),
        _ if target.version < (3, 15) && abi_tag("abi3t") => Err(format!(
            "{rule}: expected '{sfx}', found '{tail}': CPython imports abi3t files (PEP 803) only from 3.15, target is {}",
            target.kind()
        )),
        _ => Err(format!("{rule}: expected '{sfx}', found '{tail}'")),
    }
}

/// [`inspect`] on bytes already read; `path` is used for the name checks and the report.
pub fn inspect_bytes(path: &Path, data: &[u8], target: &Target) -> Report {
    inspect_data(path, data, target)
}

/// [`inspect_bytes`] on a byte slice or a file read through bounded reads.
fn inspect_data<'d, R: ReadRef<'d>>(path: &Path, data: R, target: &Target) -> Report {
    let module = module_name(path);
    let examined = elf::examine(data);
    let ev = examined.evidence;
    let mut refusals = Vec::new();
    let mut inconclusive = Vec::new();
    let mut entry = None;

    match check_suffix(path, target, ev.as_ref()) {
        Ok(None) => {}
        Ok(Some(note)) => inconclusive.push(note),
        Err(why) => refusals.push(Refusal::new(Code::SuffixMismatch, why)),
    }
    let name_problem = module_name_problem(path);
    if let Some(why) = &name_problem {
        refusals.push(Refusal::new(Code::ModuleName, why.as_str()));
    }
    refusals.extend(examined.problems);
    inconclusive.extend(examined.notes);

    let mut gil = None;
    let mut abi_info = None;
    if let Some(ev) = &ev {
        // A module name CPython cannot import has no entry point to look for.
        if name_problem.is_none() {
            let (e, refusal) = check_entry(&module, ev, target);
            entry = e;
            refusals.extend(refusal);
        }
        let found = slots::read(data, entry.as_ref(), ev);
        let (slot_refusals, slot_notes) = slots::check(&found, target);
        refusals.extend(slot_refusals);
        inconclusive.extend(slot_notes);
        abi_info = found.array.as_ref().ok().and_then(|a| a.abi_info);
        gil = Some(found.gil);
        let (major, minor) = target.version;
        match (target.free_threaded, ev.ft_markers.is_empty(), ev.gil_markers.is_empty()) {
            (true, true, false) => refusals.push(Refusal::new(
                Code::GilBuild,
                format!(
                    "built for a GIL interpreter, target is free-threaded {major}.{minor}: expected a free-threaded build (undefined symbols such as {}), found GIL-only references ({}) and none of those",
                    FT_MARKERS.join(", "),
                    ev.gil_markers.join(", ")
                ),
            )),
            (false, false, _) => refusals.push(Refusal::new(
                Code::FtBuild,
                format!(
                    "built for a free-threaded interpreter, target is GIL {major}.{minor}: expected no free-threaded symbols, found {}",
                    ev.ft_markers.join(", ")
                ),
            )),
            (_, true, true) => inconclusive.push(
                "no refcounting symbols that tell a free-threaded from a GIL build (limited API or no Py_DECREF)"
                    .to_owned(),
            ),
            _ => {}
        }
        if !ev.python_imports.is_empty() {
            let n = ev.python_imports.len();
            match target.symbols.missing(&ev.python_imports) {
                Ok(missing) if missing.is_empty() => {}
                Ok(missing) => {
                    const SHOWN: usize = 12;
                    let mut list = missing.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
                    if missing.len() > SHOWN {
                        list.push_str(&format!(" and {} more", missing.len() - SHOWN));
                    }
                    refusals.push(Refusal::new(
                        Code::UnresolvedSymbol,
                        format!(
                            "every undefined Py*/_Py* symbol must be exported by the target interpreter: expected all {n} to resolve in {}, found {} missing: {list}",
                            target.symbols,
                            missing.len()
                        ),
                    ));
                }
                Err(why) => {
                    inconclusive.push(format!("{n} undefined Py*/_Py* symbols were not checked: {why}"))
                }
            }
        }
    }

    Report { path: path.to_owned(), module, refusals, evidence: ev, inconclusive, entry, gil, abi_info }
}

/// The first CPython version that calls `PyModExport_<name>` (PEP 793).
const EXPORT_SINCE: (u8, u8) = (3, 15);

/// `"A"`, `"A or B"`, `"A, B or C"`.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Finds the entry point `target` would call for `module` ([`entry_symbols`]): `PyModExport_<name>`
/// (PEP 793, from 3.15; preferred when both are exported, PEP 793) or `PyInit_<name>`, in their
/// `U` forms for a name that is not ASCII. Refuses with `no-init` or `init-mismatch` when there is
/// none, naming what was found.
fn check_entry(module: &str, ev: &Evidence, target: &Target) -> (Option<Entry>, Option<Refusal>) {
    let symbols = entry_symbols(module);
    let (init, export) = (&symbols.init, &symbols.export);
    // How the expected names were derived, when it is not just the module name.
    let derived =
        symbols.derived.as_ref().map(|d| format!(" (CPython's entry point {d})")).unwrap_or_default();
    let ascii = module.is_ascii();
    let init_kinds: &[&str] = if ascii { &["PyInit_*"] } else { &["PyInit_*", "PyInitU_*"] };
    let export_kinds: &[&str] = if ascii { &["PyModExport_*"] } else { &["PyModExport_*", "PyModExportU_*"] };
    let exported = |is: fn(&str) -> bool| -> Vec<&str> {
        ev.exports.iter().map(String::as_str).filter(|s| is(s)).collect()
    };
    if target.version >= EXPORT_SINCE {
        if ev.exports.contains(export) {
            return (Some(Entry::Export(export.clone())), None);
        }
        if ev.exports.contains(init) {
            return (Some(Entry::Init(init.clone())), None);
        }
        let rule = "must export an entry point named after the file";
        let mut found = exported(is_export_symbol);
        found.extend(exported(is_init_symbol));
        let expected = format!("expected '{export}' (PEP 793) or '{init}'{derived}");
        let refusal = if found.is_empty() {
            let kinds = [export_kinds, init_kinds].concat();
            Refusal::new(Code::NoInit, format!("{rule}: {expected}, found no {} export", or_list(&kinds)))
        } else {
            Refusal::new(Code::InitMismatch, format!("{rule}: {expected}, found '{}'", found.join("', '")))
        };
        return (None, Some(refusal));
    }
    if ev.exports.contains(init) {
        return (Some(Entry::Init(init.clone())), None);
    }
    let rule = "must export the init function named after the file";
    let found = exported(is_init_symbol);
    let mut refusal = if found.is_empty() {
        Refusal::new(
            Code::NoInit,
            format!("{rule}: expected '{init}'{derived}, found no {} export", or_list(init_kinds)),
        )
    } else {
        Refusal::new(
            Code::InitMismatch,
            format!("{rule}: expected '{init}'{derived}, found '{}'", found.join("', '")),
        )
    };
    if !exported(is_export_symbol).is_empty() {
        let (major, minor) = EXPORT_SINCE;
        refusal.message.push_str(&format!(
            "; it exports PyModExport_* entry points ({}), which CPython calls only from {major}.{minor} (PEP 793), target is {}",
            if ev.exports.contains(export) { format!("'{export}'") } else { format!("none of them '{export}'") },
            target.kind()
        ));
    }
    (None, Some(refusal))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::code::Code;

    const FT_SUFFIX: &str = ".cpython-313t-x86_64-linux-gnu.so";

    fn ft_target() -> Target {
        Target::new((3, 13), true, FT_SUFFIX)
    }

    /// The running test executable: a real ELF of this machine (PIE, so ET_DYN), with no
    /// PyInit_ export and no refcounting markers.
    fn real_elf() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn names_without_the_exact_tag_are_refused_on_the_free_threaded_target() {
        let data = real_elf();
        let rule = "file name must end with the target interpreter's EXT_SUFFIX";
        let no_proof = "carries no free-threaded ABI tag, and the file's symbols do not prove a free-threaded build (none of _Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL)";
        for (name, expected) in [
            (
                "m.abi3.so",
                format!("m.abi3.so: {rule}: expected '{FT_SUFFIX}', found '.abi3.so', which {no_proof}"),
            ),
            ("m.so", format!("m.so: {rule}: expected '{FT_SUFFIX}', found '.so', which {no_proof}")),
            ("m", format!("m: {rule}: expected '{FT_SUFFIX}', found '(none)'")),
            (
                "m.cpython-313-x86_64-linux-gnu.so",
                format!(
                    "m.cpython-313-x86_64-linux-gnu.so: {rule}: expected '{FT_SUFFIX}', found '.cpython-313-x86_64-linux-gnu.so'"
                ),
            ),
            (
                "m.x.cpython-313t-x86_64-linux-gnu.so",
                format!(
                    "m.x.cpython-313t-x86_64-linux-gnu.so: {rule}: expected '{FT_SUFFIX}', found '.x{FT_SUFFIX}'"
                ),
            ),
            (
                FT_SUFFIX,
                format!(
                    "{FT_SUFFIX}: {rule}: expected '<module>{FT_SUFFIX}', found '{FT_SUFFIX}' with no module name"
                ),
            ),
        ] {
            let report = inspect_bytes(Path::new(name), &data, &ft_target());
            assert_eq!(report.refusals[0].code, Code::SuffixMismatch, "{name}");
            assert_eq!(report.messages()[0], expected);
        }
    }

    fn ev(exports: &[&str], ft: &[&str], gil: &[&str]) -> Evidence {
        Evidence {
            exports: exports.iter().map(|s| s.to_string()).collect(),
            python_imports: Vec::new(),
            ft_markers: ft.iter().map(|s| s.to_string()).collect(),
            gil_markers: gil.iter().map(|s| s.to_string()).collect(),
            ..Evidence::default()
        }
    }

    fn target(version: (u8, u8), ft: bool) -> Target {
        let sfx =
            format!(".cpython-{}{}{}-x86_64-linux-gnu.so", version.0, version.1, if ft { "t" } else { "" });
        Target::new(version, ft, sfx)
    }

    /// The suffix rules per version and build. The lists they follow were observed on this
    /// machine (`importlib.machinery.EXTENSION_SUFFIXES`): GIL 3.15.2 lists
    /// `['.cpython-315-x86_64-linux-gnu.so', '.abi3-x86_64-linux-gnu.so', '.abi3.so',
    /// '.abi3t-x86_64-linux-gnu.so', '.abi3t.so', '.so']`, GIL 3.14.10
    /// `['.cpython-314-x86_64-linux-gnu.so', '.abi3.so', '.abi3-x86_64-linux-gnu.so', '.so']`,
    /// 3.13.5t `['.cpython-313t-x86_64-linux-gnu.so', '.abi3.so', '.so']`.
    #[test]
    fn suffix_rules_per_version_and_build() {
        let rule = "file name must end with the target interpreter's EXT_SUFFIX";
        let ft = ev(&[], &["_Py_DecRefShared"], &[]);
        let none = ev(&[], &[], &[]);
        let check = |name: &str, t: &Target, e: &Evidence| check_suffix(Path::new(name), t, Some(e));
        // 3.14t: like 3.13t.
        let t314 = target((3, 14), true);
        assert_eq!(check("m.cpython-314t-x86_64-linux-gnu.so", &t314, &none), Ok(None));
        assert!(check("m.abi3.so", &t314, &ft).unwrap().is_some());
        assert!(
            check("m.abi3.so", &t314, &none).unwrap_err().contains("which carries no free-threaded ABI tag")
        );
        assert_eq!(
            check("m.abi3t.so", &t314, &none),
            Err(format!(
                "{rule}: expected '.cpython-314t-x86_64-linux-gnu.so', found '.abi3t.so': CPython imports abi3t files (PEP 803) only from 3.15, target is free-threaded 3.14"
            ))
        );
        // 3.15t: abi3t accepted by name, abi3 refused whatever the symbols say.
        let t315 = target((3, 15), true);
        for ok in ["m.cpython-315t-x86_64-linux-gnu.so", "m.abi3t.so", "m.abi3t-x86_64-linux-gnu.so"] {
            assert_eq!(check(ok, &t315, &none), Ok(None), "{ok}");
        }
        let gone = |found: &str| {
            Err(format!(
                "{rule}: expected '.cpython-315t-x86_64-linux-gnu.so', '.abi3t.so', '.abi3t-x86_64-linux-gnu.so' or '.so', found '{found}': free-threaded 3.15 no longer imports abi3 files (cpython gh-146636); the free-threaded stable ABI is abi3t (PEP 803)"
            ))
        };
        assert_eq!(check("m.abi3.so", &t315, &ft), gone(".abi3.so"));
        assert_eq!(check("m.abi3-x86_64-linux-gnu.so", &t315, &none), gone(".abi3-x86_64-linux-gnu.so"));
        assert!(check("m.so", &t315, &ft).unwrap().is_some());
        // GIL 3.15: abi3 and abi3t, with and without the triplet.
        let g315 = target((3, 15), false);
        for ok in ["m.abi3.so", "m.abi3-x86_64-linux-gnu.so", "m.abi3t.so", "m.abi3t-x86_64-linux-gnu.so"] {
            assert_eq!(check(ok, &g315, &none), Ok(None), "{ok}");
        }
        // GIL 3.14: abi3 with the triplet too, no abi3t; GIL 3.13: plain abi3 only.
        let g314 = target((3, 14), false);
        assert_eq!(check("m.abi3-x86_64-linux-gnu.so", &g314, &none), Ok(None));
        assert_eq!(
            check("m.abi3t.so", &g314, &none),
            Err(format!(
                "{rule}: expected '.cpython-314-x86_64-linux-gnu.so', found '.abi3t.so': CPython imports abi3t files (PEP 803) only from 3.15, target is GIL 3.14"
            ))
        );
        let g313 = target((3, 13), false);
        assert_eq!(
            check("m.abi3-x86_64-linux-gnu.so", &g313, &none),
            Err(format!(
                "{rule}: expected '.cpython-313-x86_64-linux-gnu.so', found '.abi3-x86_64-linux-gnu.so'"
            ))
        );
    }

    #[test]
    fn the_entry_point_is_pymodexport_from_3_15_and_pyinit_always() {
        let export_only = ev(&["PyModExport_m", "PyModExport_sub"], &[], &[]);
        let both = ev(&["PyInit_m", "PyModExport_m"], &[], &[]);
        let init_only = ev(&["PyInit_m"], &[], &[]);
        let t315 = target((3, 15), true);
        assert_eq!(
            check_entry("m", &export_only, &t315),
            (Some(Entry::Export("PyModExport_m".into())), None)
        );
        assert_eq!(check_entry("m", &both, &t315).0, Some(Entry::Export("PyModExport_m".into())));
        assert_eq!(check_entry("m", &init_only, &t315).0, Some(Entry::Init("PyInit_m".into())));
        assert_eq!(check_entry("m", &both, &target((3, 14), true)).0, Some(Entry::Init("PyInit_m".into())));
        let refusal = |e: &Evidence, t: &Target| check_entry("x", e, t).1.unwrap();
        let r = refusal(&ev(&[], &[], &[]), &t315);
        assert_eq!(
            (r.code, r.message.as_str()),
            (
                Code::NoInit,
                "must export an entry point named after the file: expected 'PyModExport_x' (PEP 793) or 'PyInit_x', found no PyModExport_* or PyInit_* export"
            )
        );
        let r = refusal(&ev(&["PyInit_m", "PyModExport_m"], &[], &[]), &t315);
        assert_eq!(
            (r.code, r.message.as_str()),
            (
                Code::InitMismatch,
                "must export an entry point named after the file: expected 'PyModExport_x' (PEP 793) or 'PyInit_x', found 'PyModExport_m', 'PyInit_m'"
            )
        );
        // Before 3.15 a PyModExport_ is not an entry point: the refusal says so.
        let r = refusal(&ev(&["PyModExport_x"], &[], &[]), &target((3, 13), true));
        assert_eq!(
            (r.code, r.message.as_str()),
            (
                Code::NoInit,
                "must export the init function named after the file: expected 'PyInit_x', found no PyInit_* export; it exports PyModExport_* entry points ('PyModExport_x'), which CPython calls only from 3.15 (PEP 793), target is free-threaded 3.13"
            )
        );
        let r = refusal(&ev(&["PyInit_m", "PyModExport_m"], &[], &[]), &target((3, 14), false));
        assert_eq!(
            (r.code, r.message.as_str()),
            (
                Code::InitMismatch,
                "must export the init function named after the file: expected 'PyInit_x', found 'PyInit_m'; it exports PyModExport_* entry points (none of them 'PyModExport_x'), which CPython calls only from 3.15 (PEP 793), target is GIL 3.14"
            )
        );
    }

    #[test]
    fn a_non_ascii_module_name_uses_the_punycode_entry_points() {
        let t313 = target((3, 13), true);
        let t315 = target((3, 15), true);
        let init_u = ev(&["PyInitU_caf_dma"], &[], &[]);
        assert_eq!(check_entry("café", &init_u, &t313), (Some(Entry::Init("PyInitU_caf_dma".into())), None));
        let both = ev(&["PyInitU_caf_dma", "PyModExportU_caf_dma"], &[], &[]);
        assert_eq!(check_entry("café", &both, &t315).0, Some(Entry::Export("PyModExportU_caf_dma".into())));
        let note = "(CPython's entry point for the module name 'café': not ASCII, so its punycode, PEP 489)";
        let r = check_entry("café", &ev(&["PyInit_café"], &[], &[]), &t313).1.unwrap();
        assert_eq!(
            (r.code, r.message),
            (
                Code::InitMismatch,
                format!(
                    "must export the init function named after the file: expected 'PyInitU_caf_dma' {note}, found 'PyInit_café'"
                )
            )
        );
        let r = check_entry("café", &ev(&[], &[], &[]), &t315).1.unwrap();
        assert_eq!(
            (r.code, r.message),
            (
                Code::NoInit,
                format!(
                    "must export an entry point named after the file: expected 'PyModExportU_caf_dma' (PEP 793) or 'PyInitU_caf_dma' {note}, found no PyModExport_*, PyModExportU_*, PyInit_* or PyInitU_* export"
                )
            )
        );
        // An ASCII name: '-' is looked up as '_'.
        let r = check_entry("my-mod", &ev(&["PyInit_my-mod"], &[], &[]), &t313).1.unwrap();
        assert_eq!(
            r.message,
            "must export the init function named after the file: expected 'PyInit_my_mod' (CPython's entry point for the module name 'my-mod': '-' written '_'), found 'PyInit_my-mod'"
        );
    }

    #[test]
    fn a_module_name_that_is_not_utf8_is_refused_before_its_entry_point() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/x/\xff.cpython-313t-x86_64-linux-gnu.so"));
        let report = inspect_bytes(path, &real_elf(), &ft_target());
        assert_eq!(report.codes(), vec![Code::ModuleName]);
        assert_eq!(report.entry, None);
        assert_eq!(
            report.messages()[0],
            "/x/\\xff.cpython-313t-x86_64-linux-gnu.so: the module name must be text CPython can import: expected a file name that is UTF-8 up to its first '.', found the byte 0xff at offset 0, which is not (CPython's import fails: UnicodeEncodeError, surrogates not allowed)"
        );
    }

    #[test]
    fn abi3_is_accepted_by_name_on_a_gil_target() {
        let gil = Target::new((3, 13), false, ".cpython-313-x86_64-linux-gnu.so");
        let report = inspect_bytes(Path::new("m.abi3.so"), &real_elf(), &gil);
        assert_eq!(report.codes(), vec![Code::NoInit]);
    }

    #[test]
    fn a_file_without_its_init_function_is_refused_and_the_build_is_inconclusive() {
        let path = PathBuf::from(format!("/x/mod{FT_SUFFIX}"));
        let report = inspect_bytes(&path, &real_elf(), &ft_target());
        assert_eq!(report.codes(), vec![Code::NoInit]);
        assert_eq!(
            report.messages()[0],
            format!(
                "/x/mod{FT_SUFFIX}: must export the init function named after the file: expected 'PyInit_mod', found no PyInit_* export"
            )
        );
        assert_eq!(report.module, "mod");
        assert_eq!(
            report.notes(),
            vec![format!(
                "/x/mod{FT_SUFFIX}: no refcounting symbols that tell a free-threaded from a GIL build (limited API or no Py_DECREF)"
            )]
        );
    }

    #[test]
    fn empty_and_non_elf_files_are_refused_with_every_problem_listed() {
        let report = inspect_bytes(Path::new("e.so"), b"", &ft_target());
        assert_eq!(report.codes(), vec![Code::SuffixMismatch, Code::EmptyFile]);
        assert_eq!(
            report.messages()[1],
            "e.so: not a loadable ELF shared object: expected an ELF file, found an empty file (0 bytes)"
        );
        assert!(!report.accepted() && !report.io_failed());
    }

    #[test]
    fn io_problems_are_reported_with_their_own_codes() {
        let dir = std::env::temp_dir().join(format!("ftshim-loader-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(format!("d{FT_SUFFIX}"))).unwrap();
        std::os::unix::fs::symlink(dir.join("gone"), dir.join(format!("l{FT_SUFFIX}"))).unwrap();
        let t = ft_target();
        let r = inspect(&dir.join(format!("d{FT_SUFFIX}")), &t);
        assert_eq!(r.codes(), vec![Code::NotRegularFile]);
        assert_eq!(
            r.messages()[0],
            format!(
                "{}/d{FT_SUFFIX}: cannot read: expected a regular file, found a directory",
                dir.display()
            )
        );
        assert!(r.io_failed());
        let r = inspect(&dir.join(format!("l{FT_SUFFIX}")), &t);
        assert_eq!(r.codes(), vec![Code::DanglingSymlink]);
        assert_eq!(
            r.messages()[0],
            format!(
                "{d}/l{FT_SUFFIX}: cannot read: expected a file, found a symbolic link to '{d}/gone', which does not exist",
                d = dir.display()
            )
        );
        let r = inspect(&dir.join("missing.so"), &t);
        assert_eq!(r.codes(), vec![Code::SuffixMismatch, Code::NotFound]);
        // A socket cannot be opened at all (ENXIO): stat says what it is.
        let socket = dir.join(format!("s{FT_SUFFIX}"));
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let r = inspect(&socket, &t);
        assert_eq!(r.codes(), vec![Code::NotRegularFile]);
        assert_eq!(
            r.messages()[0],
            format!("{}: cannot read: expected a regular file, found a socket", socket.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
