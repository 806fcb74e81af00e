//! Support for the ABI conformance tests and the `make run` demo: the interpreters recorded by
//! `scripts/setup.sh`, the built libftshim and `ftshim` CLI, compiling `extensions/` against
//! `include/ftshim.h` with `cc`, and running real interpreters.
//!
//! Nothing here skips: a missing interpreter or artifact is a panic that names what is missing
//! and how to get it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use ftshim_loader::child;
pub use ftshim_loader::describe::Interpreter;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("abi-tests sits in the workspace").to_owned()
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// A fresh scratch directory under `target/abi-tests/<name>` (emptied first).
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("abi-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The record written by `scripts/setup.sh`: `$FTSHIM_INTERPRETERS`, default
/// `target/ftshim-interpreters.env`.
pub fn record_path() -> PathBuf {
    std::env::var_os("FTSHIM_INTERPRETERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("ftshim-interpreters.env"))
}

/// The three interpreters every test runs on.
pub struct Interpreters {
    /// Free-threaded CPython 3.13 (`python3.13t`).
    pub ft: Interpreter,
    /// GIL CPython 3.13.
    pub gil313: Interpreter,
    /// GIL CPython 3.11 (the machine's own).
    pub py311: Interpreter,
}

impl Interpreters {
    /// All three, free-threaded first, each with a short label.
    pub fn all(&self) -> [(&'static str, &Interpreter); 3] {
        [("3.13t", &self.ft), ("3.13", &self.gil313), ("3.11", &self.py311)]
    }
}

/// Reads and describes the recorded interpreters once. Panics, naming the file and the fix,
/// when the record or an interpreter is missing: a test that needs python3.13t must fail, not skip.
pub fn interpreters() -> &'static Interpreters {
    static CELL: OnceLock<Interpreters> = OnceLock::new();
    CELL.get_or_init(|| {
        let path = record_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "interpreter record {} is unreadable ({e}); run `make setup` (scripts/setup.sh), which builds python3.13t and records all three interpreters",
                path.display()
            )
        });
        let vars: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let get = |key: &str| {
            let exe = vars.get(key).unwrap_or_else(|| panic!("{} has no {key}=; rerun `make setup`", path.display()));
            ftshim_loader::describe::describe(Path::new(exe))
                .unwrap_or_else(|e| panic!("{key} from {}: {e}; rerun `make setup`", path.display()))
        };
        Interpreters { ft: get("FTSHIM_PY_FT"), gil313: get("FTSHIM_PY_GIL313"), py311: get("FTSHIM_PY_311") }
    })
}

/// One of the two shipped libraries, with everything the drift tests compare.
#[derive(Debug)]
pub struct Library {
    /// `libftshim` / `libftshim_loader`.
    pub name: &'static str,
    /// Every export's name starts with this.
    pub prefix: &'static str,
    /// Its public header, relative to the repository root.
    pub header: &'static str,
    /// Its symbol manifest, relative to the repository root.
    pub manifest: &'static str,
    /// The ABI version compiled into the crate (from the header).
    pub version: (u32, u32),
    soname: &'static str,
}

impl Library {
    /// The shared object's file name and SONAME (`libftshim.so.1`), from the crate.
    pub fn soname(&self) -> &'static str {
        self.soname
    }
}

/// The runtime (first) and the loader.
pub const LIBRARIES: &[Library] = &[
    Library {
        name: "libftshim",
        prefix: "ftshim_",
        header: "include/ftshim.h",
        manifest: "abi-tests/manifest/libftshim.txt",
        version: (ftshim::version::ABI_MAJOR, ftshim::version::ABI_MINOR),
        soname: ftshim::version::SONAME,
    },
    Library {
        name: "libftshim_loader",
        prefix: "ftshim_loader_",
        header: "include/ftshim_loader.h",
        manifest: "abi-tests/manifest/libftshim_loader.txt",
        version: (ftshim_loader::version::ABI_MAJOR, ftshim_loader::version::ABI_MINOR),
        soname: ftshim_loader::version::SONAME,
    },
];

/// What `scripts/build-libs.sh` stages under `target/ftshim/`, laid out like an installed prefix.
pub struct Artifacts {
    /// `target/ftshim`.
    pub prefix: PathBuf,
    /// `<prefix>/include`: the shipped headers.
    pub include_dir: PathBuf,
    /// `<prefix>/lib`: both libraries (`.so.1` files, `.so` links, `.a`).
    pub lib_dir: PathBuf,
    /// The `ftshim` executable.
    pub cli: PathBuf,
}

/// Runs `scripts/build-libs.sh` once per process (cargo makes it quick when nothing changed), so
/// every test uses the shipped artefacts, built the way `make` builds them.
pub fn artifacts() -> &'static Artifacts {
    static CELL: OnceLock<Artifacts> = OnceLock::new();
    CELL.get_or_init(|| {
        let script = workspace_root().join("scripts/build-libs.sh");
        let out = output_within(
            Command::new("bash").arg(&script).current_dir(workspace_root()),
            std::time::Duration::from_secs(20 * 60),
            "scripts/build-libs.sh",
        );
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let prefix = target_dir().join("ftshim");
        let artifacts = Artifacts {
            include_dir: prefix.join("include"),
            lib_dir: prefix.join("lib"),
            cli: prefix.join("bin/ftshim"),
            prefix,
        };
        for lib in LIBRARIES {
            for f in [lib.soname().to_owned(), format!("{}.so", lib.name), format!("{}.a", lib.name)] {
                let f = artifacts.lib_dir.join(f);
                assert!(f.is_file(), "{} missing after scripts/build-libs.sh", f.display());
            }
        }
        assert!(artifacts.cli.is_file(), "{} missing after scripts/build-libs.sh", artifacts.cli.display());
        artifacts
    })
}

/// How [`build_extension_with`] builds a module.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Link `libftshim.a` into the module (symbols hidden) instead of `-lftshim`.
    pub static_link: bool,
    /// A directory searched for `ftshim.h` before the repository's `include/` (to build against
    /// a modified copy of the header).
    pub header_dir: Option<PathBuf>,
    /// Build with AddressSanitizer and UndefinedBehaviorSanitizer (no recovery); run the module
    /// with libasan preloaded ([`sanitizer_env`]).
    pub sanitize: bool,
}

const SANITIZE_FLAGS: &[&str] =
    &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"];

/// Environment for running an interpreter that loads sanitized modules: libasan preloaded (it must
/// come first in the process), leak checking off (the interpreter's own allocations are not
/// ours), abort on the first report.
pub fn sanitizer_env() -> Vec<(String, String)> {
    let out = Command::new("gcc").arg("-print-file-name=libasan.so").output().expect("run gcc");
    let libasan = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(Path::new(&libasan).exists(), "libasan not found ({libasan}): install gcc's libasan");
    vec![
        ("LD_PRELOAD".to_owned(), libasan),
        ("ASAN_OPTIONS".to_owned(), "detect_leaks=0:abort_on_error=1".to_owned()),
        ("UBSAN_OPTIONS".to_owned(), "halt_on_error=1:print_stacktrace=1".to_owned()),
    ]
}

/// Compiles `extensions/<name>/<name>.c` (strict C11, warnings are errors) against
/// `include/ftshim.h` and `interp`'s headers into `<out>/<name><EXT_SUFFIX>`, and returns its path.
/// It links `-lftshim` (SONAME `libftshim.so.1`) with rpath `$ORIGIN`, and `libftshim.so.1` is
/// copied beside the module.
pub fn build_extension(name: &str, interp: &Interpreter, out: &Path) -> PathBuf {
    build_extension_with(name, interp, out, &BuildOptions::default())
}

/// [`build_extension`] with options.
pub fn build_extension_with(name: &str, interp: &Interpreter, out: &Path, opts: &BuildOptions) -> PathBuf {
    let src = workspace_root().join("extensions").join(name).join(format!("{name}.c"));
    build_module(&src, name, interp, out, opts)
}

/// Compiles the single C file `src` into the extension module `<out>/<name><EXT_SUFFIX>` for
/// `interp`, as [`build_extension_with`] describes.
pub fn build_module(
    src: &Path,
    name: &str,
    interp: &Interpreter,
    out: &Path,
    opts: &BuildOptions,
) -> PathBuf {
    let triple = env!("FTSHIM_TARGET_TRIPLE");
    let mut build = cc::Build::new();
    if let Some(dir) = &opts.header_dir {
        build.include(dir);
    }
    if opts.sanitize {
        for flag in SANITIZE_FLAGS {
            build.flag(flag);
        }
    }
    let compiler = build
        .include(&artifacts().include_dir)
        .include(&interp.include_dir)
        .target(triple)
        .host(triple)
        .opt_level(2)
        .debug(false)
        .pic(true)
        .cargo_metadata(false)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .std("c11")
        .get_compiler();
    let object = out.join(format!("{name}.o"));
    let module = out.join(format!("{name}{}", interp.ext_suffix));
    run_tool(compiler.to_command().arg("-c").arg(src).arg("-o").arg(&object), "compiling", src, interp);
    let mut cmd = compiler.to_command();
    cmd.arg("-shared").arg(&object).arg("-o").arg(&module);
    if opts.sanitize {
        cmd.args(SANITIZE_FLAGS);
    }
    if opts.static_link {
        // libftshim.a carries Rust's std; keep all of it private to this module.
        cmd.arg(artifacts().lib_dir.join("libftshim.a")).args([
            "-Wl,--exclude-libs,ALL",
            "-Wl,--gc-sections",
            "-lgcc_s",
            "-lpthread",
            "-ldl",
            "-lm",
        ]);
    } else {
        cmd.args(link_libftshim(out));
    }
    run_tool(&mut cmd, "linking", &module, interp);
    module
}

/// Copies both shipped shared libraries (`libftshim.so.1`, `libftshim_loader.so.1`) into `dir`
/// and returns the linker arguments that link libftshim with rpath `$ORIGIN`, so a binary in
/// `dir` finds them at run time (add `-lftshim_loader` to use the loader too).
pub fn link_libftshim(dir: &Path) -> Vec<String> {
    let lib_dir = &artifacts().lib_dir;
    for lib in LIBRARIES {
        std::fs::copy(lib_dir.join(lib.soname()), dir.join(lib.soname()))
            .unwrap_or_else(|e| panic!("copy {} into {}: {e}", lib.soname(), dir.display()));
    }
    vec![format!("-L{}", lib_dir.display()), "-lftshim".to_owned(), "-Wl,-rpath,$ORIGIN".to_owned()]
}

/// Compiles and links the C program `src` into `<dir>/<stem>`: strict C11 (`-Wall -Wextra
/// -Werror`) against include/ftshim.h and `interp`'s headers, linked with libftshim through
/// [`link_libftshim`], plus `extra` arguments. Panics with the compiler's output on failure.
pub fn c_program(src: &Path, interp: &Interpreter, dir: &Path, extra: &[String]) -> PathBuf {
    let exe = dir.join(src.file_stem().expect("a file name"));
    let mut cmd = Command::new("cc");
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{}", artifacts().include_dir.display()))
        .arg(format!("-I{}", interp.include_dir.display()))
        .arg(src)
        .arg("-o")
        .arg(&exe)
        .args(link_libftshim(dir))
        .args(extra);
    run_tool(&mut cmd, "building", src, interp);
    exe
}

/// The DT_NEEDED entries of a shared object, as `readelf -d` lists them.
pub fn needed_libs(path: &Path) -> Vec<String> {
    let out = Command::new("readelf").arg("-d").arg(path).output().expect("run readelf");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

/// Runs a compiler or linker command; on failure panics with its stderr.
fn run_tool(cmd: &mut Command, what: &str, file: &Path, interp: &Interpreter) {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{what} {} for {} failed: {shown}\n{}",
        file.display(),
        interp.executable.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `interp` with `args`, `PYTHONPATH=<path>`, and no `PYTHON_GIL` override, so the GIL
/// state seen is the one the imported modules leave.
pub fn run_python(interp: &Interpreter, pythonpath: &Path, args: &[&str]) -> Output {
    python_command(interp, pythonpath, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", interp.executable.display()))
}

fn python_command(interp: &Interpreter, pythonpath: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(&interp.executable);
    cmd.args(args).env("PYTHONPATH", pythonpath).env_remove("PYTHON_GIL").env_remove("PYTHONHOME");
    cmd
}

/// Runs `abi-tests/py/<script>` on `interp` with `args` and `PYTHONPATH=<pythonpath>`, killing it
/// after `timeout` (a deadlock must fail the test, not hang it). Panics, with everything the
/// script printed, if it times out or exits non-zero; returns its `key=value` output.
pub fn run_script(
    interp: &Interpreter,
    pythonpath: &Path,
    script: &str,
    args: &[&str],
    timeout: std::time::Duration,
) -> BTreeMap<String, String> {
    run_script_env(interp, pythonpath, script, args, timeout, &[])
}

/// [`run_script`] with extra environment variables.
pub fn run_script_env(
    interp: &Interpreter,
    pythonpath: &Path,
    script: &str,
    args: &[&str],
    timeout: std::time::Duration,
    env: &[(String, String)],
) -> BTreeMap<String, String> {
    let path = workspace_root().join("abi-tests/py").join(script);
    run_driver(interp, pythonpath, &path, args, timeout, env).values
}

/// What a `key=value` driver script printed.
#[derive(Debug)]
pub struct DriverRun {
    /// Every `key=value` the script printed.
    pub values: BTreeMap<String, String>,
    /// What the interpreter wrote to stderr (warnings land here).
    pub stderr: String,
}

impl DriverRun {
    /// An integer field; panics naming the field and the whole output if absent.
    pub fn int(&self, key: &str) -> i64 {
        self.values.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            panic!("driver output has no integer {key}: {:?}\nstderr: {}", self.values, self.stderr)
        })
    }
}

/// Runs the driver script at `script` (see [`run_script`]): the one way every test and the demo
/// run Python drivers, with a time limit.
fn run_driver(
    interp: &Interpreter,
    pythonpath: &Path,
    script: &Path,
    args: &[&str],
    timeout: std::time::Duration,
    env: &[(String, String)],
) -> DriverRun {
    let mut all = vec![script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let mut cmd = python_command(interp, pythonpath, &all);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    // Drained while it runs: a chatty driver is not mistaken for a deadlocked one.
    let run = child::run_within(&mut cmd, timeout)
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", interp.executable.display()));
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let label = format!("{} {args:?} on {}", script.display(), interp.executable.display());
    assert!(
        !run.timed_out,
        "{label} did not finish within {timeout:?} (deadlock?)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(run.status.success(), "{label} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", run.status);
    DriverRun { values: parse_kv(&run.stdout), stderr: stderr.into_owned() }
}

/// Parses `key=value` lines (the stress driver's output).
pub fn parse_kv(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Runs the counter stress driver `extensions/counter/stress.py` on `interp` against the module
/// built in `module_dir` (at most five minutes).
pub fn run_counter_stress(
    interp: &Interpreter,
    module_dir: &Path,
    threads: u32,
    increments: u32,
    unlocked: bool,
) -> DriverRun {
    let script = workspace_root().join("extensions/counter/stress.py");
    let (t, n) = (threads.to_string(), increments.to_string());
    let mut args = vec![t.as_str(), n.as_str()];
    if unlocked {
        args.push("--unlocked");
    }
    run_driver(interp, module_dir, &script, &args, std::time::Duration::from_secs(300), &[])
}

/// Runs the `ftshim` CLI with `args` (at most ten minutes); returns (exit code, stdout, stderr).
pub fn ftshim_cli(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let mut cmd = Command::new(&artifacts().cli);
    cmd.args(args);
    let out = output_within(&mut cmd, std::time::Duration::from_secs(600), "ftshim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` (stdin `/dev/null`, stdout and stderr captured and drained while it runs), killing
/// it and panicking, naming `what`, if it has not finished within `limit`: a hang must fail a
/// test, not stall it.
pub fn output_within(cmd: &mut Command, limit: std::time::Duration, what: &str) -> Output {
    let run = child::run_within(cmd, limit).unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if run.timed_out {
        panic!(
            "{what} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
    Output { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

/// Writes the C `source` to `<out>/<name>.c` and builds it as the module `<out>/<name><EXT_SUFFIX>`
/// for `interp` with [`build_module`] (strict C11; `libftshim.so.1` is copied beside it).
pub fn build_c_source(name: &str, source: &str, interp: &Interpreter, out: &Path) -> PathBuf {
    let src = out.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap_or_else(|e| panic!("write {}: {e}", src.display()));
    build_module(&src, name, interp, out, &BuildOptions::default())
}

/// Creates a private virtual environment of `interp` in `dir` (`-m venv --without-pip`) and
/// returns its interpreter. Tests that change site-packages (the import guard) use one each, so
/// they never touch the machine's interpreters or see each other.
pub fn make_venv(interp: &Interpreter, dir: &Path) -> PathBuf {
    let out = Command::new(&interp.executable)
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .env_remove("PYTHONPATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", interp.executable.display()));
    assert!(
        out.status.success(),
        "{} -m venv {} failed: {}",
        interp.executable.display(),
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let name = interp.executable.file_name().expect("interpreter has a file name");
    let python = dir.join("bin").join(name);
    assert!(python.exists(), "{} missing after creating the venv", python.display());
    python
}

/// Everything under `dir`: each path (relative) with `dir/`, `link -> target`, or the file's
/// length and 64-bit FNV-1a hash of its bytes: a listing plus hashing, readable when two differ.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
    }
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").to_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                let to = std::fs::read_link(&path).expect("read link");
                out.insert(rel, format!("link -> {}", to.display()));
            } else if kind.is_dir() {
                out.insert(rel, "dir/".to_owned());
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                out.insert(rel, format!("{} bytes, fnv1a {:016x}", bytes.len(), fnv1a(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The loader's test corpus, built from `extensions/counter`, a few C sources and byte edits
/// (no binary is committed). Shared by the loader, C API, audit and fuzz tests.
pub mod loader_corpus {
    use std::path::{Path, PathBuf};

    use super::{Interpreter, build_c_source, build_extension, interpreters, link_libftshim, scratch};

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
        // A module that needs a C API the target does not have (CPython 3.14's
        // PyUnstable_IsImmortal): an undefined symbol renamed in place in the string tables.
        let (old, new) =
            (b"PyType_FromModuleAndSpec\0".as_slice(), b"PyUnstable_IsImmortal\0\0\0\0".as_slice());
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
}
