//! The interpreters every test runs on, as `scripts/setup.sh` recorded them: free-threaded
//! 3.13t (built here), GIL 3.13 and 3.11, GIL 3.12 (pyenv), GIL 3.14 and 3.15 (Debian sid's binary
//! packages in a private root), and any extra interpreters the user listed in
//! `FTSHIM_EXTRA_PYTHONS` (a free-threaded 3.14t, say).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use ftshim_loader::describe::Interpreter;

/// The record written by `scripts/setup.sh`: `$FTSHIM_INTERPRETERS`, default
/// `target/ftshim-interpreters.env`.
pub fn record_path() -> PathBuf {
    crate::record::record_path(&crate::workspace_root())
}

/// The interpreters every test runs on.
pub struct Interpreters {
    /// Free-threaded CPython 3.13 (`python3.13t`).
    pub ft: Interpreter,
    /// GIL CPython 3.13.
    pub gil313: Interpreter,
    /// GIL CPython 3.11 (the machine's own).
    pub py311: Interpreter,
    /// GIL 3.12, 3.14, 3.15, then the user's extra interpreters, each with its label ("3.14",
    /// or the version with `t` for a free-threaded extra).
    pub more: Vec<(String, Interpreter)>,
    /// The cache `scripts/setup.sh` used (`FTSHIM_CACHE_DIR`): downloads the tests fetch (PyPI
    /// wheels) go under it, outside the repository.
    pub cache_dir: PathBuf,
    /// The packaging tools' venv (`FTSHIM_PYTOOLS`: maturin, auditwheel, pip).
    pub pytools: PathBuf,
    /// The pinned build backends' wheels (`FTSHIM_WHEELHOUSE`), for offline builds.
    pub wheelhouse: PathBuf,
    /// The bench figure venv's interpreter (`FTSHIM_BENCH_PYTHON`: matplotlib), if recorded; see
    /// [`crate::bench::report_python`], which fails naming the fix when it is not.
    pub bench_python: Option<PathBuf>,
}

impl Interpreters {
    /// All of them, free-threaded 3.13 first, each with a short label.
    pub fn all(&self) -> Vec<(&str, &Interpreter)> {
        let mut all = vec![("3.13t", &self.ft), ("3.13", &self.gil313), ("3.11", &self.py311)];
        all.extend(self.more.iter().map(|(label, interp)| (label.as_str(), interp)));
        all
    }

    /// The interpreter labelled `label` ("3.15", "3.13t", ...). Panics, naming the fix, when
    /// none is recorded: a test that needs it must fail, not skip.
    pub fn get(&self, label: &str) -> &Interpreter {
        self.all()
            .into_iter()
            .find(|(l, _)| *l == label)
            .map(|(_, i)| i)
            .unwrap_or_else(|| panic!("no {label} interpreter recorded; rerun `make setup`"))
    }
}

/// "3.14" or "3.14t".
fn label(interp: &Interpreter) -> String {
    format!("{}.{}{}", interp.version.0, interp.version.1, if interp.free_threaded { "t" } else { "" })
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
        let vars = crate::record::parse_record(&text);
        let describe = |key: &str, exe: &str| {
            ftshim_loader::describe::describe(Path::new(exe))
                .unwrap_or_else(|e| panic!("{key}={exe} from {}: {e}; rerun `make setup`", path.display()))
        };
        let get = |key: &str| {
            let exe = vars.get(key).map(String::as_str).unwrap_or_default();
            if exe.is_empty() {
                panic!(
                    "{} records no {key} (scripts/setup.sh says why when it runs: GIL 3.12 comes from pyenv, 3.14 and 3.15 from Debian sid); the tests need it",
                    path.display()
                );
            }
            describe(key, exe)
        };
        let mut more: Vec<(String, Interpreter)> = ["FTSHIM_PY_312", "FTSHIM_PY_314", "FTSHIM_PY_315"]
            .iter()
            .map(|key| get(key))
            .map(|i| (label(&i), i))
            .collect();
        for exe in vars.get("FTSHIM_PY_EXTRA").map(String::as_str).unwrap_or_default().split(':').filter(|e| !e.is_empty()) {
            let i = describe("FTSHIM_PY_EXTRA", exe);
            more.push((label(&i), i));
        }
        let cache_dir = vars
            .get("FTSHIM_CACHE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{} records no FTSHIM_CACHE_DIR; rerun `make setup`", path.display()));
        let dir = |key: &str| {
            vars.get(key).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
                panic!("{} records no {key}; rerun `make setup`, which installs it", path.display())
            })
        };
        Interpreters {
            pytools: dir("FTSHIM_PYTOOLS"),
            wheelhouse: dir("FTSHIM_WHEELHOUSE"),
            bench_python: vars.get("FTSHIM_BENCH_PYTHON").filter(|v| !v.is_empty()).map(PathBuf::from),
            ft: get("FTSHIM_PY_FT"),
            gil313: get("FTSHIM_PY_GIL313"),
            py311: get("FTSHIM_PY_311"),
            more,
            cache_dir,
        }
    })
}
