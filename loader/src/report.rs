//! The result of inspecting one file: [`Report`].

use std::path::PathBuf;

use crate::code::{Code, Refusal};
use crate::elf::Evidence;

/// The result of inspecting one file.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file inspected.
    pub path: PathBuf,
    /// Module name taken from the file name (text before the first dot).
    pub module: String,
    /// Every reason to refuse, in the order found; empty means accepted. Each sentence is
    /// without the path: read them as users see them with [`Report::messages`].
    pub refusals: Vec<Refusal>,
    /// What the file's symbols say about its build (when it parsed as ELF far enough).
    pub evidence: Option<Evidence>,
    /// What static evidence could not decide (sentences without the path: read them as users
    /// see them with [`Report::notes`]).
    pub inconclusive: Vec<String>,
    /// `(st_dev, st_ino)` of the file that was read.
    pub(crate) identity: Option<(u64, u64)>,
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

    /// `<path>: <sentence>`: a sentence about this file as users read it (CLI, C API, errors).
    /// The one place the loader puts a file's path in front of a sentence.
    pub fn about(&self, sentence: &str) -> String {
        format!("{}: {sentence}", self.path.display())
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
