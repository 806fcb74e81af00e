//! The parts of `make bench` (src/bin/bench.rs) that its smoke test (tests/bench_report.rs) runs
//! too:
//!
//! - [`scaling()`]: a real workload, the cache extension (`extensions/cache`: a dict guarded by a
//!   per-object ftshim_mutex), at 1 and 2 threads, each thread on its own cache or all on one, on
//!   python3.13t and on GIL 3.13 for contrast (`abi-tests/bench/scaling.py`, with the start gate,
//!   timed window and C call loop of `abi-tests/bench/scalebench.c`);
//! - [`render`]: `results.json` drawn as a PNG and written as tables into a Markdown file between
//!   [`BEGIN`] and [`END`] (`abi-tests/bench/report.py`, run with the matplotlib venv that
//!   `scripts/setup.sh` records).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{
    BuildOptions, Interpreter, build_extension, build_module, interpreters, parse_kv, python_command, run_ok,
    run_python, scratch, workspace_root,
};

/// The interpreters the scaling workload runs on: the free-threaded build, and a GIL build of the
/// same version for contrast.
pub const SCALING_INTERPRETERS: &[&str] = &["3.13t", "3.13"];

/// The loops `scaling.py` calls the cache from: a C loop (`scalebench.calls`, the interpreter's
/// vectorcall without the bytecode) and a Python `for` loop.
pub const SCALING_LOOPS: &[&str] = &["c", "python"];

/// What 2 threads on distinct caches should reach on 3.13t, relative to 1 thread (2 cores: the
/// limit is 2.0).
pub const SCALING_GOAL: f64 = 1.8;

/// What `scaling.py` names its workload in the output.
pub const SCALING_WORKLOAD: &str =
    "extensions/cache: Cache.get hits over 64 small-int keys (a dict guarded by a per-object ftshim_mutex)";

/// The line that opens the generated region of a Markdown file.
pub const BEGIN: &str = "<!-- bench:begin -->";
/// The line that closes it.
pub const END: &str = "<!-- bench:end -->";

/// Calls per second over a timed window, summed over the threads, and the fewest and most calls
/// one thread made (how evenly the threads shared the window).
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// All threads' calls divided by the window's length.
    pub calls_per_s: f64,
    /// The fewest calls a thread made.
    pub min_thread: u64,
    /// The most calls a thread made.
    pub max_thread: u64,
    /// The CPU time the threads used in the window / (threads x window): 1.0 when every thread
    /// ran for the whole window; less when something (another process, the GIL) kept one off.
    pub cpu_share: f64,
    /// Context switches the threads asked for in the window (waits: the mutex, the GIL).
    pub voluntary_switches: u64,
    /// Context switches forced on them (another process wanted the CPU).
    pub involuntary_switches: u64,
}

impl Rate {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "calls_per_s": self.calls_per_s,
            "min_thread_calls": self.min_thread,
            "max_thread_calls": self.max_thread,
            "cpu_share": self.cpu_share,
            "voluntary_switches": self.voluntary_switches,
            "involuntary_switches": self.involuntary_switches,
        })
    }
}

/// One loop's three configurations (each its best round).
#[derive(Clone, Copy, Debug)]
pub struct LoopScaling {
    /// One thread on one cache.
    pub one: Rate,
    /// Two threads, each on its own cache (filled by that thread).
    pub distinct: Rate,
    /// Two threads on one cache (filled by the main thread).
    pub shared: Rate,
}

impl LoopScaling {
    /// 2 threads on distinct caches / 1 thread (NaN or infinite if 1 thread made no calls).
    pub fn ratio_distinct(&self) -> f64 {
        self.distinct.calls_per_s / self.one.calls_per_s
    }

    /// 2 threads on one shared cache / 1 thread.
    pub fn ratio_shared(&self) -> f64 {
        self.shared.calls_per_s / self.one.calls_per_s
    }
}

/// The scaling workload's results on one interpreter.
#[derive(Debug)]
pub struct Scaling {
    /// "3.13t", "3.13".
    pub label: &'static str,
    /// The interpreter's full version ("3.13.5").
    pub version: String,
    /// Whether it is a free-threaded build.
    pub free_threaded: bool,
    /// Each of [`SCALING_LOOPS`] with its results, in that order.
    pub loops: Vec<(&'static str, LoopScaling)>,
    /// The control: the C loop in 1 and in 2 separate processes.
    pub control: Control,
    /// How many CPUs other processes kept busy, on average, while the driver ran ([`CpuClock`]).
    pub other_cpus: f64,
}

/// The control run beside the workload: the same C loop on a cache of its own, in 1 and in 2
/// separate processes over one window (`scaling.py solo`, `scalebench.calls_between`). The same
/// code with nothing shared, not even the interpreter: its ratio is how far this code scales on
/// this machine at the time of the run (its cores, their clock speeds, its neighbours), the
/// ceiling to read the threads' ratios against.
#[derive(Clone, Copy, Debug)]
pub struct Control {
    /// One process.
    pub one: Rate,
    /// Two processes.
    pub two: Rate,
}

impl Control {
    /// 2 processes / 1 process.
    pub fn ratio(&self) -> f64 {
        self.two.calls_per_s / self.one.calls_per_s
    }
}

/// Busy CPU time of the whole machine (`/proc/stat`: user, nice, system, irq, softirq, steal, all
/// CPUs) and of this process with its waited-for children (`getrusage`), at one moment. Between
/// two readings, the difference of the two is what other processes used: on a shared machine,
/// what competed with the measured threads.
pub struct CpuClock {
    machine: f64,
    ours: f64,
    at: std::time::Instant,
}

impl CpuClock {
    /// Reads both clocks now. Panics if `/proc/stat` cannot be read (Linux only, as the bench is).
    pub fn now() -> CpuClock {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_else(|e| panic!("/proc/stat: {e}"));
        let line = stat.lines().find(|l| l.starts_with("cpu ")).expect("/proc/stat has a cpu line");
        let jiffies: Vec<f64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0.0)).collect();
        // user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
        let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| jiffies.get(i)).sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let rusage = |who| {
            // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: `ru` is a valid, writable rusage.
            let rc = unsafe { libc::getrusage(who, &mut ru) };
            assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            secs(ru.ru_utime) + secs(ru.ru_stime)
        };
        CpuClock {
            machine: busy / hz,
            ours: rusage(libc::RUSAGE_SELF) + rusage(libc::RUSAGE_CHILDREN),
            at: std::time::Instant::now(),
        }
    }

    /// CPUs other processes kept busy on average since `self` (never below 0: the two clocks
    /// tick at different granularities).
    pub fn other_cpus(&self) -> f64 {
        let now = CpuClock::now();
        let other = (now.machine - self.machine) - (now.ours - self.ours);
        (other / now.at.duration_since(self.at).as_secs_f64()).max(0.0)
    }
}

/// The interpreter's full version (`platform.python_version()`, "3.13.5"), run in `dir`.
pub fn python_version(interp: &Interpreter, dir: &Path) -> String {
    let out = run_python(interp, dir, &["-I", "-c", "import platform; print(platform.python_version())"]);
    crate::assert_success(&out, &format!("{} -c platform.python_version()", interp.executable.display()));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs the scaling workload on each of [`SCALING_INTERPRETERS`]: `rounds` interleaved rounds of
/// every loop and configuration, each a window of `seconds` (best round kept). Builds
/// `extensions/cache` and `abi-tests/bench/scalebench.c` for each interpreter first.
pub fn scaling(seconds: f64, rounds: u32) -> Vec<Scaling> {
    let driver = workspace_root().join("abi-tests/bench/scaling.py");
    let driver = driver.to_str().expect("utf-8 path");
    let gate = workspace_root().join("abi-tests/bench/scalebench.c");
    // Eight windows per round (two of them after a 0.5 s lead), plus start-up.
    let limit = Duration::from_secs_f64((seconds * 8.0 * 3.0 + 1.0) * f64::from(rounds) + 120.0);
    SCALING_INTERPRETERS
        .iter()
        .map(|&label| {
            let interp = interpreters().get(label);
            let dir = scratch(&format!("bench-scaling-{label}"));
            build_extension("cache", interp, &dir);
            build_module(&gate, "scalebench", interp, &dir, &BuildOptions::default());
            let (secs, rounds) = (seconds.to_string(), rounds.to_string());
            let mut cmd = python_command(&interp.executable, &dir, &[driver, &secs, &rounds]);
            let clock = CpuClock::now();
            let out = run_ok(&mut cmd, limit, &format!("scaling.py on {label}"));
            let other_cpus = clock.other_cpus();
            let values = parse_kv(&out.stdout);
            let rate = |key: String| -> Rate {
                let text = values.get(&key).unwrap_or_else(|| {
                    panic!(
                        "scaling.py on {label} printed no {key}:\n{}",
                        String::from_utf8_lossy(&out.stdout)
                    )
                });
                let fields: Vec<&str> = text.split(',').collect();
                let parsed = || -> Option<Rate> {
                    let [rate, min, max, share, voluntary, involuntary] = fields[..] else { return None };
                    Some(Rate {
                        calls_per_s: rate.parse().ok()?,
                        min_thread: min.parse().ok()?,
                        max_thread: max.parse().ok()?,
                        cpu_share: share.parse().ok()?,
                        voluntary_switches: voluntary.parse().ok()?,
                        involuntary_switches: involuntary.parse().ok()?,
                    })
                };
                parsed().unwrap_or_else(|| {
                    panic!("scaling.py on {label}: {key}={text} is not <calls/s>,<min>,<max>,<CPU share>,<voluntary>,<involuntary>")
                })
            };
            let loops = SCALING_LOOPS
                .iter()
                .map(|&l| {
                    let one = rate(format!("{l}.1.distinct"));
                    let distinct = rate(format!("{l}.2.distinct"));
                    let shared = rate(format!("{l}.2.shared"));
                    (l, LoopScaling { one, distinct, shared })
                })
                .collect();
            Scaling {
                label,
                version: python_version(interp, &dir),
                free_threaded: interp.free_threaded,
                loops,
                control: Control { one: rate("control.1.processes".to_owned()), two: rate("control.2.processes".to_owned()) },
                other_cpus,
            }
        })
        .collect()
}

/// The `scaling` section of `results.json` (schema 2). Ratios that cannot be computed (no calls
/// at 1 thread) are null.
pub fn scaling_json(results: &[Scaling], seconds: f64, rounds: u32) -> serde_json::Value {
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|s| {
            let loops: serde_json::Map<String, serde_json::Value> = s
                .loops
                .iter()
                .map(|(name, l)| {
                    let v = serde_json::json!({
                        "threads_1": l.one.json(),
                        "threads_2_distinct": l.distinct.json(),
                        "threads_2_shared": l.shared.json(),
                        "ratio_distinct": l.ratio_distinct(),
                        "ratio_shared": l.ratio_shared(),
                    });
                    ((*name).to_owned(), v)
                })
                .collect();
            serde_json::json!({
                "interpreter": s.label,
                "version": s.version,
                "free_threaded": s.free_threaded,
                "other_processes_cpus": s.other_cpus,
                "loops": loops,
                "control": {
                    "threads_1": s.control.one.json(),
                    "threads_2": s.control.two.json(),
                    "ratio": s.control.ratio(),
                },
            })
        })
        .collect();
    serde_json::json!({
        "workload": SCALING_WORKLOAD,
        "window_s": seconds,
        "rounds": rounds,
        "goal": {"interpreter": "3.13t", "layout": "distinct", "ratio": SCALING_GOAL},
        "results": results,
    })
}

/// The bench figure venv's interpreter (matplotlib), as `scripts/setup.sh` recorded it. Panics,
/// naming the fix, when it is not recorded or not there: the report must fail, not skip.
pub fn report_python() -> PathBuf {
    let record = crate::record_path();
    let python = interpreters().bench_python.clone().unwrap_or_else(|| {
        panic!(
            "{} records no FTSHIM_BENCH_PYTHON (the matplotlib venv the bench figure is drawn with); rerun `make setup`",
            record.display()
        )
    });
    assert!(
        python.is_file(),
        "FTSHIM_BENCH_PYTHON={} from {} does not exist; rerun `make setup`",
        python.display(),
        record.display()
    );
    python
}

/// Draws `results` (a `results.json`, schema 2) as `png` and rewrites the region of `markdown`
/// between [`BEGIN`] and [`END`] with the figure and the run's tables; the text outside the
/// markers is kept. Panics with the generator's output when it fails (a missing marker, a
/// results file of another shape).
pub fn render(results: &Path, png: &Path, markdown: &Path) {
    let script = workspace_root().join("abi-tests/bench/report.py");
    let args: Vec<&str> =
        [script.as_path(), results, png, markdown].iter().map(|p| p.to_str().expect("utf-8 path")).collect();
    let mut cmd = python_command(&report_python(), &workspace_root().join("abi-tests/bench"), &args);
    let out = run_ok(&mut cmd, Duration::from_secs(300), "abi-tests/bench/report.py");
    // Its verdicts on the performance issue's goals.
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("goal: ")) {
        println!("{line}");
    }
}
