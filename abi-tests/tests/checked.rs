//! Checked mode (`FTSHIM_CHECKED`), on every interpreter: the locking bugs it exists for are
//! found — an AB/BA pair and a three-lock cycle taken in threads that never deadlock, a re-lock
//! by the owner (a status, not a hang), an unlock from the wrong thread, a section ended out of
//! order — and correct programs (the examples, and the stress tests of tests/api.rs, built in
//! checked mode) report nothing, in abort mode.
//!
//! `extensions/checked` drives it from Python; it and the examples are built with
//! `-DFTSHIM_CHECKED`, so every section and mutex operation goes through libftshim.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ftshim_abi_tests::{
    BuildOptions, Interpreter, KINDS, build_extension_with, interpreters, output_within, python_command,
    run_script_env, scratch, workspace_root,
};

/// Builds `extensions/<name>/<name>.c` with `-DFTSHIM_CHECKED` into `dir`.
fn build_checked(name: &str, interp: &Interpreter, dir: &Path) -> PathBuf {
    build_extension_with(
        name,
        interp,
        dir,
        &BuildOptions { defines: vec!["FTSHIM_CHECKED"], ..Default::default() },
    )
}

/// Runs `script` with `FTSHIM_CHECKED=<mode>`; returns (exit code or -signal, stdout, stderr).
fn run(interp: &Interpreter, dir: &Path, mode: &str, script: &str) -> (i32, String, String) {
    let mut cmd = python_command(&interp.executable, dir, &["-c", script]);
    cmd.env("FTSHIM_CHECKED", mode);
    let out = output_within(&mut cmd, Duration::from_secs(60), "a checked-mode script");
    use std::os::unix::process::ExitStatusExt;
    let code = out.status.code().unwrap_or_else(|| -out.status.signal().unwrap_or(0));
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PRELUDE: &str = "import sys, threading, warnings\nimport checked as c\nwarnings.simplefilter('always')\ndef thread(f):\n    t = threading.Thread(target=f); t.start(); t.join()\n";

/// Each line of stderr that checked mode wrote, with thread ids and addresses replaced.
fn reports(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("ftshim checked: "))
        .map(|l| {
            let mut out = String::new();
            for word in l.split(' ') {
                let (head, word) = word.strip_prefix('(').map_or(("", word), |w| ("(", w));
                out.push_str(head);
                let w = word.trim_end_matches([';', ',', ':', ')']);
                let tail = &word[w.len()..];
                if w.starts_with("0x") {
                    out.push_str("ADDR");
                } else if w.starts_with("checked.") && w.ends_with(".so") {
                    out.push_str("MODULE");
                } else if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) {
                    out.push('T');
                } else {
                    out.push_str(w);
                }
                out.push_str(tail);
                out.push(' ');
            }
            out.trim_end().to_owned()
        })
        .collect()
}

#[test]
fn checked_mode_finds_each_locking_bug_on_every_interpreter() {
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("checked-{label}"));
        build_checked("checked", interp, &dir);

        // AB/BA in two threads, one after the other: no deadlock happens, the inversion is found.
        let script = format!(
            "{PRELUDE}print('mode', c.mode())\nthread(lambda: (c.lock(0), c.lock(1), c.unlock(1), c.unlock(0)))\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n    print('locks', c.lock(1), c.lock(0))\n    print('warned', [(x.category.__name__, str(x.message).split(':')[1].strip()) for x in w])\nc.unlock(0); c.unlock(1)\nprint('findings', [(k, l) for k, l, t in c.findings()])\n"
        );
        let (code, out, err) = run(interp, &dir, "1", &script);
        assert_eq!(code, 0, "{label}: {err}");
        assert_eq!(
            out,
            "mode 1\nlocks 0 0\nwarned [('RuntimeWarning', 'lock-order inversion')]\nfindings [('lock-order inversion', ['m1', 'm0'])]\n",
            "{label}: {err}"
        );
        assert_eq!(
            reports(&err),
            vec![
                "ftshim checked: lock-order inversion: thread T takes mutex ADDR (in MODULE) while holding ADDR (in MODULE); thread T took them in the other order (ADDR (in MODULE) -> ADDR (in MODULE))"
            ],
            "{label}: {err}"
        );

        // A three-lock cycle: 0->1, 1->2, then 2->0.
        let script = format!(
            "{PRELUDE}thread(lambda: (c.lock(0), c.lock(1), c.unlock(1), c.unlock(0)))\nthread(lambda: (c.lock(1), c.lock(2), c.unlock(2), c.unlock(1)))\nthread(lambda: (c.lock(2), c.lock(0), c.unlock(0), c.unlock(2)))\nprint([(k, l) for k, l, t in c.findings()])\n"
        );
        let (code, out, err) = run(interp, &dir, "1", &script);
        assert_eq!(code, 0, "{label}: {err}");
        assert_eq!(out, "[('lock-order inversion', ['m2', 'm0'])]\n", "{label}: {err}");
        assert_eq!(
            reports(&err),
            vec![
                "ftshim checked: lock-order inversion: thread T takes mutex ADDR (in MODULE) while holding ADDR (in MODULE); thread T took them in the other order (ADDR (in MODULE) -> ADDR (in MODULE) -> ADDR (in MODULE))"
            ],
            "{label}"
        );

        // A re-lock by the owner returns FTSHIM_ERR_WOULD_DEADLOCK (-13) at once; a wrong-thread
        // unlock is reported; an out-of-order end is reported and refused with
        // FTSHIM_ERR_OUT_OF_ORDER (-14), leaving both sections to end in order; nesting in order
        // is not reported. The thread that locks m2 and exits is found at its exit (a pthread key
        // destructor, which runs after join() returns: the script waits for it).
        let script = format!(
            "{PRELUDE}print('relock', c.lock(3), c.lock(3), c.unlock(3))\nthread(lambda: c.lock(2))\nimport time\nend = time.time() + 10\nwhile not any(f[0] == 'held at thread exit' for f in c.findings()) and time.time() < end:\n    time.sleep(0.01)\nprint('unlock', c.unlock(2))\nprint('sections', c.begin(0, 0), c.begin(1, 1, 2), c.end(0), c.end(1), c.end(0))\nprint('nested', c.begin(0, 0), c.begin(1, 1), c.end(1), c.end(0))\nprint([(k, l) for k, l, t in c.findings()])\n"
        );
        let (code, out, err) = run(interp, &dir, "1", &script);
        assert_eq!(code, 0, "{label}: {err}");
        assert_eq!(
            out,
            "relock 0 -13 0\nunlock 0\nsections 0 0 -14 0 0\nnested 0 0 0 0\n[('self-deadlock', ['m3']), ('held at thread exit', ['m2']), ('unlock by a thread that does not hold it', ['m2']), ('section ended out of order', ['s0', 's1'])]\n",
            "{label}: {err}"
        );

        // Off: nothing is checked (the re-lock is refused by nobody: use trylock to show it), and
        // sections take their fast path. Then turned on from code (an unknown mode is refused):
        // a section on a mutex the thread holds is refused too, so sections left their fast
        // path; the findings cleared; off again, sections work.
        let script = format!(
            "{PRELUDE}print(c.mode(), c.lock(3), c.trylock(3), c.unlock(3), c.begin(0, 3), c.end(0), c.findings())\nprint(c.set_mode(7), c.set_mode(1), c.mode(), c.lock(3), c.lock(3), c.begin(0, 3), c.unlock(3), len(c.findings()), c.clear(), c.findings())\nprint(c.set_mode(0), c.begin(0, 3), c.end(0), c.findings())\n"
        );
        let (code, out, err) = run(interp, &dir, "0", &script);
        assert_eq!(
            (code, out.as_str()),
            (0, "0 0 -5 0 0 0 []\n-9 0 1 0 -13 -13 0 2 0 []\n0 0 0 []\n"),
            "{label}: {err}"
        );

        // Abort mode: the first finding aborts the process after its report.
        let script = format!("{PRELUDE}c.lock(0); c.lock(0)\nprint('not reached')\n");
        let (code, out, err) = run(interp, &dir, "abort", &script);
        assert_eq!((code, out.as_str()), (-6, ""), "{label}: {err}");
        assert_eq!(
            reports(&err),
            vec!["ftshim checked: self-deadlock: thread T: ADDR (in MODULE)"],
            "{label}"
        );
        assert!(
            err.contains("ftshim: fatal: FTSHIM_CHECKED=abort: a finding was reported (above)\n"),
            "{err}"
        );

        // The early-exit helper: a hit and a miss (the miss returns early inside the section).
        let script =
            format!("{PRELUDE}d = {{'a': 1}}\nprint(c.lookup(d, 'a'), c.lookup(d, 'b'), c.findings())\n");
        let (code, out, err) = run(interp, &dir, "1", &script);
        assert_eq!((code, out.as_str()), (0, "1 None []\n"), "{label}: {err}");
    }
}

/// Correct programs report nothing: the counter (object sections, 4 threads) and the bank
/// (two-object sections and a mutex, transfers in both directions), built in checked mode and run
/// with `FTSHIM_CHECKED=abort`, so any finding would kill the run.
#[test]
fn correct_programs_report_nothing_in_checked_mode() {
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("checked-correct-{label}"));
        for name in ["checked", "counter", "bank", "cache"] {
            build_checked(name, interp, &dir);
        }
        let script = format!(
            "{PRELUDE}import counter, bank, cache\nctr = counter.Counter()\na, b = bank.Account(1000), bank.Account(1000)\nk = cache.Cache()\ndef work(i):\n    def f():\n        for n in range(2000):\n            ctr.increment()\n            bank.transfer(a, b, 1) if i % 2 else bank.transfer(b, a, 1)\n            k.get_or_compute(n % 50, lambda: n * 2)\n    return f\nts = [threading.Thread(target=work(i)) for i in range(4)]\n[t.start() for t in ts]; [t.join() for t in ts]\nprint(c.mode(), ctr.value, bank.total(a, b), c.findings())\n"
        );
        let (code, out, err) = run(interp, &dir, "abort", &script);
        assert_eq!((code, out.as_str()), (0, "2 8000 2000 []\n"), "{label}: {err}");
    }
}

/// Without checked mode: ending a section that is not the calling thread's innermost one — out of
/// order, or on another thread — returns `FTSHIM_ERR_OUT_OF_ORDER` (-14) and ends nothing on the
/// free-threaded build, where CPython would otherwise unlink the wrong section and the process
/// would die later ("PyMutex_Unlock: unlocking mutex that is not locked"); the sections then end
/// in order and their mutexes are free. On GIL builds sections are no-ops: the misplaced end
/// succeeds (0) and the later end of the same storage says it is not active (-3).
#[test]
fn misused_section_ends_return_a_status_and_the_process_lives() {
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("checked-misuse-{label}"));
        build_extension_with("checked", interp, &dir, &BuildOptions::default());
        let script = format!(
            "{PRELUDE}print('order', c.begin(0, 0), c.begin(1, 1), c.end(0), c.end(1), c.end(0))\nc.begin(2, 2)\nr = []\nthread(lambda: r.append(c.end(2)))\nprint('thread', r[0], c.end(2))\nprint('free', [c.trylock(i) for i in range(3)], [c.unlock(i) for i in range(3)], c.mode(), c.findings())\n"
        );
        let (code, out, err) = run(interp, &dir, "0", &script);
        // GIL builds: the misplaced end ends its (no-op) section, so the later one finds it ended.
        let (order, thread) =
            if interp.free_threaded { ("0 0 -14 0 0", "-14 0") } else { ("0 0 0 0 -3", "0 -3") };
        assert_eq!(
            (code, out),
            (0, format!("order {order}\nthread {thread}\nfree [0, 0, 0] [0, 0, 0] 0 []\n")),
            "{label}: {err}"
        );
    }
}

/// The object-section functions, whose 3.13t path does CPython 3.13's own section code in
/// libftshim (docs/benchmarks.md): ending a section that is not the thread's innermost, or on
/// another thread, is refused (-14) with both objects still locked; a thread that detaches with
/// two sections open has both suspended and the top one resumed, and ending the top then resumes
/// the one below (CPython's `_PyCriticalSection_Resume`); a section begun with checked mode off
/// ends quietly after it was switched on. Objects' locks (`ob_mutex`) are read after each step.
/// GIL builds: no-ops, no locks; the misplaced end ends its section (0), the later one -3.
#[test]
fn object_section_functions_keep_cpythons_stack_through_misuse_and_suspension() {
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("checked-objects-{label}"));
        build_extension_with("checked", interp, &dir, &BuildOptions::default());
        let script = format!(
            "{PRELUDE}class O: pass\na, b = O(), O()\nL = lambda: (c.olocked(a), c.olocked(b))\nprint('order', c.obegin(0, a), c.obegin(1, b), c.end(0), L(), c.end(1), c.end(0), L())\nc.obegin(2, a)\nr = []\nthread(lambda: r.append(c.end(2)))\nprint('thread', r[0], L(), c.end(2), L())\nprint('resume', c.obegin(0, a), c.obegin(1, b), c.detach(), L(), c.end(1), L(), c.end(0), L())\nprint('toggle', c.obegin(3, a), c.set_mode(1), c.end(3), L(), c.set_mode(0), c.findings())\n"
        );
        let (code, out, err) = run(interp, &dir, "0", &script);
        let expected = if interp.free_threaded {
            "order 0 0 -14 (1, 1) 0 0 (0, 0)\nthread -14 (1, 0) 0 (0, 0)\nresume 0 0 None (0, 1) 0 (1, 0) 0 (0, 0)\ntoggle 0 0 0 (0, 0) 0 []\n"
        } else {
            "order 0 0 0 (0, 0) 0 -3 (0, 0)\nthread 0 (0, 0) -3 (0, 0)\nresume 0 0 None (0, 0) 0 (0, 0) 0 (0, 0)\ntoggle 0 0 0 (0, 0) 0 []\n"
        };
        assert_eq!((code, out.as_str()), (0, expected), "{label}: {err}");
    }
}

/// The stress tests of `tests/api.rs` (every kind of section and lock under two racing threads,
/// opposite-order two-object transfers, a mutex held across Python code), their modules built
/// with `-DFTSHIM_CHECKED` and run with `FTSHIM_CHECKED=abort`: exact results, exit 0, and not one
/// line from the checker. A fifth of api.rs's iterations: every operation takes the checker's
/// lock-order table.
#[test]
fn the_api_stress_tests_report_nothing_in_checked_mode() {
    const N: u32 = 200_000;
    let env = [("FTSHIM_CHECKED".to_owned(), "abort".to_owned())];
    let minutes = Duration::from_secs(180);
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("checked-stress-{label}"));
        for name in ["probe", "bank", "cache"] {
            build_checked(name, interp, &dir);
        }
        std::fs::copy(workspace_root().join("abi-tests/py/common.py"), dir.join("common.py")).unwrap();
        let gil = if interp.free_threaded { "0" } else { "1" };

        let n = N.to_string();
        let mut args = vec![n.as_str()];
        args.extend_from_slice(KINDS);
        let run = run_script_env(interp, &dir, "exclusion.py", &args, minutes, &env);
        for kind in KINDS {
            let v = |key: &str| run.values[&format!("{kind}.{key}")].clone();
            assert_eq!(v("observed"), v("expected"), "{kind} on {label}");
            assert_eq!(run.values[&format!("{kind}.locked_after")], "0", "{kind} on {label}");
        }
        assert_eq!(run.values[&format!("{}.expected", KINDS[0])], (2 * N).to_string());
        assert_eq!(run.values["gil_enabled"], gil, "{label}");
        assert_eq!(reports(&run.stderr), Vec::<String>::new(), "{label}: exclusion");

        let run = run_script_env(interp, &dir, "transfers.py", &[&n], minutes, &env);
        const START: u64 = 1_000_000_000_000;
        let n64 = u64::from(N);
        assert_eq!(run.values["balance_a"], (START + 2 * n64).to_string(), "{label}");
        assert_eq!(run.values["balance_b"], (START - 2 * n64).to_string(), "{label}");
        assert_eq!(run.values["violations"], "0", "{label}");
        assert_eq!(reports(&run.stderr), Vec::<String>::new(), "{label}: transfers");

        let run = run_script_env(interp, &dir, "gil_deadlock.py", &[], minutes, &env);
        assert_eq!(run.values["cache_stats"], "1,1", "{label}");
        assert_eq!(run.values["probe_n"], "2000", "{label}");
        assert_eq!(reports(&run.stderr), Vec::<String>::new(), "{label}: gil_deadlock");
        println!("{label}: api.rs stress ({N} iterations) clean in checked abort mode");
    }
}
