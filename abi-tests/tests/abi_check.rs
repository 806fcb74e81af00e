//! libabigail's view: each library as built today against its committed ABI baseline
//! (abi-tests/abi/<lib>.abi, written by `make abi-baseline` at a release). Any difference except
//! an added export fails, with abidiff's report. The baselines describe the interface only (the
//! `ftshim_*` functions and the types they reach; abi-tests/abi/interface.suppr), read from the
//! unstripped link that scripts/build-libs.sh keeps beside the stripped one it ships.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ftshim_abi_tests::{LIBRARIES, artifacts, scratch, target_dir, workspace_root};

fn abi_dir() -> PathBuf {
    workspace_root().join("abi-tests/abi")
}

fn abidiff(baseline: &Path, lib: &Path) -> Output {
    Command::new("abidiff")
        .arg("--no-added-syms")
        .arg("--suppressions")
        .arg(abi_dir().join("interface.suppr"))
        .arg(baseline)
        .arg(lib)
        .output()
        .expect("run abidiff (Debian package abigail-tools; `make setup` installs it)")
}

/// The unstripped shared object of `soname` that build-libs.sh linked (same code as shipped).
fn unstripped(soname: &str) -> PathBuf {
    let _ = artifacts();
    target_dir().join("ftshim-build").join(format!("{soname}.debug"))
}

#[test]
fn each_library_has_the_abi_of_its_baseline() {
    for lib in LIBRARIES {
        let out = abidiff(&abi_dir().join(format!("{}.abi", lib.name)), &unstripped(lib.soname()));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} differs from abi-tests/abi/{}.abi (abidiff exit bits: 4 ABI change, 8 incompatible):\n{}{}",
            lib.soname(),
            lib.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The gate can fail: the committed baseline doctored to have one more export (so today's
/// library has "removed" it) and, separately, a larger `ftshim_critical_section`.
#[test]
fn the_gate_fails_on_a_removed_export_and_on_a_changed_struct() {
    let dir = scratch("abi-check-doctored");
    let baseline = std::fs::read_to_string(abi_dir().join("libftshim.abi")).unwrap();
    let lib = unstripped(LIBRARIES[0].soname());

    let symbol = "<elf-symbol name='ftshim_abi_version' ";
    let decl = "<function-decl name='ftshim_abi_version' ";
    let sym_line = baseline.lines().find(|l| l.trim_start().starts_with(symbol)).unwrap();
    let decl_start = baseline.find(decl).unwrap();
    let decl_end =
        decl_start + baseline[decl_start..].find("</function-decl>").unwrap() + "</function-decl>".len();
    let decl_text = &baseline[decl_start..decl_end];
    let removed = baseline
        .replacen(
            sym_line,
            &format!("{sym_line}\n{}", sym_line.replace("ftshim_abi_version", "ftshim_gone")),
            1,
        )
        .replacen(
            decl_text,
            &format!("{decl_text}\n{}", decl_text.replace("ftshim_abi_version", "ftshim_gone")),
            1,
        );
    let path = dir.join("removed.abi");
    std::fs::write(&path, removed).unwrap();
    let out = abidiff(&path, &lib);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(12), "{report}");
    assert!(report.contains("1 Removed function") && report.contains("ftshim_gone"), "{report}");

    let grown = baseline.replacen(
        "<class-decl name='ftshim_critical_section' size-in-bits='512'",
        "<class-decl name='ftshim_critical_section' size-in-bits='576'",
        1,
    );
    assert_ne!(grown, baseline);
    let path = dir.join("grown.abi");
    std::fs::write(&path, grown).unwrap();
    let out = abidiff(&path, &lib);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{report}");
    assert!(
        report.contains("in pointed to type 'struct ftshim::critical_section::ftshim_critical_section'")
            && report.contains("type size changed from 576 to 512 (in bits)"),
        "{report}"
    );
}

/// Which exports libabigail can check only as ELF symbols: a naked function (`export!`'s
/// `naked fn` form, assembly) has no DWARF, so its signature is not in the baseline a release
/// writes. Exactly the exports written `pub unsafe naked fn` in the crates' sources may lack one;
/// any other export without a signature (lost debug info, a new naked function not meant) fails.
#[test]
fn only_the_naked_exports_lack_a_signature_in_the_debug_info() {
    let mut naked = std::collections::BTreeSet::new();
    let mut dirs = vec![workspace_root().join("shim/src"), workspace_root().join("loader/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    if let Some(rest) = line.trim_start().strip_prefix("pub unsafe naked fn ") {
                        naked.insert(rest.split('(').next().unwrap().to_owned());
                    }
                }
            }
        }
    }
    assert!(naked.contains("ftshim_mutex_lock"), "no naked export found: {naked:?}");
    for lib in LIBRARIES {
        let out = Command::new("abidw")
            .args(["--suppressions"])
            .arg(abi_dir().join("interface.suppr"))
            .args(["--drop-undefined-syms", "--no-corpus-path", "--no-show-locs"])
            .arg(unstripped(lib.soname()))
            .output()
            .expect("run abidw (Debian package abigail-tools; `make setup` installs it)");
        assert!(out.status.success(), "abidw: {}", String::from_utf8_lossy(&out.stderr));
        let abi = String::from_utf8(out.stdout).unwrap();
        let names = |start: &str| -> std::collections::BTreeSet<String> {
            abi.lines()
                .filter_map(|l| l.trim_start().strip_prefix(start))
                .map(|rest| rest.split('\'').next().unwrap().to_owned())
                .collect()
        };
        // The exports themselves are checked against the manifest by tests/shipped.rs.
        let symbols = names("<elf-symbol name='");
        let decls = names("<function-decl name='");
        let unsigned: std::collections::BTreeSet<String> = symbols.difference(&decls).cloned().collect();
        let expected: std::collections::BTreeSet<String> = naked.intersection(&symbols).cloned().collect();
        assert_eq!(unsigned, expected, "{}: exports without a signature in the debug info", lib.soname());
    }
}
