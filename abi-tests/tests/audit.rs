//! `ftshim audit`: every extension module of the free-threaded interpreter, the JSON and table
//! outputs, `--import` (import errors and the Py_mod_gil question), and exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::corpus::{KEEPS_GIL_SOURCE, RAISES_SOURCE};
use ftshim_abi_tests::{artifacts, build_c_source, build_extension, interpreters, output_within, scratch};
use serde_json::Value;

fn audit(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let mut cmd = Command::new(&artifacts().cli);
    cmd.arg("audit").args(args);
    let out = output_within(&mut cmd, Duration::from_secs(300), "ftshim audit");
    let code = out.status.code().unwrap_or_else(|| panic!("ftshim audit died: {:?}", out.status));
    (code, String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn module<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == name)
        .unwrap_or_else(|| panic!("no module {name} in {doc:#}"))
}

#[test]
fn every_lib_dynload_module_of_the_free_threaded_interpreter_is_accepted_and_imports_with_the_gil_off() {
    let ft = &interpreters().ft;
    let (code, stdout, stderr) =
        audit(&["--json".as_ref(), "--import".as_ref(), "--python".as_ref(), ft.executable.as_os_str()]);
    let doc: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: stdout is not JSON:\n{stdout}"));
    assert_eq!(doc["target"]["ext_suffix"], ft.ext_suffix.as_str());
    assert_eq!(doc["target"]["free_threaded"], true);
    assert_eq!(doc["dirs"][0], ft.lib_dynload.display().to_string(), "lib-dynload is searched by default");
    let mut expected: Vec<String> = std::fs::read_dir(&ft.lib_dynload)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(&ft.ext_suffix))
        .map(|n| n[..n.find('.').unwrap()].to_owned())
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 77);
    let prefix = format!("{}/", ft.lib_dynload.display());
    let in_dynload: Vec<&Value> = doc["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["path"].as_str().unwrap().starts_with(&prefix))
        .collect();
    let names: Vec<&str> = in_dynload.iter().map(|m| m["module"].as_str().unwrap()).collect();
    assert_eq!(names, expected);
    for m in &in_dynload {
        assert_eq!(m["verdict"], "accepted", "{m:#}");
        assert_eq!(m["tag"], "cpython-313t-x86_64-linux-gnu");
        assert_eq!(m["reasons"], Value::Array(vec![]));
        assert_eq!(m["import"]["status"], "ok", "{m:#}");
        assert_eq!(m["import"]["gil_enabled_after"], false, "{m:#}");
    }
    // The exit status agrees with the whole document (site-packages is searched too).
    let s = &doc["summary"];
    let findings = s["refused"].as_u64().unwrap()
        + s["imported"]["error"].as_u64().unwrap()
        + s["imported"]["crashed"].as_u64().unwrap()
        + s["imported"]["timeout"].as_u64().unwrap()
        + s["imported"]["gil_reenabled"].as_u64().unwrap();
    let expected_code = if s["unreadable"] != 0 {
        2
    } else if findings > 0 {
        1
    } else {
        0
    };
    assert_eq!(code, expected_code, "{s:#}\n{stderr}");
    // Importing 77 modules takes more than a moment: progress went to stderr, never stdout.
    assert!(
        stderr.lines().any(|l| l.starts_with("audit: importing ") && l.ends_with("/77")),
        "stderr: {stderr}"
    );
}

/// A directory holding the example, a package with the example as a submodule, a module that
/// keeps the GIL, one whose init fails, the GIL build under the FT name, and a plain library.
fn sample(dir: &Path) -> PathBuf {
    let all = interpreters();
    let root = dir.join("site");
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::create_dir_all(root.join("bad")).unwrap();
    let counter = build_extension("counter", &all.ft, &root);
    std::fs::write(root.join("pkg/__init__.py"), "").unwrap();
    std::fs::copy(&counter, root.join("pkg").join(counter.file_name().unwrap())).unwrap();
    std::fs::copy(root.join("libftshim.so.1"), root.join("pkg/libftshim.so.1")).unwrap();
    build_c_source("keepsgil", KEEPS_GIL_SOURCE, &all.ft, &root);
    build_c_source("raises", RAISES_SOURCE, &all.ft, &root);
    let gil = build_extension("counter", &all.gil313, &mkdir(dir.join("gil-build")));
    std::fs::copy(gil, root.join("bad").join(counter.file_name().unwrap())).unwrap();
    // Its libftshim.so.1 beside it ($ORIGIN), so it is refused for its build only.
    std::fs::copy(root.join("libftshim.so.1"), root.join("bad/libftshim.so.1")).unwrap();
    let plain = build_c_source(
        "plain",
        "int plain_answer(void);\nint plain_answer(void) { return 42; }\n",
        &all.ft,
        &mkdir(dir.join("plain")),
    );
    std::fs::copy(plain, root.join("libplain.so")).unwrap();
    root
}

fn mkdir(dir: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn import_reports_errors_and_modules_that_re_enable_the_gil() {
    let ft = &interpreters().ft;
    let root = sample(&scratch("audit-import"));
    let py = ft.executable.as_os_str();
    let (code, stdout, stderr) =
        audit(&["--json".as_ref(), "--import".as_ref(), "--python".as_ref(), py, root.as_os_str()]);
    assert_eq!(code, 1, "refused, a failed import and a GIL re-enabled: exit 1\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let names: Vec<&str> =
        doc["modules"].as_array().unwrap().iter().map(|m| m["module"].as_str().unwrap()).collect();
    assert_eq!(names, ["bad.counter", "counter", "keepsgil", "pkg.counter", "raises"]);

    let bad = module(&doc, "bad.counter");
    assert_eq!(bad["verdict"], "refused");
    assert_eq!(bad["reasons"][0]["code"], "gil-build");
    assert_eq!(bad["import"], Value::Null, "refused modules are not imported");
    for name in ["counter", "pkg.counter"] {
        let m = module(&doc, name);
        assert_eq!(m["verdict"], "accepted", "{m:#}");
        assert_eq!(m["import"]["status"], "ok", "{m:#}");
        assert_eq!(m["import"]["gil_enabled_after"], false, "{m:#}");
        assert_eq!(m["import"]["gil_reenabled"], false);
    }
    let keeps = module(&doc, "keepsgil");
    assert_eq!(keeps["verdict"], "accepted");
    assert_eq!(
        keeps["inconclusive"].as_array().unwrap().len(),
        1,
        "no refcounting evidence in it: {keeps:#}"
    );
    assert_eq!(keeps["import"]["status"], "ok");
    assert_eq!(keeps["import"]["gil_enabled_after"], true);
    assert_eq!(keeps["import"]["gil_reenabled"], true);
    assert_eq!(
        keeps["import"]["warnings"][0],
        "RuntimeWarning: The global interpreter lock (GIL) has been enabled to load module 'keepsgil', which has not declared that it can run safely without the GIL. To override this behavior and keep the GIL disabled (at your own risk), run with PYTHON_GIL=0 or -Xgil=0."
    );
    let raises = module(&doc, "raises");
    assert_eq!(raises["import"]["status"], "error");
    assert_eq!(raises["import"]["error"], "RuntimeError: raises refuses to initialise");
    let skipped = doc["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:#?}");
    assert_eq!(skipped[0]["path"], root.join("libplain.so").display().to_string());
    let s = &doc["summary"];
    assert_eq!(
        (s["modules"].as_u64(), s["accepted"].as_u64(), s["refused"].as_u64()),
        (Some(5), Some(4), Some(1))
    );
    assert_eq!(s["imported"]["total"], 4);
    assert_eq!(s["imported"]["ok"], 3);
    assert_eq!(s["imported"]["error"], 1);
    assert_eq!(s["imported"]["gil_reenabled"], 1);

    // The table says the same.
    let (code, table, _) = audit(&["--import".as_ref(), "--python".as_ref(), py, root.as_os_str()]);
    assert_eq!(code, 1);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("MODULE"), "MODULE TAG VERDICT REASON IMPORT GIL");
    assert_eq!(row("bad.counter"), "bad.counter cpython-313t-x86_64-linux-gnu refused gil-build - -");
    assert_eq!(row("counter"), "counter cpython-313t-x86_64-linux-gnu accepted - ok off");
    assert_eq!(
        row("keepsgil"),
        "keepsgil cpython-313t-x86_64-linux-gnu accepted - ok ON (re-enabled by this module)"
    );
    assert_eq!(row("raises"), "raises cpython-313t-x86_64-linux-gnu accepted - error off");
    assert!(
        table.contains("\naudited 5 extension modules in 1 directory: 4 accepted, 1 refused, 0 unreadable (2 with inconclusive notes); skipped 1 other shared libraries\nimported 4 accepted modules in child interpreters: 3 ok, 1 import errors, 0 crashed, 0 timed out; GIL re-enabled by 1\n"),
        "{table}"
    );
    assert!(table.contains("  (import) RuntimeError: raises refuses to initialise\n"), "{table}");
}

#[test]
fn a_directory_that_does_not_exist_is_a_usage_error() {
    let ft = &interpreters().ft;
    let missing = scratch("audit-missing").join("nothing-here");
    let (code, stdout, stderr) =
        audit(&["--python".as_ref(), ft.executable.as_os_str(), missing.as_os_str()]);
    assert_eq!(code, 2, "{stdout}");
    assert_eq!(
        stderr,
        format!("ftshim audit: {}: not a directory or a wheel (.whl) file\n", missing.display())
    );
    assert_eq!(stdout, "");
}
