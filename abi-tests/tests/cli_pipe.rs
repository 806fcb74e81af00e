//! A closed output pipe (`ftshim audit ... | head -1`) ends the CLI quietly, killed by SIGPIPE as
//! any Unix filter is, never with a Rust panic and backtrace.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use ftshim_abi_tests::{artifacts, interpreters};

#[test]
fn a_closed_stdout_ends_check_and_audit_by_sigpipe_without_a_panic() {
    let ft = &interpreters().ft;
    for args in [
        vec![
            "audit".to_owned(),
            "--python".to_owned(),
            ft.executable.display().to_string(),
            ft.lib_dynload.display().to_string(),
        ],
        vec![
            "check".to_owned(),
            "--python".to_owned(),
            ft.executable.display().to_string(),
            ft.executable.display().to_string(),
        ],
    ] {
        let mut child = Command::new(&artifacts().cli)
            .args(&args)
            .env("FTSHIM_DESCRIBE_CACHE", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ftshim");
        // Close the read end before the command writes its first line (it describes the
        // interpreter first, through a child Python: the on-disk description cache is turned off,
        // or the whole output could fit in the pipe before the read end is closed): every write
        // then finds a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for ftshim");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {:?} {stderr}", out.status);
        assert_eq!(stderr, "", "{args:?}");
    }
}
