//! include/ftshim.h, the Rust exports and the status table cannot drift apart.

use std::collections::BTreeSet;
use std::process::Command;

use ftshim_abi_tests::{artifacts, c_program, interpreters, scratch, workspace_root};
use object::{Object, ObjectSymbol};

fn header() -> String {
    std::fs::read_to_string(workspace_root().join("include/ftshim.h")).expect("read include/ftshim.h")
}

/// CPython functions include/ftshim.h declares itself because CPython keeps them out of its public
/// headers (see the mutex critical section on 3.13t).
const CPYTHON_REDECLARED: &[&str] = &["_PyCriticalSection_BeginSlow"];

/// Names of the functions the header declares as libftshim exports (prototypes ending in `);`),
/// each checked to have a documentation comment right above it.
fn declared_exports(header: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = header.lines().collect();
    let mut names = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let proto = line.starts_with(|c: char| c.is_ascii_alphabetic())
            && !line.starts_with("static")
            && line.trim_end().ends_with(");");
        if let Some(rest) = line.strip_prefix("PyAPI_FUNC(") {
            // A CPython function the header redeclares (CPython exports it; ftshim does not).
            let name = rest[..rest.find('(').unwrap()].rsplit([' ', ')']).next().unwrap();
            assert!(
                CPYTHON_REDECLARED.contains(&name),
                "unexpected CPython redeclaration in the header: {line}"
            );
            continue;
        }
        let Some(paren) = line.find('(').filter(|_| proto) else {
            continue;
        };
        let name = line[..paren].rsplit([' ', '*']).next().unwrap_or_default().to_owned();
        assert!(name.starts_with("ftshim_"), "declaration of a non-ftshim function in the header: {line}");
        let above = lines[..i].iter().rev().find(|l| !l.trim().is_empty()).copied().unwrap_or_default();
        assert!(above.trim_end().ends_with("*/"), "{name} has no documentation comment in include/ftshim.h");
        names.insert(name);
    }
    names
}

#[test]
fn every_export_is_declared_and_documented_and_every_declaration_is_exported() {
    let declared = declared_exports(&header());
    assert!(declared.contains("ftshim_critical_section_begin"), "{declared:?}");
    let so = std::fs::read(artifacts().lib_dir.join("libftshim.so")).unwrap();
    let file = object::File::parse(&*so).unwrap();
    let exported: BTreeSet<String> = file
        .dynamic_symbols()
        .filter(|s| !s.is_undefined() && s.is_global())
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .filter(|n| n.starts_with("ftshim_"))
        .collect();
    assert_eq!(exported, declared, "libftshim.so exports vs include/ftshim.h declarations");
    let python_imports: Vec<String> = file
        .dynamic_symbols()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .filter(|n| n.starts_with("Py") || n.starts_with("_Py"))
        .collect();
    assert!(python_imports.is_empty(), "libftshim must not link against libpython: {python_imports:?}");
}

/// `(symbol, (major, minor))` rows of abi-tests/manifest/symbols.txt, in file order.
fn manifest() -> Vec<(String, (u32, u32))> {
    let path = workspace_root().join("abi-tests/manifest/symbols.txt");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut cols = l.split_whitespace();
            let (sym, since) =
                (cols.next().unwrap(), cols.next().unwrap_or_else(|| panic!("no version: {l}")));
            let (major, minor) =
                since.split_once('.').unwrap_or_else(|| panic!("version not MAJOR.MINOR: {l}"));
            (sym.to_owned(), (major.parse().unwrap(), minor.parse().unwrap()))
        })
        .collect()
}

#[test]
fn the_symbol_manifest_lists_every_export_once_in_append_only_order() {
    let rows = manifest();
    let names: BTreeSet<String> = rows.iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(names.len(), rows.len(), "a symbol is listed twice");
    assert_eq!(names, declared_exports(&header()), "manifest vs header");
    let current = (ftshim::version::ABI_MAJOR, ftshim::version::ABI_MINOR);
    for pair in rows.windows(2) {
        assert!(
            pair[0].1 <= pair[1].1,
            "not append-only: {} ({:?}) after {} ({:?})",
            pair[1].0,
            pair[1].1,
            pair[0].0,
            pair[0].1
        );
    }
    for (sym, since) in &rows {
        assert!(
            since.0 == current.0 && *since <= current,
            "{sym} claims ABI {since:?}, library is {current:?}"
        );
    }
}

#[test]
fn the_status_table_matches_the_header() {
    let header = header();
    let mut in_header = BTreeSet::new();
    for line in header.lines() {
        let Some(rest) = line.strip_prefix("#define FTSHIM_") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if name == "OK" || name.starts_with("ERR_") {
            let value: i32 = value.trim_matches(|c| c == '(' || c == ')').parse().expect("numeric status");
            in_header.insert((format!("FTSHIM_{name}"), value));
        }
    }
    let in_rust: BTreeSet<(String, i32)> =
        ftshim::status::STATUSES.iter().map(|(code, name, _)| ((*name).to_owned(), *code)).collect();
    assert_eq!(in_rust, in_header);
}

#[test]
fn the_compiled_in_version_matches_the_loaded_library() {
    let ft = &interpreters().ft;
    let dir = scratch("header-version");
    let src = dir.join("version.c");
    std::fs::write(
        &src,
        r#"#include "ftshim.h"
#include <stdio.h>
_Static_assert(FTSHIM_ABI_VERSION == ((FTSHIM_ABI_VERSION_MAJOR << 16) | FTSHIM_ABI_VERSION_MINOR),
               "FTSHIM_ABI_VERSION is computed from MAJOR and MINOR");
_Static_assert(sizeof(ftshim_critical_section) == 64, "critical section storage is 64 bytes");
int main(void) {
    printf("header=%u.%u library=%u.%u status0=%s\n",
           (unsigned)FTSHIM_ABI_VERSION_MAJOR, (unsigned)FTSHIM_ABI_VERSION_MINOR,
           (unsigned)(ftshim_abi_version() >> 16), (unsigned)(ftshim_abi_version() & 0xffff),
           ftshim_status_str(FTSHIM_OK));
    return ftshim_abi_version() == FTSHIM_ABI_VERSION ? 0 : 1;
}
"#,
    )
    .unwrap();
    let exe = c_program(&src, ft, &dir, &[]);
    let run = Command::new(&exe).output().unwrap();
    assert!(
        run.status.code().is_some(),
        "{} died: {:?} {}",
        exe.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let expected = format!(
        "header={major}.{minor} library={major}.{minor} status0=ok\n",
        major = ftshim::version::ABI_MAJOR,
        minor = ftshim::version::ABI_MINOR
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), expected);
    assert!(run.status.success());
}

#[test]
fn the_api_docs_name_every_export_and_status() {
    let docs = std::fs::read_to_string(workspace_root().join("docs/api.md")).expect("read docs/api.md");
    let loader_docs = std::fs::read_to_string(workspace_root().join("docs/loader.md")).unwrap_or_default();
    let missing: Vec<String> = declared_exports(&header())
        .into_iter()
        .filter(|name| !docs.contains(&format!("`{name}")) && !loader_docs.contains(&format!("`{name}")))
        .chain(
            ftshim::status::STATUSES
                .iter()
                .map(|(_, n, _)| (*n).to_owned())
                .filter(|n| !docs.contains(&format!("`{n}`"))),
        )
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md (or docs/loader.md for the loader) does not mention: {missing:?}"
    );
}
