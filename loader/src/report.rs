//! The result of inspecting (and opening) one file: [`Report`], and the one decision taken from
//! it: [`Verdict`].

use std::path::PathBuf;

use ftshim_boundary::status::{
    FTSHIM_ERR_DLOPEN, FTSHIM_ERR_IO, FTSHIM_ERR_REFUSED, FTSHIM_OK, ftshim_status,
};

use crate::code::{Code, Refusal};
use crate::elf::Evidence;
use crate::slots::{AbiInfo, GilFreedom};
use crate::text::escaped;

/// What became of a file, decided in one place ([`Report::verdict`]) and read by the C API (its
/// status), the CLI (its words and exit status) and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Nothing refuses the file.
    Accepted,
    /// At least one check refuses it, or the file changed while it was read (`file-changed`).
    Refused,
    /// Its bytes could not be had at all (an I/O code, see [`Code::is_io`]); this wins over
    /// every other refusal.
    IoFailed,
    /// `open` only: the file was accepted, but `dlopen` or `dlsym` failed, or it cannot be
    /// loaded through its descriptor.
    DlopenFailed,
}

impl Verdict {
    /// `"accepted"`, `"refused"`, `"unreadable"` or `"dlopen-failed"` (the CLI's `--json` words).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Refused => "refused",
            Verdict::IoFailed => "unreadable",
            Verdict::DlopenFailed => "dlopen-failed",
        }
    }

    /// The C API's status for it: `FTSHIM_OK`, `FTSHIM_ERR_REFUSED`, `FTSHIM_ERR_IO` or
    /// `FTSHIM_ERR_DLOPEN`.
    pub fn status(self) -> ftshim_status {
        match self {
            Verdict::Accepted => FTSHIM_OK,
            Verdict::Refused => FTSHIM_ERR_REFUSED,
            Verdict::IoFailed => FTSHIM_ERR_IO,
            Verdict::DlopenFailed => FTSHIM_ERR_DLOPEN,
        }
    }
}

/// The function CPython calls to create a module, found in the file for the target
/// ([`Report::entry`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entry {
    /// `PyInit_<name>`: `PyObject *(void)`, every version.
    Init(String),
    /// `PyModExport_<name>` (PEP 793): `PySlot *(void)`, CPython 3.15 and later.
    Export(String),
}

impl Entry {
    /// The exported symbol, e.g. `PyModExport__rust`.
    pub fn symbol(&self) -> &str {
        match self {
            Entry::Init(s) | Entry::Export(s) => s,
        }
    }

    /// `"PyInit"` or `"PyModExport"` (the CLI's `--json` words).
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Init(_) => "PyInit",
            Entry::Export(_) => "PyModExport",
        }
    }
}

/// The result of inspecting one file.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file inspected.
    pub path: PathBuf,
    /// Module name taken from the file name (text before the first dot; lossy when it is not
    /// UTF-8, which `module-name` refuses).
    pub module: String,
    /// Every reason to refuse, in the order found; empty means accepted. Each sentence is
    /// without the path: read them as users see them with [`Report::messages`].
    pub refusals: Vec<Refusal>,
    /// What the file's symbols say about its build (when it parsed as ELF far enough).
    pub evidence: Option<Evidence>,
    /// What static evidence could not decide (sentences without the path: read them as users
    /// see them with [`Report::notes`]).
    pub inconclusive: Vec<String>,
    /// The entry point the target would call (`PyModExport_<name>` from 3.15, else
    /// `PyInit_<name>`), when the file exports one; `None` when it does not (then `no-init` or
    /// `init-mismatch` says so) or could not be read far enough.
    pub entry: Option<Entry>,
    /// Whether the module declares GIL freedom (`Py_mod_gil` / `PyUnstable_Module_SetGIL`),
    /// when the file was read far enough to tell or to say why not.
    pub gil: Option<GilFreedom>,
    /// The `PyABIInfo` of its `Py_mod_abi` slot (3.15), when it has one that could be read.
    pub abi_info: Option<AbiInfo>,
}

impl Report {
    /// The verdict on the file: an I/O refusal makes it [`Verdict::IoFailed`], a
    /// [`Code::DlopenFailed`] one (added by `open`) [`Verdict::DlopenFailed`], any other
    /// [`Verdict::Refused`]; no refusal at all is [`Verdict::Accepted`]. The one place the decision
    /// is taken.
    pub fn verdict(&self) -> Verdict {
        if self.refusals.iter().any(|r| r.code.is_io()) {
            Verdict::IoFailed
        } else if self.refusals.iter().any(|r| r.code == Code::DlopenFailed) {
            Verdict::DlopenFailed
        } else if self.refusals.is_empty() {
            Verdict::Accepted
        } else {
            Verdict::Refused
        }
    }

    /// The verdict is [`Verdict::Accepted`]: nothing refuses the file.
    pub fn accepted(&self) -> bool {
        self.verdict() == Verdict::Accepted
    }

    /// The verdict is [`Verdict::IoFailed`]: the file's bytes could not be had at all.
    pub fn io_failed(&self) -> bool {
        self.verdict() == Verdict::IoFailed
    }

    /// Codes of all refusals, in order.
    pub fn codes(&self) -> Vec<Code> {
        self.refusals.iter().map(|r| r.code).collect()
    }

    /// `<path>: <sentence>`: a sentence about this file as users read it (CLI, C API, errors),
    /// both parts [`escaped`](crate::escaped) (a crafted file name, or a symbol or library name
    /// quoted in the sentence, cannot forge a line or reach the terminal raw). The one place the
    /// loader puts a file's path in front of a sentence.
    pub fn about(&self, sentence: &str) -> String {
        format!("{}: {}", escaped(&self.path), escaped(sentence))
    }

    /// Every refusal's message as users read it ([`Report::about`]), in order.
    pub fn messages(&self) -> Vec<String> {
        self.refusals.iter().map(|r| self.about(&r.message)).collect()
    }

    /// Every inconclusive note as users read it ([`Report::about`]), in order.
    pub fn notes(&self) -> Vec<String> {
        self.inconclusive.iter().map(|n| self.about(n)).collect()
    }
}
