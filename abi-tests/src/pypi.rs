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
    /// `--python-version`, `--abi` and `--platform` for `pip download`.
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
        pip.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir"])
            .args(["--platform", wheel.platform, "--implementation", "cp"])
            .args(["--python-version", wheel.python_version, "--abi", wheel.abi, wheel.requirement, "-d"])
            .arg(&cache);
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
