//! What `ftshim check` cannot see it says: a module whose DT_NEEDED library is found nowhere the
//! dynamic linker looks (`library-not-found`), and one with an undefined `ftshim_*` symbol that no
//! library it needs nor the interpreter defines (`undefined-symbol`: libftshim.a put before the
//! objects on the link line, so none of its members was pulled in). Both pass every other check,
//! and both fail to import.

use std::path::Path;
use std::process::Command;

use ftshim_abi_tests::build::compiler;
use ftshim_abi_tests::{
    BuildOptions, artifacts, build_extension, ftshim_json, interpreters, reason_codes, run_python, scratch,
};
use object::read::elf::{FileHeader, Sym};
use serde_json::Value;

fn check(module: &Path) -> (i32, Value) {
    let ft = &interpreters().ft;
    let (code, doc) = ftshim_json(&[
        "check".as_ref(),
        "--json".as_ref(),
        "--python".as_ref(),
        ft.executable.as_os_str(),
        module.as_os_str(),
    ]);
    (code, doc["files"][0].clone())
}

/// The module's undefined (non-weak) dynamic symbols starting with `prefix`, in table order.
fn undefined_with(module: &Path, prefix: &str) -> Vec<String> {
    let data = std::fs::read(module).unwrap();
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data).unwrap();
    let endian = header.endian().unwrap();
    let sections = header.sections(endian, &*data).unwrap();
    let dynsym = sections.symbols(endian, &*data, object::elf::SHT_DYNSYM).unwrap();
    dynsym
        .iter()
        .filter(|s| s.is_undefined(endian) && s.st_bind() != object::elf::STB_WEAK)
        .map(|s| String::from_utf8_lossy(dynsym.symbol_name(endian, s).unwrap()).into_owned())
        .filter(|n| !n.is_empty() && n.starts_with(prefix))
        .collect()
}

#[test]
fn a_module_whose_needed_library_is_missing_is_refused_with_where_it_was_looked_for() {
    let ft = &interpreters().ft;
    let dir = scratch("linkage-missing");
    let module = build_extension("counter", ft, &dir);
    // Accepted while libftshim.so.1 sits beside it ($ORIGIN).
    let (code, file) = check(&module);
    assert_eq!((code, reason_codes(&file)), (0, vec![]), "{file:#}");
    std::fs::remove_file(dir.join("libftshim.so.1")).unwrap();
    let (code, file) = check(&module);
    assert_eq!(code, 1, "{file:#}");
    assert_eq!(reason_codes(&file), ["library-not-found", "undefined-symbol"]);
    let m = module.display();
    let msg = file["reasons"][0]["message"].as_str().unwrap();
    let start = format!(
        "{m}: every DT_NEEDED library must be found where the dynamic linker looks: expected 'libftshim.so.1' (needed by the module) in RUNPATH '$ORIGIN' = {}, the interpreter's loaded libraries, the system directories (",
        dir.display()
    );
    assert!(msg.starts_with(&start), "{msg}\nexpected the start:\n{start}");
    assert!(msg.ends_with("/usr/lib), found it nowhere"), "{msg}");
    let ftshim = undefined_with(&module, "ftshim_");
    assert!(!ftshim.is_empty());
    let msg = file["reasons"][1]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "{m}: every undefined symbol must be defined by a library it needs or by the interpreter process: expected all "
        )) && msg.ends_with(&format!("found {} defined nowhere: {}", ftshim.len(), ftshim.join(", "))),
        "{msg}"
    );
    // What python3.13t itself says.
    let out = run_python(ft, &dir, &["-c", "import counter"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("libftshim.so.1: cannot open shared object file"));
}

#[test]
fn a_module_with_an_undefined_ftshim_symbol_is_refused_naming_it() {
    let ft = &interpreters().ft;
    let dir = scratch("linkage-undefined");
    let src = ftshim_abi_tests::workspace_root().join("extensions/counter/counter.c");
    let cc = compiler(ft, &BuildOptions::default());
    let object = dir.join("counter.o");
    let out = cc.to_command().arg("-c").arg(&src).arg("-o").arg(&object).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let module = dir.join(format!("counter{}", ft.ext_suffix));
    // The static library before the objects: the linker pulls nothing from it (and, needing
    // nothing from libc either, the module has no DT_NEEDED at all).
    let out = Command::new(cc.path())
        .arg("-shared")
        .arg(artifacts().lib_dir.join("libftshim.a"))
        .arg(&object)
        .arg("-o")
        .arg(&module)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ftshim = undefined_with(&module, "ftshim_");
    assert!(!ftshim.is_empty(), "the link left no ftshim_* symbol undefined");
    let (code, file) = check(&module);
    assert_eq!(code, 1, "{file:#}");
    assert_eq!(reason_codes(&file), ["undefined-symbol"]);
    let candidates = undefined_with(&module, "")
        .into_iter()
        .filter(|n| !n.starts_with("Py") && !n.starts_with("_Py"))
        .count();
    let msg = file["reasons"][0]["message"].as_str().unwrap();
    let expected_start = format!(
        "{}: every undefined symbol must be defined by a library it needs or by the interpreter process: expected all {candidates} non-Py* undefined symbols to resolve in its libraries (no libraries) or the interpreter process (python3.13t, libpython3.13t.so.1.0, libc.so.6",
        module.display()
    );
    assert!(msg.starts_with(&expected_start), "{msg}\nexpected the start:\n{expected_start}");
    assert!(
        msg.ends_with(&format!("), found {} defined nowhere: {}", ftshim.len(), ftshim.join(", "))),
        "{msg}"
    );
    let out = run_python(ft, &dir, &["-c", "import counter"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("undefined symbol: ftshim_"), "{stderr}");
}
