//! What `check` and `audit` print about files with hostile or non-UTF-8 names: text, JUnit and the
//! messages escape control characters (a crafted name cannot forge a line); JSON keeps the exact
//! bytes of a path that is not UTF-8 and SARIF percent-encodes them; and special files whose
//! `open` fails (a socket, `/dev/tty` without a controlling terminal) are `not-regular-file`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::{
    artifacts, build_extension, interpreters, link_libftshim, output_within, pypi, reason_codes,
    reason_messages, scratch,
};
use serde_json::Value;

/// `ftshim <command> --python <python3.13t> <args...>`: exit code and the raw stdout and stderr.
fn ftshim(command: &str, args: &[&OsStr]) -> (i32, Vec<u8>, Vec<u8>) {
    let mut cmd = Command::new(&artifacts().cli);
    cmd.arg(command).arg("--python").arg(&interpreters().ft.executable).args(args);
    let out = output_within(&mut cmd, Duration::from_secs(300), "ftshim");
    (out.status.code().unwrap_or(-1), out.stdout, out.stderr)
}

fn json(stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(stdout)))
}

/// Panics when `out` holds a control character (C0 but `\n`, DEL, C1) or a Unicode line or
/// paragraph separator or bidirectional formatting character, naming the first.
fn assert_no_controls(what: &str, out: &[u8]) {
    let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e})"));
    let bad = text.char_indices().find(|&(_, c)| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    if let Some((at, c)) = bad {
        panic!("{what}: raw {c:?} at byte {at}:\n{text}");
    }
}

/// The FT counter example copied into `dir` under each of `names` (with libftshim.so.1 beside
/// them): each exports `PyInit_counter` only, so each is refused with `init-mismatch`.
fn counters(dir: &Path, names: &[&OsStr]) -> Vec<PathBuf> {
    let ft = &interpreters().ft;
    let build = dir.join("build");
    std::fs::create_dir_all(&build).unwrap();
    let counter = build_extension("counter", ft, &build);
    names
        .iter()
        .map(|name| {
            let mut file = name.to_os_string();
            file.push(&ft.ext_suffix);
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::copy(&counter, &path).unwrap();
            link_libftshim(path.parent().unwrap());
            path
        })
        .collect()
}

#[test]
fn control_characters_in_names_are_escaped_in_text_junit_and_messages() {
    let sfx = &interpreters().ft.ext_suffix;
    let dir = scratch("output-crafted");
    let d = dir.display();
    let files =
        counters(&dir, &[OsStr::new("evil\nACCEPT forged\x1b[31mred"), OsStr::new("nel\u{85}x\u{2028}y\\z")]);
    let [evil, nel] = [files[0].as_os_str(), files[1].as_os_str()];
    let evil_shown = format!("{d}/evil\\nACCEPT forged\\x1b[31mred{sfx}");
    let nel_shown = format!("{d}/nel\\u{{85}}x\\u{{2028}}y\\\\z{sfx}");

    let (code, stdout, stderr) = ftshim("check", &[evil, nel]);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&stderr));
    assert_no_controls("check", &stdout);
    let text = String::from_utf8(stdout).unwrap();
    assert!(!text.lines().any(|l| l.starts_with("ACCEPT")), "a forged line:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&format!("REFUSE {evil_shown}").as_str()), "{text}");
    assert!(lines.contains(&format!("REFUSE {nel_shown}").as_str()), "{text}");
    assert!(
        lines.contains(
            &format!(
                "  [init-mismatch] {evil_shown}: must export the init function named after the file: expected 'PyInit_evil\\nACCEPT forged\\x1b[31mred', found 'PyInit_counter'"
            )
            .as_str()
        ),
        "{text}"
    );
    assert!(text.ends_with("0 accepted, 2 refused, 0 unreadable\n"), "{text}");

    // audit: the table's module names, the details and the distribution lines.
    let (code, stdout, _) = ftshim("audit", &[dir.as_os_str()]);
    assert_eq!(code, 1);
    assert_no_controls("audit", &stdout);
    let text = String::from_utf8(stdout).unwrap();
    assert!(!text.lines().any(|l| l.starts_with("ACCEPT") || l.starts_with("forged")), "{text}");
    assert!(
        text.contains("\nevil\\nACCEPT forged\\x1b[31mred  cpython-313t-x86_64-linux-gnu  refused"),
        "{text}"
    );
    assert!(text.contains("\nevil\\nACCEPT forged\\x1b[31mred:\n  [init-mismatch] "), "{text}");
    assert!(text.contains("\n  (no distribution) nel\\u{85}x\\u{2028}y\\\\z: refused\n"), "{text}");

    // JUnit: the same escaped text in attributes and bodies.
    let (_, stdout, _) = ftshim("check", &[OsStr::new("--format"), OsStr::new("junit"), evil, nel]);
    assert_no_controls("junit", &stdout);
    let xml = String::from_utf8(stdout).unwrap();
    assert!(xml.contains(&format!("file=\"{evil_shown}\"")), "{xml}");
    assert!(xml.contains("name=\"evil\\nACCEPT forged\\x1b[31mred\""), "{xml}");

    // JSON keeps the exact path (JSON escapes it); its messages are the escaped text.
    let (_, stdout, _) = ftshim("check", &[OsStr::new("--json"), evil]);
    let doc = json(&stdout);
    let file = &doc["files"][0];
    assert_eq!(file["path"], files[0].to_str().unwrap());
    assert_eq!(file.get("path_hex"), None, "a UTF-8 path has no path_hex");
    assert!(reason_messages(file)[0].starts_with(&format!("{evil_shown}: ")), "{file:#}");
}

/// Lower-case hex of `bytes`, decoded back (what a consumer of `path_hex` does).
fn unhex(hex: &str) -> Vec<u8> {
    assert_eq!(hex.len() % 2, 0, "{hex}");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// Percent-decodes a URI's path (what a SARIF consumer does to find the file).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn a_path_that_is_not_utf8_leads_back_to_its_file_in_json_sarif_and_text() {
    let sfx = &interpreters().ft.ext_suffix;
    let dir = scratch("output-bytes");
    let files = counters(&dir, &[OsStr::from_bytes(b"d\xff/counter"), OsStr::from_bytes(b"d\xff/other")]);
    let (good, other) = (&files[0], &files[1]);
    let shown = format!("{}/d\\xff", dir.display());

    let (code, stdout, _) = ftshim("check", &[OsStr::new("--json"), good.as_os_str(), other.as_os_str()]);
    assert_eq!(code, 1);
    let doc = json(&stdout);
    for (file, path) in doc["files"].as_array().unwrap().iter().zip(&files) {
        assert_eq!(file["path"], path.to_string_lossy().as_ref());
        let hex = file["path_hex"].as_str().unwrap_or_else(|| panic!("no path_hex: {file:#}"));
        assert_eq!(unhex(hex), path.as_os_str().as_bytes());
    }
    assert_eq!(doc["files"][0]["verdict"], "accepted");
    assert_eq!(reason_codes(&doc["files"][1]), ["init-mismatch"]);
    assert!(reason_messages(&doc["files"][1])[0].starts_with(&format!("{shown}/other{sfx}: ")));

    // audit --json: the same fields for what it found.
    let (_, stdout, _) = ftshim("audit", &[OsStr::new("--json"), dir.as_os_str()]);
    let doc = json(&stdout);
    let modules = doc["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 3, "{doc:#}");
    assert_eq!(modules[0]["module"], "build.counter");
    assert_eq!(modules[0].get("path_hex"), None);
    let found: Vec<PathBuf> = modules
        .iter()
        .filter_map(|m| m.get("path_hex"))
        .map(|hex| PathBuf::from(OsStr::from_bytes(&unhex(hex.as_str().unwrap()))))
        .collect();
    assert_eq!(found, files);

    // Text: the byte written \xff, so the line still names the file.
    let (_, stdout, _) = ftshim("check", &[good.as_os_str()]);
    assert_no_controls("check", &stdout);
    let text = String::from_utf8(stdout).unwrap();
    assert!(text.contains(&format!("\nACCEPT {shown}/counter{sfx}\n")), "{text}");

    // SARIF: the artifact URI percent-encodes the bytes, decodes to the file, and validates.
    let (_, stdout, _) = ftshim("check", &[OsStr::new("--format"), OsStr::new("sarif"), other.as_os_str()]);
    let sarif_file = dir.join("out.sarif");
    std::fs::write(&sarif_file, &stdout).unwrap();
    pypi::assert_valid_sarif(&sarif_file);
    let doc = json(&stdout);
    let uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(uri.contains("/d%FF/other"), "{uri}");
    let path = uri.strip_prefix("file://").unwrap_or_else(|| panic!("{uri} is not absolute"));
    assert_eq!(percent_decode(path), other.as_os_str().as_bytes());

    // JUnit: escaped like the text.
    let (_, stdout, _) = ftshim("check", &[OsStr::new("--format"), OsStr::new("junit"), other.as_os_str()]);
    let xml = String::from_utf8(stdout).unwrap();
    assert!(xml.contains(&format!("file=\"{shown}/other{sfx}\"")), "{xml}");
}

#[test]
fn a_socket_and_dev_tty_are_not_regular_files_even_when_open_fails() {
    let sfx = &interpreters().ft.ext_suffix;
    let dir = scratch("output-special");
    let socket = dir.join(format!("s{sfx}"));
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let (code, stdout, stderr) = ftshim("check", &[socket.as_os_str()]);
    assert_eq!(code, 2);
    let line = format!(
        "[not-regular-file] {}: cannot read: expected a regular file, found a socket",
        socket.display()
    );
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(stdout.contains(&format!("UNREADABLE {}\n  {line}\n", socket.display())), "{stdout}");
    assert_eq!(String::from_utf8(stderr).unwrap(), format!("ftshim check: {line}\n"));

    // /dev/tty in a new session (no controlling terminal): open fails with ENXIO, as Python
    // shows first, so the classification comes from stat.
    let setsid = |cmd: &mut Command| {
        // SAFETY: setsid is async-signal-safe; the closure touches nothing else between fork and
        // exec.
        unsafe {
            cmd.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
        }
    };
    let mut py = Command::new(&interpreters().ft.executable);
    py.args([
        "-I",
        "-c",
        "import errno, os\ntry:\n    os.open('/dev/tty', os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)\nexcept OSError as e:\n    print(errno.errorcode[e.errno])",
    ]);
    setsid(&mut py);
    let out = output_within(&mut py, Duration::from_secs(60), "python");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ENXIO\n", "{}", String::from_utf8_lossy(&out.stderr));
    let mut cmd = Command::new(&artifacts().cli);
    cmd.args(["check", "--json", "--python"]).arg(&interpreters().ft.executable).arg("/dev/tty");
    setsid(&mut cmd);
    let out = output_within(&mut cmd, Duration::from_secs(60), "ftshim check /dev/tty");
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out.stdout);
    let file = &doc["files"][0];
    assert_eq!(reason_codes(file), ["suffix-mismatch", "not-regular-file"]);
    assert_eq!(
        reason_messages(file)[1],
        "/dev/tty: cannot read: expected a regular file, found a character device"
    );
    assert_eq!(file["verdict"], "unreadable");
}
