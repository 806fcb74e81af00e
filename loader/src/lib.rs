//! libftshim_loader: checks a native module against a target interpreter **before** any of its
//! code runs, then opens it with `RTLD_NOW | RTLD_LOCAL`. Its C API is `include/ftshim_loader.h`
//! ([`capi`]); it shares nothing with libftshim (the runtime) but `ftshim_boundary`.
//!
//! `dlopen` runs a library's constructors, so everything that can be decided from the file is
//! decided from the file: its name's ABI tag, its ELF identification and headers, its entry point
//! (`PyInit_<name>`, or from 3.15 `PyModExport_<name>`; the `U` forms with punycode for non-ASCII
//! names), the build evidence in its undefined symbols, and whether the target exports every `Py*`
//! symbol it needs. Only then is it opened, through the descriptor it was inspected through, with
//! `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE`. See docs/loader.md for every check and code.
//!
//! One job per module (the names below are re-exported here):
//!
//! - `code`: why a module is refused — [`Code`], [`Refusal`];
//! - `report`: what an inspection found — [`Report`] — and the decision on it — [`Verdict`];
//! - `target`: the interpreter a module is checked for — [`Target`], [`derive_ext_suffix`];
//! - `inspect`: the checks made from the file alone — [`inspect()`], [`inspect_bytes`];
//! - `names`: the module name and entry-point symbols CPython derives from a file name —
//!   [`module_name`], [`entry_symbols`] (with `punycode`, PEP 489's encoding);
//! - `text`: text shown to people, control characters escaped — [`escaped`];
//! - `open`: opening an accepted module through its descriptor — [`open()`], [`Module`],
//!   [`OpenError`];
//! - `file`: reading a candidate once, without blocking, through bounded `pread`s (never a
//!   mapping: a concurrent truncation is a `file-changed` refusal, not `SIGBUS`);
//! - `elf`: the evidence in an ELF file's headers and dynamic symbols — [`Evidence`];
//! - `slots`: the module's slot array read statically — [`GilFreedom`], [`AbiInfo`];
//! - `symbols`: what the target interpreter exports — [`Symbols`];
//! - [`linkage`]: the libraries a module needs and its other undefined symbols, found as the
//!   dynamic linker would (used by the tools: `ftshim check` and `audit`);
//! - [`wheel`] (feature `wheel`, tools only): wheels read in memory, their tags cross-checked;
//! - [`capi`]: the C API; [`version`]: the loader ABI version;
//! - `describe` (feature `describe`, enabled by tools only): an interpreter from its executable;
//! - `child` (feature `describe`): running a child process with a deadline, for the tools.

pub mod capi;
#[cfg(feature = "describe")]
pub mod child;
mod code;
#[cfg(feature = "describe")]
pub mod describe;
mod elf;
mod file;
mod inspect;
pub mod linkage;
mod names;
mod open;
mod punycode;
mod report;
mod slots;
mod symbols;
mod target;
mod text;
pub mod version;
#[cfg(feature = "wheel")]
pub mod wheel;

pub use code::{Code, Refusal};
pub use elf::{Dynamic, Evidence, FT_MARKERS, GIL_MARKERS};
pub use inspect::{exports_entry_point, inspect, inspect_bytes, name_tag};
pub use names::{EntrySymbols, entry_symbols, is_export_symbol, is_init_symbol, module_name};
pub use open::{InitFn, Module, OpenError, PyObject, dl_text, open};
pub use report::{Entry, Report, Verdict};
pub use slots::{AbiInfo, GilFreedom};
pub use symbols::{ExportFile, Symbols};
pub use target::{ProcessTargetError, Target, derive_ext_suffix, platform_triplet};
pub use text::escaped;
