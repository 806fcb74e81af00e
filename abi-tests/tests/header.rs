//! Both libraries' headers, Rust exports, symbol manifests and status table cannot drift apart:
//! libftshim (include/ftshim.h) and libftshim_loader (include/ftshim_loader.h), with the status
//! codes both share (include/ftshim_status.h).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ftshim_abi_tests::{
    LIBRARIES, Library, artifacts, c_program, interpreters, scratch, workspace_root, write_source,
};
use object::{Object, ObjectSymbol};

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace_root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// CPython functions include/ftshim.h declares itself: `_PyCriticalSection_BeginSlow`, which
/// CPython keeps out of its public headers (the mutex critical section on 3.13t), and CPython's
/// exported `PyMutex_Lock`/`PyMutex_Unlock` under ftshim names (asm labels), because CPython's
/// headers hide them behind an object-like macro.
const CPYTHON_REDECLARED: &[&str] = &[
    "_PyCriticalSection_BeginSlow",
    "_PyCriticalSection2_BeginSlow",
    "ftshim__PyMutex_Lock",
    "ftshim__PyMutex_Unlock",
];

/// Names of the functions a header declares as exports (prototypes ending in `);`), each checked
/// to have a documentation comment right above it and to carry the library's prefix.
fn declared_exports(lib: &Library) -> BTreeSet<String> {
    let header = read(lib.header);
    let lines: Vec<&str> = header.lines().collect();
    let mut names = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let proto = line.starts_with(|c: char| c.is_ascii_alphabetic())
            && !line.starts_with("static")
            && !line.starts_with("typedef")
            && line.trim_end().ends_with(");");
        if let Some(rest) = line.strip_prefix("PyAPI_FUNC(") {
            // A CPython function the header redeclares (CPython exports it; ftshim does not).
            let name = rest[..rest.find('(').unwrap()].rsplit([' ', ')']).next().unwrap();
            assert!(
                CPYTHON_REDECLARED.contains(&name),
                "unexpected CPython redeclaration in {}: {line}",
                lib.header
            );
            continue;
        }
        let Some(paren) = line.find('(').filter(|_| proto) else {
            continue;
        };
        let name = line[..paren].rsplit([' ', '*']).next().unwrap_or_default().to_owned();
        assert!(
            name.starts_with(lib.prefix),
            "{}: declaration of a function without {}: {line}",
            lib.header,
            lib.prefix
        );
        let above = lines[..i].iter().rev().find(|l| !l.trim().is_empty()).copied().unwrap_or_default();
        assert!(above.trim_end().ends_with("*/"), "{name} has no documentation comment in {}", lib.header);
        names.insert(name);
    }
    assert!(!names.is_empty(), "{} declares no exports", lib.header);
    names
}

/// The global dynamic symbols `so` defines, and the ones it needs.
fn dynamic_symbols(so: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let data = std::fs::read(so).unwrap_or_else(|e| panic!("read {}: {e}", so.display()));
    let file = object::File::parse(&*data).unwrap();
    let (mut defined, mut undefined) = (BTreeSet::new(), BTreeSet::new());
    for sym in file.dynamic_symbols() {
        let Ok(name) = sym.name() else { continue };
        if sym.is_undefined() {
            undefined.insert(name.to_owned());
        } else if sym.is_global() {
            defined.insert(name.to_owned());
        }
    }
    (defined, undefined)
}

#[test]
fn each_library_exports_exactly_what_its_header_declares_and_nothing_of_the_other() {
    for lib in LIBRARIES {
        let declared = declared_exports(lib);
        let so = artifacts().lib_dir.join(lib.soname());
        let (defined, undefined) = dynamic_symbols(&so);
        assert_eq!(defined, declared, "{} exports vs {} declarations", so.display(), lib.header);
        let python: Vec<&String> =
            undefined.iter().filter(|n| n.starts_with("Py") || n.starts_with("_Py")).collect();
        assert!(python.is_empty(), "{} must not link against libpython: {python:?}", lib.soname());
    }
    // The runtime every extension links carries nothing of the loader: no loader export (checked
    // above: exactly the runtime header's), and no ELF reader or dlopen-with-checks code.
    let runtime = artifacts().lib_dir.join(LIBRARIES[0].soname());
    let text = std::fs::read(&runtime).unwrap();
    for needle in [&b"ftshim_loader"[..], b"not a loadable ELF shared object", b"PyInit_"] {
        assert!(
            !text.windows(needle.len()).any(|w| w == needle),
            "{} contains loader code ({:?})",
            runtime.display(),
            String::from_utf8_lossy(needle)
        );
    }
}

/// `(symbol, (major, minor))` rows of a manifest, in file order.
fn manifest(lib: &Library) -> Vec<(String, (u32, u32))> {
    read(lib.manifest)
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
fn each_manifest_lists_every_export_once_in_append_only_order() {
    for lib in LIBRARIES {
        let rows = manifest(lib);
        let names: BTreeSet<String> = rows.iter().map(|(s, _)| s.clone()).collect();
        assert_eq!(names.len(), rows.len(), "{}: a symbol is listed twice", lib.manifest);
        assert_eq!(names, declared_exports(lib), "{} vs {}", lib.manifest, lib.header);
        for pair in rows.windows(2) {
            assert!(
                pair[0].1 <= pair[1].1,
                "{}: not append-only: {} ({:?}) after {} ({:?})",
                lib.manifest,
                pair[1].0,
                pair[1].1,
                pair[0].0,
                pair[0].1
            );
        }
        for (sym, since) in &rows {
            assert!(
                since.0 == lib.version.0 && *since <= lib.version,
                "{sym} claims ABI {since:?}, {} is {:?}",
                lib.name,
                lib.version
            );
        }
    }
}

#[test]
fn the_status_table_matches_the_status_header() {
    let header = read("include/ftshim_status.h");
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
    let in_rust: BTreeSet<(String, i32)> = ftshim_boundary::status::STATUSES
        .iter()
        .map(|(code, name, _)| ((*name).to_owned(), code.0))
        .collect();
    assert_eq!(in_rust, in_header);
    for lib in LIBRARIES {
        let h = read(lib.header);
        assert!(
            h.contains("#include \"ftshim_status.h\""),
            "{} does not include ftshim_status.h",
            lib.header
        );
        assert!(!h.contains("#define FTSHIM_ERR_"), "{} defines status codes itself", lib.header);
    }
}

#[test]
fn the_compiled_in_versions_match_the_loaded_libraries() {
    let ft = &interpreters().ft;
    let dir = scratch("header-version");
    let src = write_source(
        &dir,
        "version.c",
        r#"#include "ftshim.h"
#include "ftshim_loader.h"
#include <stdio.h>
_Static_assert(FTSHIM_ABI_VERSION == ((FTSHIM_ABI_VERSION_MAJOR << 16) | FTSHIM_ABI_VERSION_MINOR),
               "FTSHIM_ABI_VERSION is computed from MAJOR and MINOR");
_Static_assert(FTSHIM_LOADER_ABI_VERSION ==
                   ((FTSHIM_LOADER_ABI_VERSION_MAJOR << 16) | FTSHIM_LOADER_ABI_VERSION_MINOR),
               "FTSHIM_LOADER_ABI_VERSION is computed from MAJOR and MINOR");
_Static_assert(sizeof(ftshim_critical_section) == 64, "critical section storage is 64 bytes");
int main(void) {
    printf("header=%u.%u library=%u.%u status0=%s\n",
           (unsigned)FTSHIM_ABI_VERSION_MAJOR, (unsigned)FTSHIM_ABI_VERSION_MINOR,
           (unsigned)(ftshim_abi_version() >> 16), (unsigned)(ftshim_abi_version() & 0xffff),
           ftshim_status_str(FTSHIM_OK));
    printf("loader header=%u.%u library=%u.%u status-10=%s\n",
           (unsigned)FTSHIM_LOADER_ABI_VERSION_MAJOR, (unsigned)FTSHIM_LOADER_ABI_VERSION_MINOR,
           (unsigned)(ftshim_loader_abi_version() >> 16),
           (unsigned)(ftshim_loader_abi_version() & 0xffff),
           ftshim_loader_status_str(FTSHIM_ERR_REFUSED));
    return ftshim_abi_version() == FTSHIM_ABI_VERSION &&
           ftshim_loader_abi_version() == FTSHIM_LOADER_ABI_VERSION ? 0 : 1;
}
"#,
    );
    let exe = c_program(&src, ft, &dir, &["-lftshim_loader".to_owned()]);
    let run = Command::new(&exe).output().unwrap();
    assert!(
        run.status.code().is_some(),
        "{} died: {:?} {}",
        exe.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let (rt, ld) = (&LIBRARIES[0], &LIBRARIES[1]);
    let expected = format!(
        "header={a}.{b} library={a}.{b} status0=ok\nloader header={c}.{d} library={c}.{d} status-10=module refused by the loader\n",
        a = rt.version.0,
        b = rt.version.1,
        c = ld.version.0,
        d = ld.version.1,
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), expected);
    assert!(run.status.success());
}

#[test]
fn the_docs_name_every_export_and_status() {
    let api = read("docs/api.md");
    let loader = read("docs/loader.md");
    let mut missing: Vec<String> = Vec::new();
    for (lib, docs, page) in
        [(&LIBRARIES[0], &api, "docs/api.md"), (&LIBRARIES[1], &loader, "docs/loader.md")]
    {
        missing.extend(
            declared_exports(lib)
                .into_iter()
                .filter(|n| !docs.contains(&format!("`{n}")))
                .map(|n| format!("{page}: {n}")),
        );
    }
    missing.extend(
        ftshim_boundary::status::STATUSES
            .iter()
            .map(|(_, n, _)| (*n).to_owned())
            .filter(|n| !api.contains(&format!("`{n}`")))
            .map(|n| format!("docs/api.md: {n}")),
    );
    assert!(missing.is_empty(), "the docs do not mention: {missing:?}");
}
