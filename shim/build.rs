//! Reads the ABI version from `include/ftshim.h` — the one place it is written — and hands it to
//! the crate (`FTSHIM_ABI_MAJOR` / `FTSHIM_ABI_MINOR`) and to the linker as the cdylib's SONAME
//! (`libftshim.so.<major>`), so extensions record the major they need.

use std::{env, fs, path::PathBuf};

fn header_define(header: &str, name: &str) -> u32 {
    header
        .lines()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("#define ")?.trim_start();
            let value = rest.strip_prefix(name)?;
            value.starts_with([' ', '\t']).then(|| value.trim().parse::<u32>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("include/ftshim.h has no numeric `#define {name}`"))
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let header_path = manifest.join("../include/ftshim.h");
    let header = fs::read_to_string(&header_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", header_path.display()));
    let major = header_define(&header, "FTSHIM_ABI_VERSION_MAJOR");
    let minor = header_define(&header, "FTSHIM_ABI_VERSION_MINOR");
    assert!(major <= 0xffff && minor <= 0xffff, "ABI version parts must fit 16 bits");
    println!("cargo:rustc-env=FTSHIM_ABI_MAJOR={major}");
    println!("cargo:rustc-env=FTSHIM_ABI_MINOR={minor}");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libftshim.so.{major}");
    }
    println!("cargo:rerun-if-changed={}", header_path.display());
    println!("cargo:rerun-if-changed=build.rs");
}
