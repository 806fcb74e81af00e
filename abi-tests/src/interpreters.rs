//! The three interpreters every test runs on, as `scripts/setup.sh` recorded them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use ftshim_loader::describe::Interpreter;

use crate::target_dir;

/// The record written by `scripts/setup.sh`: `$FTSHIM_INTERPRETERS`, default
/// `target/ftshim-interpreters.env`.
pub fn record_path() -> PathBuf {
    std::env::var_os("FTSHIM_INTERPRETERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("ftshim-interpreters.env"))
}

/// The three interpreters every test runs on.
pub struct Interpreters {
    /// Free-threaded CPython 3.13 (`python3.13t`).
    pub ft: Interpreter,
    /// GIL CPython 3.13.
    pub gil313: Interpreter,
    /// GIL CPython 3.11 (the machine's own).
    pub py311: Interpreter,
}

impl Interpreters {
    /// All three, free-threaded first, each with a short label.
    pub fn all(&self) -> [(&'static str, &Interpreter); 3] {
        [("3.13t", &self.ft), ("3.13", &self.gil313), ("3.11", &self.py311)]
    }
}

/// Reads and describes the recorded interpreters once. Panics, naming the file and the fix,
/// when the record or an interpreter is missing: a test that needs python3.13t must fail, not skip.
pub fn interpreters() -> &'static Interpreters {
    static CELL: OnceLock<Interpreters> = OnceLock::new();
    CELL.get_or_init(|| {
        let path = record_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "interpreter record {} is unreadable ({e}); run `make setup` (scripts/setup.sh), which builds python3.13t and records all three interpreters",
                path.display()
            )
        });
        let vars: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let get = |key: &str| {
            let exe = vars.get(key).unwrap_or_else(|| panic!("{} has no {key}=; rerun `make setup`", path.display()));
            ftshim_loader::describe::describe(Path::new(exe))
                .unwrap_or_else(|e| panic!("{key} from {}: {e}; rerun `make setup`", path.display()))
        };
        Interpreters { ft: get("FTSHIM_PY_FT"), gil313: get("FTSHIM_PY_GIL313"), py311: get("FTSHIM_PY_311") }
    })
}
