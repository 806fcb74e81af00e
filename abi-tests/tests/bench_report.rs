//! Smoke test of `make bench`'s scaling workload and report (src/bench.rs): the workload runs on
//! 3.13t and GIL 3.13 with tiny windows and gives every figure the report needs, and the report
//! draws a results file as a PNG and writes its tables between the markers of a copy of
//! docs/benchmarks.md, leaving the prose outside them alone. Nothing here depends on timing: the
//! numbers drawn are the fixture's below (plus the tiny run's scaling section, checked for shape
//! only). The figure needs the matplotlib venv `scripts/setup.sh` records; without it this fails
//! naming the fix.

use std::path::Path;

use ftshim_abi_tests::bench::{
    self, BEGIN, END, SCALING_INTERPRETERS, SCALING_LOOPS, Scaling, render, scaling_json,
};
use ftshim_abi_tests::{scratch, workspace_root};

/// A results file (schema 3) in the shape src/bin/bench.rs writes, with made-up numbers (so the
/// test can find them in the output) and the given scaling section.
fn fixture(scaling: serde_json::Value) -> serde_json::Value {
    let interp = |label: &str, version: &str, ft: bool| serde_json::json!({"label": label, "executable": format!("/fixture/python{label}"), "version": version, "free_threaded": ft});
    let pair = |shim: &str, native: &str, bar: bool, w: (f64, f64), i: (f64, f64)| {
        serde_json::json!({
            "ftshim": shim, "native": native, "bar_applies": bar,
            "wall_ns": {"ftshim": w.0, "native": w.1, "ratio": w.0 / w.1},
            "instructions": {"ftshim": i.0, "native": i.1, "ratio": i.0 / i.1},
        })
    };
    let kind = |rate: f64, fairness: Option<f64>, ratio: f64| serde_json::json!({"pairs_per_s": rate, "fairness": fairness, "ftshim_ratio": ratio});
    serde_json::json!({
        "schema": 3,
        "date": "2000-01-02T03:04:05Z",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "dirty": false,
        "cpus": 2,
        "interpreter": interp("3.13t", "3.13.99", true),
        "interpreters": [interp("3.13t", "3.13.99", true), interp("3.13", "3.13.98", false), interp("3.11", "3.11.97", false)],
        "wall": {"iterations": 1234, "rounds": 3},
        "callgrind_iterations": 5678,
        "pairs": [
            pair("cs_ftshim", "cs_native", true, (7.25, 7.0), (73.0, 73.0)),
            pair("cs_ftshim_fn", "cs_native", false, (8.0, 7.0), (83.0, 73.0)),
            pair("mutex_ftshim_fn", "mutex_native", false, (4.5, 4.75), (37.0, 12.0)),
            pair("future_loop", "future_native", false, (1.0, 2.0), (3.0, 4.0)),
        ],
        "checked_instructions": [{"loop": "mutex_ftshim_fn", "off": 37.0, "on": 529.0}],
        "refcount_2_threads_ns": {"mortal": 10.5, "immortal": 0.75},
        "contention_window": {"threads": 2, "seconds": 0.5, "rounds": 3},
        "contention": [
            {"interpreter": "3.13t", "ftshim": {"pairs_per_s": 21_000_000.0, "fairness": 1.25},
             "pymutex": kind(20_000_000.0, Some(1.5), 1.05), "pythread": kind(7_000_000.0, None, 3.0)},
            {"interpreter": "3.11", "ftshim": {"pairs_per_s": 40_000_000.0, "fairness": 1.0},
             "pythread": kind(10_000_000.0, Some(2.0), 4.0)},
        ],
        "scaling": scaling,
        "cli": {
            "check_one_file_ms": {"median": 3.25, "best": 3.125, "runs": 21},
            "audit_20_wheels_ms": {"median": 391.0, "best": 385.0, "runs": 5, "wheels": 20, "bytes": 56_000_000},
        },
    })
}

/// The part of `text` before [`BEGIN`] and after [`END`].
fn outside(text: &str) -> (&str, &str) {
    let (before, rest) = text.split_once(BEGIN).expect("a begin marker");
    let (_, after) = rest.split_once(END).expect("an end marker");
    (before, after)
}

/// The PNG's width and height from its IHDR chunk; panics unless `bytes` is a PNG.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

fn check_scaling_shape(results: &[Scaling]) {
    let labels: Vec<&str> = results.iter().map(|s| s.label).collect();
    assert_eq!(labels, SCALING_INTERPRETERS);
    for s in results {
        assert!(s.version.starts_with("3.13."), "{}: version {}", s.label, s.version);
        assert_eq!(s.free_threaded, s.label.ends_with('t'));
        let loops: Vec<&str> = s.loops.iter().map(|(l, _)| *l).collect();
        assert_eq!(loops, SCALING_LOOPS);
        for (name, l) in &s.loops {
            for r in [l.one, l.distinct, l.shared] {
                assert!(r.calls_per_s.is_finite() && r.calls_per_s >= 0.0, "{} {name}: {r:?}", s.label);
                assert!(r.cpu_share.is_finite() && r.cpu_share >= 0.0, "{} {name}: {r:?}", s.label);
                assert!(r.min_thread <= r.max_thread, "{} {name}: {r:?}", s.label);
            }
            assert_eq!(l.one.min_thread, l.one.max_thread, "one thread: fewest and most are the same");
        }
        for r in [s.control.one, s.control.two] {
            assert!(r.calls_per_s.is_finite() && r.calls_per_s >= 0.0, "{} control: {r:?}", s.label);
            assert!(r.min_thread <= r.max_thread, "{} control: {r:?}", s.label);
        }
    }
}

fn write_json(path: &Path, doc: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(doc).expect("json")).expect("write results");
}

#[test]
fn the_scaling_workload_runs_and_the_report_draws_it_into_the_marked_region() {
    // The real workload with 20 ms windows, one round: every figure is there (values unchecked).
    let live = bench::scaling(0.02, 1);
    check_scaling_shape(&live);

    let dir = scratch("bench-report");
    let docs = std::fs::read_to_string(workspace_root().join("docs/benchmarks.md")).expect("docs");
    let (png, md, results) = (dir.join("out.png"), dir.join("benchmarks.md"), dir.join("results.json"));

    // The live section is accepted by the report (the shape the bench writes).
    write_json(&results, &fixture(scaling_json(&live, 0.02, 1)));
    std::fs::write(&md, &docs).expect("copy docs");
    render(&results, &png, &md);
    let text = std::fs::read_to_string(&md).expect("markdown");
    assert_eq!(outside(&text), outside(&docs), "the text outside the markers changed");
    for s in &live {
        for lp in [
            "C loop | 2 threads, one shared cache",
            "Python loop | 1 thread",
            "control: C loop | 2 processes",
        ] {
            let row = format!("| {} ({}) | {lp} | ", s.label, s.version);
            assert!(text.contains(&row), "no row starting {row:?}:\n{text}");
        }
    }

    // A fixed scaling section: the output is a function of the results file alone.
    let rate = |calls: f64, lo: u64, hi: u64| bench::Rate {
        calls_per_s: calls,
        min_thread: lo,
        max_thread: hi,
        cpu_share: 0.5,
        voluntary_switches: 1234,
        involuntary_switches: 0,
    };
    let fixed: Vec<Scaling> = SCALING_INTERPRETERS
        .iter()
        .map(|&label| Scaling {
            label,
            version: "3.13.99".to_owned(),
            free_threaded: label.ends_with('t'),
            loops: SCALING_LOOPS
                .iter()
                .map(|&l| {
                    let one = rate(if l == "c" { 10_000_000.0 } else { 0.0 }, 5, 5);
                    (
                        l,
                        bench::LoopScaling {
                            one,
                            distinct: rate(19_000_000.0, 4, 6),
                            shared: rate(9_000_000.0, 4, 5),
                        },
                    )
                })
                .collect(),
            control: bench::Control { one: rate(10_000_000.0, 5, 5), two: rate(18_000_000.0, 8, 9) },
            other_cpus: 0.25,
        })
        .collect();
    write_json(&results, &fixture(scaling_json(&fixed, 0.5, 5)));
    let mut outputs = Vec::new();
    for _ in 0..2 {
        std::fs::write(&md, &docs).expect("copy docs");
        render(&results, &png, &md);
        outputs.push((std::fs::read(&png).expect("png"), std::fs::read_to_string(&md).expect("markdown")));
    }
    assert!(outputs[0] == outputs[1], "two renders of the same results differ");
    let (image, text) = &outputs[0];
    assert_eq!(png_size(image), (1500, 460));
    assert_eq!(outside(text), outside(&docs), "the text outside the markers changed");
    for expected in [
        "Run of 2000-01-02T03:04:05Z at commit `0123456789ab`, 2 CPUs",
        "![make bench: instructions per pair, contention ratios, scaling](out.png)",
        "best of 3 interleaved rounds x 1,234 iterations",
        "| `FTSHIM_BEGIN/END_CRITICAL_SECTION` | 7.25 | `Py_BEGIN/END_CRITICAL_SECTION` | 7.00 | 1.036 | 73.0 | 73.0 | 1.000 |",
        "| `future_loop` | 1.00 | `future_native` | 2.00 | 0.500 | 3.0 | 4.0 | 0.750 |",
        "| `mutex_ftshim_fn` | 37.0 | 529.0 | 14.3x |",
        "10.50 ns per pair on an ordinary object, 0.75 ns after `ftshim_object_set_immortal` (14.0x cheaper)",
        "| 3.13t | 3.13.99 | 21.00 M/s | 1.25 | 20.00 M/s | 1.50 | 1.050 | 7.00 M/s | — | 3.000 |",
        "| 3.11 | 3.11.97 | 40.00 M/s | 1.00 | — | — | — | 10.00 M/s | 2.00 | 4.000 |",
        "| 3.13t (3.13.99) | C loop | 1 thread | 10.00 M/s |  | 5 / 5 | 0.50 | 1,234 / 0 |",
        "| 3.13t (3.13.99) | C loop | 2 threads, distinct caches | 19.00 M/s | 1.90 | 4 / 6 | 0.50 | 1,234 / 0 |",
        "| 3.13t (3.13.99) | C loop | 2 threads, one shared cache | 9.00 M/s | 0.90 | 4 / 5 | 0.50 | 1,234 / 0 |",
        "| 3.13 (3.13.99) | Python loop | 2 threads, distinct caches | 19.00 M/s | — | 4 / 6 | 0.50 | 1,234 / 0 |",
        "| 3.13 (3.13.99) | control: C loop | 2 processes | 18.00 M/s | 1.80 | 8 / 9 | 0.50 | 1,234 / 0 |",
        "| 3.13t Python loop: 2 threads on distinct caches >= 1.8x 1 thread | —x | NOT met |",
        "CPUs other processes kept busy on average (/proc/stat less the bench's own CPU time): 0.25 during the 3.13t run, 0.25 during the 3.13 run;",
        "| section function pair, instructions vs the macro <= 1.15x | 1.137x | met |",
        "| mutex function pair, instructions vs the inline CAS pair <= 2.0x | 3.083x | NOT met |",
        "| contended ftshim_mutex on 3.13t >= 0.95x PyMutex | 1.050x | met |",
        "| contended ftshim_mutex on 3.11 >= 1.0x PyThread_type_lock | 4.000x | met |",
        "| contended ftshim_mutex on 3.12 >= 1.0x PyThread_type_lock | —x | NOT met |",
        "| 3.13t C loop: 2 threads on distinct caches >= 1.8x 1 thread | 1.90x | met |",
        "| warm `check` of one file | 3.2 ms | 3.1 ms | 21 | 50 ms |",
        "| `audit` of 20 wheels (56.0 MB) | 391 ms | 385 ms | 5 | 2 s |",
    ] {
        assert!(text.contains(expected), "the report lacks {expected:?}:\n{text}");
    }
}

#[test]
fn the_report_refuses_a_document_without_its_markers() {
    let dir = scratch("bench-report-markers");
    let (md, results) = (dir.join("plain.md"), dir.join("results.json"));
    std::fs::write(&md, "# No markers\n").expect("write");
    write_json(&results, &fixture(scaling_json(&[], 0.5, 5)));
    let err = std::panic::catch_unwind(|| render(&results, &dir.join("out.png"), &md))
        .expect_err("render of a document without markers must fail");
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    let expected = format!(
        "report.py: {}: expected one line {BEGIN} before one line {END}, found 0 and 0",
        md.display()
    );
    assert!(message.contains(&expected), "expected {expected:?} in:\n{message}");
    assert_eq!(std::fs::read_to_string(&md).expect("read"), "# No markers\n", "the document was changed");
}

#[test]
fn the_report_says_when_the_tree_had_uncommitted_changes() {
    let dir = scratch("bench-report-dirty");
    let (md, results, png) = (dir.join("benchmarks.md"), dir.join("results.json"), dir.join("out.png"));
    let mut doc = fixture(scaling_json(&[], 0.5, 5));
    doc["dirty"] = serde_json::json!(true);
    write_json(&results, &doc);
    std::fs::write(&md, format!("{BEGIN}\n{END}\n")).expect("write");
    render(&results, &png, &md);
    let text = std::fs::read_to_string(&md).expect("read");
    let expected = "Run of 2000-01-02T03:04:05Z at commit `0123456789ab` plus uncommitted changes, 2 CPUs";
    assert!(text.contains(expected), "the report lacks {expected:?}:\n{text}");

    doc["dirty"] = serde_json::json!("yes");
    write_json(&results, &doc);
    let err = std::panic::catch_unwind(|| render(&results, &png, &md)).expect_err("a string dirty must fail");
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    let expected = "report.py: results have dirty 'yes': expected true, false or null";
    assert!(message.contains(expected), "expected {expected:?} in:\n{message}");
}
