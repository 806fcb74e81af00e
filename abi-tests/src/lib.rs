//! Support for the ABI conformance tests, the `make run` demo and `make bench`. Nothing here
//! skips: a missing interpreter or artifact is a panic that names what is missing and how to get it.
//!
//! - [`interpreters`](mod@interpreters): the interpreters recorded by `scripts/setup.sh`;
//! - [`build`]: the shipped artefacts and the one way C is compiled (extension modules, C programs,
//!   C sources written by tests), against `include/` and an interpreter's headers;
//! - [`run`]: Python drivers, the `ftshim` CLI and any command under a time limit (all on
//!   [`ftshim_loader::child`]), and private virtual environments;
//! - [`corpus`]: the loader's corpus of accepted and refused files;
//! - [`pypi`]: real wheels from PyPI, cached outside the repository and pinned;
//! - [`bench`](mod@bench): `make bench`'s scaling workload and its report (figure and Markdown),
//!   which the bench's smoke test runs too;
//! - here: the workspace's paths, scratch directories and directory snapshots.
//!
//! The names tests use are re-exported at the top.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod bench;
pub mod build;
pub mod corpus;
pub mod interpreters;
pub mod pypi;
mod record;
pub mod run;

pub use build::{
    Artifacts, BuildOptions, LIBRARIES, Library, artifacts, build_c_source, build_extension,
    build_extension_with, build_module, c_program, link_libftshim, needed_libs, sanitizer_env, write_source,
};
pub use interpreters::{Interpreter, Interpreters, interpreters, record_path};
pub use run::{
    DriverRun, assert_success, ftshim_cli, ftshim_json, inspect_in_process, make_venv, output_within,
    parse_kv, python_command, reason_codes, reason_messages, run_counter_stress, run_counter_stress_on,
    run_ok, run_python, run_script, run_script_env,
};

/// Every kind of section and lock `probe.Probe.add` takes (besides the racy control "none"), in
/// the order the ABI gained them: the first [`KINDS_1_0`] are ABI 1.0's (what the frozen 1.0
/// probe in abi-tests/abi-1.0/ knows), the rest ABI 1.1's two-mutex sections.
pub const KINDS: &[&str] = &[
    "section",
    "section_fn",
    "section2",
    "section2_fn",
    "mutex",
    "mutex_fn",
    "mutex_section",
    "mutex_section_fn",
    "section2_mutex",
    "section2_mutex_fn",
];

/// How many of [`KINDS`] ABI 1.0 has.
pub const KINDS_1_0: usize = 8;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("abi-tests sits in the workspace").to_owned()
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// A fresh scratch directory under `target/abi-tests/<name>` (emptied first).
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("abi-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Everything under `dir`: each path (relative) with `dir/`, `link -> target`, or the file's
/// length and 64-bit FNV-1a hash of its bytes: a listing plus hashing, readable when two differ.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
    }
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").to_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                let to = std::fs::read_link(&path).expect("read link");
                out.insert(rel, format!("link -> {}", to.display()));
            } else if kind.is_dir() {
                out.insert(rel, "dir/".to_owned());
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                out.insert(rel, format!("{} bytes, fnv1a {:016x}", bytes.len(), fnv1a(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
