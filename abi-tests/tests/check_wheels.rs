//! Wheels as input to `ftshim check` and `ftshim audit`, on real wheels from PyPI
//! ([`ftshim_abi_tests::pypi`]): numpy 2.4.6's cp313t wheel is accepted for python3.13t; numpy
//! 2.2.6's GIL wheel repacked as cp313t (what installs with pip on 3.13t and segfaults on import)
//! is refused as `mistagged`; cryptography's abi3 wheel is refused for 3.13t; a directory with no
//! module exits 3; the SARIF output validates against the SARIF 2.1.0 schema and the JUnit output
//! parses.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ftshim_abi_tests::pypi::{self, CRYPTOGRAPHY_ABI3, NUMPY_CP313, NUMPY_CP313T};
use ftshim_abi_tests::{ftshim_cli, interpreters, reason_codes, reason_messages, run_ok, scratch};
use serde_json::{Value, json};

const FT_MARKERS: &str =
    "_Py_DecRefShared, _Py_MergeZeroLocalRefcount, _Py_DecRefSharedDebug, PyUnstable_Module_SetGIL";

/// `ftshim <args...>` with `--python <python3.13t>` after the command: (exit code, stdout, stderr).
fn ftshim(command: &str, extra: &[&OsStr]) -> (i32, String, String) {
    let ft = &interpreters().ft;
    let mut args = vec![OsStr::new(command), OsStr::new("--python"), ft.executable.as_os_str()];
    args.extend_from_slice(extra);
    ftshim_cli(&args)
}

fn json_of(stdout: &str, stderr: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: stdout is not JSON:\n{stdout}\n{stderr}"))
}

fn module<'a>(doc: &'a Value, key: &str, name: &str) -> &'a Value {
    doc[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == name)
        .unwrap_or_else(|| panic!("no {name}: {doc:#}"))
}

/// numpy 2.2.6's GIL wheel repacked as `cp313-cp313t` in `dir`: every module renamed to the cp313t
/// suffix, the WHEEL Tag lines and the RECORD rewritten (as a careless repack would) — the wheel
/// pip installs on python3.13t and whose `import numpy` then crashes.
fn repacked_gil_numpy(dir: &Path) -> PathBuf {
    // Repacked once per run (a 16 MB wheel, deflated again); each test gets its own copy.
    static REPACKED: OnceLock<PathBuf> = OnceLock::new();
    let repacked = REPACKED.get_or_init(|| {
        let src = pypi::fetch(&NUMPY_CP313);
        let out = scratch("wheel-repacked-numpy").join(REPACKED_NAME);
        let script = "import sys, zipfile\n\
            src, dst = sys.argv[1], sys.argv[2]\n\
            zi = zipfile.ZipFile(src)\n\
            with zipfile.ZipFile(dst, 'w', zipfile.ZIP_DEFLATED) as zo:\n\
            \x20   for info in zi.infolist():\n\
            \x20       name = info.filename.replace('.cpython-313-', '.cpython-313t-')\n\
            \x20       data = zi.read(info)\n\
            \x20       if name.endswith('.dist-info/WHEEL'):\n\
            \x20           data = data.replace(b'Tag: cp313-cp313-', b'Tag: cp313-cp313t-')\n\
            \x20       if name.endswith('.dist-info/RECORD'):\n\
            \x20           data = data.replace(b'.cpython-313-', b'.cpython-313t-')\n\
            \x20       zo.writestr(name, data)\n";
        let mut cmd = Command::new(&interpreters().py311.executable);
        cmd.args(["-I", "-c", script]).arg(&src).arg(&out);
        run_ok(&mut cmd, Duration::from_secs(300), "repacking numpy");
        out
    });
    let out = dir.join(REPACKED_NAME);
    std::fs::copy(repacked, &out)
        .unwrap_or_else(|e| panic!("copy {} into {}: {e}", repacked.display(), dir.display()));
    out
}

const REPACKED_NAME: &str = "numpy-2.2.6-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";

#[test]
fn numpy_2_4_6_cp313t_wheel_is_accepted_for_the_free_threaded_interpreter() {
    let whl = pypi::fetch(&NUMPY_CP313T);
    let (code, stdout, stderr) = ftshim("check", &["--json".as_ref(), whl.as_os_str()]);
    let doc = json_of(&stdout, &stderr);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["command"], "check");
    let w = &doc["wheels"][0];
    assert_eq!(w["path"], whl.display().to_string());
    assert_eq!(w["verdict"], "accepted");
    assert_eq!(
        w["tags"],
        json!(["cp313-cp313t-manylinux_2_27_x86_64", "cp313-cp313t-manylinux_2_28_x86_64"])
    );
    assert_eq!(w["reasons"], json!([]));
    assert_eq!(
        w["libraries"],
        json!([
            "numpy.libs/libgfortran-040039e1-0352e75f.so.5.0.0",
            "numpy.libs/libquadmath-96973f99-934c22de.so.0.0.0",
            "numpy.libs/libscipy_openblas64_-32a4b2a6.so"
        ])
    );
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 19);
    for f in files {
        assert_eq!(f["verdict"], "accepted", "{f:#}");
        assert_eq!(f["wheel"], whl.display().to_string());
        assert_eq!(f["distribution"], "numpy");
        assert_eq!(f["tag"], "cpython-313t-x86_64-linux-gnu");
    }
    // The BLAS it needs is found inside the wheel through its RUNPATH ($ORIGIN/../../numpy.libs).
    let umath = module(&doc, "files", "numpy._core._multiarray_umath");
    assert!(
        umath["evidence"]["needed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("libscipy_openblas")),
        "{umath:#}"
    );
    assert_eq!(doc["summary"]["accepted"], 19);
    assert_eq!(doc["summary"]["wheels_refused"], 0);
}

#[test]
fn a_gil_numpy_wheel_repacked_as_cp313t_is_refused_as_mistagged() {
    let whl = repacked_gil_numpy(&scratch("wheel-repacked"));
    let (code, stdout, stderr) = ftshim("check", &["--json".as_ref(), whl.as_os_str()]);
    let doc = json_of(&stdout, &stderr);
    assert_eq!(code, 1, "{stderr}");
    let w = &doc["wheels"][0];
    assert_eq!(w["verdict"], "refused");
    assert_eq!(w["reasons"], json!([]), "the tag is one 3.13t installs: only its modules betray it");
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 19);
    let m = module(&doc, "files", "numpy._core._multiarray_umath");
    let p = format!("{}/numpy/_core/_multiarray_umath.cpython-313t-x86_64-linux-gnu.so", whl.display());
    assert_eq!(m["path"], p);
    assert_eq!(reason_codes(m), ["gil-build", "mistagged", "mistagged"]);
    let gil_ev = format!("references _Py_Dealloc and none of {FT_MARKERS} (GIL inline refcounting)");
    assert_eq!(
        reason_messages(m),
        [
            format!(
                "{p}: built for a GIL interpreter, target is free-threaded 3.13: expected a free-threaded build (undefined symbols such as {FT_MARKERS}), found GIL-only references (_Py_Dealloc) and none of those"
            ),
            format!(
                "{p}: the wheel's tag 'cp313-cp313t-manylinux_2_17_x86_64' claims a free-threaded build, but the module {gil_ev}"
            ),
            format!(
                "{p}: its file name's tag 'cpython-313t-x86_64-linux-gnu' claims a free-threaded build, but the module {gil_ev}"
            ),
        ]
    );
    for f in files {
        assert_eq!(f["verdict"], "refused", "{f:#}");
        assert!(reason_codes(f).contains(&"mistagged"), "{f:#}");
    }

    // The same wheel checked for the GIL 3.13 it was built for: the tag no longer installs there,
    // and its own tag and the file names still contradict the binaries.
    let gil = &interpreters().gil313;
    let (code, stdout, stderr) = ftshim_cli(&[
        "check".as_ref(),
        "--json".as_ref(),
        "--python".as_ref(),
        gil.executable.as_os_str(),
        whl.as_os_str(),
    ]);
    let doc = json_of(&stdout, &stderr);
    assert_eq!(code, 1);
    assert_eq!(reason_codes(&doc["wheels"][0]), ["wheel-tag"]);
    assert_eq!(
        reason_codes(module(&doc, "files", "numpy._core._multiarray_umath")),
        ["suffix-mismatch", "mistagged", "mistagged"]
    );
}

#[test]
fn the_abi3_cryptography_wheel_is_refused_for_the_free_threaded_interpreter() {
    let whl = pypi::fetch(&CRYPTOGRAPHY_ABI3);
    let (code, stdout, stderr) = ftshim("check", &["--json".as_ref(), whl.as_os_str()]);
    let doc = json_of(&stdout, &stderr);
    assert_eq!(code, 1, "{stderr}");
    let w = &doc["wheels"][0];
    assert_eq!(w["verdict"], "refused");
    assert_eq!(reason_codes(w), ["wheel-tag"]);
    assert_eq!(
        reason_messages(w),
        [format!(
            "{}: the target must install one of the wheel's tags: expected a tag such as 'cp313-cp313t-manylinux_2_17_x86_64' for free-threaded 3.13 (abi3 does not apply to free-threaded builds before 3.15), found 'cp311-abi3-manylinux_2_17_x86_64', 'cp311-abi3-manylinux2014_x86_64'",
            whl.display()
        )]
    );
    let m = module(&doc, "files", "cryptography.hazmat.bindings._rust");
    assert_eq!(reason_codes(m), ["suffix-mismatch", "gil-build"]);
    let p = format!("{}/cryptography/hazmat/bindings/_rust.abi3.so", whl.display());
    assert_eq!(
        reason_messages(m)[0],
        format!(
            "{p}: file name must end with the target interpreter's EXT_SUFFIX: expected '.cpython-313t-x86_64-linux-gnu.so', found '.abi3.so', which carries no free-threaded ABI tag, and the file's symbols do not prove a free-threaded build (none of {FT_MARKERS})"
        )
    );
    // Text: the wheel's line, then its module.
    let (code, text, _) = ftshim("check", &[whl.as_os_str()]);
    assert_eq!(code, 1);
    assert!(
        text.contains(&format!("REFUSE wheel {} (tags: cp311-abi3-manylinux_2_17_x86_64, cp311-abi3-manylinux2014_x86_64; 1 extension modules)\n  [wheel-tag] ", whl.display())),
        "{text}"
    );
    assert!(
        text.ends_with("0 accepted, 1 refused, 0 unreadable; 1 wheels: 1 refused, 0 unreadable\n"),
        "{text}"
    );
}

#[test]
fn a_directory_of_wheels_is_audited_per_wheel_and_an_empty_one_is_not_success() {
    let dir = scratch("audit-wheels");
    let good = pypi::fetch(&NUMPY_CP313T);
    std::fs::copy(&good, dir.join(good.file_name().unwrap())).unwrap();
    repacked_gil_numpy(&dir);
    let (code, stdout, stderr) = ftshim("audit", &["--json".as_ref(), dir.as_os_str()]);
    let doc = json_of(&stdout, &stderr);
    assert_eq!(code, 1, "{stderr}");
    let verdicts: Vec<(&str, &str)> = doc["wheels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["path"].as_str().unwrap().rsplit('/').next().unwrap(), w["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("numpy-2.2.6-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "refused"),
            ("numpy-2.4.6-cp313-cp313t-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "accepted"),
        ]
    );
    assert_eq!(doc["summary"]["modules"], 38);
    assert_eq!(doc["summary"]["accepted"], 19);
    assert_eq!(doc["summary"]["refused"], 19);
    let dists: Vec<(String, String)> = doc["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                format!("{} {}", d["name"].as_str().unwrap(), d["version"].as_str().unwrap()),
                d["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(dists, [("numpy 2.2.6".into(), "refused".into()), ("numpy 2.4.6".into(), "accepted".into())]);

    // Nothing to audit is not success: exit 3 and a sentence saying so.
    let empty = scratch("audit-empty");
    std::fs::write(empty.join("pure.py"), "x = 1\n").unwrap();
    let (code, stdout, stderr) = ftshim("audit", &[empty.as_os_str()]);
    assert_eq!(code, 3, "{stdout}");
    assert_eq!(
        stderr,
        format!("ftshim audit: nothing to audit: no extension modules in {}\n", empty.display())
    );
    assert!(stdout.contains("\naudited 0 extension modules in 1 directory: 0 accepted"), "{stdout}");
    let (code, stdout, stderr) = ftshim("audit", &["--json".as_ref(), empty.as_os_str()]);
    assert_eq!(code, 3);
    assert_eq!(json_of(&stdout, &stderr)["summary"]["modules"], 0);
}

#[test]
fn sarif_validates_against_the_2_1_0_schema_and_junit_parses() {
    let dir = scratch("wheel-formats");
    let repacked = repacked_gil_numpy(&dir);
    let abi3 = pypi::fetch(&CRYPTOGRAPHY_ABI3);
    let good = pypi::fetch(&NUMPY_CP313T);
    let inputs = [repacked.as_os_str(), abi3.as_os_str(), good.as_os_str()];

    let mut args = vec![OsStr::new("--format"), OsStr::new("sarif")];
    args.extend(inputs);
    let (code, sarif, stderr) = ftshim("check", &args);
    assert_eq!(code, 1, "{stderr}");
    let sarif_file = dir.join("out.sarif");
    std::fs::write(&sarif_file, &sarif).unwrap();
    pypi::assert_valid_sarif(&sarif_file);
    let doc: Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for code in ftshim_loader::Code::ALL {
        assert!(rules.contains(&code.as_str()), "no rule for {code}");
    }
    let results = run["results"].as_array().unwrap();
    // 19 modules × (gil-build + 2 mistagged), the abi3 wheel's wheel-tag, its module's 2 reasons.
    assert_eq!(results.len(), 19 * 3 + 1 + 2);
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        assert_eq!(rules[r["ruleIndex"].as_u64().unwrap() as usize], id);
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            uri == format!("file://{}", repacked.display()) || uri == format!("file://{}", abi3.display()),
            "{uri}"
        );
    }
    assert_eq!(results.iter().filter(|r| r["ruleId"] == "mistagged").count(), 38);

    let mut args = vec![OsStr::new("--format"), OsStr::new("junit")];
    args.extend(inputs);
    let (code, junit, _) = ftshim("check", &args);
    assert_eq!(code, 1);
    let parse = "import sys, xml.etree.ElementTree as ET\n\
        root = ET.fromstring(sys.stdin.read())\n\
        cases = root.findall('./testsuite/testcase')\n\
        print(root.tag, root.get('tests'), root.get('failures'), root.get('errors'), len(cases))\n\
        for c in cases:\n\
        \x20   f = c.find('failure')\n\
        \x20   print(c.get('name'), f.get('type') if f is not None else 'ok')\n";
    let mut py = Command::new(pypi::jsonschema_python());
    py.args(["-I", "-c", parse]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = py.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), junit.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = lines.lines();
    // 19 + 1 + 19 module testcases and one for the abi3 wheel itself.
    assert_eq!(lines.next(), Some("testsuites 40 21 0 40"), "{junit}");
    let rest: Vec<&str> = lines.collect();
    assert!(rest.contains(&"(wheel) wheel-tag"), "{rest:?}");
    assert!(rest.contains(&"numpy._core._multiarray_umath gil-build"), "{rest:?}");
    assert!(rest.contains(&"cryptography.hazmat.bindings._rust suffix-mismatch"), "{rest:?}");
    assert_eq!(rest.iter().filter(|l| l.ends_with(" ok")).count(), 19);
}
