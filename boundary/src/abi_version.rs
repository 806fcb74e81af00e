//! Reads a library's ABI version from its public header — the one place it is written — for the
//! build scripts of both libraries (included with `#[path]`, so the logic exists once).

/// The numeric value of `#define <name> <n>` in `header`.
pub fn header_define(header: &str, name: &str) -> u32 {
    header
        .lines()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("#define ")?.trim_start();
            let value = rest.strip_prefix(name)?;
            value.starts_with([' ', '\t']).then(|| value.trim().parse::<u32>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("the header has no numeric `#define {name}`"))
}

/// Hands `<PREFIX>_MAJOR` / `<PREFIX>_MINOR` of `header_path` to the crate as
/// `FTSHIM_ABI_MAJOR` / `FTSHIM_ABI_MINOR` and returns them.
pub fn emit(header_path: &std::path::Path, prefix: &str) -> (u32, u32) {
    let header = std::fs::read_to_string(header_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", header_path.display()));
    let major = header_define(&header, &format!("{prefix}_MAJOR"));
    let minor = header_define(&header, &format!("{prefix}_MINOR"));
    assert!(major <= 0xffff && minor <= 0xffff, "ABI version parts must fit 16 bits");
    println!("cargo:rustc-env=FTSHIM_ABI_MAJOR={major}");
    println!("cargo:rustc-env=FTSHIM_ABI_MINOR={minor}");
    println!("cargo:rerun-if-changed={}", header_path.display());
    println!("cargo:rerun-if-changed=build.rs");
    (major, minor)
}

/// `"12"` → 12 at compile time (for `env!` values set by [`emit`]).
pub const fn parse(s: &str) -> u32 {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "ABI version part is not a decimal number");
        n = n * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    n
}
