//! Why a module is refused: the stable [`Code`]s and the [`Refusal`] type that pairs a code with
//! its sentence.

use std::ffi::CStr;
use std::fmt;

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
    /// The file exists but cannot be opened or read (permissions, I/O error, …).
    Unreadable = "unreadable", true;
    /// The file name does not carry an ABI tag the target accepts.
    SuffixMismatch = "suffix-mismatch", false;
    /// The module name in the file name (before its first `.`) is not UTF-8: CPython cannot
    /// import it.
    ModuleName = "module-name", false;
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
    /// No entry point (`PyInit_*`/`PyInitU_*`, from 3.15 also `PyModExport_*`/`PyModExportU_*`)
    /// is exported at all.
    NoInit = "no-init", false;
    /// Entry points are exported, but none is the one CPython looks up for the file's module
    /// name.
    InitMismatch = "init-mismatch", false;
    /// The undefined symbols show a GIL build, the target is free-threaded.
    GilBuild = "gil-build", false;
    /// The undefined symbols show a free-threaded build, the target is a GIL build.
    FtBuild = "ft-build", false;
    /// Undefined `Py*`/`_Py*` symbols the target interpreter does not export.
    UnresolvedSymbol = "unresolved-symbol", false;
    /// The module's slot array uses a slot ID the target does not know (3.15's IDs on 3.14, …).
    UnknownSlot = "unknown-slot", false;
    /// The module's `PyABIInfo` (`Py_mod_abi`, 3.15) fails the target's `PyABIInfo_Check`.
    AbiInfo = "abi-info", false;
    /// A `DT_NEEDED` library (of the module, or of a library it needs) is found nowhere the
    /// dynamic linker would look.
    LibraryNotFound = "library-not-found", false;
    /// Undefined symbols (other than `Py*`/`_Py*`) that none of the module's libraries nor the
    /// interpreter process define.
    UndefinedSymbol = "undefined-symbol", false;
    /// In a wheel: its `Tag` lines, the module's file-name tag and the module's build evidence
    /// contradict each other.
    Mistagged = "mistagged", false;
    /// A wheel none of whose `Tag` lines the target interpreter installs.
    WheelTag = "wheel-tag", false;
    /// A wheel that cannot be read as one: not a zip archive, no `.dist-info/WHEEL`, no `Tag`.
    WheelMalformed = "wheel-malformed", false;
    /// The file changed (size, mtime or ctime) or shrank while it was inspected; for `open`, also
    /// while it was loaded, or since the loader loaded it before in this process. Nothing read
    /// from it is reported.
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

/// One reason for refusing a file (or, in the C API, for not inspecting at all): a stable code and
/// one sentence naming the rule, the expected and the found value. Every part of the loader that
/// refuses something says so with this type: the ELF examination, the file reader, the inspection,
/// `open` and the C API.
///
/// The sentence does **not** name the file: a [`Report`](crate::Report) knows its path and puts it
/// in front when its sentences are read ([`Report::about`](crate::Report::about), the one place
/// that happens), so users see `<path>: <sentence>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: Code,
    /// Human-readable, without the file's path: the rule, the expected and the found value.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and the sentence `message` (without the file's path).
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into() }
    }

    /// As reported for the file being read: an I/O refusal's sentence gets `cannot read: ` in
    /// front (the one wording of every failure to read a candidate); others are unchanged.
    pub(crate) fn reading(self) -> Refusal {
        if self.code.is_io() {
            Refusal::new(self.code, format!("cannot read: {}", self.message))
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_same_name_as_a_c_string() {
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let cstrs: Vec<&str> = Code::ALL.iter().map(|c| c.as_cstr().to_str().unwrap()).collect();
        assert_eq!(codes, cstrs);
    }
}
