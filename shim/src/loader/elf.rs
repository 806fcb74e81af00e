//! Static evidence from an ELF file's dynamic symbol table (parsed with `object`; no code runs).

use object::{Object, ObjectKind, ObjectSymbol};

/// Undefined symbols that only a free-threaded build's inline refcounting references.
pub const FT_MARKERS: &[&str] =
    &["_Py_DecRefShared", "_Py_MergeZeroLocalRefcount", "_Py_DecRefSharedDebug", "PyUnstable_Module_SetGIL"];

/// Undefined symbols a non-limited GIL build references (Py_DECREF's dealloc call) and a
/// free-threaded build does not need.
pub const GIL_MARKERS: &[&str] = &["_Py_Dealloc"];

/// What a module's dynamic symbols say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Defined, exported dynamic symbols (e.g. `PyInit_counter`).
    pub exports: Vec<String>,
    /// Undefined dynamic symbols whose names start with `Py` or `_Py`.
    pub python_imports: Vec<String>,
    /// The [`FT_MARKERS`] found among the undefined symbols.
    pub ft_markers: Vec<String>,
    /// The [`GIL_MARKERS`] found among the undefined symbols.
    pub gil_markers: Vec<String>,
}

impl Evidence {
    /// Parses `data` as an ELF shared object for this machine and collects the evidence.
    /// The error says what was wrong, naming the value found.
    pub fn read(data: &[u8]) -> Result<Evidence, String> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(format!(
                "expected the ELF magic 7f 45 4c 46, found {}",
                if data.is_empty() {
                    "an empty file".to_owned()
                } else {
                    data.iter().take(4).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
                }
            ));
        }
        let file = object::File::parse(data).map_err(|e| format!("ELF parse error: {e}"))?;
        let host = host_architecture();
        if file.architecture() != host {
            return Err(format!("expected machine {host:?}, found {:?}", file.architecture()));
        }
        if file.kind() != ObjectKind::Dynamic {
            return Err(format!("expected a shared object (ET_DYN), found {:?}", file.kind()));
        }
        let mut ev =
            Evidence { exports: vec![], python_imports: vec![], ft_markers: vec![], gil_markers: vec![] };
        for sym in file.dynamic_symbols() {
            let Ok(name) = sym.name() else { continue };
            if name.is_empty() {
                continue;
            }
            if sym.is_undefined() {
                if FT_MARKERS.contains(&name) {
                    ev.ft_markers.push(name.to_owned());
                }
                if GIL_MARKERS.contains(&name) {
                    ev.gil_markers.push(name.to_owned());
                }
                if name.starts_with("Py") || name.starts_with("_Py") {
                    ev.python_imports.push(name.to_owned());
                }
            } else if sym.is_global() {
                ev.exports.push(name.to_owned());
            }
        }
        Ok(ev)
    }
}

fn host_architecture() -> object::Architecture {
    use object::Architecture as A;
    match std::env::consts::ARCH {
        "x86_64" => A::X86_64,
        "aarch64" => A::Aarch64,
        "x86" => A::I386,
        "riscv64" => A::Riscv64,
        "powerpc64" => A::PowerPc64,
        "s390x" => A::S390x,
        _ => A::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_inputs_name_what_was_found() {
        assert_eq!(
            Evidence::read(b"").unwrap_err(),
            "expected the ELF magic 7f 45 4c 46, found an empty file"
        );
        assert_eq!(
            Evidence::read(b"#!/bin").unwrap_err(),
            "expected the ELF magic 7f 45 4c 46, found 23 21 2f 62"
        );
        let truncated = Evidence::read(b"\x7fELF\x02\x01").unwrap_err();
        assert!(truncated.starts_with("ELF parse error: "), "{truncated}");
    }

    #[test]
    fn a_real_elf_file_parses_and_shows_no_python_markers() {
        // The running test executable is a real ELF file of this machine (PIE: ET_DYN).
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let ev = Evidence::read(&exe).expect("the test binary parses");
        assert!(ev.ft_markers.is_empty() && ev.gil_markers.is_empty());
    }
}
