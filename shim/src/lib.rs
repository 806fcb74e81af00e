//! ftshim — one C ABI for critical sections, per-object locks and immortal objects on
//! free-threaded and GIL CPython, and a loader that checks a native module's ABI before
//! `dlopen` runs any of its code.
//!
//! The C API is declared in `include/ftshim.h`; one module here per section of that header.
//! Every export goes through the boundary macro in [`ffi`].

#![warn(missing_docs)]

pub mod ffi;

pub mod critical_section;
pub mod immortal;
pub mod loader;
pub mod mutex;
pub mod runtime;
pub mod status;
pub mod version;
