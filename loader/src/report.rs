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
    /// Every reason to refuse; empty means accepted.
    pub refusals: Vec<Refusal>,
    /// What the file's symbols say about its build (when it parsed as ELF far enough).
    pub evidence: Option<Evidence>,
    /// What static evidence could not decide.
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
}
