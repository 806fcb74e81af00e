//! ABI 1.0 on real interpreters (3.13t, 3.13, 3.11): mutual exclusion under every kind of section
//! and lock, two-object sections in opposite orders, the GIL-deadlock case, immortal objects,
//! statuses, static and dynamic linking together, and the ABI-version refusal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ftshim::status::*;
use ftshim_abi_tests::{
    BuildOptions, Interpreter, KINDS, build_extension, build_extension_with, interpreters, needed_libs,
    run_python, run_script, scratch, workspace_root,
};

const MINUTE: Duration = Duration::from_secs(60);

/// Builds `modules` for `interp` into a fresh scratch dir and returns it (the PYTHONPATH), with
/// the stress helpers beside them.
fn modules_dir(test: &str, label: &str, interp: &Interpreter, modules: &[&str]) -> PathBuf {
    let dir = scratch(&format!("{test}-{label}"));
    for m in modules {
        build_extension(m, interp, &dir);
    }
    std::fs::copy(workspace_root().join("abi-tests/py/common.py"), dir.join("common.py")).unwrap();
    dir
}

fn gil_expected(interp: &Interpreter) -> &'static str {
    if interp.free_threaded { "0" } else { "1" }
}

fn each_interpreter(f: impl Fn(&str, &Interpreter)) {
    for (label, interp) in interpreters().all() {
        f(label, interp);
    }
}

#[test]
fn two_threads_times_a_million_under_every_kind_is_exact() {
    const N: u32 = 1_000_000;
    each_interpreter(|label, interp| {
        let dir = modules_dir("exclusion", label, interp, &["probe"]);
        let n = N.to_string();
        let mut args = vec![n.as_str()];
        args.extend_from_slice(KINDS);
        args.push("none");
        let out = run_script(interp, &dir, "exclusion.py", &args, 3 * MINUTE);
        for kind in KINDS {
            assert_eq!(
                out[&format!("{kind}.observed")],
                out[&format!("{kind}.expected")],
                "{kind} on {label}"
            );
            assert_eq!(out[&format!("{kind}.locked_after")], "0", "{kind} left the mutex locked on {label}");
            println!(
                "{label}: {kind}: 2 x {N} -> {} in {} s",
                out[&format!("{kind}.observed")],
                out[&format!("{kind}.seconds")]
            );
        }
        assert_eq!(out[&format!("{}.expected", KINDS[0])], (2 * N).to_string());
        // The racy control on the same gated threads: lost updates show the loops overlapped.
        // Likely on 3.13t, impossible under a GIL; reported, not asserted.
        let lost = 2 * i64::from(N) - out["none.observed"].parse::<i64>().unwrap();
        println!("{label}: control without any lock: {} of {} updates lost", lost, 2 * N);
        assert_eq!(out["gil_enabled"], gil_expected(interp), "probe re-enabled the GIL on {label}");
    });
}

#[test]
fn opposite_order_two_object_sections_do_not_deadlock_and_keep_the_invariant() {
    const N: u64 = 1_000_000;
    const START: u64 = 1_000_000_000_000;
    each_interpreter(|label, interp| {
        let dir = modules_dir("transfers", label, interp, &["bank"]);
        let out = run_script(interp, &dir, "transfers.py", &[&N.to_string()], 3 * MINUTE);
        assert_eq!(out["transfers_ab"], N.to_string());
        assert_eq!(out["transfers_ba"], N.to_string());
        assert_eq!(out["balance_a"], (START - N + 3 * N).to_string());
        assert_eq!(out["balance_b"], (START + N - 3 * N).to_string());
        assert_eq!(out["total"], (2 * START).to_string());
        assert_eq!(out["violations"], "0", "a reader saw money in flight on {label}");
        assert_eq!(out["gil_enabled"], gil_expected(interp));
        println!(
            "{label}: 2 x {N} opposite-order transfers in {} s, {} invariant reads",
            out["seconds"], out["reads"]
        );
    });
}

#[test]
fn a_mutex_held_across_python_code_does_not_deadlock_its_waiters() {
    each_interpreter(|label, interp| {
        let dir = modules_dir("gil-deadlock", label, interp, &["probe", "cache"]);
        let out = run_script(interp, &dir, "gil_deadlock.py", &[], MINUTE);
        assert_eq!(out["probe_n"], "2000");
        assert_eq!(out["cache_first"], "computed");
        assert_eq!(out["cache_second"], "computed", "the waiter must get the value computed under the mutex");
        assert_eq!(out["cache_calls"], "slow", "the value must be computed once");
        assert_eq!(out["cache_stats"], "1,1", "one miss then one hit");
        assert_eq!(out["gil_enabled"], gil_expected(interp));
        println!("{label}: waiter finished after {} s / {} s", out["probe_seconds"], out["cache_seconds"]);
    });
}

#[test]
fn immortal_objects_stay_immortal_survive_and_refuse_what_is_unsafe() {
    const N: &str = "1000000";
    each_interpreter(|label, interp| {
        let dir = modules_dir("immortal", label, interp, &["probe", "constants"]);
        let out = run_script(interp, &dir, "immortal.py", &[N], 3 * MINUTE);
        let expect =
            |key: &str, value: ftshim_status| assert_eq!(out[key], value.to_string(), "{key} on {label}");
        expect("set_fresh", FTSHIM_OK);
        expect("is_fresh", ftshim_status(1));
        expect("set_again", FTSHIM_OK);
        expect("is_after_hammer", ftshim_status(1));
        expect("survives", ftshim_status(1));
        expect("is_after_collect", ftshim_status(1));
        expect("set_str", FTSHIM_ERR_STR);
        expect("set_str_subclass", FTSHIM_ERR_STR);
        expect("is_str", ftshim_status(0));
        expect("constants_immortal", ftshim_status(1));
        expect("constants_missing", ftshim_status(1));
        assert_eq!(out["constants_lookup"], "2500");
        if interp.free_threaded {
            // Another thread holds references / created the object: refused, left as it was.
            expect("set_shared", FTSHIM_ERR_SHARED);
            expect("is_shared", ftshim_status(0));
            expect("refcount_unchanged", ftshim_status(1));
            expect("set_foreign", FTSHIM_ERR_SHARED);
        } else {
            // Under the GIL the refcount write is safe whoever holds references.
            expect("set_shared", FTSHIM_OK);
            expect("set_foreign", FTSHIM_OK);
        }
        // 3.12+: CPython's own immortals (None) read as immortal; 3.11 has none.
        expect("is_none", ftshim_status(i32::from(interp.version >= (3, 12))));
        assert_eq!(out["gil_enabled"], gil_expected(interp));
    });
}

#[test]
fn statuses_for_null_arguments_and_misuse() {
    each_interpreter(|label, interp| {
        let dir = modules_dir("statuses", label, interp, &["probe"]);
        let out = run_python(
            interp,
            &dir,
            &["-c", "import probe\nfor k, v in sorted(probe.statuses().items()): print(f'{k}={v}')"],
        );
        assert!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
        let got: BTreeMap<String, String> = ftshim_abi_tests::parse_kv(&out.stdout);
        let expected: BTreeMap<String, String> = [
            ("cs_begin_null_storage", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs_begin_null_object", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs2_begin_null_object", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs_begin_mutex_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs_end_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs_end_without_begin", FTSHIM_ERR_NOT_ACTIVE),
            ("cs_begin", FTSHIM_OK),
            ("cs_end", FTSHIM_OK),
            ("cs_end_twice", FTSHIM_ERR_NOT_ACTIVE),
            ("mutex_unlock_unlocked", FTSHIM_ERR_NOT_LOCKED),
            ("mutex_unlock_unlocked_fn", FTSHIM_ERR_NOT_LOCKED),
            ("mutex_trylock", FTSHIM_OK),
            ("mutex_is_locked_held", ftshim_status(1)),
            ("mutex_trylock_held", FTSHIM_ERR_BUSY),
            ("mutex_trylock_held_fn", FTSHIM_ERR_BUSY),
            ("mutex_unlock", FTSHIM_OK),
            ("mutex_is_locked_free", ftshim_status(0)),
            ("mutex_lock_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("mutex_lock_null_fn", FTSHIM_ERR_NULL_ARGUMENT),
            ("mutex_unlock_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("mutex_trylock_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("mutex_is_locked_null", ftshim_status(0)),
            ("set_immortal_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("is_immortal_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs2_begin_mutex_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs2_begin_mutex_null_first", FTSHIM_ERR_NULL_ARGUMENT),
            ("cs2_mutex_same_begin", FTSHIM_OK),
            // One lock for the same mutex twice; on a GIL build mutex sections lock nothing.
            ("cs2_mutex_same_locked", ftshim_status(i32::from(interp.free_threaded))),
            ("cs2_mutex_same_end", FTSHIM_OK),
            ("cs2_mutex_same_unlocked", ftshim_status(0)),
            ("mutex_init_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("mutex_init_null_fn", FTSHIM_ERR_NULL_ARGUMENT),
            ("mutex_init_held", FTSHIM_OK),
            ("mutex_init_held_fn", FTSHIM_OK),
            ("mutex_init_leaves_unlocked", ftshim_status(0)),
            ("set_gil_null", FTSHIM_ERR_NULL_ARGUMENT),
            ("set_gil_null_fn", FTSHIM_ERR_NULL_ARGUMENT),
            // FT: CPython refuses a non-module; a GIL build has nothing to declare.
            (
                "set_gil_not_a_module",
                if interp.free_threaded { FTSHIM_ERR_INVALID_ARGUMENT } else { FTSHIM_OK },
            ),
            (
                "set_gil_not_a_module_fn",
                if interp.free_threaded { FTSHIM_ERR_INVALID_ARGUMENT } else { FTSHIM_OK },
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_string()))
        .collect();
        assert_eq!(got, expected, "{label}");
    });
}

#[test]
fn static_and_dynamic_users_of_ftshim_work_together_in_one_process() {
    each_interpreter(|label, interp| {
        let dir = modules_dir("together", label, interp, &["bank", "counter", "probe", "constants"]);
        let cache = build_extension_with(
            "cache",
            interp,
            &dir,
            &BuildOptions { static_link: true, ..Default::default() },
        );
        let needed = needed_libs(&cache);
        assert!(
            !needed.iter().any(|n| n.starts_with("libftshim")),
            "{label}: cache must link libftshim statically: {needed:?}"
        );
        let counter = dir.join(format!("counter{}", interp.ext_suffix));
        assert!(
            needed_libs(&counter).contains(&"libftshim.so.1".to_owned()),
            "{label}: counter links libftshim.so.1"
        );
        let out = run_script(interp, &dir, "together.py", &[], MINUTE);
        assert_eq!(out["counter"], "20000");
        assert_eq!(out["cache"], "1,1");
        assert_eq!(out["bank"], "3,10,90");
        assert_eq!(out["probe"], "20000");
        assert_eq!(out["constants"], "3");
        assert_eq!(out["file.cache"], cache.display().to_string());
        assert_eq!(out["gil_enabled"], gil_expected(interp));
    });
}

#[test]
fn a_module_built_for_a_newer_minor_abi_fails_its_import_cleanly() {
    let header = std::fs::read_to_string(workspace_root().join("include/ftshim.h")).unwrap();
    let (major, minor) = (ftshim::version::ABI_MAJOR, ftshim::version::ABI_MINOR);
    let bumped = header.replace(
        &format!("#define FTSHIM_ABI_VERSION_MINOR {minor}\n"),
        &format!("#define FTSHIM_ABI_VERSION_MINOR {}\n", minor + 1),
    );
    assert_ne!(bumped, header, "the header's minor version line was not found");
    each_interpreter(|label, interp| {
        let dir = scratch(&format!("abi-newer-{label}"));
        let hdr = dir.join("include");
        std::fs::create_dir_all(&hdr).unwrap();
        std::fs::write(hdr.join("ftshim.h"), &bumped).unwrap();
        build_extension_with(
            "counter",
            interp,
            &dir,
            &BuildOptions { header_dir: Some(hdr), ..Default::default() },
        );
        let out = run_python(interp, &dir, &["-c", "import counter"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{label}: {stderr}");
        let expected = format!(
            "ImportError: ftshim ABI mismatch: this module was compiled against ftshim ABI {major}.{}, but the loaded libftshim provides ABI {major}.{minor} (needs the same major and a minor >= {})",
            minor + 1,
            minor + 1
        );
        assert!(
            stderr.trim_end().ends_with(&expected),
            "{label}: got\n{stderr}\nwanted last line\n{expected}"
        );
    });
}

#[test]
fn sections_are_released_while_their_thread_blocks_and_a_plain_mutex_is_not() {
    each_interpreter(|label, interp| {
        let dir = modules_dir("release-on-block", label, interp, &["probe"]);
        let out = run_script(interp, &dir, "release_on_block.py", &[], MINUTE);
        // A thread sleeping inside a section suspends it (3.13t: CPython detaches and releases
        // every held section; GIL builds: sections are no-ops and sleep releases the GIL), so the
        // other thread gets through — for object sections and, on 3.13t through CPython's own
        // section stack, for mutex sections too.
        assert_eq!(out["section.contender_first"], "1", "{label}");
        assert_eq!(out["mutex_section.contender_first"], "1", "{label}");
        // A plain ftshim_mutex stays held while its holder sleeps: the other thread waits.
        assert_eq!(out["mutex.contender_first"], "0", "{label}");
        for way in ["section", "mutex_section", "mutex"] {
            assert_eq!(out[&format!("{way}.n")], "1000", "{label} {way}");
        }
        assert_eq!(out["gil_enabled"], gil_expected(interp));
    });
}

/// A single-phase module declares GIL freedom with `ftshim_module_set_gil_not_used` on every
/// build (inline form and function form); without it, free-threaded CPython re-enables the GIL.
#[test]
fn a_single_phase_module_keeps_the_gil_off_with_one_call() {
    let src = workspace_root().join("extensions/single/single.c");
    let probe = "import sys, warnings\nwarnings.simplefilter('error')\nbefore = sys._is_gil_enabled() if hasattr(sys, '_is_gil_enabled') else True\ntry:\n    import single\n    print('add', single.add(2, 3))\nexcept RuntimeWarning as w:\n    print('warning', w)\nprint('gil', before, sys._is_gil_enabled() if hasattr(sys, '_is_gil_enabled') else True)\n";
    each_interpreter(|label, interp| {
        for (variant, define) in [
            ("inline", None),
            ("function", Some("FTSHIM_NO_INLINE")),
            ("static", Some("FTSHIM_NO_INLINE")),
            ("control", Some("SINGLE_NO_DECLARATION")),
        ] {
            let dir = scratch(&format!("single-{variant}-{label}"));
            let opts = BuildOptions {
                static_link: variant == "static",
                defines: define.into_iter().collect(),
                ..BuildOptions::default()
            };
            let module = ftshim_abi_tests::build_module(&src, "single", interp, &dir, &opts);
            // What the loader reads from the file says the same as the import below.
            let gil = ftshim_loader::inspect(&module, &interp.target()).gil.expect("read");
            let expected_gil = match (interp.free_threaded, variant) {
                (true, "inline") => {
                    ("yes", "calls PyUnstable_Module_SetGIL; the value it passes is not read")
                }
                (_, "function") => {
                    ("yes", "calls ftshim_module_set_gil_not_used; the value it passes is not read")
                }
                // Linked in, libftshim looks CPython's function up at run time: not visible.
                (_, "static") => (
                    "unknown",
                    "single-phase init (PyModule_Create2) that may look up PyUnstable_Module_SetGIL at run time (it calls dlsym)",
                ),
                _ => ("no", "single-phase init (PyModule_Create2) without PyUnstable_Module_SetGIL"),
            };
            assert_eq!((gil.as_str(), gil.because()), expected_gil, "{label} {variant}");
            let out = run_python(interp, &dir, &["-c", probe]);
            assert!(out.status.success(), "{label} {variant}: {}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let expected = match (interp.free_threaded, variant) {
                (true, "control") => "warning The global interpreter lock (GIL) has been enabled to load module 'single', which has not declared that it can run safely without the GIL. To override this behavior and keep the GIL disabled (at your own risk), run with PYTHON_GIL=0 or -Xgil=0.\ngil False True\n".to_owned(),
                (true, _) => "add 5\ngil False False\n".to_owned(),
                (false, _) => "add 5\ngil True True\n".to_owned(),
            };
            assert_eq!(stdout, expected, "{label} {variant}");
        }
    });
}
