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

    /// The platform triplet in the target's `EXT_SUFFIX` (`x86_64-linux-gnu` in
    /// `.cpython-315-x86_64-linux-gnu.so`), when it has CPython's spelling.
    pub fn triplet(&self) -> Option<&str> {
        let rest = self.ext_suffix.strip_prefix(".cpython-")?.strip_suffix(".so")?;
        let (_, triplet) = rest.split_once('-')?;
        (!triplet.is_empty()).then_some(triplet)
    }

    /// CPython's `importlib.machinery.EXTENSION_SUFFIXES` for this target, in the import system's
    /// order, as derived from what each version does (observed on this project's machine with
    /// `python -c 'import importlib.machinery as m; print(m.EXTENSION_SUFFIXES)'`, see
    /// abi-tests/tests/loader_targets.rs, which compares every recorded interpreter):
    ///
    /// - 3.11–3.13, GIL and free-threaded 3.13t: `[EXT_SUFFIX, '.abi3.so', '.so']`;
    /// - GIL 3.14: `[EXT_SUFFIX, '.abi3.so', '.abi3-<triplet>.so', '.so']`;
    /// - free-threaded 3.14t: as 3.13t (no 3.14t here to observe; per DESIGN.md §3);
    /// - GIL 3.15+: `[EXT_SUFFIX, '.abi3-<triplet>.so', '.abi3.so', '.abi3t-<triplet>.so',
    ///   '.abi3t.so', '.so']` (abi3t, PEP 803, is for both builds);
    /// - free-threaded 3.15+: `[EXT_SUFFIX, '.abi3t-<triplet>.so', '.abi3t.so', '.so']`: the abi3
    ///   suffixes are gone (cpython gh-146636); not observed here (no 3.15t), derived from the
    ///   GIL 3.15 list minus abi3.
    ///
    /// The `<triplet>` forms are left out when the `EXT_SUFFIX` has no triplet to take.
    pub fn extension_suffixes(&self) -> Vec<String> {
        let t = self.triplet();
        let with_triplet = |abi: &str| t.map(|t| format!(".{abi}-{t}.so"));
        let mut list = vec![Some(self.ext_suffix.clone())];
        match (self.version >= (3, 15), self.version >= (3, 14), self.free_threaded) {
            (true, _, false) => list.extend([
                with_triplet("abi3"),
                Some(".abi3.so".into()),
                with_triplet("abi3t"),
                Some(".abi3t.so".into()),
            ]),
            (true, _, true) => list.extend([with_triplet("abi3t"), Some(".abi3t.so".into())]),
            (false, true, false) => list.extend([Some(".abi3.so".into()), with_triplet("abi3")]),
            (false, _, _) => list.push(Some(".abi3.so".into())),
        }
        list.push(Some(".so".into()));
        list.into_iter().flatten().collect()
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

    #[test]
    fn extension_suffixes_per_version_and_build() {
        let list = |v, ft, sfx: &str| Target::new(v, ft, sfx).extension_suffixes();
        assert_eq!(
            list((3, 13), true, ".cpython-313t-x86_64-linux-gnu.so"),
            [".cpython-313t-x86_64-linux-gnu.so", ".abi3.so", ".so"]
        );
        assert_eq!(
            list((3, 14), true, ".cpython-314t-x86_64-linux-gnu.so"),
            [".cpython-314t-x86_64-linux-gnu.so", ".abi3.so", ".so"]
        );
        assert_eq!(
            list((3, 14), false, ".cpython-314-x86_64-linux-gnu.so"),
            [".cpython-314-x86_64-linux-gnu.so", ".abi3.so", ".abi3-x86_64-linux-gnu.so", ".so"]
        );
        assert_eq!(
            list((3, 15), false, ".cpython-315-x86_64-linux-gnu.so"),
            [
                ".cpython-315-x86_64-linux-gnu.so",
                ".abi3-x86_64-linux-gnu.so",
                ".abi3.so",
                ".abi3t-x86_64-linux-gnu.so",
                ".abi3t.so",
                ".so"
            ]
        );
        assert_eq!(
            list((3, 15), true, ".cpython-315t-x86_64-linux-gnu.so"),
            [".cpython-315t-x86_64-linux-gnu.so", ".abi3t-x86_64-linux-gnu.so", ".abi3t.so", ".so"]
        );
        assert_eq!(list((3, 15), true, ".weird.so"), [".weird.so", ".abi3t.so", ".so"]);
    }
}
