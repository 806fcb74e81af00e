//! libftshim — the small runtime every extension links: one C ABI for critical sections,
//! per-object locks and immortal objects on free-threaded and GIL CPython.
//!
//! The C API is declared in `include/ftshim.h` (statuses in `include/ftshim_status.h`); one module
//! here per section of that header. Every export goes through `ftshim_boundary::export!`. The
//! loader is a separate library (`ftshim-loader`): nothing an extension links parses files.

#![warn(missing_docs)]

pub mod checked;
pub mod critical_section;
pub mod gil_freedom;
pub mod immortal;
pub mod mutex;
pub mod runtime;
pub mod status;
pub mod version;
