//! The on-disk cache of interpreter descriptions: a warm `ftshim check` reuses it, and a changed
//! interpreter (here: a venv whose `pyvenv.cfg` is rewritten) is described afresh.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::{artifacts, interpreters, make_venv, output_within, scratch};

fn check(python: &Path, cache: &Path) {
    let ft = &interpreters().ft;
    let module = ft.lib_dynload.join(format!("_json{}", ft.ext_suffix));
    let mut cmd = Command::new(&artifacts().cli);
    cmd.args(["check", "--python"]).arg(python).arg(&module).env("FTSHIM_DESCRIBE_CACHE", cache);
    let out = output_within(&mut cmd, Duration::from_secs(120), "ftshim check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_description_is_reused_until_a_file_it_came_from_changes() {
    let dir = scratch("describe-cache");
    let cache = dir.join("cache");
    let python = make_venv(&interpreters().ft, &dir.join("venv"));
    check(&python, &cache);
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.starts_with("ftshim-describe 1\n"), "{text}");
    let cfg = dir.join("venv/pyvenv.cfg");
    let ids: Vec<&str> = text.lines().filter(|l| l.starts_with("id=")).collect();
    assert_eq!(ids.len(), 4, "resolved executable, pyvenv.cfg, sysconfigdata, libpython:\n{text}");
    assert!(ids.iter().any(|l| l.starts_with(&format!("id={} ", cfg.display()))), "{text}");
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    // Warm: the file is read, not rewritten.
    std::thread::sleep(Duration::from_millis(20));
    check(&python, &cache);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written);

    // pyvenv.cfg changes (size and mtime): described afresh, the new identity recorded.
    let mut cfg_text = std::fs::read_to_string(&cfg).unwrap();
    cfg_text.push_str("# changed\n");
    std::fs::write(&cfg, cfg_text).unwrap();
    check(&python, &cache);
    let again = std::fs::read_to_string(&files[0]).unwrap();
    assert_ne!(again, text, "the description was not refreshed");
    let size = std::fs::metadata(&cfg).unwrap().len();
    assert!(again.contains(&format!("id={} {size} ", cfg.display())), "{again}");
}
