//! Hands the target triple to the crate: the `cc` crate needs it when used outside a build script.
fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=FTSHIM_TARGET_TRIPLE={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
