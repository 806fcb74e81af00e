//! The target of `check` and `audit`: an interpreter described from its executable (`--python`)
//! or one named by version (`--target VERSION[t]`), which need not be on this machine.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ftshim_loader::describe::Interpreter;
use ftshim_loader::linkage::Host;
use ftshim_loader::{ProcessTargetError, Symbols, Target, derive_ext_suffix, escaped};
use serde_json::{Value, json};

/// `--target VERSION[t]`: a CPython minor version, free-threaded with a trailing `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    /// `(3, minor)`.
    pub version: (u8, u8),
    /// The trailing `t`.
    pub free_threaded: bool,
}

/// The rule a `--target` value must follow, as usage errors state it.
pub const RULE: &str = "expected 3.<minor>[t] with minor 11 or later (the versions whose Py_Version the loader knows), and 't' (free-threaded) only from 3.13, e.g. 3.14t, 3.15t, 3.13";

impl FromStr for Named {
    type Err = String;

    fn from_str(s: &str) -> Result<Named, String> {
        // clap puts "invalid value '<s>' for '--target <VERSION[t]>': " in front.
        let bad = || RULE.to_owned();
        let (digits, free_threaded) = match s.strip_suffix('t') {
            Some(d) => (d, true),
            None => (s, false),
        };
        let (major, minor) = digits.split_once('.').ok_or_else(bad)?;
        let all_digits = |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(major) || !all_digits(minor) || major != "3" {
            return Err(bad());
        }
        let minor: u8 = minor.parse().map_err(|_| bad())?;
        if minor < 11 || (free_threaded && minor < 13) {
            return Err(bad());
        }
        Ok(Named { version: (3, minor), free_threaded })
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}{}", self.version.0, self.version.1, if self.free_threaded { "t" } else { "" })
    }
}

/// What `check` and `audit` check against.
pub enum Chosen {
    /// `--python` (or its defaults): a real interpreter, described.
    Described(Box<Interpreter>),
    /// `--target`: version and build from the string, `EXT_SUFFIX` derived, exports from
    /// `--exports` or unknown.
    Named { named: Named, target: Target, exports: Option<PathBuf> },
}

impl Chosen {
    /// A target named by version; `EXT_SUFFIX` derived for this platform.
    pub fn named(named: Named, exports: Option<PathBuf>) -> Result<Chosen, String> {
        let ext_suffix = derive_ext_suffix(named.version, named.free_threaded, false)
            .ok_or_else(|| format!("--target {named}: {}", ProcessTargetError::UnknownPlatform))?;
        let mut target = Target::new(named.version, named.free_threaded, ext_suffix)
            .with_symbols(Symbols::Unavailable(no_exports_why(named)));
        if let Some(path) = &exports {
            if !path.is_file() {
                return Err(format!(
                    "--exports {}: expected a libpython or interpreter executable, found no file",
                    path.display()
                ));
            }
            let symbols = Symbols::file(path);
            // The exports must be a CPython's, of the build named: a free-threaded one exports
            // the FT refcounting functions, a GIL one does not. (The minor version is not
            // verified: name the right file.)
            let ft_exports = symbols
                .missing(&["_Py_DecRefShared".to_owned()])
                .map_err(|why| format!("--exports {}: {why}", path.display()))?
                .is_empty();
            if ft_exports != named.free_threaded {
                return Err(format!(
                    "--exports {}: expected the exports of a {} CPython for --target {named}, found {} _Py_DecRefShared (a {} build)",
                    path.display(),
                    if named.free_threaded { "free-threaded" } else { "GIL" },
                    if ft_exports { "an exported" } else { "no exported" },
                    if ft_exports { "free-threaded" } else { "GIL" },
                ));
            }
            target = target.with_symbols(symbols);
        }
        Ok(Chosen::Named { named, target, exports })
    }

    /// The loader target.
    pub fn target(&self) -> Target {
        match self {
            Chosen::Described(interp) => interp.target(),
            Chosen::Named { target, .. } => target.clone(),
        }
    }

    /// The process modules are loaded into, for the library and symbol checks: the described
    /// interpreter's; for `--target`, the `--exports` file's (or unknown without it).
    pub fn host(&self) -> Host {
        match self {
            Chosen::Described(interp) => interp.host(),
            Chosen::Named { exports: Some(path), .. } => Host::interpreter(std::slice::from_ref(path)),
            Chosen::Named { exports: None, .. } => Host::unknown(),
        }
    }

    /// The described interpreter, when there is one.
    pub fn interpreter(&self) -> Option<&Interpreter> {
        match self {
            Chosen::Described(interp) => Some(interp),
            Chosen::Named { .. } => None,
        }
    }

    /// One line naming the target, as the text outputs start ([`escaped`]).
    pub fn line(&self) -> String {
        escaped(self.unescaped_line())
    }

    fn unescaped_line(&self) -> String {
        let target = self.target();
        let build = if target.free_threaded { "free-threaded" } else { "GIL" };
        let (major, minor) = target.version;
        match self {
            Chosen::Described(interp) => format!(
                "target: {} (CPython {major}.{minor}, {build}, EXT_SUFFIX {}, exports from {})",
                interp.executable.display(),
                target.ext_suffix,
                interp.exports_file.display()
            ),
            Chosen::Named { named, exports, .. } => format!(
                "target: --target {named} (CPython {major}.{minor}, {build}, EXT_SUFFIX {} derived, exports {})",
                target.ext_suffix,
                match exports {
                    Some(p) => format!("from {}", p.display()),
                    None => format!("unknown: {}", no_exports_why(*named)),
                }
            ),
        }
    }

    /// The target as JSON.
    pub fn json(&self) -> Value {
        let t = self.target();
        match self {
            Chosen::Described(interp) => json!({
                "python": interp.executable.display().to_string(),
                "version": format!("{}.{}", t.version.0, t.version.1),
                "free_threaded": t.free_threaded,
                "ext_suffix": t.ext_suffix,
                "exports_file": interp.exports_file.display().to_string(),
            }),
            Chosen::Named { named, exports, .. } => json!({
                "python": Value::Null,
                "target": named.to_string(),
                "version": format!("{}.{}", t.version.0, t.version.1),
                "free_threaded": t.free_threaded,
                "ext_suffix": t.ext_suffix,
                "extension_suffixes": t.extension_suffixes(),
                "exports_file": exports.as_ref().map(|p| p.display().to_string()),
            }),
        }
    }
}

/// Why the undefined-symbol check is inconclusive for a `--target` without `--exports`.
pub fn no_exports_why(named: Named) -> String {
    format!(
        "no --exports was given for --target {named}, and without the exports of a real CPython {named} they are not guessed (pass --exports with its libpython or its executable)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_values() {
        assert_eq!("3.14t".parse(), Ok(Named { version: (3, 14), free_threaded: true }));
        assert_eq!("3.15t".parse(), Ok(Named { version: (3, 15), free_threaded: true }));
        assert_eq!("3.13".parse(), Ok(Named { version: (3, 13), free_threaded: false }));
        for bad in ["3.x", "2.7", "3.14tt", "3.12t", "3.10", "3", "", "t", "3.", ".14", "3.14 ", "3.1000"] {
            assert_eq!(bad.parse::<Named>(), Err(RULE.to_owned()), "{bad}");
        }
    }
}
