//! The on-disk cache of interpreter descriptions: one small text file per executable path under
//! `$FTSHIM_DESCRIBE_CACHE`, else `$XDG_CACHE_HOME/ftshim/describe`, else `~/.cache/ftshim/describe`.
//!
//! **What keys it.** The file is named after the executable's path (as given, made absolute: a
//! venv's `bin/python` is another interpreter than its base) and records, for each of the files a
//! description comes from — the executable *after* symbolic links are resolved, its libpython
//! (the exports file), its sysconfigdata and, for a venv, `pyvenv.cfg` — the path, size,
//! modification time (nanoseconds), device and inode. A description is reused only when every one
//! of them is unchanged, so a rebuilt or reinstalled interpreter (new inode or mtime or size) or a
//! venv re-created on another base is described afresh. `FTSHIM_DESCRIBE_CACHE=off` disables it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Interpreter;
use crate::symbols::Symbols;

/// The first line of every cache file; a file with another is ignored (and rewritten).
const FORMAT: &str = "ftshim-describe 1";

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("FTSHIM_DESCRIBE_CACHE") {
        Some(v) if v == "off" => return None,
        Some(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    let base =
        std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("ftshim").join("describe"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// `path size mtime_ns dev ino` of a file (following links), or `path -` when it does not exist.
fn identity(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{} {} {} {} {}",
            path.display(),
            m.size(),
            m.mtime() as i128 * 1_000_000_000 + i128::from(m.mtime_nsec()),
            m.dev(),
            m.ino()
        ),
        Err(_) => format!("{} -", path.display()),
    }
}

/// The files a description of `executable` depends on, besides those named inside it.
fn executable_files(executable: &Path) -> Vec<PathBuf> {
    let exe = absolute(executable);
    let resolved = std::fs::canonicalize(&exe).unwrap_or_else(|_| exe.clone());
    let venv_cfg = exe.parent().and_then(Path::parent).map(|p| p.join("pyvenv.cfg"));
    let mut files = vec![resolved];
    files.extend(venv_cfg);
    files
}

fn cache_file(dir: &Path, executable: &Path) -> PathBuf {
    let key = absolute(executable).display().to_string();
    let hash =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    dir.join(format!("{hash:016x}.txt"))
}

/// The identities a description depends on, one `id=` line each.
fn identities(executable: &Path, sysconfigdata: &Path, exports_file: &Path) -> Vec<String> {
    let mut files = executable_files(executable);
    files.push(sysconfigdata.to_owned());
    files.push(exports_file.to_owned());
    files.iter().map(|f| identity(f)).collect()
}

/// The cached description of `executable`, when there is one and every file it came from is
/// unchanged.
pub(super) fn load(executable: &Path) -> Option<Interpreter> {
    let text = std::fs::read_to_string(cache_file(&cache_dir()?, executable)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != FORMAT {
        return None;
    }
    let mut ids = Vec::new();
    let (mut fields, mut site, mut suffixes) = (std::collections::HashMap::new(), Vec::new(), Vec::new());
    for line in lines {
        let (k, v) = line.split_once('=')?;
        match k {
            "id" => ids.push(v.to_owned()),
            "site" => site.push(PathBuf::from(v)),
            "suffix" => suffixes.push(v.to_owned()),
            _ => {
                fields.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let get = |k: &str| fields.get(k).cloned();
    if get("executable")? != absolute(executable).display().to_string() {
        return None;
    }
    let sysconfigdata = PathBuf::from(get("sysconfigdata")?);
    let exports_file = PathBuf::from(get("exports_file")?);
    if ids != identities(executable, &sysconfigdata, &exports_file) {
        return None;
    }
    let (major, minor) = get("version")?.split_once('.').map(|(a, b)| (a.parse().ok(), b.parse().ok()))?;
    Some(Interpreter {
        executable: executable.to_owned(),
        sysconfigdata,
        version: (major?, minor?),
        free_threaded: get("free_threaded")? == "1",
        ext_suffix: get("ext_suffix")?,
        include_dir: PathBuf::from(get("include_dir")?),
        lib_dynload: PathBuf::from(get("lib_dynload")?),
        site_packages: site,
        extension_suffixes: suffixes,
        symbols: Symbols::file(&exports_file),
        exports_file,
    })
}

/// Stores `interp`'s description (written to a temporary file and renamed, so a reader never
/// sees half of one). Values with a line break are not stored.
pub(super) fn store(interp: &Interpreter) {
    let Some(dir) = cache_dir() else { return };
    let mut text = format!("{FORMAT}\n");
    let mut storable = true;
    let mut line = |k: &str, v: String| {
        storable &= !v.contains(['\n', '\r']);
        text.push_str(&format!("{k}={v}\n"));
    };
    line("executable", absolute(&interp.executable).display().to_string());
    line("sysconfigdata", interp.sysconfigdata.display().to_string());
    line("exports_file", interp.exports_file.display().to_string());
    line("version", format!("{}.{}", interp.version.0, interp.version.1));
    line("free_threaded", if interp.free_threaded { "1" } else { "0" }.to_owned());
    line("ext_suffix", interp.ext_suffix.clone());
    line("include_dir", interp.include_dir.display().to_string());
    line("lib_dynload", interp.lib_dynload.display().to_string());
    for s in &interp.site_packages {
        line("site", s.display().to_string());
    }
    for s in &interp.extension_suffixes {
        line("suffix", s.clone());
    }
    for id in identities(&interp.executable, &interp.sysconfigdata, &interp.exports_file) {
        line("id", id);
    }
    if !storable {
        return;
    }
    let file = cache_file(&dir, &interp.executable);
    let tmp = dir.join(format!(
        ".{}.{}",
        std::process::id(),
        file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    if std::fs::create_dir_all(&dir).is_ok()
        && std::fs::write(&tmp, text).is_ok()
        && std::fs::rename(&tmp, &file).is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}
