//! libftshim_loader: checks a native module against a target interpreter **before** any of its
//! code runs, then opens it with `RTLD_NOW | RTLD_LOCAL`. Its C API is `include/ftshim_loader.h`
//! ([`capi`]); it shares nothing with libftshim (the runtime) but `ftshim_boundary`.
//!
//! `dlopen` runs a library's constructors, so everything that can be decided from the file is
//! decided from the file: its name's ABI tag, its ELF identification and headers, its
//! `PyInit_<name>`, the build evidence in its undefined symbols, and whether the target exports
//! every `Py*` symbol it needs. Only then is it opened, with
//! `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE`. See docs/loader.md for every check and code.

pub mod capi;
#[cfg(feature = "describe")]
pub mod describe;
mod elf;
mod file;
mod symbols;
pub mod version;

use std::ffi::CStr;
use std::fmt;
use std::path::{Path, PathBuf};

pub use elf::{Evidence, FT_MARKERS, GIL_MARKERS};
pub use symbols::{ExportFile, Symbols};

use ftshim_boundary::process;

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
    /// libftshim does not know this platform's multiarch triplet, so it cannot derive
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
                "cannot derive EXT_SUFFIX: libftshim does not know the multiarch triplet of {}-{}; describe the target explicitly",
                std::env::consts::ARCH,
                std::env::consts::OS
            ),
        }
    }
}

impl std::error::Error for ProcessTargetError {}

/// CPython's `PLATFORM_TRIPLET` (`sys.implementation._multiarch`) for the platform libftshim was
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

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $io:literal; )*) => {
        /// Why a module is refused. The `code` strings are stable: scripts may match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable machine-readable name.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }

            /// The name as a C string (what the C API hands out).
            pub fn as_cstr(self) -> &'static CStr {
                match self { $( Code::$variant => {
                    const C: &CStr = match CStr::from_bytes_with_nul(concat!($text, "\0").as_bytes()) {
                        Ok(c) => c,
                        Err(_) => panic!("code names contain no NUL"),
                    };
                    C
                } )* }
            }

            /// True for codes that mean the file's bytes could not be had at all (an I/O
            /// problem: `ftshim check` exits 2, the C API returns `FTSHIM_ERR_IO`).
            pub fn is_io(self) -> bool {
                match self { $( Code::$variant => $io, )* }
            }
        }
    };
}

codes! {
    /// Nothing exists at the path (or a component of it is not a directory).
    NotFound = "not-found", true;
    /// The path is a symbolic link whose target does not exist.
    DanglingSymlink = "dangling-symlink", true;
    /// The path names a directory, FIFO, socket or device, not a regular file.
    NotRegularFile = "not-regular-file", true;
    /// The file exists but cannot be opened or mapped (permissions, I/O error, …).
    Unreadable = "unreadable", true;
    /// The file name does not carry an ABI tag the target accepts.
    SuffixMismatch = "suffix-mismatch", false;
    /// The file has no bytes.
    EmptyFile = "empty-file", false;
    /// The file does not start with the ELF magic.
    NotElf = "not-elf", false;
    /// The file is shorter than its own ELF headers say.
    Truncated = "truncated", false;
    /// ELF class (32/64-bit) is not this machine's.
    ElfClass = "elf-class", false;
    /// ELF byte order is not this machine's.
    ElfEndian = "elf-endian", false;
    /// ELF machine (`e_machine`) is not this machine's.
    ElfMachine = "elf-machine", false;
    /// ELF type is not `ET_DYN` (shared object).
    ElfType = "elf-type", false;
    /// ELF headers or dynamic symbol table cannot be parsed.
    ElfMalformed = "elf-malformed", false;
    /// No `PyInit_*` function is exported at all.
    NoInit = "no-init", false;
    /// `PyInit_*` functions are exported, but none is named after the file.
    InitMismatch = "init-mismatch", false;
    /// The undefined symbols show a GIL build, the target is free-threaded.
    GilBuild = "gil-build", false;
    /// The undefined symbols show a free-threaded build, the target is a GIL build.
    FtBuild = "ft-build", false;
    /// Undefined `Py*`/`_Py*` symbols the target interpreter does not export.
    UnresolvedSymbol = "unresolved-symbol", false;
    /// `open` only: the path names a different file than the one inspected.
    FileChanged = "file-changed", false;
    /// `open` only: `dlopen` or `dlsym` failed after the file was accepted.
    DlopenFailed = "dlopen-failed", false;
    /// C API only: an argument is NULL or out of range; nothing was inspected.
    InvalidArgument = "invalid-argument", false;
    /// C API only: the target is the running process, which has no usable CPython.
    NoRuntime = "no-runtime", false;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason for refusing a file: a code and a sentence naming the file, rule, expected and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: Code,
    /// Human-readable: names the file, the rule, the expected and the found value.
    pub message: String,
}

/// The result of inspecting one file.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file inspected.
    pub path: PathBuf,
    /// Module name taken from the file name (text before the first dot).
    pub module: String,
    /// Every reason to refuse; empty means accepted.
    pub refusals: Vec<Refusal>,
    /// What the file's symbols say about its build (when it parsed as ELF far enough).
    pub evidence: Option<Evidence>,
    /// What static evidence could not decide.
    pub inconclusive: Vec<String>,
    /// `(st_dev, st_ino)` of the file that was read.
    identity: Option<(u64, u64)>,
}

impl Report {
    /// True when nothing refuses the file.
    pub fn accepted(&self) -> bool {
        self.refusals.is_empty()
    }

    /// True when the file's bytes could not be had at all (see [`Code::is_io`]).
    pub fn io_failed(&self) -> bool {
        self.refusals.iter().any(|r| r.code.is_io())
    }

    /// Codes of all refusals, in order.
    pub fn codes(&self) -> Vec<Code> {
        self.refusals.iter().map(|r| r.code).collect()
    }
}

/// The module name CPython derives from a file name: the text before the first `.`.
pub fn module_name(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    file.split('.').next().unwrap_or_default().to_owned()
}

/// Inspects `path` for `target` without running any of its code. The file is mapped read-only;
/// a path that yields no bytes (missing, dangling link, directory, FIFO, unreadable) is reported
/// with an I/O code ([`Report::io_failed`]), never by blocking or panicking.
pub fn inspect(path: &Path, target: &Target) -> Report {
    match file::read(path) {
        Ok(opened) => {
            let mut report = inspect_bytes(path, opened.contents.bytes(), target);
            report.identity = Some(opened.identity);
            report
        }
        Err(problem) => {
            let shown = path.display();
            let mut refusals = Vec::new();
            if let Err(why) = check_suffix(path, target, None) {
                refusals.push(Refusal { code: Code::SuffixMismatch, message: format!("{shown}: {why}") });
            }
            refusals.push(Refusal {
                code: problem.code,
                message: format!("{shown}: cannot read: {}", problem.detail),
            });
            Report {
                path: path.to_owned(),
                module: module_name(path),
                refusals,
                evidence: None,
                inconclusive: Vec::new(),
                identity: None,
            }
        }
    }
}

/// Checks the file name's ABI tag. `Ok(Some(note))` when accepted on the strength of the
/// symbols rather than the name; `Err(sentence)` when refused.
fn check_suffix(path: &Path, target: &Target, ev: Option<&Evidence>) -> Result<Option<String>, String> {
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let sfx = &target.ext_suffix;
    let rule = "file name must end with the target interpreter's EXT_SUFFIX";
    let Some(dot) = file_name.find('.') else {
        return Err(format!("{rule}: expected '{sfx}', found '(none)'"));
    };
    let tail = &file_name[dot..];
    if dot == 0 {
        return Err(format!("{rule}: expected '<module>{sfx}', found '{file_name}' with no module name"));
    }
    if tail == sfx {
        return Ok(None);
    }
    let has_ft = ev.is_some_and(|e| !e.ft_markers.is_empty());
    let has_gil_only = ev.is_some_and(|e| e.ft_markers.is_empty() && !e.gil_markers.is_empty());
    let proof_note = |what: &str, markers: &[String]| {
        format!(
            "'{tail}' is not the target's EXT_SUFFIX '{sfx}'; accepted because the undefined symbols prove a {what} build ({}), which does not prove the minor version it was built for",
            markers.join(", ")
        )
    };
    match (tail, target.free_threaded) {
        (".abi3.so", false) => Ok(None),
        (".abi3.so" | ".so", true) if has_ft => {
            Ok(Some(proof_note("free-threaded", &ev.map(|e| e.ft_markers.clone()).unwrap_or_default())))
        }
        (".abi3.so" | ".so", true) => Err(format!(
            "{rule}: expected '{sfx}', found '{tail}', which carries no free-threaded ABI tag, and the file's symbols do not prove a free-threaded build (none of {})",
            FT_MARKERS.join(", ")
        )),
        (".so", false) if has_gil_only => {
            Ok(Some(proof_note("GIL", &ev.map(|e| e.gil_markers.clone()).unwrap_or_default())))
        }
        (".so", false) => Err(format!(
            "{rule}: expected '{sfx}', found '.so', which carries no ABI tag, and the file's symbols do not prove a GIL build ({} without free-threaded symbols)",
            GIL_MARKERS.join(", ")
        )),
        _ => Err(format!("{rule}: expected '{sfx}', found '{tail}'")),
    }
}

/// [`inspect`] on bytes already read; `path` is used for the name checks and messages.
pub fn inspect_bytes(path: &Path, data: &[u8], target: &Target) -> Report {
    let shown = path.display();
    let module = module_name(path);
    let examined = elf::examine(data);
    let ev = examined.evidence;
    let mut refusals = Vec::new();
    let mut inconclusive = Vec::new();

    match check_suffix(path, target, ev.as_ref()) {
        Ok(None) => {}
        Ok(Some(note)) => inconclusive.push(format!("{shown}: {note}")),
        Err(why) => refusals.push(Refusal { code: Code::SuffixMismatch, message: format!("{shown}: {why}") }),
    }
    for (code, text) in examined.problems {
        refusals.push(Refusal { code, message: format!("{shown}: {text}") });
    }
    inconclusive.extend(examined.notes.iter().map(|n| format!("{shown}: {n}")));

    if let Some(ev) = &ev {
        let init = format!("PyInit_{module}");
        if !ev.exports.contains(&init) {
            let found: Vec<&str> =
                ev.exports.iter().filter(|s| s.starts_with("PyInit_")).map(String::as_str).collect();
            let rule = "must export the init function named after the file";
            refusals.push(if found.is_empty() {
                Refusal {
                    code: Code::NoInit,
                    message: format!("{shown}: {rule}: expected '{init}', found no PyInit_* export"),
                }
            } else {
                Refusal {
                    code: Code::InitMismatch,
                    message: format!("{shown}: {rule}: expected '{init}', found '{}'", found.join("', '")),
                }
            });
        }
        let (major, minor) = target.version;
        match (target.free_threaded, ev.ft_markers.is_empty(), ev.gil_markers.is_empty()) {
            (true, true, false) => refusals.push(Refusal {
                code: Code::GilBuild,
                message: format!(
                    "{shown}: built for a GIL interpreter, target is free-threaded {major}.{minor}: expected a free-threaded build (undefined symbols such as {}), found GIL-only references ({}) and none of those",
                    FT_MARKERS.join(", "),
                    ev.gil_markers.join(", ")
                ),
            }),
            (false, false, _) => refusals.push(Refusal {
                code: Code::FtBuild,
                message: format!(
                    "{shown}: built for a free-threaded interpreter, target is GIL {major}.{minor}: expected no free-threaded symbols, found {}",
                    ev.ft_markers.join(", ")
                ),
            }),
            (_, true, true) => inconclusive.push(format!(
                "{shown}: no refcounting symbols that tell a free-threaded from a GIL build (limited API or no Py_DECREF)"
            )),
            _ => {}
        }
        if !ev.python_imports.is_empty() {
            let n = ev.python_imports.len();
            match target.symbols.missing(&ev.python_imports) {
                Ok(missing) if missing.is_empty() => {}
                Ok(missing) => {
                    const SHOWN: usize = 12;
                    let mut list = missing.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
                    if missing.len() > SHOWN {
                        list.push_str(&format!(" and {} more", missing.len() - SHOWN));
                    }
                    refusals.push(Refusal {
                        code: Code::UnresolvedSymbol,
                        message: format!(
                            "{shown}: every undefined Py*/_Py* symbol must be exported by the target interpreter: expected all {n} to resolve in {}, found {} missing: {list}",
                            target.symbols,
                            missing.len()
                        ),
                    });
                }
                Err(why) => inconclusive
                    .push(format!("{shown}: {n} undefined Py*/_Py* symbols were not checked: {why}")),
            }
        }
    }

    Report { path: path.to_owned(), module, refusals, evidence: ev, inconclusive, identity: None }
}

/// A module accepted by the loader and opened. The init function borrows from the library, so
/// it cannot outlive it.
pub struct Module {
    lib: libloading::Library,
    init_name: String,
    /// The inspection that accepted it.
    pub report: Report,
}

/// `PyObject *PyInit_<name>(void)`.
pub type InitFn = unsafe extern "C" fn() -> *mut PyObject;

/// CPython's `PyObject` (`struct _object`), opaque: the loader only passes pointers to it along.
#[repr(C)]
pub struct PyObject {
    _opaque: [u8; 0],
}

impl Module {
    /// The module's `PyInit_<name>`, borrowed from the opened library.
    pub fn init(&self) -> libloading::Symbol<'_, InitFn> {
        let name = format!("{}\0", self.init_name);
        // SAFETY: `open` resolved this very symbol before handing out the Module, and the library
        // (opened NODELETE) cannot lose it; CPython declares every PyInit_* as `PyObject *(void)`.
        unsafe { self.lib.get::<InitFn>(name.as_bytes()) }
            .expect("PyInit_ symbol vanished between open and init")
    }
}

/// Why [`open`] did not hand back a module. Each variant carries the inspection report.
#[derive(Debug)]
pub enum OpenError {
    /// The file's bytes could not be had ([`Report::io_failed`]); nothing was loaded.
    Io(Box<Report>),
    /// The inspection refused it (or it changed before `dlopen`); nothing was loaded.
    Refused(Box<Report>),
    /// `dlopen` or `dlsym` failed after the file was accepted.
    Dl {
        /// The inspection that accepted the file.
        report: Box<Report>,
        /// What the dynamic loader said.
        error: libloading::Error,
    },
}

impl OpenError {
    /// The inspection report.
    pub fn report(&self) -> &Report {
        match self {
            OpenError::Io(r) | OpenError::Refused(r) | OpenError::Dl { report: r, .. } => r,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(r) | OpenError::Refused(r) => {
                let msgs: Vec<&str> = r.refusals.iter().map(|x| x.message.as_str()).collect();
                write!(f, "refused: {}", msgs.join("; "))
            }
            OpenError::Dl { report, error } => {
                write!(f, "{}: accepted, but dlopen failed: {}", report.path.display(), dl_text(error))
            }
        }
    }
}

impl std::error::Error for OpenError {}

/// What the dynamic loader said: `dlerror()`'s text when libloading kept it, else its summary.
pub fn dl_text(error: &libloading::Error) -> String {
    use std::error::Error as _;
    error.source().map_or_else(|| error.to_string(), |s| s.to_string())
}

/// The refusal pushed when the path names another file than the one inspected.
fn changed(report: &Report, now: std::io::Result<(u64, u64)>) -> Option<Refusal> {
    let then = report.identity?;
    let found = match now {
        Ok(now) if now == then => return None,
        Ok((dev, ino)) => format!("device {dev} inode {ino}"),
        Err(e) => format!("no file ({e})"),
    };
    Some(Refusal {
        code: Code::FileChanged,
        message: format!(
            "{}: the file changed between inspection and dlopen: expected device {} inode {}, found {found}",
            report.path.display(),
            then.0,
            then.1
        ),
    })
}

/// Inspects `path` and, only if it is accepted, opens it with `RTLD_NOW | RTLD_LOCAL |
/// RTLD_NODELETE`. The library stays mapped after the [`Module`] is dropped, as CPython never
/// unloads an extension module: objects its init function created would otherwise point into
/// unmapped code. Just before `dlopen` the path is checked to still name the inspected file
/// (same device and inode); a replacement in the instant between that check and `dlopen` is not
/// detected (docs/loader.md).
///
/// # Safety
/// Opening a library runs its initialisers. Inspection rules out the ABI mismatches in
/// docs/loader.md, not arbitrary code in a constructor: only open files you trust to that extent.
pub unsafe fn open(path: &Path, target: &Target) -> Result<Module, OpenError> {
    let mut report = inspect(path, target);
    if report.io_failed() {
        return Err(OpenError::Io(Box::new(report)));
    }
    if !report.accepted() {
        return Err(OpenError::Refused(Box::new(report)));
    }
    if let Some(refusal) = changed(&report, file::identity_now(path)) {
        report.refusals.push(refusal);
        return Err(OpenError::Refused(Box::new(report)));
    }
    // SAFETY: the caller accepts running the library's initialisers (see above).
    let opened = unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE,
        )
    };
    let lib = match opened {
        Ok(lib) => libloading::Library::from(lib),
        Err(error) => return Err(OpenError::Dl { report: Box::new(report), error }),
    };
    let init_name = format!("PyInit_{}", report.module);
    let name = format!("{init_name}\0");
    // SAFETY: presence check only; the type is the one `init` uses.
    if let Err(error) = unsafe { lib.get::<InitFn>(name.as_bytes()) } {
        return Err(OpenError::Dl { report: Box::new(report), error });
    }
    Ok(Module { lib, init_name, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FT_SUFFIX: &str = ".cpython-313t-x86_64-linux-gnu.so";

    fn ft_target() -> Target {
        Target::new((3, 13), true, FT_SUFFIX)
    }

    /// The running test executable: a real ELF of this machine (PIE, so ET_DYN), with no
    /// PyInit_ export and no refcounting markers.
    fn real_elf() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn names_without_the_exact_tag_are_refused_on_the_free_threaded_target() {
        let data = real_elf();
        let rule = "file name must end with the target interpreter's EXT_SUFFIX";
        let no_proof = "carries no free-threaded ABI tag, and the file's symbols do not prove a free-threaded build (none of _Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL)";
        for (name, expected) in [
            (
                "m.abi3.so",
                format!("m.abi3.so: {rule}: expected '{FT_SUFFIX}', found '.abi3.so', which {no_proof}"),
            ),
            ("m.so", format!("m.so: {rule}: expected '{FT_SUFFIX}', found '.so', which {no_proof}")),
            ("m", format!("m: {rule}: expected '{FT_SUFFIX}', found '(none)'")),
            (
                "m.cpython-313-x86_64-linux-gnu.so",
                format!(
                    "m.cpython-313-x86_64-linux-gnu.so: {rule}: expected '{FT_SUFFIX}', found '.cpython-313-x86_64-linux-gnu.so'"
                ),
            ),
            (
                "m.x.cpython-313t-x86_64-linux-gnu.so",
                format!(
                    "m.x.cpython-313t-x86_64-linux-gnu.so: {rule}: expected '{FT_SUFFIX}', found '.x{FT_SUFFIX}'"
                ),
            ),
            (
                FT_SUFFIX,
                format!(
                    "{FT_SUFFIX}: {rule}: expected '<module>{FT_SUFFIX}', found '{FT_SUFFIX}' with no module name"
                ),
            ),
        ] {
            let report = inspect_bytes(Path::new(name), &data, &ft_target());
            assert_eq!(report.refusals[0].code, Code::SuffixMismatch, "{name}");
            assert_eq!(report.refusals[0].message, expected);
        }
    }

    #[test]
    fn abi3_is_accepted_by_name_on_a_gil_target() {
        let gil = Target::new((3, 13), false, ".cpython-313-x86_64-linux-gnu.so");
        let report = inspect_bytes(Path::new("m.abi3.so"), &real_elf(), &gil);
        assert_eq!(report.codes(), vec![Code::NoInit]);
    }

    #[test]
    fn a_file_without_its_init_function_is_refused_and_the_build_is_inconclusive() {
        let path = PathBuf::from(format!("/x/mod{FT_SUFFIX}"));
        let report = inspect_bytes(&path, &real_elf(), &ft_target());
        assert_eq!(report.codes(), vec![Code::NoInit]);
        assert_eq!(
            report.refusals[0].message,
            format!(
                "/x/mod{FT_SUFFIX}: must export the init function named after the file: expected 'PyInit_mod', found no PyInit_* export"
            )
        );
        assert_eq!(report.module, "mod");
        assert_eq!(
            report.inconclusive,
            vec![format!(
                "/x/mod{FT_SUFFIX}: no refcounting symbols that tell a free-threaded from a GIL build (limited API or no Py_DECREF)"
            )]
        );
    }

    #[test]
    fn empty_and_non_elf_files_are_refused_with_every_problem_listed() {
        let report = inspect_bytes(Path::new("e.so"), b"", &ft_target());
        assert_eq!(report.codes(), vec![Code::SuffixMismatch, Code::EmptyFile]);
        assert_eq!(
            report.refusals[1].message,
            "e.so: not a loadable ELF shared object: expected an ELF file, found an empty file (0 bytes)"
        );
        assert!(!report.accepted() && !report.io_failed());
    }

    #[test]
    fn io_problems_are_reported_with_their_own_codes() {
        let dir = std::env::temp_dir().join(format!("ftshim-loader-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(format!("d{FT_SUFFIX}"))).unwrap();
        std::os::unix::fs::symlink(dir.join("gone"), dir.join(format!("l{FT_SUFFIX}"))).unwrap();
        let t = ft_target();
        let r = inspect(&dir.join(format!("d{FT_SUFFIX}")), &t);
        assert_eq!(r.codes(), vec![Code::NotRegularFile]);
        assert_eq!(
            r.refusals[0].message,
            format!(
                "{}/d{FT_SUFFIX}: cannot read: expected a regular file, found a directory",
                dir.display()
            )
        );
        assert!(r.io_failed());
        let r = inspect(&dir.join(format!("l{FT_SUFFIX}")), &t);
        assert_eq!(r.codes(), vec![Code::DanglingSymlink]);
        assert_eq!(
            r.refusals[0].message,
            format!(
                "{d}/l{FT_SUFFIX}: cannot read: expected a file, found a symbolic link to '{d}/gone', which does not exist",
                d = dir.display()
            )
        );
        let r = inspect(&dir.join("missing.so"), &t);
        assert_eq!(r.codes(), vec![Code::SuffixMismatch, Code::NotFound]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replaced_file_is_detected_before_dlopen() {
        let mut report = inspect_bytes(Path::new("/x/m.so"), b"", &ft_target());
        report.identity = Some((1, 2));
        assert_eq!(changed(&report, Ok((1, 2))), None);
        let refusal = changed(&report, Ok((1, 3))).unwrap();
        assert_eq!(refusal.code, Code::FileChanged);
        assert_eq!(
            refusal.message,
            "/x/m.so: the file changed between inspection and dlopen: expected device 1 inode 2, found device 1 inode 3"
        );
    }

    #[test]
    fn the_derived_ext_suffix_follows_cpythons_spelling() {
        if cfg!(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")) {
            assert_eq!(derive_ext_suffix((3, 13), true, false).unwrap(), FT_SUFFIX);
            assert_eq!(derive_ext_suffix((3, 13), true, true).unwrap(), ".cpython-313td-x86_64-linux-gnu.so");
            assert_eq!(derive_ext_suffix((3, 11), false, false).unwrap(), ".cpython-311-x86_64-linux-gnu.so");
        }
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let cstrs: Vec<&str> = Code::ALL.iter().map(|c| c.as_cstr().to_str().unwrap()).collect();
        assert_eq!(codes, cstrs);
    }
}
