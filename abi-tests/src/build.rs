//! Building: the shipped artefacts (`scripts/build-libs.sh`), and the one way C is compiled —
//! extension modules ([`build_extension`], [`build_module`], [`build_c_source`]) and C programs
//! ([`c_program`]) all use the same strict compiler configuration ([`compiler`]) and link
//! libftshim the same way ([`link_libftshim`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::interpreters::Interpreter;
use crate::run::output_within;
use crate::{target_dir, workspace_root};

/// One of the two shipped libraries, with everything the drift tests compare.
#[derive(Debug)]
pub struct Library {
    /// `libftshim` / `libftshim_loader`.
    pub name: &'static str,
    /// Every export's name starts with this.
    pub prefix: &'static str,
    /// Its public header, relative to the repository root.
    pub header: &'static str,
    /// Its symbol manifest, relative to the repository root.
    pub manifest: &'static str,
    /// The ABI version compiled into the crate (from the header).
    pub version: (u32, u32),
    soname: &'static str,
}

impl Library {
    /// The shared object's file name and SONAME (`libftshim.so.1`), from the crate.
    pub fn soname(&self) -> &'static str {
        self.soname
    }
}

/// The runtime (first) and the loader.
pub const LIBRARIES: &[Library] = &[
    Library {
        name: "libftshim",
        prefix: "ftshim_",
        header: "include/ftshim.h",
        manifest: "abi-tests/manifest/libftshim.txt",
        version: (ftshim::version::ABI_MAJOR, ftshim::version::ABI_MINOR),
        soname: ftshim::version::SONAME,
    },
    Library {
        name: "libftshim_loader",
        prefix: "ftshim_loader_",
        header: "include/ftshim_loader.h",
        manifest: "abi-tests/manifest/libftshim_loader.txt",
        version: (ftshim_loader::version::ABI_MAJOR, ftshim_loader::version::ABI_MINOR),
        soname: ftshim_loader::version::SONAME,
    },
];

/// What `scripts/build-libs.sh` stages under `target/ftshim/`, laid out like an installed prefix.
pub struct Artifacts {
    /// `target/ftshim`.
    pub prefix: PathBuf,
    /// `<prefix>/include`: the shipped headers.
    pub include_dir: PathBuf,
    /// `<prefix>/lib`: both libraries (`.so.1` files, `.so` links, `.a`).
    pub lib_dir: PathBuf,
    /// The `ftshim` executable.
    pub cli: PathBuf,
}

/// Runs `scripts/build-libs.sh` once per process (cargo makes it quick when nothing changed), so
/// every test uses the shipped artefacts, built the way `make` builds them.
pub fn artifacts() -> &'static Artifacts {
    static CELL: OnceLock<Artifacts> = OnceLock::new();
    CELL.get_or_init(|| {
        let script = workspace_root().join("scripts/build-libs.sh");
        let out = output_within(
            Command::new("bash").arg(&script).current_dir(workspace_root()),
            std::time::Duration::from_secs(20 * 60),
            "scripts/build-libs.sh",
        );
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let prefix = target_dir().join("ftshim");
        let artifacts = Artifacts {
            include_dir: prefix.join("include"),
            lib_dir: prefix.join("lib"),
            cli: prefix.join("bin/ftshim"),
            prefix,
        };
        for lib in LIBRARIES {
            for f in [lib.soname().to_owned(), format!("{}.so", lib.name), format!("{}.a", lib.name)] {
                let f = artifacts.lib_dir.join(f);
                assert!(f.is_file(), "{} missing after scripts/build-libs.sh", f.display());
            }
        }
        assert!(artifacts.cli.is_file(), "{} missing after scripts/build-libs.sh", artifacts.cli.display());
        artifacts
    })
}

/// How [`build_extension_with`] builds a module.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Link `libftshim.a` into the module (symbols hidden) instead of `-lftshim`.
    pub static_link: bool,
    /// A directory searched for `ftshim.h` before the repository's `include/` (to build against
    /// a modified copy of the header).
    pub header_dir: Option<PathBuf>,
    /// Build with AddressSanitizer and UndefinedBehaviorSanitizer (no recovery); run the module
    /// with libasan preloaded ([`sanitizer_env`]).
    pub sanitize: bool,
    /// Macros defined to 1 on the command line (`FTSHIM_NO_INLINE`, `FTSHIM_CHECKED`, ...).
    pub defines: Vec<&'static str>,
}

const SANITIZE_FLAGS: &[&str] =
    &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"];

/// Environment for running an interpreter that loads sanitized modules: libasan preloaded (it must
/// come first in the process), leak checking off (the interpreter's own allocations are not
/// ours), abort on the first report.
pub fn sanitizer_env() -> Vec<(String, String)> {
    let out = Command::new("gcc").arg("-print-file-name=libasan.so").output().expect("run gcc");
    let libasan = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(Path::new(&libasan).exists(), "libasan not found ({libasan}): install gcc's libasan");
    vec![
        ("LD_PRELOAD".to_owned(), libasan),
        ("ASAN_OPTIONS".to_owned(), "detect_leaks=0:abort_on_error=1".to_owned()),
        ("UBSAN_OPTIONS".to_owned(), "halt_on_error=1:print_stacktrace=1".to_owned()),
    ]
}

/// Compiles `extensions/<name>/<name>.c` (strict C11, warnings are errors) against
/// `include/ftshim.h` and `interp`'s headers into `<out>/<name><EXT_SUFFIX>`, and returns its path.
/// It links `-lftshim` (SONAME `libftshim.so.1`) with rpath `$ORIGIN`, and `libftshim.so.1` is
/// copied beside the module.
pub fn build_extension(name: &str, interp: &Interpreter, out: &Path) -> PathBuf {
    build_extension_with(name, interp, out, &BuildOptions::default())
}

/// [`build_extension`] with options.
pub fn build_extension_with(name: &str, interp: &Interpreter, out: &Path, opts: &BuildOptions) -> PathBuf {
    let src = workspace_root().join("extensions").join(name).join(format!("{name}.c"));
    build_module(&src, name, interp, out, opts)
}

/// The one compiler configuration every C build here uses: the system C compiler (through `cc`)
/// in strict C11 (`-Wall -Wextra -Werror`), `-O2`, position-independent, with `opts.header_dir`
/// (if any), the shipped `include/` and `interp`'s headers on the include path, and the
/// sanitizers when `opts.sanitize`.
pub fn compiler(interp: &Interpreter, opts: &BuildOptions) -> cc::Tool {
    let triple = env!("FTSHIM_TARGET_TRIPLE");
    let mut build = cc::Build::new();
    if let Some(dir) = &opts.header_dir {
        build.include(dir);
    }
    for name in &opts.defines {
        build.define(name, "1");
    }
    if opts.sanitize {
        for flag in SANITIZE_FLAGS {
            build.flag(flag);
        }
    }
    build
        .include(&artifacts().include_dir)
        .include(&interp.include_dir)
        .target(triple)
        .host(triple)
        .opt_level(2)
        .debug(false)
        .pic(true)
        .cargo_metadata(false)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .std("c11")
        .get_compiler()
}

/// Compiles the single C file `src` into the extension module `<out>/<name><EXT_SUFFIX>` for
/// `interp`, as [`build_extension_with`] describes.
pub fn build_module(
    src: &Path,
    name: &str,
    interp: &Interpreter,
    out: &Path,
    opts: &BuildOptions,
) -> PathBuf {
    let compiler = compiler(interp, opts);
    let object = out.join(format!("{name}.o"));
    let module = out.join(format!("{name}{}", interp.ext_suffix));
    run_tool(compiler.to_command().arg("-c").arg(src).arg("-o").arg(&object), "compiling", src, interp);
    let mut cmd = compiler.to_command();
    cmd.arg("-shared").arg(&object).arg("-o").arg(&module);
    if opts.sanitize {
        cmd.args(SANITIZE_FLAGS);
    }
    if opts.static_link {
        // libftshim.a carries Rust's std; keep all of it private to this module.
        cmd.arg(artifacts().lib_dir.join("libftshim.a")).args([
            "-Wl,--exclude-libs,ALL",
            "-Wl,--gc-sections",
            "-lgcc_s",
            "-lpthread",
            "-ldl",
            "-lm",
        ]);
    } else {
        cmd.args(link_libftshim(out));
    }
    run_tool(&mut cmd, "linking", &module, interp);
    module
}

/// Writes the C `source` to `<dir>/<file>` and returns its path (for C sources tests carry as
/// text).
pub fn write_source(dir: &Path, file: &str, source: &str) -> PathBuf {
    let src = dir.join(file);
    std::fs::write(&src, source).unwrap_or_else(|e| panic!("write {}: {e}", src.display()));
    src
}

/// Writes the C `source` to `<out>/<name>.c` and builds it as the module `<out>/<name><EXT_SUFFIX>`
/// for `interp` with [`build_module`] (strict C11; `libftshim.so.1` is copied beside it).
pub fn build_c_source(name: &str, source: &str, interp: &Interpreter, out: &Path) -> PathBuf {
    let src = write_source(out, &format!("{name}.c"), source);
    build_module(&src, name, interp, out, &BuildOptions::default())
}

/// Copies both shipped shared libraries (`libftshim.so.1`, `libftshim_loader.so.1`) into `dir`
/// and returns the linker arguments that link libftshim with rpath `$ORIGIN`, so a binary in
/// `dir` finds them at run time (add `-lftshim_loader` to use the loader too).
pub fn link_libftshim(dir: &Path) -> Vec<String> {
    let lib_dir = &artifacts().lib_dir;
    for lib in LIBRARIES {
        std::fs::copy(lib_dir.join(lib.soname()), dir.join(lib.soname()))
            .unwrap_or_else(|e| panic!("copy {} into {}: {e}", lib.soname(), dir.display()));
    }
    vec![format!("-L{}", lib_dir.display()), "-lftshim".to_owned(), "-Wl,-rpath,$ORIGIN".to_owned()]
}

/// Compiles and links the C program `src` into `<dir>/<stem>` with the same [`compiler`] as the
/// modules (strict C11 against include/ and `interp`'s headers), linked with libftshim through
/// [`link_libftshim`], plus `extra` arguments. Panics with the compiler's output on failure.
pub fn c_program(src: &Path, interp: &Interpreter, dir: &Path, extra: &[String]) -> PathBuf {
    let exe = dir.join(src.file_stem().expect("a file name"));
    let mut cmd = compiler(interp, &BuildOptions::default()).to_command();
    cmd.arg(src).arg("-o").arg(&exe).args(link_libftshim(dir)).args(extra);
    run_tool(&mut cmd, "building", src, interp);
    exe
}

/// The DT_NEEDED entries of a shared object, as `readelf -d` lists them.
pub fn needed_libs(path: &Path) -> Vec<String> {
    let out = Command::new("readelf").arg("-d").arg(path).output().expect("run readelf");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

/// Runs a compiler or linker command; on failure panics with its stderr.
fn run_tool(cmd: &mut Command, what: &str, file: &Path, interp: &Interpreter) {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{what} {} for {} failed: {shown}\n{}",
        file.display(),
        interp.executable.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
