//! The inspector on arbitrary bytes, for a free-threaded, a GIL and a 3.15 target (each with its
//! own file name, so the name check passes and the ELF checks run). Properties beyond "no crash,
//! no panic, no hang, no ASan report": in-memory inspection never reports an I/O code, and every
//! message names the file.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use ftshim_loader::{Target, inspect_bytes};
use libfuzzer_sys::fuzz_target;

static TARGETS: LazyLock<Vec<(PathBuf, Target)>> = LazyLock::new(|| {
    [
        ((3, 13), true, ".cpython-313t-x86_64-linux-gnu.so"),
        ((3, 13), false, ".cpython-313-x86_64-linux-gnu.so"),
        ((3, 15), false, ".cpython-315-x86_64-linux-gnu.so"),
    ]
    .into_iter()
    .map(|(version, ft, suffix)| {
        (Path::new("/fuzz").join(format!("counter{suffix}")), Target::new(version, ft, suffix))
    })
    .collect()
});

fuzz_target!(|data: &[u8]| {
    for (path, target) in TARGETS.iter() {
        let report = inspect_bytes(path, data, target);
        for refusal in &report.refusals {
            assert!(!refusal.code.is_io(), "I/O code {} from in-memory bytes", refusal.code);
        }
        for message in report.messages() {
            assert!(message.starts_with(&format!("{}: ", path.display())), "{message}");
        }
        let _ = report.verdict();
    }
});
