//! The interpreter a module is checked for: [`Target`], described explicitly or taken from the
//! running process, and the `EXT_SUFFIX` CPython would use on this platform.

use std::fmt;

use ftshim_boundary::process;

use crate::symbols::Symbols;

/// The interpreter a module is checked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `(major, minor)`, e.g. `(3, 13)`.
    pub version: (u8, u8),
    /// Built with `Py_GIL_DISABLED` (free-threaded).
    pub free_threaded: bool,
    /// The interpreter's own `EXT_SUFFIX`, e.g. `.cpython-313t-x86_64-linux-gnu.so`.
    pub ext_suffix: String,
    /// Where its exported C API is looked up for the undefined-symbol check.
    pub symbols: Symbols,
}

/// Undefined in a module, exported only by `Py_DEBUG` interpreters (3.12+, and 3.11).
const DEBUG_ONLY_EXPORTS: &[&str] = &["_Py_INCREF_IncRefTotal", "_Py_RefTotal"];

/// Why the running process cannot be described as a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessTargetError {
    /// No CPython 3.11+ in the process's global scope.
    NoRuntime,
    /// libftshim_loader does not know this platform's multiarch triplet, so it cannot derive
    /// `EXT_SUFFIX`: describe the target explicitly.
    UnknownPlatform,
}

impl fmt::Display for ProcessTargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessTargetError::NoRuntime => f.write_str(
                "no CPython runtime in this process: symbol Py_Version (CPython >= 3.11) not found in the global scope",
            ),
            ProcessTargetError::UnknownPlatform => write!(
                f,
                "cannot derive EXT_SUFFIX: libftshim_loader does not know the multiarch triplet of {}-{}; describe the target explicitly",
                std::env::consts::ARCH,
                std::env::consts::OS
            ),
        }
    }
}

impl std::error::Error for ProcessTargetError {}

/// CPython's `PLATFORM_TRIPLET` (`sys.implementation._multiarch`) for the platform libftshim_loader was
/// built for, when known.
pub fn platform_triplet() -> Option<&'static str> {
    let gnu = cfg!(target_env = "gnu");
    let musl = cfg!(target_env = "musl");
    if !cfg!(target_os = "linux") || !(gnu || musl) {
        return None;
    }
    let triplet = match (std::env::consts::ARCH, musl) {
        ("x86_64", false) => "x86_64-linux-gnu",
        ("x86_64", true) => "x86_64-linux-musl",
        ("aarch64", false) => "aarch64-linux-gnu",
        ("aarch64", true) => "aarch64-linux-musl",
        ("x86", false) => "i386-linux-gnu",
        ("powerpc64", false) if cfg!(target_endian = "little") => "powerpc64le-linux-gnu",
        ("powerpc64", false) => "powerpc64-linux-gnu",
        ("s390x", false) => "s390x-linux-gnu",
        ("riscv64", false) => "riscv64-linux-gnu",
        ("loongarch64", false) => "loongarch64-linux-gnu",
        _ => return None,
    };
    Some(triplet)
}

/// `EXT_SUFFIX` of CPython `version` on this platform: `.cpython-<XY><flags>-<triplet>.so` with
/// flags `t` (free-threaded) and `d` (debug), in CPython's order.
pub fn derive_ext_suffix(version: (u8, u8), free_threaded: bool, debug: bool) -> Option<String> {
    let triplet = platform_triplet()?;
    let flags = format!("{}{}", if free_threaded { "t" } else { "" }, if debug { "d" } else { "" });
    Some(format!(".cpython-{}{}{flags}-{triplet}.so", version.0, version.1))
}

impl Target {
    /// A target with unknown exports (the undefined-symbol check is then inconclusive).
    pub fn new(version: (u8, u8), free_threaded: bool, ext_suffix: impl Into<String>) -> Target {
        Target { version, free_threaded, ext_suffix: ext_suffix.into(), symbols: Symbols::Unknown }
    }

    /// The same target, looking its exports up in `symbols`.
    pub fn with_symbols(mut self, symbols: Symbols) -> Target {
        self.symbols = symbols;
        self
    }

    /// The interpreter running this process: version from `Py_Version`, free-threading from the
    /// FT-only exports, `EXT_SUFFIX` derived from those (plus `d` when debug-only exports are
    /// present) and the platform triplet, exports from the global symbol scope.
    pub fn running_process() -> Result<Target, ProcessTargetError> {
        let rt = process::host().ok_or(ProcessTargetError::NoRuntime)?;
        let debug = DEBUG_ONLY_EXPORTS.iter().any(|s| process::in_global_scope(s));
        let ext_suffix = derive_ext_suffix(rt.version(), rt.free_threaded, debug)
            .ok_or(ProcessTargetError::UnknownPlatform)?;
        Ok(Target {
            version: rt.version(),
            free_threaded: rt.free_threaded,
            ext_suffix,
            symbols: Symbols::Process,
        })
    }

    /// "free-threaded 3.13" / "GIL 3.11".
    pub fn kind(&self) -> String {
        let kind = if self.free_threaded { "free-threaded" } else { "GIL" };
        format!("{kind} {}.{}", self.version.0, self.version.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_ext_suffix_follows_cpythons_spelling() {
        if cfg!(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")) {
            assert_eq!(derive_ext_suffix((3, 13), true, false).unwrap(), ".cpython-313t-x86_64-linux-gnu.so");
            assert_eq!(derive_ext_suffix((3, 13), true, true).unwrap(), ".cpython-313td-x86_64-linux-gnu.so");
            assert_eq!(derive_ext_suffix((3, 11), false, false).unwrap(), ".cpython-311-x86_64-linux-gnu.so");
        }
    }
}
