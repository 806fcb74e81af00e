//! Fuzzing the inspector: a deterministic property test over mutated real ELF modules.
//!
//! No nightly toolchain here, so no cargo-fuzz: a seeded PRNG mutates the counter example
//! (3.13t, 3.13, 3.11 builds) and a limited-API module with byte flips, boundary values written
//! into ELF / program / section header fields, `.dynsym` entry and `.dynstr` corruption,
//! splices and truncations. Properties: inspection never panics and never hangs (a watchdog
//! aborts the process naming the iteration), every message names the file, in-memory
//! inspection never reports I/O codes, and inspecting the same bytes from a file (the bounded
//! `pread` path) gives the same codes. `FTSHIM_FUZZ_ITERS=N` runs N executions (default 100,000) and
//! `FTSHIM_FUZZ_SEED=S` picks the seed.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ftshim_abi_tests::corpus::{LIMITED_SOURCE, truncations};
use ftshim_abi_tests::{build_c_source, build_extension, interpreters, scratch};
use ftshim_loader as loader;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Endianness, elf};

/// xorshift64*: small, fast and reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Where the interesting structures of one base file are.
struct Layout {
    phoff: usize,
    phnum: usize,
    shoff: usize,
    shnum: usize,
    dynsym: (usize, usize),
    dynstr: (usize, usize),
}

fn layout(data: &[u8]) -> Layout {
    let file = ElfFile64::<Endianness>::parse(data).expect("base file parses");
    let e = file.endian();
    let h = file.elf_header();
    let find = |ty| {
        h.section_headers(e, data)
            .unwrap()
            .iter()
            .find(|s| s.sh_type(e) == ty)
            .map(|s| (s.sh_offset(e) as usize, s.sh_size(e) as usize))
            .expect("section present")
    };
    Layout {
        phoff: h.e_phoff(e) as usize,
        phnum: h.e_phnum(e) as usize,
        shoff: h.e_shoff(e) as usize,
        shnum: h.e_shnum(e) as usize,
        dynsym: find(elf::SHT_DYNSYM),
        dynstr: find(elf::SHT_STRTAB),
    }
}

fn interesting(rng: &mut Rng, len: usize) -> u64 {
    match rng.below(10) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => len as u64,
        4 => len as u64 - 1,
        5 => len as u64 + 1,
        6 => 0x7fff_ffff_ffff_ffff,
        7 => u64::from(u16::MAX),
        8 => u64::from(u32::MAX),
        _ => rng.next(),
    }
}

fn put(data: &mut [u8], at: usize, width: usize, value: u64) {
    if at + width <= data.len() {
        data[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// Applies 1-4 random mutations; returns what was done (for reproducing a failure).
fn mutate(base: &[u8], l: &Layout, rng: &mut Rng) -> (Vec<u8>, Vec<String>) {
    let mut d = base.to_vec();
    let mut log = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let len = d.len().max(1);
        match rng.below(9) {
            0 => {
                let at = rng.below(len);
                let bit = rng.below(8);
                if at < d.len() {
                    d[at] ^= 1 << bit;
                }
                log.push(format!("flip bit {bit} of byte {at}"));
            }
            1 => {
                // ELF header fields: (offset, width).
                const FIELDS: [(usize, usize); 13] = [
                    (4, 1),
                    (5, 1),
                    (6, 1),
                    (16, 2),
                    (18, 2),
                    (32, 8),
                    (40, 8),
                    (52, 2),
                    (54, 2),
                    (56, 2),
                    (58, 2),
                    (60, 2),
                    (62, 2),
                ];
                let (at, w) = FIELDS[rng.below(FIELDS.len())];
                let v = interesting(rng, len);
                put(&mut d, at, w, v);
                log.push(format!("ELF header field at {at} ({w} bytes) = {v:#x}"));
            }
            2 => {
                const FIELDS: [(usize, usize); 6] = [(0, 4), (4, 4), (8, 8), (32, 8), (40, 8), (48, 8)];
                let i = rng.below(l.phnum);
                let (off, w) = FIELDS[rng.below(FIELDS.len())];
                let v = interesting(rng, len);
                put(&mut d, l.phoff + 56 * i + off, w, v);
                log.push(format!("program header {i} field +{off} = {v:#x}"));
            }
            3 => {
                const FIELDS: [(usize, usize); 8] =
                    [(0, 4), (4, 4), (24, 8), (32, 8), (40, 4), (44, 4), (48, 8), (56, 8)];
                let i = rng.below(l.shnum);
                let (off, w) = FIELDS[rng.below(FIELDS.len())];
                let v = interesting(rng, len);
                put(&mut d, l.shoff + 64 * i + off, w, v);
                log.push(format!("section header {i} field +{off} = {v:#x}"));
            }
            4 => {
                const FIELDS: [(usize, usize); 5] = [(0, 4), (4, 1), (6, 2), (8, 8), (16, 8)];
                let i = rng.below(l.dynsym.1 / 24);
                let (off, w) = FIELDS[rng.below(FIELDS.len())];
                let v = if rng.below(2) == 0 {
                    interesting(rng, len)
                } else {
                    rng.next() % (l.dynstr.1 as u64 + 64)
                };
                put(&mut d, l.dynsym.0 + 24 * i + off, w, v);
                log.push(format!(".dynsym entry {i} field +{off} = {v:#x}"));
            }
            5 => {
                let start = l.dynstr.0 + rng.below(l.dynstr.1);
                let n = 1 + rng.below(32);
                for b in d.iter_mut().skip(start).take(n) {
                    *b = if *b == 0 { b'A' } else { (rng.next() & 0xff) as u8 };
                }
                log.push(format!(".dynstr bytes {start}..+{n} scrambled (NULs removed)"));
            }
            6 => {
                let (from, to, n) = (rng.below(len), rng.below(len), 1 + rng.below(256));
                let chunk: Vec<u8> = d.iter().skip(from).take(n).copied().collect();
                for (i, b) in chunk.iter().enumerate() {
                    if to + i < d.len() {
                        d[to + i] = *b;
                    }
                }
                log.push(format!("copied {n} bytes from {from} to {to}"));
            }
            7 => {
                let n = 1 + rng.below(4096);
                d.extend((0..n).map(|_| (rng.next() & 0xff) as u8));
                log.push(format!("appended {n} random bytes"));
            }
            _ => {
                let cut = rng.below(len);
                d.truncate(cut);
                log.push(format!("truncated to {cut} bytes"));
            }
        }
    }
    (d, log)
}

const NAMES: [&str; 4] = [
    "counter.cpython-313t-x86_64-linux-gnu.so",
    "counter.so",
    "counter.abi3.so",
    "other.cpython-313t-x86_64-linux-gnu.so",
];

#[test]
fn mutated_elf_modules_never_crash_or_hang_the_inspector() {
    let iterations: u64 =
        std::env::var("FTSHIM_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let seed: u64 =
        std::env::var("FTSHIM_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_f75b_1a7e);
    let all = interpreters();
    let dir = scratch("loader-fuzz");
    let mut bases = Vec::new();
    for (label, interp) in all.all() {
        let out = dir.join(label);
        std::fs::create_dir_all(&out).unwrap();
        bases.push(std::fs::read(build_extension("counter", interp, &out)).unwrap());
    }
    bases.push(std::fs::read(build_c_source("lim", LIMITED_SOURCE, &all.gil313, &dir)).unwrap());
    let layouts: Vec<Layout> = bases.iter().map(|b| layout(b)).collect();
    let target = all.ft.target();

    // Watchdog: no single inspection may take more than 10 s.
    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut last, mut since) = (u64::MAX, Instant::now());
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = progress.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > Duration::from_secs(10) {
                    eprintln!("fuzz: execution {now} (seed {seed:#x}) has run for 10 s: the inspector hangs");
                    std::process::abort();
                }
            }
        })
    };

    let mut rng = Rng(seed);
    let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut accepted, mut slowest, mut through_files) = (0u64, Duration::ZERO, 0u64);
    let start = Instant::now();
    for i in 0..iterations {
        progress.store(i, Ordering::Relaxed);
        let b = rng.below(bases.len());
        let (data, log) = mutate(&bases[b], &layouts[b], &mut rng);
        let name = NAMES[rng.below(NAMES.len())];
        let t0 = Instant::now();
        let report =
            catch_unwind(AssertUnwindSafe(|| loader::inspect_bytes(Path::new(name), &data, &target)))
                .unwrap_or_else(|_| {
                    panic!("execution {i} (seed {seed:#x}, base {b}, name {name}) panicked after: {log:#?}")
                });
        slowest = slowest.max(t0.elapsed());
        for r in &report.refusals {
            assert!(!r.code.is_io(), "execution {i}: I/O code {} from in-memory bytes", r.code);
            let message = report.about(&r.message);
            assert!(message.starts_with(&format!("{name}: ")), "execution {i}: {message} ({log:?})");
            *seen.entry(r.code.as_str()).or_default() += 1;
        }
        accepted += u64::from(report.accepted());
        // Every 250th execution also goes through a real file: the pread path must agree.
        if i % 250 == 0 {
            let path = dir.join(name);
            std::fs::write(&path, &data).unwrap();
            let from_file = loader::inspect(&path, &target);
            let codes = |r: &loader::Report| r.refusals.iter().map(|x| x.code).collect::<Vec<_>>();
            assert_eq!(codes(&from_file), codes(&report), "execution {i}: file vs bytes ({log:?})");
            through_files += 1;
        }
    }
    done.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();
    let elapsed = start.elapsed();
    println!(
        "fuzz: {iterations} executions ran clean (seed {seed:#x}, {} base modules, {through_files} also through files) in {:.2} s, slowest {:.1} ms; {accepted} accepted; refusal codes seen: {seen:?}",
        bases.len(),
        elapsed.as_secs_f64(),
        slowest.as_secs_f64() * 1e3
    );
    // The mutations reach every layer of the inspector, not just the magic check.
    if iterations >= 5_000 {
        for code in [
            "truncated",
            "elf-malformed",
            "elf-class",
            "elf-machine",
            "elf-type",
            "no-init",
            "unresolved-symbol",
        ] {
            assert!(seen.contains_key(code), "no mutation produced {code}: {seen:?}");
        }
        assert!(accepted > 0, "no mutation left a module acceptable");
    }
    // Sanity: the unmutated bases and their truncations behave as the corpus test expects.
    for (b, base) in bases.iter().enumerate().take(1) {
        for len in truncations(base.len()) {
            let r = loader::inspect_bytes(Path::new(NAMES[0]), &base[..len], &target);
            assert_eq!(r.refusals.len(), 1, "base {b} cut at {len}");
        }
    }
}
