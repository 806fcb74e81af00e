//! The fixtures built with AddressSanitizer and UndefinedBehaviorSanitizer, run through the
//! mutual-exclusion, GIL-deadlock, immortal-object and status drivers on every interpreter. The
//! test proves the sanitizers are really there: the modules need libasan and libubsan, and the
//! running interpreter has libasan mapped.

use std::time::Duration;

use ftshim_abi_tests::{
    BuildOptions, build_extension_with, interpreters, needed_libs, run_script_env, sanitizer_env, scratch,
    workspace_root,
};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn sanitized_fixtures_run_clean_on_every_interpreter() {
    let env = sanitizer_env();
    let opts = BuildOptions { sanitize: true, ..Default::default() };
    for (label, interp) in interpreters().all() {
        let dir = scratch(&format!("sanitizers-{label}"));
        for m in ["probe", "cache", "constants"] {
            let module = build_extension_with(m, interp, &dir, &opts);
            let needed = needed_libs(&module);
            for lib in ["libasan.so.8", "libubsan.so.1"] {
                assert!(needed.contains(&lib.to_owned()), "{label}: {m} does not link {lib}: {needed:?}");
            }
        }
        std::fs::copy(workspace_root().join("abi-tests/py/common.py"), dir.join("common.py")).unwrap();
        let check = run_script_env(interp, &dir, "sanitized.py", &[], MINUTE, &env).values;
        assert_eq!(check["asan_mapped"], "1", "{label}: libasan is not in the process");
        assert_eq!(check["statuses_ok"], "1", "{label}: {check:?}");
        let kinds = ["100000", "section", "section_fn", "section2", "mutex", "mutex_fn", "mutex_section"];
        let out = run_script_env(interp, &dir, "exclusion.py", &kinds, 3 * MINUTE, &env).values;
        for kind in &kinds[1..] {
            assert_eq!(out[&format!("{kind}.observed")], out[&format!("{kind}.expected")], "{label} {kind}");
        }
        let out = run_script_env(interp, &dir, "gil_deadlock.py", &[], MINUTE, &env).values;
        assert_eq!(out["probe_n"], "2000", "{label}");
        let out = run_script_env(interp, &dir, "immortal.py", &["100000"], 3 * MINUTE, &env).values;
        assert_eq!(out["is_after_hammer"], "1", "{label}");
        assert_eq!(out["survives"], "1", "{label}");
    }
}
