//! The loader's test corpus, built from `extensions/counter`, a few C sources and byte edits
//! (no binary is committed). Shared by the loader, C API, audit and fuzz tests.

use std::path::{Path, PathBuf};

use crate::build::{build_c_source, build_extension, link_libftshim};
use crate::interpreters::{Interpreter, interpreters};
use crate::scratch;

/// A module using the limited API (3.11), so its file can honestly be called `.abi3.so`.
pub const LIMITED_SOURCE: &str = r#"#define Py_LIMITED_API 0x030b0000
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { (void)self; (void)args; return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "42"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "lim", NULL, 0, methods, NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit_lim(void) { return PyModule_Create(&def); }
"#;

/// A shared object with Python code in it (so free-threaded evidence) but no init function.
pub const NO_INIT_SOURCE: &str = r#"#include <Python.h>
PyObject *noinit_release(PyObject *o);
PyObject *noinit_release(PyObject *o) { Py_DECREF(o); Py_RETURN_NONE; }
"#;

/// A single-phase module that does not declare Py_mod_gil: importing it on 3.13t re-enables
/// the GIL.
pub const KEEPS_GIL_SOURCE: &str = r#"#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "keepsgil", "no Py_mod_gil", 0, NULL, NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit_keepsgil(void) { return PyModule_Create(&def); }
"#;

/// A module whose init function fails.
pub const RAISES_SOURCE: &str = r#"#include <Python.h>
PyMODINIT_FUNC PyInit_raises(void) {
    PyErr_SetString(PyExc_RuntimeError, "raises refuses to initialise");
    return NULL;
}
"#;

/// One corpus file and the exact codes the free-threaded target refuses it with.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short name for messages.
    pub label: String,
    /// The file (or non-file) to inspect.
    pub path: PathBuf,
    /// Expected refusal codes, in order.
    pub codes: Vec<&'static str>,
}

/// The built corpus.
pub struct Corpus {
    /// Its scratch directory.
    pub dir: PathBuf,
    /// `counter` built for python3.13t, under its own name.
    pub ft_counter: PathBuf,
    /// `counter` built for GIL 3.13, under its own name.
    pub gil_counter: PathBuf,
    /// `counter` built for 3.11, under its own name.
    pub py311_counter: PathBuf,
    /// Files the free-threaded target must accept.
    pub accepted: Vec<PathBuf>,
    /// Files the free-threaded target must refuse, with their codes.
    pub refused: Vec<Case>,
}

/// Truncation lengths applied to the FT counter (the last two are relative to its size).
pub fn truncations(len: usize) -> Vec<usize> {
    vec![1, 3, 4, 16, 40, 63, 64, 100, 1000, len / 2, len - 1]
}

fn case_dir(root: &Path, label: &str) -> PathBuf {
    let dir = root.join("cases").join(label);
    std::fs::create_dir_all(&dir).expect("create case dir");
    dir
}

/// Builds the corpus in `scratch(<name>)`.
pub fn build(name: &str) -> Corpus {
    let all = interpreters();
    let ft_suffix = all.ft.ext_suffix.clone();
    let root = scratch(name);
    let sub = |d: &str| {
        let p = root.join(d);
        std::fs::create_dir_all(&p).expect("create dir");
        p
    };
    let ft_counter = build_extension("counter", &all.ft, &sub("ft"));
    let gil_counter = build_extension("counter", &all.gil313, &sub("gil"));
    let py311_counter = build_extension("counter", &all.py311, &sub("py311"));
    let limited = build_c_source("lim", LIMITED_SOURCE, &all.gil313, &sub("limited"));
    let no_init = build_c_source("noinit", NO_INIT_SOURCE, &all.ft, &sub("noinit"));
    let ft_bytes = std::fs::read(&ft_counter).expect("read FT counter");

    let mut refused = Vec::new();
    let mut add = |label: &str, file: &str, bytes: Option<&[u8]>, codes: Vec<&'static str>| {
        let path = case_dir(&root, label).join(file);
        if let Some(bytes) = bytes {
            std::fs::write(&path, bytes).expect("write case");
            // The libftshim.so.1 its RUNPATH ($ORIGIN) names, so no case is refused for a
            // missing library (`library-not-found`) besides the reason it exists for.
            link_libftshim(path.parent().expect("dir"));
        }
        refused.push(Case { label: label.to_owned(), path, codes });
    };
    let counter_ft = format!("counter{ft_suffix}");
    let gil_bytes = std::fs::read(&gil_counter).expect("read GIL counter");
    add("gil-renamed", &counter_ft, Some(&gil_bytes), vec!["gil-build"]);
    add(
        "limited-abi3",
        "lim.abi3.so",
        Some(&std::fs::read(&limited).expect("read")),
        vec!["suffix-mismatch"],
    );
    add("bare-so", "counter.so", Some(&gil_bytes), vec!["suffix-mismatch", "gil-build"]);
    add(
        "wrong-suffix",
        &format!("counter{}", all.gil313.ext_suffix),
        Some(&ft_bytes),
        vec!["suffix-mismatch"],
    );
    add("init-mismatch", &format!("other{ft_suffix}"), Some(&ft_bytes), vec!["init-mismatch"]);
    add(
        "no-init",
        &format!("noinit{ft_suffix}"),
        Some(&std::fs::read(&no_init).expect("read")),
        vec!["no-init"],
    );
    add("not-elf", &counter_ft, Some(b"#!/bin/sh\necho not a module\n"), vec!["not-elf"]);
    add("empty", &counter_ft, Some(b""), vec!["empty-file"]);
    for len in truncations(ft_bytes.len()) {
        add(&format!("truncated-{len}"), &counter_ft, Some(&ft_bytes[..len]), vec!["truncated"]);
    }
    let edited = |at: usize, new: &[u8]| {
        let mut b = ft_bytes.clone();
        b[at..at + new.len()].copy_from_slice(new);
        b
    };
    add("elf-class", &counter_ft, Some(&edited(4, &[1])), vec!["elf-class"]);
    add("elf-endian", &counter_ft, Some(&edited(5, &[2])), vec!["elf-endian"]);
    add("elf-machine", &counter_ft, Some(&edited(18, &183u16.to_le_bytes())), vec!["elf-machine"]);
    add("elf-type", &counter_ft, Some(&edited(16, &2u16.to_le_bytes())), vec!["elf-type"]);
    // What glibc's loader refuses although everything else is in order (tests/loader_corpus.rs
    // shows dlopen refusing each): OS ABI FreeBSD, e_version 0, no program headers, PN_XNUM.
    for (label, at, bytes) in [
        ("elf-osabi", 7, vec![9u8]),
        ("elf-version", 20, 0u32.to_le_bytes().to_vec()),
        ("elf-no-phdrs", 56, 0u16.to_le_bytes().to_vec()),
        ("elf-phnum-xnum", 56, 0xffffu16.to_le_bytes().to_vec()),
    ] {
        add(label, &counter_ft, Some(&edited(at, &bytes)), vec!["elf-malformed"]);
    }
    // A module that needs a C API the target does not have (CPython 3.14's
    // PyUnstable_IsImmortal): an undefined symbol renamed in place in the string tables.
    let (old, new) = (b"PyType_FromModuleAndSpec\0".as_slice(), b"PyUnstable_IsImmortal\0\0\0\0".as_slice());
    let mut needs_314 = ft_bytes.clone();
    let mut hits = 0;
    for i in 0..needs_314.len() - old.len() {
        if needs_314[i..i + old.len()] == *old {
            needs_314[i..i + old.len()].copy_from_slice(new);
            hits += 1;
        }
    }
    assert!(hits > 0, "PyType_FromModuleAndSpec not found in {}", ft_counter.display());
    add("unresolved", &counter_ft, Some(&needs_314), vec!["unresolved-symbol"]);
    // I/O cases.
    let dir_case = case_dir(&root, "directory").join(&counter_ft);
    std::fs::create_dir_all(&dir_case).expect("create dir case");
    add("directory", &counter_ft, None, vec!["not-regular-file"]);
    let dangling = case_dir(&root, "dangling").join(&counter_ft);
    std::os::unix::fs::symlink(root.join("nowhere").join(&counter_ft), &dangling).expect("symlink");
    add("dangling", &counter_ft, None, vec!["dangling-symlink"]);
    let fifo = case_dir(&root, "fifo").join(&counter_ft);
    let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0, "mkfifo {}", fifo.display());
    add("fifo", &counter_ft, None, vec!["not-regular-file"]);
    add("missing", &counter_ft, None, vec!["not-found"]);
    let file = case_dir(&root, "through-file").join("plain");
    std::fs::write(&file, b"a file, not a directory").expect("write");
    refused.push(Case {
        label: "through-file".into(),
        path: file.join(&counter_ft),
        codes: vec!["not-found"],
    });

    // Accepted: the FT build under its own name, and as `.so` / `.abi3.so` (FT evidence).
    let mut accepted = vec![ft_counter.clone()];
    for (label, file) in [("ft-bare", "counter.so"), ("ft-abi3", "counter.abi3.so")] {
        let path = case_dir(&root, label).join(file);
        std::fs::write(&path, &ft_bytes).expect("write");
        link_libftshim(path.parent().expect("dir"));
        accepted.push(path);
    }
    Corpus { dir: root, ft_counter, gil_counter, py311_counter, accepted, refused }
}

/// The free-threaded interpreter the corpus is refused for.
pub fn ft() -> &'static Interpreter {
    &interpreters().ft
}

/// A multi-phase module `café` (the C string is its UTF-8) that keeps the GIL off, with the
/// entry point CPython looks up for it, `PyInitU_caf_dma` ('café' in punycode is `caf-dma`).
pub const CAFE: &str = r#"#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { (void)self; (void)args; return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "42"}, {NULL, NULL, 0, NULL}};
static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "caf\xc3\xa9", NULL, 0, methods, slots, NULL, NULL, NULL};
PyMODINIT_FUNC ENTRY(void) { return PyModuleDef_Init(&def); }
"#;

/// [`CAFE`] with its entry point named `entry` (C11 takes UTF-8 identifiers: `PyInit_café`).
pub fn cafe_source(entry: &str) -> String {
    CAFE.replace("ENTRY", entry)
}

/// Makes `interp`'s libpython global in this (test) process, as the interpreter executable would,
/// so modules opened with `RTLD_NOW` find their `Py*` symbols. Loaded once per process, with
/// `RTLD_NODELETE`: its allocator registers thread-exit destructors at load, which must not outlive
/// the mapping.
pub fn libpython_global(interp: &Interpreter) {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let libpython = &interp.exports_file;
        let name = std::ffi::CString::new(libpython.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: loading libpython runs no interpreter code beyond its static initialisers.
        let handle =
            unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NODELETE) };
        assert!(!handle.is_null(), "cannot load {} globally", libpython.display());
    });
}

/// The file mapped at `addr` in this process, as the kernel names it in `/proc/self/maps` (the
/// file's path, not the name it was opened by).
pub fn mapped_file(addr: usize) -> Option<PathBuf> {
    mappings().into_iter().find(|(range, _)| range.contains(&addr)).map(|(_, path)| path)
}

/// Every file mapped into this process (`/proc/self/maps`), once each.
pub fn mapped_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = mappings().into_iter().map(|(_, path)| path).collect();
    files.sort();
    files.dedup();
    files
}

fn mappings() -> Vec<(std::ops::Range<usize>, PathBuf)> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter_map(|line| {
            // start-end perms offset dev inode path
            let mut fields = line.splitn(6, ' ');
            let (start, end) = fields.next()?.split_once('-')?;
            let path = fields.nth(4)?.trim_start();
            path.starts_with('/').then(|| {
                let range = usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?;
                Some((range, PathBuf::from(path)))
            })?
        })
        .collect()
}

/// Two separate builds of the counter example for `interp`, in `<scratch name>/a` and `/b`: two
/// files with the same module name, for the tests of what `open` hands out for which file.
pub fn two_counter_builds(name: &str, interp: &Interpreter) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let [a, b] = ["a", "b"].map(|sub| {
        let sub = dir.join(sub);
        std::fs::create_dir_all(&sub).unwrap();
        build_extension("counter", interp, &sub)
    });
    (a, b)
}
