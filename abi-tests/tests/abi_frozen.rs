//! ABI 1.0, frozen: binaries built against the 1.0 headers as released (abi-tests/abi-1.0/,
//! never edited) keep working with today's libftshim.so.1 and libftshim_loader.so.1, on every
//! interpreter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::{
    BuildOptions, KINDS, KINDS_1_0, LIBRARIES, build_extension, build_module, c_program, interpreters,
    run_python, run_script, scratch, workspace_root,
};

fn frozen() -> PathBuf {
    workspace_root().join("abi-tests/abi-1.0")
}

/// Every frozen file and its SHA-256 as released. Editing one fails here: the point of the
/// directory is that it does not change.
const PINNED: &[(&str, &str)] = &[
    ("include/ftshim.h", "78ec7147b0a0417a963022386f438879fa85e9151571730e76229a04e6d2cbac"),
    ("include/ftshim_loader.h", "91013f8fa172b7f65c18216010910fc22bfe66acee1fb5708b6b2bf94198ee8a"),
    ("include/ftshim_status.h", "0138a9385b3051bcb53d3f4c2a6bd3903d04f6feacceb30dbef22b9bdcda680e"),
    ("loader_check.c", "4e7cbef6890a6d65c7512ca79b051eff20e71c3905499a0d2467f4bb74d2df77"),
    ("probe.c", "320ea757b5c66681a7b48dcd25b50960dc1bc0556196b309eac236a83ccdfa52"),
];

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned()
}

#[test]
fn the_frozen_files_are_exactly_as_released() {
    for (file, hash) in PINNED {
        assert_eq!(sha256(&frozen().join(file)), *hash, "abi-tests/abi-1.0/{file} was edited");
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(frozen().join("include"))
        .unwrap()
        .map(|e| format!("include/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    on_disk.sort();
    let pinned: Vec<&str> = PINNED.iter().map(|(f, _)| *f).filter(|f| f.starts_with("include/")).collect();
    assert_eq!(on_disk, pinned, "every frozen header is pinned");
}

/// Copies the frozen headers and `sources` into `dir`, so that `#include "ftshim.h"` in a source
/// there finds the frozen header before any include path.
fn frozen_tree(dir: &Path, sources: &[&str]) {
    for entry in std::fs::read_dir(frozen().join("include")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    for s in sources {
        std::fs::copy(frozen().join(s), dir.join(s)).unwrap();
    }
}

/// `probe.abi()` and `probe.statuses()` of the probe module found on `pythonpath`.
fn abi_and_statuses(
    interp: &ftshim_abi_tests::Interpreter,
    pythonpath: &Path,
) -> (String, BTreeMap<String, String>) {
    let out = run_python(
        interp,
        pythonpath,
        &[
            "-c",
            "import probe\nprint(probe.abi())\nfor k, v in sorted(probe.statuses().items()): print(f'{k}={v}')",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (abi, rest) = text.split_once('\n').unwrap();
    (abi.to_owned(), ftshim_abi_tests::parse_kv(rest.as_bytes()))
}

#[test]
fn a_module_built_against_abi_1_0_works_with_todays_libftshim_on_every_interpreter() {
    let lib = &LIBRARIES[0];
    let today = (lib.version.0 << 16) | lib.version.1;
    for (label, interp) in interpreters().all() {
        let src_dir = scratch(&format!("frozen-src-{label}"));
        frozen_tree(&src_dir, &["probe.c"]);
        let current = scratch(&format!("frozen-current-{label}"));
        build_extension("probe", interp, &current);
        let (_, current_statuses) = abi_and_statuses(interp, &current);
        // "functions": FTSHIM_NO_INLINE, every call goes to libftshim.
        for (variant, defines) in [("inline", vec![]), ("functions", vec!["FTSHIM_NO_INLINE"])] {
            let dir = scratch(&format!("frozen-{variant}-{label}"));
            let opts = BuildOptions { defines, ..BuildOptions::default() };
            build_module(&src_dir.join("probe.c"), "probe", interp, &dir, &opts);
            std::fs::copy(workspace_root().join("abi-tests/py/common.py"), dir.join("common.py")).unwrap();
            let (abi, statuses) = abi_and_statuses(interp, &dir);
            assert_eq!(abi, format!("(1, 0, {today})"), "{label} {variant}: header 1.0, today's library");
            assert!(!statuses.is_empty());
            for (case, status) in &statuses {
                assert_eq!(Some(status), current_statuses.get(case), "{label} {variant}: status of {case}");
            }
            let mut args = vec!["200000"];
            args.extend_from_slice(&KINDS[..KINDS_1_0]);
            let out = run_script(interp, &dir, "exclusion.py", &args, Duration::from_secs(180));
            for kind in &KINDS[..KINDS_1_0] {
                assert_eq!(
                    out[&format!("{kind}.observed")],
                    out[&format!("{kind}.expected")],
                    "{label} {variant}: {kind} lost updates"
                );
                assert_eq!(out[&format!("{kind}.locked_after")], "0", "{label} {variant}: {kind}");
            }
            assert_eq!(out["gil_enabled"], if interp.free_threaded { "0" } else { "1" }, "{label} {variant}");
            println!(
                "{label} {variant}: ABI 1.0 probe on today's libftshim {abi}: {} statuses, 8 kinds exact",
                statuses.len()
            );
        }
    }
}

#[test]
fn a_tool_built_against_loader_abi_1_0_works_with_todays_libftshim_loader() {
    let ft = &interpreters().ft;
    let gil = &interpreters().gil313;
    let dir = scratch("frozen-loader");
    frozen_tree(&dir, &["loader_check.c"]);
    let exe = c_program(&dir.join("loader_check.c"), ft, &dir, &["-lftshim_loader".to_owned()]);
    let good = build_extension("counter", ft, &dir);
    let gil_dir = dir.join("gil");
    std::fs::create_dir_all(&gil_dir).unwrap();
    let gil_built = build_extension("counter", gil, &gil_dir);
    let mistagged = gil_dir.join(format!("counter{}", ft.ext_suffix));
    std::fs::rename(&gil_built, &mistagged).unwrap();
    let out = Command::new(&exe)
        .arg(&ft.ext_suffix)
        .arg(&ft.exports_file)
        .arg(&good)
        .arg(&mistagged)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let ld = &LIBRARIES[1];
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "loader {}.{}\n0 (ok)\n-10 gil-build (module refused by the loader)\n",
            ld.version.0, ld.version.1
        )
    );
}
