//! What CPython derives from an extension module's file name: the module name, and the entry-point
//! symbols it looks up for it (Python/importdl.c `get_encoded_name` and Python/dynload_shlib.c,
//! the same in 3.11 to 3.15). The one place the loader turns a module name into symbol names.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::punycode;

/// How many bytes of the encoded name go into the symbol CPython looks up: its `dlsym` name is
/// formatted `"%.20s_%.200s"` (prefix, name) in Python/dynload_shlib.c.
const NAME_BYTES: usize = 200;

/// The bytes of a file name up to its first `.`.
fn name_bytes(path: &Path) -> &[u8] {
    let file = path.file_name().map(|f| f.as_bytes()).unwrap_or_default();
    file.split(|&b| b == b'.').next().unwrap_or_default()
}

/// The module name CPython derives from a file name: the text before the first `.` (shown
/// lossily when it is not UTF-8: such a name cannot be imported, see [`module_name_problem`]).
pub fn module_name(path: &Path) -> String {
    String::from_utf8_lossy(name_bytes(path)).into_owned()
}

/// Why the module name in `path`'s file name cannot be imported, if it cannot: a name that is not
/// UTF-8 reaches CPython with surrogate escapes (`os.fsdecode`), and `PyUnicode_AsUTF8` of it fails
/// in `ExtensionFileLoader.create_module` (UnicodeEncodeError, surrogates not allowed), whatever
/// the file exports. The sentence names the first such byte and its offset.
pub(crate) fn module_name_problem(path: &Path) -> Option<String> {
    let name = name_bytes(path);
    let err = std::str::from_utf8(name).err()?;
    let at = err.valid_up_to();
    Some(format!(
        "the module name must be text CPython can import: expected a file name that is UTF-8 up to its first '.', found the byte 0x{:02x} at offset {at}, which is not (CPython's import fails: UnicodeEncodeError, surrogates not allowed)",
        name[at]
    ))
}

/// The entry-point symbols CPython looks up for a module ([`entry_symbols`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySymbols {
    /// `PyInit_<name>`, or `PyInitU_<punycode>` for a name that is not ASCII.
    pub init: String,
    /// `PyModExport_<name>` / `PyModExportU_<punycode>` (PEP 793; looked up from 3.15).
    pub export: String,
    /// How the symbols' name part differs from the module name, for messages (`None` when it is
    /// the module name itself).
    pub(crate) derived: Option<String>,
}

/// The symbols CPython calls for `module` (a dotted name or a bare one), as Python/importdl.c
/// derives them: the last dotted component; if it is ASCII, the hooks are `PyInit_<name>` and
/// `PyModExport_<name>`, else the name is encoded with Python's `punycode` codec and the hooks are
/// `PyInitU_<encoded>` and `PyModExportU_<encoded>` (PEP 489); in either case `-` becomes `_`,
/// and only the first 200 bytes are looked up (`%.200s`).
pub fn entry_symbols(module: &str) -> EntrySymbols {
    let short = module.rsplit('.').next().unwrap_or(module);
    let ascii = short.is_ascii();
    let mut name = if ascii { short.to_owned() } else { punycode::encode(short) }.replace('-', "_");
    let mut how = Vec::new();
    if !ascii {
        how.push("not ASCII, so its punycode, PEP 489");
    }
    if short.contains('-') {
        how.push("'-' written '_'");
    }
    if name.len() > NAME_BYTES {
        // ASCII (the name itself, or punycode), so any byte offset is a character boundary.
        name.truncate(NAME_BYTES);
        how.push("cut at 200 bytes");
    }
    let (init, export) = if ascii { ("PyInit", "PyModExport") } else { ("PyInitU", "PyModExportU") };
    let derived = (!how.is_empty()).then(|| format!("for the module name '{short}': {}", how.join("; ")));
    EntrySymbols { init: format!("{init}_{name}"), export: format!("{export}_{name}"), derived }
}

/// True for a `PyInit_*` or `PyInitU_*` symbol: an init function of some module.
pub fn is_init_symbol(symbol: &str) -> bool {
    symbol.starts_with("PyInit_") || symbol.starts_with("PyInitU_")
}

/// True for a `PyModExport_*` or `PyModExportU_*` symbol: an export function (PEP 793).
pub fn is_export_symbol(symbol: &str) -> bool {
    symbol.starts_with("PyModExport_") || symbol.starts_with("PyModExportU_")
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn entry_symbols_follow_importdl() {
        let e = entry_symbols("café");
        assert_eq!((e.init.as_str(), e.export.as_str()), ("PyInitU_caf_dma", "PyModExportU_caf_dma"));
        assert_eq!(
            e.derived.as_deref(),
            Some("for the module name 'café': not ASCII, so its punycode, PEP 489")
        );
        let e = entry_symbols("pkg.sub.counter");
        assert_eq!(
            (e.init.as_str(), e.export.as_str(), e.derived),
            ("PyInit_counter", "PyModExport_counter", None)
        );
        assert_eq!(entry_symbols("my-mod").init, "PyInit_my_mod");
        assert_eq!(entry_symbols("x.ÉCOLE").init, "PyInitU_COLE_pka");
        let long = "m".repeat(210);
        let e = entry_symbols(&long);
        assert_eq!(e.init, format!("PyInit_{}", "m".repeat(200)));
        assert_eq!(e.derived, Some(format!("for the module name '{long}': cut at 200 bytes")));
    }

    #[test]
    fn a_name_that_is_not_utf8_is_a_problem() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(OsStr::from_bytes(b"/d\xff/ab\xffc.cpython-313t-x86_64-linux-gnu.so"));
        assert_eq!(module_name(p), "ab\u{fffd}c");
        assert_eq!(
            module_name_problem(p).unwrap(),
            "the module name must be text CPython can import: expected a file name that is UTF-8 up to its first '.', found the byte 0xff at offset 2, which is not (CPython's import fails: UnicodeEncodeError, surrogates not allowed)"
        );
        assert_eq!(module_name_problem(Path::new("/d/café.so")), None);
    }
}
