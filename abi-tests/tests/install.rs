//! `make install PREFIX=… DESTDIR=…` for C users and packagers: the layout (headers, both
//! libraries with their SONAME links, pkg-config files, the CMake package, the CLI), pkg-config
//! answering with the prefix, and a C program built with `pkg-config --cflags --libs ftshim` that
//! runs against the installed library.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use ftshim_abi_tests::{artifacts, output_within, scratch, workspace_root};

/// `make install` runs scripts/build-libs.sh first: one at a time.
fn make_install(prefix: &Path, destdir: &Path) {
    static ONE: Mutex<()> = Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new("make");
    cmd.current_dir(workspace_root())
        .arg("-s")
        .arg("install")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("DESTDIR={}", destdir.display()));
    let out = output_within(&mut cmd, Duration::from_secs(600), "make install");
    assert!(out.status.success(), "make install: {}", String::from_utf8_lossy(&out.stderr));
}

fn pkg_config(pc_dir: &Path, args: &[&str]) -> String {
    let out = Command::new("pkg-config")
        .args(args)
        .env("PKG_CONFIG_PATH", pc_dir)
        .output()
        .expect("run pkg-config");
    assert!(out.status.success(), "pkg-config {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

#[test]
fn make_install_into_a_prefix_and_build_a_c_program_with_pkg_config() {
    artifacts();
    let dir = scratch("install");
    let prefix = dir.join("usr");
    make_install(&prefix, Path::new(""));
    let mut files: Vec<String> = Vec::new();
    for sub in ["include", "lib", "lib/pkgconfig", "lib/cmake/ftshim", "bin"] {
        for e in std::fs::read_dir(prefix.join(sub)).unwrap() {
            let e = e.unwrap();
            if !e.file_type().unwrap().is_dir() {
                files.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    files.sort();
    assert_eq!(
        files,
        [
            "bin/ftshim",
            "include/ftshim.h",
            "include/ftshim_loader.h",
            "include/ftshim_status.h",
            "lib/cmake/ftshim/ftshimConfig.cmake",
            "lib/cmake/ftshim/ftshimConfigVersion.cmake",
            "lib/libftshim.a",
            "lib/libftshim.so",
            "lib/libftshim.so.1",
            "lib/libftshim_loader.a",
            "lib/libftshim_loader.so",
            "lib/libftshim_loader.so.1",
            "lib/pkgconfig/ftshim.pc",
            "lib/pkgconfig/ftshim_loader.pc",
        ]
    );
    for lib in ["libftshim", "libftshim_loader"] {
        let link = std::fs::read_link(prefix.join(format!("lib/{lib}.so"))).unwrap();
        assert_eq!(link, Path::new(&format!("{lib}.so.1")));
    }

    let pc_dir = prefix.join("lib/pkgconfig");
    let (inc, lib) = (prefix.join("include"), prefix.join("lib"));
    assert_eq!(pkg_config(&pc_dir, &["--cflags", "ftshim"]), format!("-I{}", inc.display()));
    assert_eq!(
        pkg_config(&pc_dir, &["--cflags", "--libs", "ftshim"]),
        format!("-I{} -L{} -lftshim", inc.display(), lib.display())
    );
    assert_eq!(
        pkg_config(&pc_dir, &["--libs", "ftshim_loader"]),
        format!("-L{} -lftshim_loader", lib.display())
    );
    assert_eq!(pkg_config(&pc_dir, &["--modversion", "ftshim"]), env!("CARGO_PKG_VERSION"));

    // A C program (no Python) against the installed headers and library.
    let src = dir.join("version.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include \"ftshim_loader.h\"\n\
         int main(void) {\n  printf(\"%s %x %s\\n\", FTSHIM_VERSION, ftshim_loader_abi_version(),\n\
         \x20        ftshim_loader_status_str(FTSHIM_ERR_REFUSED));\n  return 0;\n}\n",
    )
    .unwrap();
    let flags = pkg_config(&pc_dir, &["--cflags", "--libs", "ftshim_loader"]);
    let exe = dir.join("version");
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{} 10000 module refused by the loader\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(prefix.join("bin/ftshim")).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("ftshim {}\n", env!("CARGO_PKG_VERSION")));
}

/// DESTDIR stages the same tree under DESTDIR/PREFIX, and the pkg-config files name PREFIX (where
/// the package manager will put it), not the staging directory.
#[test]
fn make_install_with_destdir_writes_the_final_prefix_into_the_pc_files() {
    artifacts();
    let dir = scratch("install-destdir");
    let prefix = Path::new("/opt/ftshim-test");
    make_install(prefix, &dir.join("stage"));
    let staged = dir.join("stage/opt/ftshim-test");
    let pc = std::fs::read_to_string(staged.join("lib/pkgconfig/ftshim.pc")).unwrap();
    assert!(pc.contains("\nprefix=/opt/ftshim-test\n"), "{pc}");
    assert!(!Path::new(prefix).exists(), "make install wrote outside DESTDIR");
    assert_eq!(
        pkg_config(&staged.join("lib/pkgconfig"), &["--cflags", "--libs", "ftshim"]),
        "-I/opt/ftshim-test/include -L/opt/ftshim-test/lib -lftshim"
    );
    assert!(staged.join("lib/libftshim.so.1").is_file() && staged.join("bin/ftshim").is_file());
}
