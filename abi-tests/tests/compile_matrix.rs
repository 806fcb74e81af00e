//! The headers compile strictly everywhere they should: gcc and clang, C99 and C11 with
//! `-Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Werror`, C++17 with g++ and clang++.
//! ftshim.h (with ftshim_loader.h beside it): with the inline fast paths and with
//! FTSHIM_NO_INLINE, and under the limited API on GIL builds — against each interpreter's real
//! headers, included with -isystem so the warnings judge ftshim.h, not CPython. ftshim_loader.h
//! alone: with no Python include path at all.

use std::process::Command;

use ftshim_abi_tests::{Interpreter, interpreters, scratch, workspace_root};

const STRICT_C: &[&str] = &["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wsign-conversion", "-Werror"];
const STRICT_CXX: &[&str] = &["-x", "c++", "-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];

fn compile(label: &str, interp: &Interpreter, compiler: &str, flags: &[&str]) -> Result<(), String> {
    compile_source("use_all.c", label, Some(interp), compiler, flags)
}

/// Compiles `abi-tests/c/<file>` with `flags`, the repository's include/ and, when given, the
/// interpreter's headers as a system include directory.
fn compile_source(
    file: &str,
    label: &str,
    interp: Option<&Interpreter>,
    compiler: &str,
    flags: &[&str],
) -> Result<(), String> {
    let src = workspace_root().join("abi-tests/c").join(file);
    let tag = flags.join("").replace(['=', '-', '+'], "");
    let obj = scratch(&format!("matrix-{label}-{compiler}-{tag}")).join("out.o");
    let mut cmd = Command::new(compiler);
    cmd.args(flags).arg(format!("-I{}", workspace_root().join("include").display()));
    if let Some(interp) = interp {
        cmd.arg("-isystem").arg(&interp.include_dir);
    }
    let out = cmd
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .map_err(|e| format!("cannot run {compiler}: {e} (scripts/setup.sh installs gcc and clang)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{label} {compiler} {flags:?}:\n{}", String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn the_header_compiles_strictly_in_every_configuration() {
    let mut failures = Vec::new();
    let mut compiled = 0;
    for (label, interp) in interpreters().all() {
        let mut variants: Vec<Vec<&str>> = vec![vec![], vec!["-DFTSHIM_NO_INLINE"]];
        if !interp.free_threaded {
            variants.push(vec!["-DPy_LIMITED_API=0x030b0000"]);
        }
        if !interp.free_threaded && interp.version >= (3, 15) {
            // The 3.15 stable ABIs: abi3 for 3.15, and abi3t (PEP 803: opaque PyObject, both
            // builds), where the object sections are CPython's stable-ABI ones.
            variants.push(vec!["-DPy_LIMITED_API=0x030f0000"]);
            variants.push(vec!["-DPy_TARGET_ABI3T=0x030f0000"]);
        }
        for variant in &variants {
            for compiler in ["gcc", "clang"] {
                for std in ["-std=c99", "-std=c11"] {
                    let flags: Vec<&str> = [std].iter().chain(STRICT_C).chain(variant).copied().collect();
                    failures.extend(compile(label, interp, compiler, &flags).err());
                    compiled += 1;
                }
            }
            for compiler in ["g++", "clang++"] {
                let flags: Vec<&str> = STRICT_CXX.iter().chain(variant).copied().collect();
                failures.extend(compile(label, interp, compiler, &flags).err());
                compiled += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compiled} configurations failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Per interpreter: 6 compiler/standard combinations for each variant (inline, FTSHIM_NO_INLINE,
    // the limited API on GIL builds, and on 3.15 its abi3 and abi3t).
    let variants: usize = interpreters()
        .all()
        .iter()
        .map(|(_, i)| match (i.free_threaded, i.version >= (3, 15)) {
            (true, _) => 2,
            (false, false) => 3,
            (false, true) => 5,
        })
        .sum();
    assert_eq!(compiled, variants * 6);
    println!("{compiled} strict configurations compiled");
}

/// The free-threaded 3.14t and 3.15t header sets: 3.14's and 3.15's headers with
/// `Py_GIL_DISABLED` (a free-threaded build's headers differ only by that macro). No such
/// interpreter exists on these machines, so these paths are compiled here and run nowhere.
#[test]
fn the_header_compiles_strictly_against_the_314t_and_315t_headers() {
    let mut failures = Vec::new();
    let mut compiled = 0;
    for (label, interp) in interpreters().all() {
        if interp.free_threaded || interp.version < (3, 14) {
            continue;
        }
        let ft_label = format!("{label}t-headers");
        for variant in [&["-DPy_GIL_DISABLED=1"][..], &["-DPy_GIL_DISABLED=1", "-DFTSHIM_NO_INLINE"]] {
            for compiler in ["gcc", "clang"] {
                for std in ["-std=c99", "-std=c11"] {
                    let flags: Vec<&str> = [std].iter().chain(STRICT_C).chain(variant).copied().collect();
                    failures.extend(compile(&ft_label, interp, compiler, &flags).err());
                    compiled += 1;
                }
            }
            for compiler in ["g++", "clang++"] {
                let flags: Vec<&str> = STRICT_CXX.iter().chain(variant).copied().collect();
                failures.extend(compile(&ft_label, interp, compiler, &flags).err());
                compiled += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{} of {compiled} failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(compiled, 2 * 2 * 6, "3.14t and 3.15t, two variants, six compilers/standards each");
    println!("{compiled} strict configurations compiled against the 3.14t/3.15t headers");
}

#[test]
fn the_loader_header_compiles_strictly_without_python_h() {
    let mut failures = Vec::new();
    let mut compiled = 0;
    for compiler in ["gcc", "clang"] {
        for std in ["-std=c99", "-std=c11"] {
            let flags: Vec<&str> = [std].iter().chain(STRICT_C).copied().collect();
            failures.extend(compile_source("use_loader.c", "loader", None, compiler, &flags).err());
            compiled += 1;
        }
    }
    for compiler in ["g++", "clang++"] {
        failures.extend(compile_source("use_loader.c", "loader", None, compiler, STRICT_CXX).err());
        compiled += 1;
    }
    assert!(failures.is_empty(), "{} of {compiled} failed:\n{}", failures.len(), failures.join("\n"));
    // The proof that no Python.h was reachable: the runtime header, which needs it, fails the
    // same way.
    let err = compile_source("use_all.c", "no-python", None, "gcc", &["-std=c11"]).unwrap_err();
    assert!(err.contains("Python.h: No such file or directory"), "{err}");
    println!("{compiled} strict configurations of ftshim_loader.h compiled with no Python include path");
}

#[test]
fn the_limited_api_on_the_free_threaded_build_is_refused_by_cpython_not_by_ftshim() {
    let ft = &interpreters().ft;
    let err = compile("3.13t-limited", ft, "gcc", &["-std=c11", "-DPy_LIMITED_API=0x030b0000"]).unwrap_err();
    assert!(err.contains("The limited API is not currently supported in the free-threaded build"), "{err}");
    // gcc goes on after #error, so CPython's own headers report follow-on errors too; none may
    // come from ftshim.h or the test source.
    let include = ft.include_dir.display().to_string();
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error:")).collect();
    assert!(
        !errors.is_empty() && errors.iter().all(|l| l.starts_with(&include)),
        "only CPython's headers may object: {err}"
    );
}
