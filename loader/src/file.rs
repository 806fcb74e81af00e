//! Reading a candidate module: open it once, without blocking, insist on a regular file, and read
//! it only through bounded `pread`s into memory the loader owns ([`Source`]).
//!
//! Nothing here runs code from the file. The file is opened `O_NONBLOCK | O_NOCTTY` so a FIFO (or
//! any other special file) cannot hang the checker, and `fstat` decides whether it is a regular
//! file and records its [`Stamp`] (size, modification and change times, device, inode).
//!
//! The file is never mapped. A shared mapping of a file another process truncates raises `SIGBUS`
//! on the first touch of a page past the new end, and under the import guard that signal would
//! kill the user's interpreter. Reads instead go through `pread` into heap buffers: a read that
//! comes up short (the file shrank) or fails is remembered, and [`Source::settle`] turns it, or any
//! difference between the stamp taken at the start and one taken at the end, into a
//! `file-changed` (or `unreadable`) refusal. Only the pieces the ELF reader asks for are read,
//! in blocks of [`BLOCK`] bytes, so a 1 GiB library still costs its headers and dynamic symbol
//! table, not 1 GiB.
//!
//! What the stamp comparison proves: `write`, `pwrite`, `truncate` and every other system call
//! that changes a file's bytes set its change time (ctime), which no caller can set back. On Linux
//! 6.13 and later, ext4, xfs, btrfs and tmpfs give a change that follows an `fstat` a new,
//! fine-grained ctime (multigrain timestamps), so any such change after the first `fstat` is seen.
//! Older kernels keep ctime at clock-tick granularity (1–10 ms): a rewrite of the same size within
//! the tick of the file's previous change can go unseen there. Stores through a shared writable
//! mapping of the file update the times only when a clean page is first written, so a writer that
//! already holds dirty mapped pages can change bytes without changing the stamp (docs/loader.md).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use object::ReadRef;

use crate::code::{Code, Refusal};

/// What `fstat` says about a file that decides whether it is still the file that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// `st_dev`.
    pub(crate) dev: u64,
    /// `st_ino`.
    pub(crate) ino: u64,
    /// `st_size`.
    pub(crate) size: u64,
    /// `st_mtime`, `st_mtime_nsec`.
    pub(crate) mtime: (i64, i64),
    /// `st_ctime`, `st_ctime_nsec`.
    pub(crate) ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// `size N bytes, mtime S.NNNNNNNNN, ctime S.NNNNNNNNN`.
    pub(crate) fn describe(&self) -> String {
        format!("size {} bytes, mtime {}, ctime {}", self.size, time(self.mtime), time(self.ctime))
    }

    /// The fields of `now` that differ from `self`, described as [`Stamp::describe`] does, or
    /// `None` when it is the same file, unchanged.
    pub(crate) fn differences(&self, now: &Stamp) -> Option<String> {
        let mut found = Vec::new();
        if (now.dev, now.ino) != (self.dev, self.ino) {
            found.push(format!("device {} inode {}", now.dev, now.ino));
        }
        if now.size != self.size {
            found.push(format!("size {} bytes", now.size));
        }
        if now.mtime != self.mtime {
            found.push(format!("mtime {}", time(now.mtime)));
        }
        if now.ctime != self.ctime {
            found.push(format!("ctime {}", time(now.ctime)));
        }
        (!found.is_empty()).then(|| found.join(", "))
    }
}

fn time((secs, nanos): (i64, i64)) -> String {
    format!("{secs}.{nanos:09}")
}

/// `fstat` of an open file, as a [`Stamp`].
pub(crate) fn stamp_of(file: &File) -> io::Result<Stamp> {
    file.metadata().map(|m| Stamp::of(&m))
}

/// Reads are made in blocks of at least this many bytes (clamped to the file's end), so the
/// many small reads of an ELF parser (one per symbol name) are served from memory.
pub(crate) const BLOCK: u64 = 64 << 10;

/// Bytes read beyond twice the file's size that a [`Source`] may hold: headers that make the
/// parser read overlapping tables over and over are refused, not allowed to exhaust memory.
const SLACK: u64 = 16 << 20;

/// Why reading stopped short, remembered until [`Source::settle`].
#[derive(Debug)]
enum Trouble {
    /// A read at `offset` of `wanted` bytes got `got` (the file ended earlier than its size).
    Short { offset: u64, wanted: u64, got: u64 },
    /// A read at `offset` failed.
    Failed { offset: u64, error: io::Error },
}

#[derive(Default)]
struct Cache {
    /// Byte ranges read so far, by offset. An entry is never removed or changed while its
    /// [`Source`] lives: slices handed out by [`ReadRef`] point into these boxes.
    ranges: BTreeMap<u64, Box<[u8]>>,
    /// The bytes held in `ranges`.
    held: u64,
    /// The first read that failed or came up short.
    trouble: Option<Trouble>,
    /// A read was refused because it would have held more than the budget.
    over_budget: bool,
}

impl Cache {
    /// The cached bytes from `offset` to the end of a cached range holding `offset..end`.
    fn find(&self, offset: u64, end: u64) -> Option<&[u8]> {
        // Ranges may overlap: look at a few of those starting at or before `offset`.
        self.ranges.range(..=offset).rev().take(8).find_map(|(start, bytes)| {
            let skip = usize::try_from(offset - start).ok()?;
            let have = *start + bytes.len() as u64;
            (have >= end).then(|| &bytes[skip..])
        })
    }
}

/// A regular file opened for inspection, read only through bounded `pread`s (see the module
/// documentation). `&Source` is an [`object::ReadRef`], so the ELF code parses it like a byte
/// slice; every byte it hands out was read into the loader's own memory.
pub(crate) struct Source {
    file: File,
    stamp: Stamp,
    cache: RefCell<Cache>,
}

impl Source {
    /// The stamp taken when the file was opened.
    pub(crate) fn stamp(&self) -> &Stamp {
        &self.stamp
    }

    /// The open file.
    #[cfg(test)]
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The open file, for the caller to keep.
    pub(crate) fn into_file(self) -> File {
        self.file
    }

    /// After the reading: `Ok` when every read got its bytes and the file is as it was opened
    /// (same device, inode, size, mtime and ctime); else the refusal saying what happened —
    /// `unreadable` for a failed read, `file-changed` for a file that changed or shrank.
    pub(crate) fn settle(&self) -> Result<(), Refusal> {
        let cache = self.cache.borrow();
        let short = match &cache.trouble {
            Some(Trouble::Failed { offset, error }) => {
                return Err(Refusal::new(
                    Code::Unreadable,
                    format!("expected a readable file, found that a read at offset {offset} fails: {error}"),
                ));
            }
            Some(Trouble::Short { offset, wanted, got }) => Some((offset, wanted, got)),
            None => None,
        };
        let now = stamp_of(&self.file).map_err(|e| {
            Refusal::new(Code::Unreadable, format!("expected a readable file, found that fstat fails: {e}"))
        })?;
        let found = match (self.stamp.differences(&now), short) {
            (None, None) => return Ok(()),
            (Some(found), _) => found,
            (None, Some((offset, wanted, got))) => format!(
                "a read of {wanted} bytes at offset {offset} that got {got}, though size, mtime and ctime are unchanged"
            ),
        };
        Err(Refusal::new(
            Code::FileChanged,
            format!(
                "the file changed while it was inspected (nothing read from it is reported): expected it as it was opened ({}), found {found}",
                self.stamp.describe()
            ),
        ))
    }

    /// True when a read was refused because the headers made the reader hold more than twice
    /// the file's size plus 16 MiB.
    pub(crate) fn over_budget(&self) -> bool {
        self.cache.borrow().over_budget
    }

    /// A `Read + Seek` view that reads with `pread` (for the zip reader); short reads are
    /// remembered for [`Source::settle`] like the parser's.
    #[cfg_attr(not(feature = "wheel"), allow(dead_code))]
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader { source: self, pos: 0 }
    }

    /// Reads `len` bytes at `offset` into a new buffer; returns the bytes read (fewer when the
    /// file ended early, remembered as trouble).
    fn pread(&self, offset: u64, len: u64, cache: &mut Cache) -> Option<Vec<u8>> {
        let len = usize::try_from(len).ok()?;
        let mut buf: Vec<u8> = Vec::new();
        buf.try_reserve_exact(len).ok()?;
        let mut got = 0usize;
        while got < len {
            let at = i64::try_from(offset + got as u64).ok()?;
            // SAFETY: writes at most `len - got` bytes into the vector's spare capacity, which
            // starts `got` bytes into an allocation of at least `len` bytes.
            let n = unsafe {
                libc::pread(self.file.as_raw_fd(), buf.as_mut_ptr().add(got).cast(), len - got, at)
            };
            match n {
                0 => break,
                n if n > 0 => got += n as usize,
                _ => {
                    let error = io::Error::last_os_error();
                    if error.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    cache.trouble.get_or_insert(Trouble::Failed { offset: offset + got as u64, error });
                    return None;
                }
            }
        }
        // SAFETY: the first `got` bytes were written by pread above.
        unsafe { buf.set_len(got) };
        if got < len {
            cache.trouble.get_or_insert(Trouble::Short { offset, wanted: len as u64, got: got as u64 });
        }
        Some(buf)
    }
}

impl<'a> ReadRef<'a> for &'a Source {
    fn len(self) -> Result<u64, ()> {
        Ok(self.stamp.size)
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> Result<&'a [u8], ()> {
        if size == 0 {
            return Ok(&[]);
        }
        let end = offset.checked_add(size).ok_or(())?;
        if end > self.stamp.size {
            return Err(());
        }
        let want = usize::try_from(size).map_err(|_| ())?;
        let mut cache = self.cache.borrow_mut();
        if let Some(bytes) = cache.find(offset, end) {
            let bytes = &bytes[..want];
            // SAFETY: `bytes` points into a boxed slice owned by `self.cache.ranges`; entries are
            // never removed or mutated while the Source lives (moving the Box within the map does
            // not move its heap allocation), and `'a` is a borrow of the Source.
            return Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) });
        }
        if cache.trouble.is_some() {
            // Something already went wrong: the inspection will be discarded, read no more.
            return Err(());
        }
        let len = size.max(BLOCK).min(self.stamp.size - offset);
        let budget = self.stamp.size.saturating_mul(2).saturating_add(SLACK);
        if cache.held.saturating_add(len) > budget {
            cache.over_budget = true;
            return Err(());
        }
        let buf = self.pread(offset, len, &mut cache).ok_or(())?;
        if buf.len() < want {
            return Err(());
        }
        cache.held += buf.len() as u64;
        let boxed = buf.into_boxed_slice();
        let ptr = boxed.as_ptr();
        cache.ranges.insert(offset, boxed);
        // SAFETY: as above: the allocation now belongs to `self.cache.ranges` for the Source's
        // life and holds at least `want` bytes.
        Ok(unsafe { std::slice::from_raw_parts(ptr, want) })
    }

    fn read_bytes_at_until(self, range: Range<u64>, delimiter: u8) -> Result<&'a [u8], ()> {
        if range.start >= range.end {
            return Err(());
        }
        let total = range.end - range.start;
        // Usually the string is in what is already read from `range.start` on.
        let cached = {
            let cache = self.cache.borrow();
            cache.find(range.start, range.start + 1).map(|bytes| {
                let bytes = &bytes[..bytes.len().min(usize::try_from(total).unwrap_or(usize::MAX))];
                let found = bytes.iter().position(|b| *b == delimiter).map(|at| &bytes[..at]);
                // SAFETY: as in `read_bytes_at`: the bytes belong to `self.cache.ranges`, whose
                // entries live, unchanged, as long as the Source.
                (
                    found.map(|b| unsafe { std::slice::from_raw_parts(b.as_ptr(), b.len()) }),
                    bytes.len() as u64,
                )
            })
        };
        let mut len = match cached {
            Some((Some(found), _)) => return Ok(found),
            Some((None, have)) if have == total => return Err(()),
            Some((None, have)) => have.saturating_mul(2).min(total),
            None => BLOCK.min(total),
        };
        // Else a block, then twice as much each time the delimiter is not in it, up to the end of
        // the range.
        loop {
            let bytes = self.read_bytes_at(range.start, len)?;
            if let Some(at) = bytes.iter().position(|b| *b == delimiter) {
                return Ok(&bytes[..at]);
            }
            if len == total {
                return Err(());
            }
            len = len.saturating_mul(2).min(total);
        }
    }
}

/// [`Source::reader`]: `Read + Seek` over `pread`, within the size the file had when opened.
#[cfg_attr(not(feature = "wheel"), allow(dead_code))]
pub(crate) struct Reader<'a> {
    source: &'a Source,
    pos: u64,
}

impl io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.source.stamp.size;
        if self.pos >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = (size - self.pos).min(buf.len() as u64) as usize;
        loop {
            match self.source.file.read_at(&mut buf[..n], self.pos) {
                Ok(0) => {
                    let mut cache = self.source.cache.borrow_mut();
                    cache.trouble.get_or_insert(Trouble::Short {
                        offset: self.pos,
                        wanted: n as u64,
                        got: 0,
                    });
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was read",
                    ));
                }
                Ok(got) => {
                    self.pos += got as u64;
                    return Ok(got);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let kind = error.kind();
                    let text = error.to_string();
                    let mut cache = self.source.cache.borrow_mut();
                    cache.trouble.get_or_insert(Trouble::Failed { offset: self.pos, error });
                    return Err(io::Error::new(kind, text));
                }
            }
        }
    }
}

impl io::Seek for Reader<'_> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let base = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.source.stamp.size.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let pos = base.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = pos;
        Ok(pos)
    }
}

/// Opens `path` without blocking and checks it is a regular file. The error is a [`Refusal`]
/// with an I/O code ([`Code::is_io`]) whose sentence says what was expected and found; callers
/// put their context in front (inspection: `cannot read: `).
pub(crate) fn open(path: &Path) -> Result<Source, Refusal> {
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
    Ok(Source { file, stamp: Stamp::of(&meta), cache: RefCell::new(Cache::default()) })
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom};

    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ftshim-file-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn reads_are_bounded_cached_and_exact() {
        let dir = scratch("exact");
        let path = dir.join("f");
        let data = bytes(3 * BLOCK as usize + 17);
        std::fs::write(&path, &data).unwrap();
        let source = open(&path).unwrap();
        let r = &source;
        assert_eq!(r.len(), Ok(data.len() as u64));
        assert_eq!(r.read_bytes_at(5, 10).unwrap(), &data[5..15]);
        // Served from the block read above: no new range.
        assert_eq!(r.read_bytes_at(1000, 3).unwrap(), &data[1000..1003]);
        assert_eq!(source.cache.borrow().ranges.len(), 1);
        // Across the block's end, and up to the file's end exactly.
        let big = (BLOCK + 100) as usize;
        assert_eq!(r.read_bytes_at(7, big as u64).unwrap(), &data[7..7 + big]);
        let last = data.len() as u64 - 1;
        assert_eq!(r.read_bytes_at(last, 1).unwrap(), &data[data.len() - 1..]);
        // Past the end: an error, not a short slice.
        assert_eq!(r.read_bytes_at(last, 2), Err(()));
        assert_eq!(r.read_bytes_at(u64::MAX, 2), Err(()));
        // Strings: up to the delimiter, found in a later block too.
        let until = r.read_bytes_at_until(3..data.len() as u64, 250).unwrap();
        assert_eq!(until, &data[3..250]);
        assert_eq!(r.read_bytes_at_until(251..260, 0xff), Err(()));
        assert_eq!(source.settle(), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_string_that_runs_past_the_cached_block_is_read_in_full() {
        let dir = scratch("until");
        let path = dir.join("f");
        let mut data = vec![b'x'; 3 * BLOCK as usize];
        data[BLOCK as usize + 100] = 0;
        std::fs::write(&path, &data).unwrap();
        let source = open(&path).unwrap();
        let r = &source;
        assert_eq!(r.read_bytes_at(0, 1).unwrap(), b"x");
        let s = r.read_bytes_at_until(BLOCK - 10..data.len() as u64, 0).unwrap();
        assert_eq!(s, &data[BLOCK as usize - 10..BLOCK as usize + 100]);
        // Served from the cache now, and no delimiter within a shorter range.
        assert_eq!(r.read_bytes_at_until(BLOCK..BLOCK + 101, 0).unwrap().len(), 100);
        assert_eq!(r.read_bytes_at_until(BLOCK..BLOCK + 100, 0), Err(()));
        assert_eq!(source.settle(), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_shrinks_while_it_is_read_is_file_changed_never_a_signal() {
        let dir = scratch("shrink");
        let path = dir.join("f");
        let data = bytes(4 * BLOCK as usize);
        std::fs::write(&path, &data).unwrap();
        let source = open(&path).unwrap();
        let before = source.stamp().clone();
        assert_eq!((&source).read_bytes_at(0, 16).unwrap(), &data[..16]);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1000).unwrap();
        // A block past the new end: the read comes up short, the caller gets an error.
        assert_eq!((&source).read_bytes_at(2 * BLOCK, 16), Err(()));
        let after = stamp_of(source.file()).unwrap();
        let refusal = source.settle().unwrap_err();
        assert_eq!(refusal.code, Code::FileChanged);
        assert_eq!(
            refusal.message,
            format!(
                "the file changed while it was inspected (nothing read from it is reported): expected it as it was opened (size {} bytes, mtime {}, ctime {}), found size 1000 bytes, mtime {}, ctime {}",
                data.len(),
                time(before.mtime),
                time(before.ctime),
                time(after.mtime),
                time(after.ctime)
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rewrite_in_place_is_file_changed() {
        let dir = scratch("rewrite");
        let path = dir.join("f");
        std::fs::write(&path, bytes(100)).unwrap();
        let source = open(&path).unwrap();
        assert_eq!(source.settle(), Ok(()));
        // Same size, same inode, different bytes.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_at(b"changed", 10).unwrap();
        let now = stamp_of(source.file()).unwrap();
        assert_eq!((now.dev, now.ino, now.size), (source.stamp().dev, source.stamp().ino, 100));
        let refusal = source.settle().unwrap_err();
        assert_eq!(refusal.code, Code::FileChanged);
        assert_eq!(
            refusal.message,
            format!(
                "the file changed while it was inspected (nothing read from it is reported): expected it as it was opened ({}), found mtime {}, ctime {}",
                source.stamp().describe(),
                time(now.mtime),
                time(now.ctime)
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn differences_name_each_field() {
        let a = Stamp { dev: 1, ino: 2, size: 3, mtime: (4, 5), ctime: (6, 7) };
        assert_eq!(a.differences(&a.clone()), None);
        assert_eq!(a.describe(), "size 3 bytes, mtime 4.000000005, ctime 6.000000007");
        let b = Stamp { dev: 1, ino: 9, size: 3, mtime: (4, 5), ctime: (6, 8) };
        assert_eq!(a.differences(&b).as_deref(), Some("device 1 inode 9, ctime 6.000000008"));
    }

    #[test]
    fn overlapping_reads_beyond_the_budget_are_refused() {
        let dir = scratch("budget");
        let path = dir.join("f");
        let size = BLOCK;
        std::fs::write(&path, bytes(size as usize)).unwrap();
        let source = open(&path).unwrap();
        // Each read starts one byte before the last and runs to the end, so none is served from
        // the cache: a parser led by hostile headers could do this.
        let refused_at =
            (0..size - 1).rev().find(|start| (&source).read_bytes_at(*start, size - start).is_err());
        assert!(source.over_budget());
        // Refused exactly when the read would have taken the held bytes past the budget.
        let (held, budget) = (source.cache.borrow().held, 2 * size + SLACK);
        let at = refused_at.unwrap();
        assert!(held <= budget && held + (size - at) > budget, "{held} {at}");
        assert_eq!(source.settle(), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_reader_stops_at_the_size_it_was_opened_with() {
        let dir = scratch("reader");
        let path = dir.join("f");
        let data = bytes(5000);
        std::fs::write(&path, &data).unwrap();
        let source = open(&path).unwrap();
        let mut reader = source.reader();
        assert_eq!(reader.seek(SeekFrom::End(-10)).unwrap(), 4990);
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[4990..]);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(10).unwrap();
        reader.seek(SeekFrom::Start(100)).unwrap();
        let e = reader.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(source.settle().unwrap_err().code, Code::FileChanged);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
