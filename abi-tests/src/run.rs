//! Running things: Python drivers (on top of the deadline runner, [`ftshim_loader::child`]), the
//! `ftshim` CLI, any command under a time limit, and private virtual environments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ftshim_loader::child;

use crate::build::artifacts;
use crate::interpreters::Interpreter;
use crate::workspace_root;

/// Runs `interp` with `args`, `PYTHONPATH=<path>`, and no `PYTHON_GIL` override, so the GIL
/// state seen is the one the imported modules leave.
pub fn run_python(interp: &Interpreter, pythonpath: &Path, args: &[&str]) -> Output {
    python_command(&interp.executable, pythonpath, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", interp.executable.display()))
}

/// The command [`run_python`] runs, for callers that add to it (environment, time limit).
pub fn python_command(python: &Path, pythonpath: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
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
    timeout: Duration,
) -> BTreeMap<String, String> {
    run_script_env(interp, pythonpath, script, args, timeout, &[]).values
}

/// [`run_script`] with extra environment variables, returning its stderr too.
pub fn run_script_env(
    interp: &Interpreter,
    pythonpath: &Path,
    script: &str,
    args: &[&str],
    timeout: Duration,
    env: &[(String, String)],
) -> DriverRun {
    let path = workspace_root().join("abi-tests/py").join(script);
    run_driver(&interp.executable, pythonpath, &path, args, timeout, env)
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
    python: &Path,
    pythonpath: &Path,
    script: &Path,
    args: &[&str],
    timeout: Duration,
    env: &[(String, String)],
) -> DriverRun {
    let mut all = vec![script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let mut cmd = python_command(python, pythonpath, &all);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    // Drained while it runs: a chatty driver is not mistaken for a deadlocked one.
    let run = child::run_within(&mut cmd, timeout)
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let label = format!("{} {args:?} on {}", script.display(), python.display());
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
    run_counter_stress_on(&interp.executable, module_dir, threads, increments, unlocked)
}

/// [`run_counter_stress`] on the interpreter `python` (a virtual environment's, whose
/// site-packages holds an installed `counter`; `module_dir` may then be any directory).
pub fn run_counter_stress_on(
    python: &Path,
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
    run_driver(python, module_dir, &script, &args, Duration::from_secs(300), &[])
}

/// Runs the `ftshim` CLI with `args` (at most ten minutes); returns (exit code, stdout, stderr).
pub fn ftshim_cli(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let mut cmd = Command::new(&artifacts().cli);
    cmd.args(args);
    let out = output_within(&mut cmd, Duration::from_secs(600), "ftshim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ftshim <args>` whose stdout is a JSON document (`--json`, `--format json`): its exit code and
/// the document. Panics, with both outputs, when stdout is not JSON.
pub fn ftshim_json(args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value) {
    let (code, stdout, stderr) = ftshim_cli(args);
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout is not JSON:\n{stdout}\n{stderr}"));
    (code, doc)
}

/// The `code` of each reason of a report in ftshim's JSON (a file, module or wheel object).
pub fn reason_codes(report: &serde_json::Value) -> Vec<&str> {
    reason_field(report, "code")
}

/// The `message` of each reason of a report in ftshim's JSON.
pub fn reason_messages(report: &serde_json::Value) -> Vec<&str> {
    reason_field(report, "message")
}

fn reason_field<'a>(report: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    let reasons = report["reasons"].as_array().unwrap_or_else(|| panic!("no reasons in {report:#}"));
    reasons.iter().map(|r| r[field].as_str().unwrap_or_else(|| panic!("no {field} in {r}"))).collect()
}

/// Runs `cmd` (stdin `/dev/null`, stdout and stderr captured and drained while it runs), killing
/// it and panicking, naming `what`, if it has not finished within `limit`: a hang must fail a
/// test, not stall it.
pub fn output_within(cmd: &mut Command, limit: Duration, what: &str) -> Output {
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
/// Panics, naming `what` and showing everything it printed, unless `out` is a success.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`output_within`] that must succeed ([`assert_success`]).
pub fn run_ok(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let out = output_within(cmd, limit, what);
    assert_success(&out, what);
    out
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

/// Loads libftshim_loader with ctypes inside the interpreter through the one Python binding (the
/// guard's `Loader`, imported from cli/src/guard) and inspects with a NULL target: the running
/// process. Prints `status|codes|messages` per file.
const IN_PROCESS_PY: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
import _ftshim_guard
loader = _ftshim_guard.Loader(sys.argv[2])
for path in sys.argv[3:]:
    st, _, reasons = loader.inspect(path)
    print(st, ",".join(c for c, _ in reasons), " || ".join(m for _, m in reasons), sep="|")
"#;

/// The C API's inspection of each file inside `interp` itself (ctypes, NULL target: the running
/// process), through the shipped Python binding: `(status, codes joined by ",", messages joined
/// by " || ")` per file.
pub fn inspect_in_process(interp: &Interpreter, files: &[PathBuf]) -> Vec<(i32, String, String)> {
    let lib = artifacts().lib_dir.join("libftshim_loader.so.1");
    let binding = workspace_root().join("cli/src/guard");
    let mut cmd = Command::new(&interp.executable);
    // -B: importing the binding from the source tree writes no bytecode there.
    cmd.args(["-I", "-B", "-c", IN_PROCESS_PY]).arg(&binding).arg(&lib).args(files);
    let out = output_within(&mut cmd, Duration::from_secs(60), "ctypes inspection");
    assert!(
        out.status.success(),
        "{}: {}",
        interp.executable.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let st = parts.next().unwrap().parse().unwrap();
            (st, parts.next().unwrap().to_owned(), parts.next().unwrap_or_default().to_owned())
        })
        .collect()
}
