//! The record `scripts/setup.sh` writes (`KEY=value` lines, `#` comments): where it is and what it
//! says. Shared by the crate (`interpreters`) and its build script (the layout bindings), which
//! includes this file with `#[path]`, so both read it the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `$FTSHIM_INTERPRETERS`, else `<target dir>/ftshim-interpreters.env`, where the target dir is
/// `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn record_path(root: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("FTSHIM_INTERPRETERS") {
        return PathBuf::from(p);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    target.join("ftshim-interpreters.env")
}

/// The record's `KEY=value` lines (values trimmed; an empty value is kept as "").
pub fn parse_record(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}
