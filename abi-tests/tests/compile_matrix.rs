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

/// Compiles `file` for one leg (`label`, its interpreter's headers or none, the `variant`'s
/// flags) with every compiler and standard: gcc and clang in C99 and C11 with [`STRICT_C`], g++
/// and clang++ with [`STRICT_CXX`]. Records the leg as "<label> <flags>" in `legs` and each
/// failure in `failures`.
fn compile_leg(
    file: &str,
    label: &str,
    interp: Option<&Interpreter>,
    variant: &[&str],
    legs: &mut Vec<String>,
    failures: &mut Vec<String>,
) {
    for compiler in ["gcc", "clang"] {
        for std in ["-std=c99", "-std=c11"] {
            let flags: Vec<&str> = [std].iter().chain(STRICT_C).chain(variant).copied().collect();
            failures.extend(compile_source(file, label, interp, compiler, &flags).err());
        }
    }
    for compiler in ["g++", "clang++"] {
        let flags: Vec<&str> = STRICT_CXX.iter().chain(variant).copied().collect();
        failures.extend(compile_source(file, label, interp, compiler, &flags).err());
    }
    legs.push(format!("{label} {}", variant.join(" ")).trim_end().to_owned());
}

/// The legs a run must have compiled, whatever extra interpreters it has.
fn assert_legs(legs: &[String], required: &[&str], failures: &[String]) {
    assert!(failures.is_empty(), "{} configurations failed:\n{}", failures.len(), failures.join("\n"));
    for leg in required {
        assert!(legs.iter().any(|l| l == leg), "leg '{leg}' was not compiled: {legs:#?}");
    }
    println!("{} legs x 6 strict configurations compiled: {legs:?}", legs.len());
}

#[test]
fn the_header_compiles_strictly_in_every_configuration() {
    let (mut legs, mut failures) = (Vec::new(), Vec::new());
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
            compile_leg("use_all.c", label, Some(interp), variant, &mut legs, &mut failures);
        }
    }
    // Inline and FTSHIM_NO_INLINE everywhere, the limited API on every GIL build, and 3.15's
    // abi3 and abi3t.
    let required: Vec<String> = ["3.13t", "3.11", "3.12", "3.13", "3.14", "3.15"]
        .iter()
        .flat_map(|l| {
            let mut leg = vec![l.to_string(), format!("{l} -DFTSHIM_NO_INLINE")];
            if !l.ends_with('t') {
                leg.push(format!("{l} -DPy_LIMITED_API=0x030b0000"));
            }
            leg
        })
        .chain([
            "3.15 -DPy_LIMITED_API=0x030f0000".to_owned(),
            "3.15 -DPy_TARGET_ABI3T=0x030f0000".to_owned(),
        ])
        .collect();
    assert_legs(&legs, &required.iter().map(String::as_str).collect::<Vec<_>>(), &failures);
}

/// The free-threaded 3.14t and 3.15t header sets: 3.14's and 3.15's headers with
/// `Py_GIL_DISABLED` (a free-threaded build's headers differ only by that macro). No such
/// interpreter exists on these machines, so these paths are compiled here and run nowhere.
#[test]
fn the_header_compiles_strictly_against_the_314t_and_315t_headers() {
    let (mut legs, mut failures) = (Vec::new(), Vec::new());
    for (label, interp) in interpreters().all() {
        if interp.free_threaded || interp.version < (3, 14) {
            continue;
        }
        let ft_label = format!("{label}t-headers");
        for variant in [&["-DPy_GIL_DISABLED=1"][..], &["-DPy_GIL_DISABLED=1", "-DFTSHIM_NO_INLINE"]] {
            compile_leg("use_all.c", &ft_label, Some(interp), variant, &mut legs, &mut failures);
        }
    }
    let required: Vec<String> = ["3.14t-headers", "3.15t-headers"]
        .iter()
        .flat_map(|l| {
            [format!("{l} -DPy_GIL_DISABLED=1"), format!("{l} -DPy_GIL_DISABLED=1 -DFTSHIM_NO_INLINE")]
        })
        .collect();
    assert_legs(&legs, &required.iter().map(String::as_str).collect::<Vec<_>>(), &failures);
}

#[test]
fn the_loader_header_compiles_strictly_without_python_h() {
    let (mut legs, mut failures) = (Vec::new(), Vec::new());
    compile_leg("use_loader.c", "loader", None, &[], &mut legs, &mut failures);
    assert_legs(&legs, &["loader"], &failures);
    // The proof that no Python.h was reachable: the runtime header, which needs it, fails the
    // same way.
    let err = compile_source("use_all.c", "no-python", None, "gcc", &["-std=c11"]).unwrap_err();
    assert!(err.contains("Python.h: No such file or directory"), "{err}");
    println!("ftshim_loader.h compiled strictly with no Python include path");
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
