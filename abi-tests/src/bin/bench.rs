//! `make bench`: ftshim against the native CPython primitive, in one process, on python3.13t.
//!
//! 1. Wall time: each loop timed in C (best of several runs) — ns per operation and the ratio to
//!    the native primitive measured in the same run.
//! 2. Instructions: the same loops under `valgrind --tool=callgrind`, inclusive instruction count
//!    per iteration (repeatable where wall time is noisy).
//! 3. The `ftshim` command: a warm `ftshim check` of one file (interpreter description cached on
//!    disk) and `ftshim audit` of a directory of 20 wheels, numpy's among them (bars: 50 ms and
//!    2 s). `ftshim-bench cli` runs only this part.
//! 4. Contention: ftshim_mutex against PyMutex and PyThread_type_lock, 2 OS threads, on every
//!    interpreter.
//! 5. Scaling: the cache extension at 1 and 2 threads, on distinct caches and on one shared cache,
//!    on python3.13t and GIL 3.13 ([`ftshim_abi_tests::bench::scaling`]). `ftshim-bench scaling`
//!    runs only this part.
//!
//! Then it writes `target/bench/results.json` (schema 3) and draws it: `docs/benchmarks.png` and
//! the generated region of `docs/benchmarks.md` ([`ftshim_abi_tests::bench::render`]);
//! `ftshim-bench report` redraws both from the last run's results.json.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};

use std::time::{Duration, Instant};

use ftshim_abi_tests::bench::{self, SCALING_WORKLOAD, Scaling};
use ftshim_abi_tests::pypi::{
    self, BENCH_WHEELS, CRYPTOGRAPHY_ABI3, CRYPTOGRAPHY_CP314T, NUMPY_CP313, NUMPY_CP313T,
};
use ftshim_abi_tests::{
    BuildOptions, artifacts, build_module, interpreters, parse_kv, run_python, scratch, workspace_root,
};

const WALL_N: &str = "5000000";
const WALL_REPEATS: &str = "11";
const CALLGRIND_N: u64 = 200_000;

/// (shim loop, native loop it is measured against, whether the ≤ 1.05× bar applies).
const PAIRS: &[(&str, &str, bool)] = &[
    ("cs_ftshim", "cs_native", true),
    ("cs_ftshim_fn", "cs_native", false),
    ("cs2_ftshim", "cs2_native", true),
    ("cs_mutex_ftshim", "cs_native", false),
    ("mutex_ftshim", "mutex_native", true),
    ("mutex_ftshim_fn", "mutex_native", false),
];
const BAR: f64 = 1.05;
/// The loops that go through libftshim's functions, which checked mode instruments.
const CHECKED_LOOPS: &[&str] = &["cs_ftshim_fn", "cs_mutex_ftshim", "mutex_ftshim_fn"];

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("scaling") {
        scaling();
        return ExitCode::SUCCESS;
    }
    if std::env::args().nth(1).as_deref() == Some("report") {
        render(&ftshim_abi_tests::target_dir().join("bench/results.json"));
        return ExitCode::SUCCESS;
    }
    let cli = cli_speed();
    if std::env::args().nth(1).as_deref() == Some("cli") {
        return ExitCode::SUCCESS;
    }
    let ft = &interpreters().ft;
    let dir = scratch("bench");
    let src = workspace_root().join("abi-tests/bench/ftbench.c");
    build_module(&src, "ftbench", ft, &dir, &BuildOptions::default());
    let script = workspace_root().join("abi-tests/bench/bench.py");
    let script = script.to_str().expect("utf-8 path");

    println!("ftshim bench on {} (uncontended unless noted)", ft.executable.display());
    let out = run_python(ft, &dir, &[script, "wall", WALL_N, WALL_REPEATS]);
    assert!(out.status.success(), "bench.py wall failed: {}", String::from_utf8_lossy(&out.stderr));
    let ns: BTreeMap<String, f64> =
        parse_kv(&out.stdout).into_iter().map(|(k, v)| (k, v.parse().unwrap())).collect();

    println!("\nwall time, best of {WALL_REPEATS} interleaved rounds x {WALL_N} iterations, timed in C");
    println!("  {:<18} {:>9} {:>14} {:>9} {:>7}", "ftshim", "ns/op", "native", "ns/op", "ratio");
    let mut over_bar = Vec::new();
    for &(shim, native, bar) in PAIRS {
        let ratio = ns[shim] / ns[native];
        let verdict = if !bar {
            ""
        } else if ratio <= BAR {
            "  <= 1.05"
        } else {
            over_bar.push(shim);
            "  OVER 1.05"
        };
        println!("  {shim:<18} {:>9.2} {native:>14} {:>9.2} {ratio:>7.3}{verdict}", ns[shim], ns[native]);
    }
    let (shared, immortal) = (ns["refcount_shared_2threads"], ns["refcount_immortal_2threads"]);
    println!("\nshared refcount, 2 threads doing Py_INCREF/Py_DECREF on one object at once (ns per pair)");
    println!(
        "  mortal {shared:.2}  immortal (ftshim_object_set_immortal) {immortal:.2}  -> {:.1}x cheaper",
        shared / immortal
    );

    println!("\ninstructions per iteration under callgrind (inclusive, {CALLGRIND_N} iterations)");
    let ir = match callgrind(ft, &dir, script, false) {
        Ok(ir) => ir,
        Err(e) => {
            eprintln!("callgrind: {e}");
            return ExitCode::FAILURE;
        }
    };
    for &(shim, native, _) in PAIRS {
        println!(
            "  {shim:<18} {:>7.1}   {native:<14} {:>7.1}   ratio {:.3}",
            ir[shim],
            ir[native],
            ir[shim] / ir[native]
        );
    }
    // Checked mode (FTSHIM_CHECKED=1): what the function forms cost with the checker on. The
    // inline forms are compiled without -DFTSHIM_CHECKED here, so they do not reach it.
    println!("\nchecked mode: instructions per iteration of the function forms, FTSHIM_CHECKED off / on");
    let checked = match callgrind(ft, &dir, script, true) {
        Ok(on) => on,
        Err(e) => {
            eprintln!("callgrind (checked mode): {e}");
            return ExitCode::FAILURE;
        }
    };
    for name in CHECKED_LOOPS {
        println!(
            "  {name:<18} off {:>7.1}   on {:>7.1}   x{:.1}",
            ir[*name],
            checked[*name],
            checked[*name] / ir[*name]
        );
    }
    let contention = contention();
    let scaling = scaling();
    let path = match write_json(ft, &ns, &ir, &checked, &contention, &scaling, &cli) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("writing the results: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\nresults: {}", path.display());
    render(&path);
    if !over_bar.is_empty() {
        println!("\nover the 1.05x bar this run (wall time): {}", over_bar.join(", "));
    }
    ExitCode::SUCCESS
}

/// Draws `results` as docs/benchmarks.png and into the generated section of docs/benchmarks.md
/// ([`bench::render`]). `ftshim-bench report` does only this, from the last run's results.json.
fn render(results: &std::path::Path) {
    let docs = workspace_root().join("docs");
    let (png, markdown) = (docs.join("benchmarks.png"), docs.join("benchmarks.md"));
    bench::render(results, &png, &markdown);
    println!("figure: {}", png.display());
    println!("tables: {} (between {} and {})", markdown.display(), bench::BEGIN, bench::END);
}

/// Seconds each scaling window lasts, and how many interleaved rounds (best kept).
const SCALING_SECONDS: f64 = 0.3;
const SCALING_ROUNDS: u32 = 10;

/// The scaling workload ([`bench::scaling`]), printed: calls per second at 1 thread and at 2
/// threads on distinct caches and on one shared cache, and the 2-thread/1-thread ratios (the
/// goal's verdict is printed with the others, by [`render`]).
fn scaling() -> Vec<Scaling> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("\nscaling: {SCALING_WORKLOAD}");
    println!(
        "  {SCALING_SECONDS} s windows x best of {SCALING_ROUNDS} interleaved rounds, threads started at a gate, timed in C; calls/s, ratio = 2 threads / 1 thread (limit 2.0 with {cpus} CPUs); cpu = CPU time the threads got / (threads x window); sw = context switches voluntary/involuntary; per thread = fewest/most calls"
    );
    let results = bench::scaling(SCALING_SECONDS, SCALING_ROUNDS);
    let m = |x: f64| x / 1e6;
    let usage = |r: bench::Rate| {
        format!("cpu {:.2}, sw {}/{}", r.cpu_share, r.voluntary_switches, r.involuntary_switches)
    };
    for s in &results {
        for (name, l) in &s.loops {
            let two = |r: bench::Rate, ratio: f64| {
                format!(
                    "{:>6.2}M ratio {ratio:.2} ({}, per thread {:.2}M/{:.2}M)",
                    m(r.calls_per_s),
                    usage(r),
                    m(r.min_thread as f64),
                    m(r.max_thread as f64)
                )
            };
            println!(
                "  {:<6} {name:<6}  1 thread   {:>6.2}M ({})",
                s.label,
                m(l.one.calls_per_s),
                usage(l.one)
            );
            println!("  {:<6} {name:<6}  2 distinct {}", s.label, two(l.distinct, l.ratio_distinct()));
            println!("  {:<6} {name:<6}  2 shared   {}", s.label, two(l.shared, l.ratio_shared()));
            if l.ratio_distinct() > 2.02 || l.ratio_shared() > 2.02 {
                println!(
                    "  {:<6} {name:<6}  a ratio above the 2.0 limit: something else slowed the 1-thread windows",
                    s.label
                );
            }
        }
        let c = s.control;
        println!(
            "  {:<6} control (the C loop in separate processes): 1 process {:.2}M ({}), 2 processes ratio {:.2} ({})",
            s.label,
            m(c.one.calls_per_s),
            usage(c.one),
            c.ratio(),
            usage(c.two)
        );
        println!(
            "  {:<6} other processes kept {:.2} CPUs busy on average meanwhile (/proc/stat less this bench's own CPU time)",
            s.label, s.other_cpus
        );
    }
    results
}

/// Writes this run's numbers to `target/bench/results.json` (schema 3): when, on what (every
/// interpreter with its full version), and every measured value — pairs, checked mode, shared
/// refcount, contention, scaling, the CLI — so runs can be compared and drawn. Returns the path.
fn write_json(
    ft: &ftshim_abi_tests::Interpreter,
    ns: &BTreeMap<String, f64>,
    ir: &BTreeMap<String, f64>,
    checked: &BTreeMap<String, f64>,
    contention: &[serde_json::Value],
    scaling: &[Scaling],
    cli: &serde_json::Value,
) -> Result<std::path::PathBuf, String> {
    let text = |cmd: &mut Command| {
        cmd.output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = text(Command::new("git").args(["rev-parse", "HEAD"]).current_dir(workspace_root()));
    // Changes to tracked files the commit does not have (the bench's own outputs aside): the
    // numbers then come from a tree no commit names, and the report says so.
    let dirty = text(Command::new("git").current_dir(workspace_root()).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!docs/benchmarks.md",
        ":!docs/benchmarks.png",
    ]))
    .map(|changes| !changes.is_empty());
    let date = text(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]));
    let pairs: Vec<serde_json::Value> = PAIRS
        .iter()
        .map(|&(shim, native, bar)| {
            serde_json::json!({
                "ftshim": shim, "native": native, "bar_applies": bar,
                "wall_ns": {"ftshim": ns[shim], "native": ns[native], "ratio": ns[shim] / ns[native]},
                "instructions": {"ftshim": ir[shim], "native": ir[native], "ratio": ir[shim] / ir[native]},
            })
        })
        .collect();
    let checked: Vec<serde_json::Value> = CHECKED_LOOPS
        .iter()
        .map(|&name| serde_json::json!({"loop": name, "off": ir[name], "on": checked[name]}))
        .collect();
    let dir = scratch("bench-versions");
    let describe = |label: &str, interp: &ftshim_abi_tests::Interpreter| {
        serde_json::json!({
            "label": label,
            "executable": interp.executable.display().to_string(),
            "version": bench::python_version(interp, &dir),
            "free_threaded": interp.free_threaded,
        })
    };
    let interpreters: Vec<serde_json::Value> =
        interpreters().all().into_iter().map(|(label, interp)| describe(label, interp)).collect();
    let number = |n: &str| n.parse::<u64>().map_err(|e| format!("{n}: {e}"));
    let doc = serde_json::json!({
        "schema": 3,
        "date": date,
        "commit": commit,
        "dirty": dirty,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "interpreter": describe("3.13t", ft),
        "interpreters": interpreters,
        "wall": {"iterations": number(WALL_N)?, "rounds": number(WALL_REPEATS)?},
        "callgrind_iterations": CALLGRIND_N,
        "pairs": pairs,
        "checked_instructions": checked,
        "refcount_2_threads_ns": {
            "mortal": ns["refcount_shared_2threads"],
            "immortal": ns["refcount_immortal_2threads"],
        },
        "contention_window": {"threads": 2, "seconds": CONTEND_SECONDS.parse::<f64>().map_err(|e| e.to_string())?, "rounds": CONTEND_ROUNDS},
        "contention": contention,
        "scaling": bench::scaling_json(scaling, SCALING_SECONDS, SCALING_ROUNDS),
        "cli": cli,
    });
    let dir = ftshim_abi_tests::target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("results.json");
    let body = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&path, body + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Seconds each contention round runs, and how many rounds per kind (interleaved; best kept).
const CONTEND_SECONDS: &str = "0.5";
const CONTEND_ROUNDS: usize = 3;

/// Two OS threads hammering one lock with a one-increment critical section, on every interpreter:
/// ftshim_mutex against CPython's PyMutex (3.13+) and against PyThread_type_lock (every version;
/// what 3.11/3.12 code uses without PyMutex). Prints and returns pairs per second and fairness.
fn contention() -> Vec<serde_json::Value> {
    let src = workspace_root().join("abi-tests/bench/contend.c");
    let driver = format!(
        "import contend, sys\nkinds = sys.argv[1:]\nbest = {{}}\nfor _ in range({CONTEND_ROUNDS}):\n    for k in kinds:\n        t, lo, hi = contend.run(k, 2, {CONTEND_SECONDS})\n        if t > best.get(k, (0,))[0]: best[k] = (t, lo, hi)\nfor k in kinds:\n    t, lo, hi = best[k]\n    print(f'{{k}}={{t}},{{lo}},{{hi}}')\n"
    );
    println!(
        "\ncontended: 2 OS threads, one lock, one increment inside, {CONTEND_SECONDS} s x best of {CONTEND_ROUNDS} (pairs/s; fairness = max/min pairs per thread)"
    );
    let mut out = Vec::new();
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("bench-contend-{label}"));
        build_module(&src, "contend", interp, &dir, &BuildOptions::default());
        let mut kinds = vec!["ftshim", "pythread"];
        if interp.version >= (3, 13) {
            kinds.insert(1, "pymutex");
        }
        let mut args = vec!["-c", driver.as_str()];
        args.extend_from_slice(&kinds);
        let run = run_python(interp, &dir, &args);
        assert!(run.status.success(), "contend on {label}: {}", String::from_utf8_lossy(&run.stderr));
        let values = parse_kv(&run.stdout);
        let secs: f64 = CONTEND_SECONDS.parse().expect("seconds");
        let rate = |k: &str| -> (f64, f64) {
            let v: Vec<f64> = values[k].split(',').map(|x| x.parse().expect("number")).collect();
            (v[0] / secs, if v[1] > 0.0 { v[2] / v[1] } else { f64::INFINITY })
        };
        let (shim, shim_fair) = rate("ftshim");
        let mut line = format!("  {label:<6} ftshim {:>12.0}/s (fairness {shim_fair:.2})", shim);
        let mut entry =
            serde_json::json!({"interpreter": label, "ftshim": {"pairs_per_s": shim, "fairness": shim_fair}});
        for k in &kinds[1..] {
            let (r, f) = rate(k);
            line.push_str(&format!("  {k} {r:>12.0}/s (fairness {f:.2}) ratio {:.3}", shim / r));
            entry[*k] = serde_json::json!({"pairs_per_s": r, "fairness": f, "ftshim_ratio": shim / r});
        }
        println!("{line}");
        out.push(entry);
    }
    out
}

/// Runs every loop once under callgrind (with `FTSHIM_CHECKED=1` when `checked`) and returns
/// inclusive instructions per iteration.
fn callgrind(
    ft: &ftshim_abi_tests::Interpreter,
    dir: &std::path::Path,
    script: &str,
    checked: bool,
) -> Result<BTreeMap<String, f64>, String> {
    let outfile = dir.join(if checked { "callgrind-checked.out" } else { "callgrind.out" });
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", outfile.display()))
        .arg(&ft.executable)
        .args([script, "once", &CALLGRIND_N.to_string()])
        .env("PYTHONPATH", dir)
        .env("PYTHON_GIL", "0")
        .env("FTSHIM_CHECKED", if checked { "1" } else { "0" })
        .status()
        .map_err(|e| format!("cannot run valgrind: {e} (scripts/setup.sh installs it)"))?;
    if !status.success() {
        return Err(format!("valgrind exited with {status}"));
    }
    let annotate = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(&outfile)
        .output()
        .map_err(|e| format!("cannot run callgrind_annotate: {e}"))?;
    let text = String::from_utf8_lossy(&annotate.stdout);
    let mut ir = BTreeMap::new();
    for line in text.lines() {
        // "  1,234,567 (12.3%)  ftbench.c:loop_cs_native [/path/ftbench...so]"
        let Some(pos) = line.find(":loop_") else { continue };
        let name: String = line[pos + 6..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let count: String = line.split_whitespace().next().unwrap_or("").replace(',', "");
        if let Ok(count) = count.parse::<u64>() {
            ir.insert(name, count as f64 / CALLGRIND_N as f64);
        }
    }
    for &(shim, native, _) in PAIRS {
        for name in [shim, native] {
            if !ir.contains_key(name) {
                return Err(format!(
                    "no inclusive count for loop_{name} in callgrind_annotate output:\n{text}"
                ));
            }
        }
    }
    Ok(ir)
}

/// Runs the `ftshim` CLI with `args` `runs` times (after one untimed run that warms the describe
/// cache and the page cache); returns the sorted wall times.
fn time_cli(args: &[&std::ffi::OsStr], runs: usize, ok: &[i32]) -> Vec<Duration> {
    let run = || {
        let start = Instant::now();
        let out = Command::new(&artifacts().cli).args(args).output().expect("run ftshim");
        let elapsed = start.elapsed();
        let code = out.status.code().unwrap_or(-1);
        assert!(
            ok.contains(&code),
            "ftshim {args:?} exited {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        elapsed
    };
    run();
    let mut times: Vec<Duration> = (0..runs).map(|_| run()).collect();
    times.sort();
    times
}

/// The `ftshim` command's speed: a warm `check` of one file (bar 50 ms) and an `audit` of a
/// directory of 20 wheels (bar 2 s), median and best of several runs.
fn cli_speed() -> serde_json::Value {
    let ft = &interpreters().ft;
    let py = ft.executable.as_os_str();
    let module = ft.lib_dynload.join(format!("_json{}", ft.ext_suffix));
    let check = time_cli(&["check".as_ref(), "--python".as_ref(), py, module.as_os_str()], 21, &[0]);

    let dir = scratch("bench-wheels");
    let mut wheels: Vec<&pypi::Wheel> = BENCH_WHEELS.iter().collect();
    wheels.extend([&NUMPY_CP313T, &NUMPY_CP313, &CRYPTOGRAPHY_CP314T, &CRYPTOGRAPHY_ABI3]);
    for w in &wheels {
        let cached = pypi::fetch(w);
        std::fs::copy(&cached, dir.join(w.file)).expect("copy a wheel");
    }
    let bytes: u64 =
        wheels.iter().map(|w| std::fs::metadata(dir.join(w.file)).map(|m| m.len()).unwrap_or(0)).sum();
    let audit = time_cli(&["audit".as_ref(), "--python".as_ref(), py, dir.as_os_str()], 5, &[0, 1]);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let bar = |d: Duration, limit: f64| if ms(d) <= limit { "within" } else { "OVER" };
    let (check_med, audit_med) = (check[check.len() / 2], audit[audit.len() / 2]);
    println!(
        "
ftshim command, wall time (describe cache warm)"
    );
    println!(
        "  check of one file ({}): median {:.1} ms, best {:.1} ms over {} runs ({} the 50 ms bar)",
        module.display(),
        ms(check_med),
        ms(check[0]),
        check.len(),
        bar(check_med, 50.0)
    );
    println!(
        "  audit of {} wheels ({:.1} MB, numpy 2.4.6 and 2.2.6 among them): median {:.0} ms, best {:.0} ms over {} runs ({} the 2 s bar)",
        wheels.len(),
        bytes as f64 / 1e6,
        ms(audit_med),
        ms(audit[0]),
        audit.len(),
        bar(audit_med, 2000.0)
    );
    serde_json::json!({
        "check_one_file_ms": {"median": ms(check_med), "best": ms(check[0]), "runs": check.len()},
        "audit_20_wheels_ms": {"median": ms(audit_med), "best": ms(audit[0]), "runs": audit.len(), "wheels": wheels.len(), "bytes": bytes},
    })
}
