//! Hands the target triple to the crate (the `cc` crate needs it when used outside a build
//! script), and generates the layout bindings `tests/layout.rs` compiles in (pyo3-ffi-check's way):
//!
//! - `$OUT_DIR/layout/ftshim_loader_h.rs`: bindgen of `include/ftshim_loader.h` (no Python needed);
//! - `$OUT_DIR/layout/ftshim_h_<label>.rs`: bindgen of `include/ftshim.h` against each recorded
//!   interpreter's real `Python.h`, with the CPython types and constants ftshim relies on; and,
//!   for 3.14 and 3.15, the same headers with `Py_GIL_DISABLED` defined (`ft314`, `ft315`): the
//!   free-threaded 3.14t/3.15t header set, for which no interpreter exists on these machines.
//!
//! Besides the bindings, each file holds tables whose numbers rustc computes from the generated
//! types (`size_of`, `align_of`, `offset_of!`, the constants' values) — bindgen's own layout
//! assertions make rustc check those types against clang's layout — and one macro per struct that
//! names each of its C fields, so a test can compare every field with a Rust definition. Nothing
//! is scraped from generated text.
//!
//! The interpreters come from the record `scripts/setup.sh` writes (as the tests read it). Without
//! a record the per-interpreter files say so, and the layout tests fail naming the fix: they never
//! skip.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[path = "src/record.rs"]
mod record;

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=FTSHIM_TARGET_TRIPLE={target}");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.parent().expect("abi-tests sits in the workspace").to_owned();
    let include = root.join("include");
    for header in ["ftshim.h", "ftshim_loader.h", "ftshim_status.h"] {
        println!("cargo:rerun-if-changed={}", include.join(header).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("layout");
    std::fs::create_dir_all(&out).expect("create $OUT_DIR/layout");

    let loader = Generated::bind(
        bindgen::Builder::default()
            .header(include.join("ftshim_loader.h").display().to_string())
            .clang_arg(format!("-I{}", include.display()))
            .allowlist_type("ftshim_loader_target|ftshim_loader_report"),
        "include/ftshim_loader.h",
        &[],
    );
    loader.write(&out.join("ftshim_loader_h.rs"));

    let record = record::record_path(&root);
    println!("cargo:rerun-if-env-changed=FTSHIM_INTERPRETERS");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    // A record that does not exist yet makes cargo rerun this script until it does.
    println!("cargo:rerun-if-changed={}", record.display());
    let recorded = std::fs::read_to_string(&record).map(|text| record::parse_record(&text));
    for (label, key, ft_headers) in [
        ("ft", "FTSHIM_PY_FT", false),
        ("gil313", "FTSHIM_PY_GIL313", false),
        ("py311", "FTSHIM_PY_311", false),
        ("gil312", "FTSHIM_PY_312", false),
        ("gil314", "FTSHIM_PY_314", false),
        ("gil315", "FTSHIM_PY_315", false),
        ("ft314", "FTSHIM_PY_314", true),
        ("ft315", "FTSHIM_PY_315", true),
    ] {
        let file = out.join(format!("ftshim_h_{label}.rs"));
        let python = match &recorded {
            Ok(vars) => vars
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("{} has no {key}=", record.display())),
            Err(e) => Err(format!("interpreter record {} is unreadable ({e})", record.display())),
        };
        let described = python.and_then(|exe| {
            ftshim_loader::describe::describe(Path::new(&exe)).map_err(|e| format!("{key}: {e}"))
        });
        match described {
            Ok(interp) => {
                println!("cargo:rerun-if-changed={}", interp.include_dir.display());
                let mut builder = bindgen::Builder::default();
                if ft_headers {
                    builder = builder.clang_arg("-DPy_GIL_DISABLED=1");
                }
                let generated = Generated::bind(
                    builder
                        .header(include.join("ftshim.h").display().to_string())
                        .clang_arg(format!("-I{}", include.display()))
                        .clang_arg(format!("-I{}", interp.include_dir.display()))
                        .allowlist_type(
                            "PyObject|PyCriticalSection|PyCriticalSection2|PyMutex|ftshim_critical_section|ftshim_mutex",
                        )
                        .allowlist_var("Py_TPFLAGS_UNICODE_SUBCLASS|_Py_IMMORTAL_REFCNT_LOCAL|_Py_UNOWNED_TID"),
                    &format!(
                        "include/ftshim.h against {}{}",
                        interp.executable.display(),
                        if ft_headers { " with Py_GIL_DISABLED=1" } else { "" }
                    ),
                    &["Py_TPFLAGS_UNICODE_SUBCLASS", "_Py_IMMORTAL_REFCNT_LOCAL", "_Py_UNOWNED_TID"],
                );
                generated.write_for(&file, Some(&interp.executable));
            }
            Err(why) => {
                println!("cargo:warning=layout bindings for {label} not generated: {why}; run `make setup`");
                let text = format!(
                    "/// Why these bindings are missing.\npub const UNAVAILABLE: Option<&str> = Some({why:?});\n\
                     /// The interpreter the bindings were generated for.\npub const PYTHON: &str = \"\";\n{}",
                    Generated::EMPTY_TABLES
                );
                std::fs::write(&file, text).expect("write layout stub");
            }
        }
    }
}

/// What bindgen reported while it generated: every (type, field) in declaration order, and the
/// integer macros it evaluated.
#[derive(Debug, Default)]
struct Seen {
    fields: Vec<(String, String)>,
    macros: Vec<String>,
}

#[derive(Debug)]
struct Recorder(Rc<RefCell<Seen>>);

impl bindgen::callbacks::ParseCallbacks for Recorder {
    fn field_visibility(
        &self,
        info: bindgen::callbacks::FieldInfo<'_>,
    ) -> Option<bindgen::FieldVisibilityKind> {
        let key = (info.type_name.to_owned(), info.field_name.to_owned());
        let mut seen = self.0.borrow_mut();
        if !seen.fields.contains(&key) {
            seen.fields.push(key);
        }
        None
    }

    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        self.0.borrow_mut().macros.push(name.to_owned());
        None
    }
}

/// Generated bindings and the names to build the tables from.
struct Generated {
    bindings: String,
    source: String,
    fields: Vec<(String, String)>,
    constants: Vec<String>,
}

impl Generated {
    const EMPTY_TABLES: &'static str = "/// (type, size, align).\npub fn sizes() -> Vec<(&'static str, usize, usize)> { Vec::new() }\n\
        /// (type, field, offset).\npub fn offsets() -> Vec<(&'static str, &'static str, usize)> { Vec::new() }\n\
        /// (name, value).\npub fn constants() -> Vec<(&'static str, u64)> { Vec::new() }\n";

    /// Runs bindgen (with its layout tests) and records the fields and which of `constants` it
    /// evaluated.
    fn bind(builder: bindgen::Builder, source: &str, constants: &[&str]) -> Generated {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let bindings = builder
            .layout_tests(true)
            .parse_callbacks(Box::new(Recorder(Rc::clone(&seen))))
            .generate()
            .unwrap_or_else(|e| panic!("bindgen on {source}: {e}"))
            .to_string();
        let seen = seen.borrow();
        let constants = constants
            .iter()
            .filter(|c| seen.macros.iter().any(|m| m == *c))
            .map(|c| (*c).to_owned())
            .collect();
        Generated { bindings, source: source.to_owned(), fields: seen.fields.clone(), constants }
    }

    fn write(&self, file: &Path) {
        self.write_for(file, None);
    }

    fn write_for(&self, file: &Path, python: Option<&Path>) {
        let mut s = String::new();
        let _ = writeln!(s, "// @generated by abi-tests/build.rs from {}: do not edit.\n", self.source);
        let _ = writeln!(s, "/// Why these bindings are missing (never: they were generated).");
        let _ = writeln!(s, "pub const UNAVAILABLE: Option<&str> = None;");
        let _ = writeln!(s, "/// The interpreter the bindings were generated for (empty: none needed).");
        let _ = writeln!(
            s,
            "pub const PYTHON: &str = {:?};\n",
            python.map(|p| p.display().to_string()).unwrap_or_default()
        );
        s.push_str(&self.bindings);
        let mut types: Vec<&str> = Vec::new();
        for (ty, _) in &self.fields {
            if !types.contains(&ty.as_str()) {
                types.push(ty);
            }
        }
        s.push_str("\n/// (type, size, align) of every generated struct, as rustc lays it out.\n");
        s.push_str("pub fn sizes() -> Vec<(&'static str, usize, usize)> {\n    vec![\n");
        for ty in &types {
            let _ = writeln!(
                s,
                "        ({ty:?}, ::std::mem::size_of::<{ty}>(), ::std::mem::align_of::<{ty}>()),"
            );
        }
        s.push_str("    ]\n}\n\n/// (type, field, offset) of every field, in declaration order.\n");
        s.push_str("pub fn offsets() -> Vec<(&'static str, &'static str, usize)> {\n    vec![\n");
        for (ty, field) in &self.fields {
            let _ = writeln!(s, "        ({ty:?}, {field:?}, ::std::mem::offset_of!({ty}, {field})),");
        }
        s.push_str("    ]\n}\n\n/// (name, value) of the constants bindgen evaluated.\n");
        s.push_str("pub fn constants() -> Vec<(&'static str, u64)> {\n    vec![\n");
        for c in &self.constants {
            let _ = writeln!(s, "        ({c:?}, {c} as u64),");
        }
        s.push_str("    ]\n}\n");
        for ty in &types {
            let _ = writeln!(s, "\n/// Calls `$m!({ty}, <field>)` for every C field of `{ty}`, in order.");
            let _ =
                writeln!(s, "#[allow(unused_macros)]\nmacro_rules! fields_of_{ty} {{\n    ($m:ident) => {{");
            for (t, field) in self.fields.iter().filter(|(t, _)| t == ty) {
                let _ = writeln!(s, "        $m!({t}, {field});");
            }
            let _ = writeln!(s, "    }};\n}}\n#[allow(unused_imports)]\npub(crate) use fields_of_{ty};");
        }
        std::fs::write(file, s).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }
}
