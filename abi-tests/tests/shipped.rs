//! The shipped shared libraries, as `scripts/build-libs.sh` stages them: the glibc 2.17
//! (manylinux2014) baseline, an ELF version node on every export taken from the symbol manifest,
//! the SONAME, and the dynamic linker refusing a binary that needs a newer ABI minor by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ftshim_abi_tests::{LIBRARIES, Library, artifacts, scratch, workspace_root};

/// `objdump -T` of `so`: (defined exports with their version, undefined symbols with theirs).
fn dynamic_table(so: &Path) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let out = Command::new("objdump").arg("-T").arg(so).output().expect("run objdump");
    assert!(out.status.success(), "objdump -T {}: {}", so.display(), String::from_utf8_lossy(&out.stderr));
    let (mut defined, mut undefined) = (BTreeMap::new(), Vec::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || !cols[0].chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let (version, name) = (cols[cols.len() - 2], cols[cols.len() - 1]);
        if line.contains("*UND*") {
            undefined.push((name.to_owned(), version.trim_matches(['(', ')']).to_owned()));
        } else if line.contains(" g ") {
            defined.insert(name.to_owned(), version.to_owned());
        }
    }
    (defined, undefined)
}

/// The manifest's rows: symbol -> version node (`FTSHIM_1.0`).
fn expected_nodes(lib: &Library) -> BTreeMap<String, String> {
    let node = lib.name.trim_start_matches("lib").to_uppercase();
    std::fs::read_to_string(workspace_root().join(lib.manifest))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next().unwrap().to_owned(), format!("{node}_{}", cols.next().unwrap()))
        })
        .collect()
}

/// `GLIBC_2.17` -> (2, 17).
fn glibc_version(v: &str) -> Option<(u32, u32)> {
    let rest = v.strip_prefix("GLIBC_")?;
    let mut parts = rest.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
}

#[test]
fn every_export_carries_its_version_node_and_nothing_needs_glibc_newer_than_2_17() {
    for lib in LIBRARIES {
        let so = artifacts().lib_dir.join(lib.soname());
        let (defined, undefined) = dynamic_table(&so);
        assert_eq!(
            defined,
            expected_nodes(lib),
            "{}: exports and version nodes vs {}",
            so.display(),
            lib.manifest
        );
        let too_new: Vec<&(String, String)> =
            undefined.iter().filter(|(_, v)| glibc_version(v).is_some_and(|ver| ver > (2, 17))).collect();
        assert!(too_new.is_empty(), "{} needs glibc newer than 2.17: {too_new:?}", so.display());
        let newest = undefined.iter().filter_map(|(_, v)| glibc_version(v)).max().unwrap();
        println!(
            "{}: {} exports versioned; newest glibc symbol version GLIBC_{}.{}",
            lib.soname(),
            defined.len(),
            newest.0,
            newest.1
        );
    }
}

#[test]
fn the_libraries_are_real_files_under_their_sonames() {
    for lib in LIBRARIES {
        let dir = &artifacts().lib_dir;
        let real = dir.join(lib.soname());
        assert!(real.symlink_metadata().unwrap().file_type().is_file(), "{} is a file", real.display());
        let link = dir.join(format!("{}.so", lib.name));
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(lib.soname()), "{}", link.display());
        let out = Command::new("readelf").arg("-d").arg(&real).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("Library soname: [{}]", lib.soname())), "{text}");
        assert!(!text.contains("libpython"), "{}: {text}", real.display());
    }
}

/// A program built against a libftshim that has an export of the *next* minor, run with today's
/// library: the dynamic linker refuses it at start-up, naming the version node, instead of the
/// program failing at its first call.
#[test]
fn a_binary_needing_a_newer_minor_is_refused_by_the_dynamic_linker_by_version() {
    let (major, minor) = LIBRARIES[0].version;
    let (now, next) = (format!("FTSHIM_{major}.0"), format!("FTSHIM_{major}.{}", minor + 1));
    let dir = scratch("shipped-version");
    let stub_dir = dir.join("stub");
    std::fs::create_dir_all(&stub_dir).unwrap();
    std::fs::write(
        stub_dir.join("stub.c"),
        "unsigned ftshim_abi_version(void) { return 0x10001u; }\nint ftshim_future(void) { return 1; }\n",
    )
    .unwrap();
    std::fs::write(
        stub_dir.join("stub.map"),
        format!(
            "{now} {{ global: ftshim_abi_version; local: *; }};\n{next} {{ global: ftshim_future; }} {now};\n"
        ),
    )
    .unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("run the compiler");
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new("cc")
        .current_dir(&stub_dir)
        .args(["-shared", "-fPIC", "stub.c", "-Wl,--version-script=stub.map", "-Wl,-soname,libftshim.so.1"])
        .args(["-o", "libftshim.so.1"]));
    std::os::unix::fs::symlink("libftshim.so.1", stub_dir.join("libftshim.so")).unwrap();
    std::fs::write(
        dir.join("future.c"),
        "#include <stdio.h>\nunsigned ftshim_abi_version(void);\nint ftshim_future(void);\nint main(void) { printf(\"%x %d\\n\", ftshim_abi_version(), ftshim_future()); return 0; }\n",
    )
    .unwrap();
    run(Command::new("cc").current_dir(&dir).args(["future.c", "-o", "future", "-Lstub", "-lftshim"]));
    // With the stub (it has 1.1), the program runs; with today's library it does not start.
    let with =
        |lib_dir: &Path| Command::new(dir.join("future")).env("LD_LIBRARY_PATH", lib_dir).output().unwrap();
    let ok = with(&stub_dir);
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "10001 1\n");
    let real = &artifacts().lib_dir;
    let refused = with(real);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!(
            "{}: {}: version `{next}' not found (required by {})\n",
            dir.join("future").display(),
            real.join("libftshim.so.1").display(),
            dir.join("future").display()
        )
    );
}
