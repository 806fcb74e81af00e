//! Reads the loader's ABI version from `include/ftshim_loader.h` (the one place it is written) and
//! hands it to the crate as `FTSHIM_ABI_MAJOR` / `FTSHIM_ABI_MINOR`.

#[path = "../boundary/src/abi_version.rs"]
#[allow(dead_code)]
mod abi_version;

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    abi_version::emit(&manifest.join("../include/ftshim_loader.h"), "FTSHIM_LOADER_ABI_VERSION");
}
