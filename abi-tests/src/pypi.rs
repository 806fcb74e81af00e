//! Real wheels from PyPI, fetched once with pip (`<recorded GIL 3.11> -m pip download --no-deps
//! --only-binary=:all: ...`) into `wheels/` under setup's cache (`FTSHIM_CACHE_DIR` in the
//! record), outside the repository, and pinned by SHA-256. A failed download fails the test with
//! pip's reason: nothing skips. Also the private venv holding the `jsonschema` package the SARIF
//! test validates with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::interpreters::interpreters;
use crate::run::output_within;

/// One pinned wheel.
pub struct Wheel {
    /// Its file name on PyPI.
    pub file: &'static str,
    /// Its SHA-256, hex.
    pub sha256: &'static str,
    /// The requirement given to pip (`numpy==2.4.6`).
    pub requirement: &'static str,
    /// `--python-version`, `--abi` and `--platform` for `pip download` (`abi` and `platform` may
    /// list several, comma-separated: one flag each).
    pub python_version: &'static str,
    /// See `python_version`.
    pub abi: &'static str,
    /// See `python_version`.
    pub platform: &'static str,
}

/// cryptography 50.0.2, `cp315-abi3.abi3t` (4,966,465 bytes).
pub const CRYPTOGRAPHY_ABI3T: Wheel = Wheel {
    file: "cryptography-50.0.2-cp315-abi3.abi3t-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256: "f2f9bd7f90c64fe89253f0a2c05e3c4856072660429ce8831b4235bf29403a67",
    requirement: "cryptography==50.0.2",
    python_version: "3.15",
    abi: "abi3t",
    platform: "manylinux_2_17_x86_64",
};

/// cryptography 50.0.2, `cp314-cp314t` (4,694,824 bytes).
pub const CRYPTOGRAPHY_CP314T: Wheel = Wheel {
    file: "cryptography-50.0.2-cp314-cp314t-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256: "ab50ee449bf968271e820086f10a33d101dd060370abc10bcd22279be2656539",
    requirement: "cryptography==50.0.2",
    python_version: "3.14",
    abi: "cp314t",
    platform: "manylinux_2_17_x86_64",
};

/// cryptography 50.0.2, `cp311-abi3` (4,719,841 bytes): the GIL stable ABI.
pub const CRYPTOGRAPHY_ABI3: Wheel = Wheel {
    file: "cryptography-50.0.2-cp311-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    sha256: "630ebfea3bf689d075f82316324ff7433dc447fe6bc1bfc76524b74b4a9567d2",
    requirement: "cryptography==50.0.2",
    python_version: "3.11",
    abi: "abi3",
    platform: "manylinux_2_17_x86_64",
};

/// numpy 2.4.6 for free-threaded 3.13 (16.7 MB).
pub const NUMPY_CP313T: Wheel = Wheel {
    file: "numpy-2.4.6-cp313-cp313t-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "ede83e07a75dd06bc501566c1eca2afc0d61677c1472ac9ad93fdee6e638a48d",
    requirement: "numpy==2.4.6",
    python_version: "3.13",
    abi: "cp313t",
    platform: "manylinux_2_28_x86_64",
};

/// numpy 2.2.6 for GIL 3.13 (16.5 MB).
pub const NUMPY_CP313: Wheel = Wheel {
    file: "numpy-2.2.6-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "1bc23a79bfabc5d056d106f9befb8d50c31ced2fbc70eedb8155aec74a45798f",
    requirement: "numpy==2.2.6",
    python_version: "3.13",
    abi: "cp313",
    platform: "manylinux_2_17_x86_64",
};

/// Wheels for `make bench`'s audit of a directory of 20 wheels: 16 from PyPI for free-threaded
/// 3.13 (binary, abi3 and pure ones), with numpy 2.4.6, the GIL numpy 2.2.6 and two of
/// cryptography 50.0.2's wheels added by the bench.
pub const BENCH_WHEELS: &[Wheel] = &{
    const fn w(file: &'static str, sha256: &'static str, requirement: &'static str) -> Wheel {
        Wheel {
            file,
            sha256,
            requirement,
            python_version: "3.13",
            abi: "cp313t,abi3",
            platform: "manylinux_2_28_x86_64,manylinux_2_17_x86_64",
        }
    }
    [
        w(
            "charset_normalizer-3.5.2-cp37-abi3-manylinux1_x86_64.manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl",
            "1c50fe28bbc2ced33386f298650d91218076c05420e6cbd790b913adc41659e7",
            "charset-normalizer==3.5.2",
        ),
        w(
            "contourpy-1.3.3-cp313-cp313t-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
            "50ed930df7289ff2a8d7afeb9603f8289e5704755c7e5c3bbd929c90c817164b",
            "contourpy==1.3.3",
        ),
        w(
            "coverage-7.17.3-py3-none-any.whl",
            "21745c08f2835b847a16887b748d3084dddeb0571ae2a0d62e33644413568b99",
            "coverage==7.17.3",
        ),
        w(
            "frozenlist-1.8.0-cp313-cp313t-manylinux1_x86_64.manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl",
            "b3210649ee28062ea6099cfda39e147fa1bc039583c8ee4481cb7811e2448c51",
            "frozenlist==1.8.0",
        ),
        w(
            "kiwisolver-1.5.0-cp313-cp313t-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            "4432b835675f0ea7414aab3d37d119f7226d24869b7a829caeab49ebda407b0c",
            "kiwisolver==1.5.0",
        ),
        w(
            "markupsafe-3.0.3-cp313-cp313t-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
            "8709b08f4a89aa7586de0aadc8da56180242ee0ada3999749b183aa23df95025",
            "markupsafe==3.0.3",
        ),
        w(
            "multidict-7.2.1-py3-none-any.whl",
            "08ea94663d9e7c25d14d78222f7aee906c472d4837766bec62477c38f6e419dc",
            "multidict==7.2.1",
        ),
        w(
            "pillow-12.2.0-cp313-cp313t-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
            "efd8c21c98c5cc60653bcb311bef2ce0401642b7ce9d09e03a7da87c878289d4",
            "pillow==12.2.0",
        ),
        w(
            "propcache-0.5.4-py3-none-any.whl",
            "62c60aec739ed00124573cce1178138fd690c7676352d67a37328c1cf51d7468",
            "propcache==0.5.4",
        ),
        w(
            "psutil-7.2.2-cp313-cp313t-manylinux2010_x86_64.manylinux_2_12_x86_64.manylinux_2_28_x86_64.whl",
            "1a571f2330c966c62aeda00dd24620425d4b0cc86881c89861fbc04549e5dc63",
            "psutil==7.2.2",
        ),
        w(
            "pydantic_core-2.41.4-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "d25e97bc1f5f8f7985bdc2335ef9e73843bb561eb1fa6831fdfc295c1c2061cf",
            "pydantic-core==2.41.4",
        ),
        w(
            "rpds_py-2026.5.1-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "27b74c10ed6a8f190f4287f53bcfea348b92a84a9c9f70d30183d1e6172d580d",
            "rpds-py==2026.5.1",
        ),
        w(
            "tornado-6.6.1-cp311-abi3-manylinux1_x86_64.manylinux_2_28_x86_64.manylinux_2_5_x86_64.whl",
            "1b6ff57cc69b339f8feb9e7b567b0e0eacb16bfaf234159496623ef7a67ba640",
            "tornado==6.6.1",
        ),
        w(
            "wrapt-2.5.2-py3-none-any.whl",
            "61eb54e9540ea522c2c4752a57549a83d3c67e6704ed708403d28e067aaf90f0",
            "wrapt==2.5.2",
        ),
        w(
            "xxhash-3.8.2-cp313-cp313t-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
            "091076b3ac54ad684aa8ed46fb22e4610ba816ae97bf056453a96a45b57b800c",
            "xxhash==3.8.2",
        ),
        w(
            "yarl-1.25.1-py3-none-any.whl",
            "681c758b0490f9e96b78e5fa8e8dc6e648e9185bb6eaebe73183c33ea0c445f3",
            "yarl==1.25.1",
        ),
    ]
};

/// `wheels/` under the cache `scripts/setup.sh` recorded.
pub fn cache_dir() -> PathBuf {
    interpreters().cache_dir.join("wheels")
}

/// The cached wheel, downloaded first when absent; panics unless its SHA-256 is the pinned one.
pub fn fetch(wheel: &Wheel) -> PathBuf {
    let python = &interpreters().py311.executable;
    let cache = cache_dir();
    let path = cache.join(wheel.file);
    if !path.is_file() {
        std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("cannot create {}: {e}", cache.display()));
        let mut pip = Command::new(python);
        pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir"]).args([
            "--implementation",
            "cp",
            "--python-version",
            wheel.python_version,
        ]);
        for platform in wheel.platform.split(',') {
            pip.args(["--platform", platform]);
        }
        for abi in wheel.abi.split(',') {
            pip.args(["--abi", abi]);
        }
        pip.args([wheel.requirement, "-d"]).arg(&cache);
        let out = output_within(&mut pip, Duration::from_secs(300), "pip download");
        assert!(
            out.status.success() && path.is_file(),
            "pip download of {} into {} failed ({}), so this test cannot run:\n{}{}",
            wheel.file,
            cache.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut sha = Command::new("sha256sum");
    sha.arg(&path);
    let out = output_within(&mut sha, Duration::from_secs(60), "sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned();
    assert_eq!(
        hex,
        wheel.sha256,
        "{} is not the pinned wheel (delete it to download it again)",
        path.display()
    );
    path
}

/// A Python (the recorded GIL 3.11) in a private venv under the cache with `jsonschema` installed
/// from PyPI, created once.
pub fn jsonschema_python() -> PathBuf {
    let venv = interpreters().cache_dir.join("venv-jsonschema");
    let python = venv.join("bin/python");
    let has = |py: &Path| {
        py.is_file()
            && Command::new(py).args(["-c", "import jsonschema"]).output().is_ok_and(|o| o.status.success())
    };
    if has(&python) {
        return python;
    }
    let base = &interpreters().py311.executable;
    let out = output_within(
        Command::new(base).args(["-m", "venv"]).arg(&venv),
        Duration::from_secs(300),
        "python -m venv",
    );
    assert!(
        out.status.success(),
        "cannot create {}: {}",
        venv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = output_within(
        Command::new(&python).args(["-m", "pip", "install", "-q", "jsonschema==4.*"]),
        Duration::from_secs(300),
        "pip install jsonschema",
    );
    assert!(
        out.status.success() && has(&python),
        "pip install jsonschema into {} failed, so the SARIF test cannot run:\n{}{}",
        venv.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

/// Validates the SARIF log in `sarif_file` against the vendored OASIS SARIF 2.1.0 schema
/// (`abi-tests/sarif/`) with [`jsonschema_python`]; panics with the first errors when it does not
/// validate.
pub fn assert_valid_sarif(sarif_file: &Path) {
    let schema = crate::workspace_root().join("abi-tests/sarif/sarif-schema-2.1.0.json");
    let validate = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1])); doc = json.load(open(sys.argv[2]))\n\
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=str)\n\
        print(len(errors)); [print(e.message, list(e.path)) for e in errors[:5]]\n";
    let python = jsonschema_python();
    let out = output_within(
        Command::new(&python).args(["-I", "-c", validate]).arg(&schema).arg(sarif_file),
        Duration::from_secs(120),
        "jsonschema",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0\n",
        "{} does not validate against the SARIF 2.1.0 schema",
        sarif_file.display()
    );
}
