//! The wheel reader on arbitrary bytes (zip archive, WHEEL metadata, every member inspected and its
//! libraries resolved inside the archive), for a free-threaded target. Properties beyond "no
//! crash, no panic, no hang, no ASan report": every module report names a path inside the wheel.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use ftshim_loader::Target;
use ftshim_loader::linkage::Host;
use ftshim_loader::wheel::inspect_wheel_in_memory;
use libfuzzer_sys::fuzz_target;

static TARGET: LazyLock<Target> =
    LazyLock::new(|| Target::new((3, 13), true, ".cpython-313t-x86_64-linux-gnu.so"));
static HOST: LazyLock<Host> = LazyLock::new(Host::unknown);

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/demo-1.0-cp313-cp313t-manylinux_2_17_x86_64.whl");
    let wheel = inspect_wheel_in_memory(path, data, &TARGET, &HOST);
    for module in &wheel.modules {
        assert!(module.path.starts_with(path), "{}", module.path.display());
    }
    let _ = wheel.verdict();
});
