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

pub use ftshim::loader::describe::Interpreter;

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
            ftshim::loader::describe::describe(Path::new(exe))
                .unwrap_or_else(|e| panic!("{key} from {}: {e}; rerun `make setup`", path.display()))
        };
        Interpreters { ft: get("FTSHIM_PY_FT"), gil313: get("FTSHIM_PY_GIL313"), py311: get("FTSHIM_PY_311") }
    })
}

/// Built artifacts: the release libftshim (cdylib, staticlib) and the `ftshim` CLI.
pub struct Artifacts {
    /// Directory holding `libftshim.so` and `libftshim.a`.
    pub lib_dir: PathBuf,
    /// The `ftshim` executable.
    pub cli: PathBuf,
}

/// Builds (or finds up to date) the release libftshim and CLI, once per process. libftshim is
/// built on its own so the CLI's features never enter the cdylib.
pub fn artifacts() -> &'static Artifacts {
    static CELL: OnceLock<Artifacts> = OnceLock::new();
    CELL.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        for package in ["ftshim", "ftshim-cli"] {
            let status = Command::new(&cargo)
                .args(["build", "--release", "--quiet", "-p", package])
                .current_dir(workspace_root())
                .status()
                .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
            assert!(status.success(), "cargo build --release -p {package} failed ({status})");
        }
        let lib_dir = target_dir().join("release");
        let artifacts = Artifacts { cli: lib_dir.join("ftshim"), lib_dir };
        for f in [
            artifacts.lib_dir.join("libftshim.so"),
            artifacts.lib_dir.join("libftshim.a"),
            artifacts.cli.clone(),
        ] {
            assert!(f.is_file(), "{} missing after cargo build", f.display());
        }
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
    let compiler = build
        .include(workspace_root().join("include"))
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

/// Copies `libftshim.so` into `dir` as `libftshim.so.1` (its SONAME) and returns the linker
/// arguments that link it with rpath `$ORIGIN`, so a binary in `dir` finds it at run time.
pub fn link_libftshim(dir: &Path) -> Vec<String> {
    let lib_dir = &artifacts().lib_dir;
    std::fs::copy(lib_dir.join("libftshim.so"), dir.join("libftshim.so.1"))
        .unwrap_or_else(|e| panic!("copy libftshim.so.1 into {}: {e}", dir.display()));
    vec![format!("-L{}", lib_dir.display()), "-lftshim".to_owned(), "-Wl,-rpath,$ORIGIN".to_owned()]
}

/// Runs a compiler or linker command; on failure panics with its stderr.
fn run_tool(cmd: &mut Command, what: &str, file: &Path, interp: &Interpreter) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} {} for {} failed: {cmd:?}\n{}",
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
    let path = workspace_root().join("abi-tests/py").join(script);
    let mut all = vec![path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let mut child = python_command(interp, pythonpath, &all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", interp.executable.display()));
    let start = std::time::Instant::now();
    let timed_out = loop {
        if child.try_wait().expect("wait for python").is_some() {
            break false;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("collect python output");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let label = format!("{script} {args:?} on {}", interp.executable.display());
    assert!(
        !timed_out,
        "{label} did not finish within {timeout:?} (deadlock?)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(out.status.success(), "{label} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    parse_kv(&out.stdout)
}

/// Parses `key=value` lines (the stress driver's output).
pub fn parse_kv(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Result of one run of `extensions/counter/stress.py`.
#[derive(Debug)]
pub struct StressRun {
    /// Every `key=value` the driver printed.
    pub values: BTreeMap<String, String>,
    /// What the interpreter wrote to stderr (warnings land here).
    pub stderr: String,
}

impl StressRun {
    /// An integer field; panics naming the field and the whole output if absent.
    pub fn int(&self, key: &str) -> i64 {
        self.values.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            panic!("stress output has no integer {key}: {:?}\nstderr: {}", self.values, self.stderr)
        })
    }
}

/// Runs the counter stress driver on `interp` against the module built in `module_dir`.
pub fn run_counter_stress(
    interp: &Interpreter,
    module_dir: &Path,
    threads: u32,
    increments: u32,
    unlocked: bool,
) -> StressRun {
    let script = workspace_root().join("extensions/counter/stress.py");
    let (t, n) = (threads.to_string(), increments.to_string());
    let mut args = vec![script.to_str().expect("utf-8 path"), t.as_str(), n.as_str()];
    if unlocked {
        args.push("--unlocked");
    }
    let out = run_python(interp, module_dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{stderr}",
        interp.executable.display(),
        out.status
    );
    StressRun { values: parse_kv(&out.stdout), stderr }
}

/// Runs the `ftshim` CLI with `args`; returns (exit code, stdout, stderr).
pub fn ftshim_cli(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(&artifacts().cli).args(args).output().expect("run ftshim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
