//! The descriptor `open` keeps for a module, closed behind its back: the next file opened under
//! that number would be handed the old module by the dynamic linker (which matches the name
//! `/proc/self/fd/N` first); `open` sees that the handle is another file's and refuses. Its own test
//! binary, with one test: the descriptor numbers must not be taken by other tests meanwhile.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use ftshim_abi_tests::corpus::{libpython_global, two_counter_builds};
use ftshim_abi_tests::interpreters;
use ftshim_loader::{self as loader, Code, OpenError};

#[test]
fn a_kept_descriptor_closed_by_other_code_is_noticed_and_refused() {
    let ft = &interpreters().ft;
    libpython_global(ft);
    let (a, b) = two_counter_builds("loader-fd-closed", ft);
    let target = ft.target();
    // SAFETY: the counter example; its initialisers are the C runtime's only.
    let first = unsafe { loader::open(&a, &target) }.unwrap_or_else(|e| panic!("{e}"));
    let real = std::fs::canonicalize(&a).unwrap();
    let kept: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            (std::fs::read_link(e.path()).ok()? == real).then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let fd = kept[0];
    // Other code closes it; the next file opened gets its number (the lowest free one).
    // SAFETY: closing a descriptor this test found; the loader only keeps it, never reads it again.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    let probe = std::fs::File::open(&b).unwrap();
    assert_eq!(probe.as_raw_fd(), fd, "the freed number is not the lowest free one");
    drop(probe);
    let m = std::fs::metadata(&a).unwrap();
    // SAFETY: refused after dlopen's name match returned the module loaded before, which runs
    // nothing.
    match unsafe { loader::open(&b, &target) } {
        Err(OpenError::Refused(report)) => {
            assert_eq!(report.codes(), [Code::DlopenFailed]);
            assert_eq!(
                report.messages(),
                [format!(
                    "{}: accepted, but not opened: dlopen(/proc/self/fd/{fd}) returned the module loaded before from device {} inode {}: the descriptor the loader keeps for that module was closed by other code, and its name reused",
                    b.display(),
                    m.dev(),
                    m.ino()
                )]
            );
        }
        Err(e) => panic!("expected dlopen-failed, got {e}"),
        Ok(_) => panic!("the module of another file was handed out"),
    }
    drop(first);
}
