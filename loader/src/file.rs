//! Reading a candidate module: open without blocking, insist on a regular file, map it read-only.
//!
//! Nothing here runs code from the file. The file is opened `O_NONBLOCK` so a FIFO (or any other
//! special file) cannot hang the checker, `fstat` decides whether it is a regular file, and a
//! regular file is mapped `PROT_READ`/`MAP_PRIVATE`: only the pages the ELF parser touches are
//! ever read, so a 1 GiB library costs its headers and dynamic symbol table, not 1 GiB.
//!
//! Known limit of mapping (documented in docs/loader.md): if another process truncates the file
//! while it is being inspected, touching a page past the new end raises `SIGBUS`. Files under
//! inspection are expected to be at rest.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::code::{Code, Refusal};

/// A read-only private mapping of a whole file, unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value; sharing `&[u8]` views of it between
// threads is as safe as sharing any other immutable byte slice.
unsafe impl Send for Mapping {}
// SAFETY: as above: no interior mutability, the bytes are never written through this value.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live PROT_READ mapping of exactly `len` bytes (len > 0), owned by
        // `self` and unmapped only in Drop, so the slice cannot outlive it.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by mmap in `read` and not yet unmapped;
        // no slice borrowed from it can outlive `self`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// The contents of a regular file: mapped, or empty (an empty file cannot be mapped).
pub(crate) enum Contents {
    /// A file of at least one byte.
    Mapped(Mapping),
    /// A regular file of zero bytes.
    Empty,
}

impl Contents {
    /// The file's bytes (empty for [`Contents::Empty`]).
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => m.bytes(),
            Contents::Empty => &[],
        }
    }
}

/// A regular file that was opened and read, with the identity it had when it was read.
pub(crate) struct Opened {
    /// Its bytes.
    pub(crate) contents: Contents,
    /// `(st_dev, st_ino)` at the time it was read: `open` compares it before `dlopen`.
    pub(crate) identity: (u64, u64),
}

/// Opens `path` without blocking, checks it is a regular file and maps it. The error is a
/// [`Refusal`] with an I/O code ([`Code::is_io`]) whose sentence says what was expected and found;
/// callers put their context in front (inspection: `cannot read: `).
pub(crate) fn read(path: &Path) -> Result<Opened, Refusal> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| open_problem(path, e))?;
    let meta = file.metadata().map_err(|e| {
        Refusal::new(Code::Unreadable, format!("expected a readable file, found that fstat fails: {e}"))
    })?;
    if let Some(refusal) = not_regular(meta.file_type()) {
        return Err(refusal);
    }
    let identity = (meta.dev(), meta.ino());
    let len = usize::try_from(meta.len()).map_err(|_| {
        Refusal::new(
            Code::Unreadable,
            format!("expected a file that fits in memory, found {} bytes", meta.len()),
        )
    })?;
    if len == 0 {
        return Ok(Opened { contents: Contents::Empty, identity });
    }
    Ok(Opened { contents: Contents::Mapped(map(&file, len)?), identity })
}

fn map(file: &File, len: usize) -> Result<Mapping, Refusal> {
    // SAFETY: a fresh private read-only mapping of an open fd; the kernel picks the address.
    // The fd may be closed afterwards: the mapping keeps its own reference to the file.
    let ptr = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0)
    };
    if ptr == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        return Err(Refusal::new(
            Code::Unreadable,
            format!("expected a file that can be mapped, found: {e}"),
        ));
    }
    Ok(Mapping { ptr, len })
}

/// `not-regular-file` for anything but a regular file, naming what it is.
fn not_regular(kind: std::fs::FileType) -> Option<Refusal> {
    let found = if kind.is_file() {
        return None;
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    };
    Some(Refusal::new(Code::NotRegularFile, format!("expected a regular file, found {found}")))
}

/// Classifies a failed `open`: nothing there, a dangling symbolic link, something that is not a
/// regular file (a socket, or a device such as `/dev/tty` without a controlling terminal, fails
/// `open` itself with `ENXIO`: `stat` says what it is), or unreadable.
fn open_problem(path: &Path, e: io::Error) -> Refusal {
    match e.raw_os_error() {
        Some(libc::ENOENT) => {
            // ENOENT for a path whose last component is itself a symbolic link: the link dangles.
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link {
                let to = std::fs::read_link(path)
                    .map(|t| format!("'{}'", t.display()))
                    .unwrap_or_else(|_| "an unreadable target".to_owned());
                return Refusal::new(
                    Code::DanglingSymlink,
                    format!("expected a file, found a symbolic link to {to}, which does not exist"),
                );
            }
            Refusal::new(Code::NotFound, format!("expected a file, found nothing at this path ({e})"))
        }
        Some(libc::ENOTDIR) => Refusal::new(
            Code::NotFound,
            format!("expected a file, found a path through something that is not a directory ({e})"),
        ),
        _ => std::fs::metadata(path).ok().and_then(|m| not_regular(m.file_type())).unwrap_or_else(|| {
            Refusal::new(Code::Unreadable, format!("expected a readable file, found: {e}"))
        }),
    }
}

/// `(st_dev, st_ino)` of what `path` names now (following links), for the check before dlopen.
pub(crate) fn identity_now(path: &Path) -> io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
}
