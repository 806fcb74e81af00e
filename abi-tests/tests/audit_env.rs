//! `ftshim audit --python VENV/bin/python --import` with no directories: an installed environment
//! (python3.13t's venv with numpy 2.4.6 installed from the cached PyPI wheel, `--no-index`) is
//! audited as lib-dynload plus site-packages, grouped by distribution (RECORD), and every module
//! is imported through its package: no false error, and none re-enables the GIL.

use std::process::Command;
use std::time::Duration;

use ftshim_abi_tests::pypi::{self, NUMPY_CP313T};
use ftshim_abi_tests::{ftshim_cli, interpreters, output_within, scratch};
use serde_json::Value;

#[test]
fn a_venv_with_numpy_is_audited_by_distribution_and_imports_without_false_errors() {
    let ft = &interpreters().ft;
    let whl = pypi::fetch(&NUMPY_CP313T);
    let venv = scratch("audit-venv").join("venv");
    let out = output_within(
        Command::new(&ft.executable).args(["-m", "venv"]).arg(&venv).env_remove("PYTHONPATH"),
        Duration::from_secs(300),
        "python3.13t -m venv",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let python = venv.join("bin/python");
    let out = output_within(
        Command::new(&python).args(["-m", "pip", "install", "-q", "--no-index", "--no-deps"]).arg(&whl),
        Duration::from_secs(300),
        "pip install numpy",
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, stdout, stderr) = ftshim_cli(&[
        "audit".as_ref(),
        "--json".as_ref(),
        "--import".as_ref(),
        "--python".as_ref(),
        python.as_os_str(),
    ]);
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(code, 0, "{:#}\n{stderr}", doc["summary"]);
    let site = venv.join("lib/python3.13t/site-packages");
    assert_eq!(
        doc["dirs"],
        serde_json::json!([ft.lib_dynload.display().to_string(), site.display().to_string()])
    );
    let modules = doc["modules"].as_array().unwrap();
    let numpy: Vec<&Value> = modules.iter().filter(|m| m["distribution"] == "numpy").collect();
    assert_eq!(numpy.len(), 19);
    for m in modules {
        assert_eq!(m["verdict"], "accepted", "{m:#}");
        assert_eq!(m["import"]["status"], "ok", "{m:#}");
        assert_eq!(m["import"]["gil_reenabled"], false, "{m:#}");
        assert_eq!(m["import"]["gil_enabled_after"], false, "{m:#}");
    }
    // Outside any distribution: exactly lib-dynload's modules.
    let loose = modules.iter().filter(|m| m["distribution"].is_null()).count();
    assert_eq!(loose, 77);
    assert_eq!(
        doc["distributions"],
        serde_json::json!([{
            "name": "numpy",
            "version": "2.4.6",
            "verdict": "accepted",
            "modules": numpy.iter().map(|m| m["module"].clone()).collect::<Vec<_>>(),
        }])
    );
    let names: Vec<&str> = numpy.iter().map(|m| m["module"].as_str().unwrap()).collect();
    assert!(names.contains(&"numpy._core._multiarray_umath"), "{names:?}");
    let s = &doc["summary"]["imported"];
    assert_eq!(
        (s["total"].as_u64(), s["ok"].as_u64(), s["gil_reenabled"].as_u64()),
        (Some(96), Some(96), Some(0))
    );

    // The table groups by distribution too.
    let (code, text, _) = ftshim_cli(&["audit".as_ref(), "--python".as_ref(), python.as_os_str()]);
    assert_eq!(code, 0);
    assert!(
        text.contains(
            "\ndistributions:\n  numpy 2.4.6: accepted (19 extension modules, 0 refused or failed)\n"
        ),
        "{text}"
    );
    assert!(text.contains("\n  (no distribution) _asyncio: accepted\n"), "{text}");
}
