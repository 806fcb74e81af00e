//! Inspection: everything decided from a file before any of its code could run — its name's ABI
//! tag, its ELF identification and headers, its `PyInit_<name>`, the build evidence in its
//! undefined symbols, and whether the target exports every `Py*` symbol it needs.

use std::path::Path;

use crate::code::{Code, Refusal};
use crate::elf::{self, Evidence, FT_MARKERS, GIL_MARKERS};
use crate::file;
use crate::report::Report;
use crate::target::Target;

/// The module name CPython derives from a file name: the text before the first `.`.
pub fn module_name(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    file.split('.').next().unwrap_or_default().to_owned()
}

/// Inspects `path` for `target` without running any of its code. The file is mapped read-only;
/// a path that yields no bytes (missing, dangling link, directory, FIFO, unreadable) is reported
/// with an I/O code ([`Report::io_failed`]), never by blocking or panicking.
pub fn inspect(path: &Path, target: &Target) -> Report {
    match file::read(path) {
        Ok(opened) => {
            let mut report = inspect_bytes(path, opened.contents.bytes(), target);
            report.identity = Some(opened.identity);
            report
        }
        Err(unreadable) => {
            let mut refusals = Vec::new();
            if let Err(why) = check_suffix(path, target, None) {
                refusals.push(Refusal::new(Code::SuffixMismatch, why));
            }
            refusals.push(Refusal::new(unreadable.code, format!("cannot read: {}", unreadable.message)));
            Report {
                path: path.to_owned(),
                module: module_name(path),
                refusals,
                evidence: None,
                inconclusive: Vec::new(),
                identity: None,
            }
        }
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
    match (tail, target.free_threaded) {
        (".abi3.so", false) => Ok(None),
        (".abi3.so" | ".so", true) if has_ft => {
            Ok(Some(proof_note("free-threaded", &ev.map(|e| e.ft_markers.clone()).unwrap_or_default())))
        }
        (".abi3.so" | ".so", true) => Err(format!(
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
        _ => Err(format!("{rule}: expected '{sfx}', found '{tail}'")),
    }
}

/// [`inspect`] on bytes already read; `path` is used for the name checks and the report.
pub fn inspect_bytes(path: &Path, data: &[u8], target: &Target) -> Report {
    let module = module_name(path);
    let examined = elf::examine(data);
    let ev = examined.evidence;
    let mut refusals = Vec::new();
    let mut inconclusive = Vec::new();

    match check_suffix(path, target, ev.as_ref()) {
        Ok(None) => {}
        Ok(Some(note)) => inconclusive.push(note),
        Err(why) => refusals.push(Refusal::new(Code::SuffixMismatch, why)),
    }
    refusals.extend(examined.problems);
    inconclusive.extend(examined.notes);

    if let Some(ev) = &ev {
        let init = format!("PyInit_{module}");
        if !ev.exports.contains(&init) {
            let found: Vec<&str> =
                ev.exports.iter().filter(|s| s.starts_with("PyInit_")).map(String::as_str).collect();
            let rule = "must export the init function named after the file";
            refusals.push(if found.is_empty() {
                Refusal::new(Code::NoInit, format!("{rule}: expected '{init}', found no PyInit_* export"))
            } else {
                Refusal::new(
                    Code::InitMismatch,
                    format!("{rule}: expected '{init}', found '{}'", found.join("', '")),
                )
            });
        }
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

    Report { path: path.to_owned(), module, refusals, evidence: ev, inconclusive, identity: None }
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
