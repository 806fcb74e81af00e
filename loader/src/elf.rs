//! Static evidence from an ELF file: its identification and header (class, byte order, machine,
//! type), whether every byte its headers describe is present, and its dynamic symbol table.
//!
//! Parsed with `object`'s low-level ELF reader (no code from the file runs, and only the headers,
//! `.dynsym` and `.dynstr` are touched). Every problem is returned with the code it is refused
//! under and a sentence naming the expected and the found value.

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{Endianness, ReadRef};

use crate::code::{Code, Refusal};

/// Undefined symbols that only a free-threaded build's inline refcounting references.
pub const FT_MARKERS: &[&str] =
    &["_Py_DecRefShared", "_Py_MergeZeroLocalRefcount", "_Py_DecRefSharedDebug", "PyUnstable_Module_SetGIL"];

/// Undefined symbols a non-limited GIL build references (Py_DECREF's dealloc call) and a
/// free-threaded build does not need.
pub const GIL_MARKERS: &[&str] = &["_Py_Dealloc"];

/// What a module's dynamic symbols say about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// Defined, exported dynamic symbols (e.g. `PyInit_counter`).
    pub exports: Vec<String>,
    /// Undefined, non-weak dynamic symbols whose names start with `Py` or `_Py`: each must be
    /// resolved by the interpreter when the module is opened with `RTLD_NOW`.
    pub python_imports: Vec<String>,
    /// The [`FT_MARKERS`] found among the undefined symbols.
    pub ft_markers: Vec<String>,
    /// The [`GIL_MARKERS`] found among the undefined symbols.
    pub gil_markers: Vec<String>,
    /// Every undefined, non-weak dynamic symbol (the `Py*` ones too), without its version: what
    /// the dynamic linker must find in the process or the file's libraries.
    pub undefined: Vec<String>,
    /// What the dynamic section says about the libraries the file needs.
    pub dynamic: Dynamic,
}

/// The dynamic section's library entries (`DT_NEEDED`, `DT_RUNPATH`, `DT_RPATH`, `DT_SONAME`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dynamic {
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, split at `:` (unexpanded: `$ORIGIN` stays).
    pub runpath: Vec<String>,
    /// `DT_RPATH`, split at `:` (ignored by the dynamic linker when `DT_RUNPATH` is present).
    pub rpath: Vec<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
}

/// Everything [`examine`] found.
#[derive(Debug, Default)]
pub(crate) struct Examined {
    /// Reasons to refuse the file, in the order found.
    pub(crate) problems: Vec<Refusal>,
    /// The dynamic symbols, when the file parsed far enough to read them.
    pub(crate) evidence: Option<Evidence>,
    /// What could not be decided (sentences about the file, without its path).
    pub(crate) notes: Vec<String>,
}

/// The ELF class, byte order and machine of the machine libftshim_loader was built for.
#[cfg(target_pointer_width = "64")]
type HostHeader = elf::FileHeader64<Endianness>;
#[cfg(target_pointer_width = "32")]
type HostHeader = elf::FileHeader32<Endianness>;

const HOST_CLASS: elf::FileClass =
    if cfg!(target_pointer_width = "64") { elf::ELFCLASS64 } else { elf::ELFCLASS32 };
const HOST_DATA: elf::DataEncoding =
    if cfg!(target_endian = "little") { elf::ELFDATA2LSB } else { elf::ELFDATA2MSB };

/// `e_machine` of this machine (0 when libftshim_loader does not know it: every machine is refused).
pub(crate) const HOST_MACHINE: elf::Machine = if cfg!(target_arch = "x86_64") {
    elf::EM_X86_64
} else if cfg!(target_arch = "aarch64") {
    elf::EM_AARCH64
} else if cfg!(target_arch = "x86") {
    elf::EM_386
} else if cfg!(target_arch = "arm") {
    elf::EM_ARM
} else if cfg!(target_arch = "riscv64") {
    elf::EM_RISCV
} else if cfg!(any(target_arch = "powerpc64", target_arch = "powerpc")) {
    if cfg!(target_pointer_width = "64") { elf::EM_PPC64 } else { elf::EM_PPC }
} else if cfg!(target_arch = "s390x") {
    elf::EM_S390
} else if cfg!(target_arch = "loongarch64") {
    elf::EM_LOONGARCH
} else {
    elf::EM_NONE
};

fn class_name(class: elf::FileClass) -> String {
    match class {
        elf::ELFCLASS32 => "ELFCLASS32 (32-bit)".to_owned(),
        elf::ELFCLASS64 => "ELFCLASS64 (64-bit)".to_owned(),
        other => format!("the invalid class {:#04x}", other.0),
    }
}

fn data_name(data: elf::DataEncoding) -> String {
    match data {
        elf::ELFDATA2LSB => "ELFDATA2LSB (little-endian)".to_owned(),
        elf::ELFDATA2MSB => "ELFDATA2MSB (big-endian)".to_owned(),
        other => format!("the invalid byte order {:#04x}", other.0),
    }
}

/// `EM_<NAME> (<number>)` for the machines a Python module is commonly built for.
pub(crate) fn machine_name(machine: elf::Machine) -> String {
    let name = match machine {
        elf::EM_NONE => "EM_NONE",
        elf::EM_386 => "EM_386",
        elf::EM_MIPS => "EM_MIPS",
        elf::EM_PPC => "EM_PPC",
        elf::EM_PPC64 => "EM_PPC64",
        elf::EM_S390 => "EM_S390",
        elf::EM_ARM => "EM_ARM",
        elf::EM_SPARCV9 => "EM_SPARCV9",
        elf::EM_IA_64 => "EM_IA_64",
        elf::EM_X86_64 => "EM_X86_64",
        elf::EM_AARCH64 => "EM_AARCH64",
        elf::EM_RISCV => "EM_RISCV",
        elf::EM_LOONGARCH => "EM_LOONGARCH",
        _ => return format!("machine {}", machine.0),
    };
    format!("{name} ({})", machine.0)
}

fn type_name(e_type: elf::FileType) -> String {
    match e_type {
        elf::ET_NONE => "ET_NONE (no file type)".to_owned(),
        elf::ET_REL => "ET_REL (relocatable object)".to_owned(),
        elf::ET_EXEC => "ET_EXEC (executable)".to_owned(),
        elf::ET_DYN => "ET_DYN (shared object)".to_owned(),
        elf::ET_CORE => "ET_CORE (core dump)".to_owned(),
        other => format!("the type {:#06x}", other.0),
    }
}

/// Examines `data` (a byte slice, or a file read through bounded reads) as a module for this
/// machine. Never panics and never reads outside `data`.
pub(crate) fn examine<'d, R: ReadRef<'d>>(data: R) -> Examined {
    let mut ex = Examined::default();
    let problem = |ex: &mut Examined, code, text: String| ex.problems.push(Refusal::new(code, text));
    let len = data.len().unwrap_or(0);
    let Ok(ident) = data.read_bytes_at(0, len.min(16)) else {
        // Only a file whose reads fail gets here; its report is replaced by what went wrong.
        problem(
            &mut ex,
            Code::Unreadable,
            "expected a readable file, found that reading it fails".to_owned(),
        );
        return ex;
    };
    if len == 0 {
        problem(
            &mut ex,
            Code::EmptyFile,
            "not a loadable ELF shared object: expected an ELF file, found an empty file (0 bytes)"
                .to_owned(),
        );
        return ex;
    }
    let seen = &ident[..ident.len().min(4)];
    if seen != &elf::ELFMAG[..seen.len()] {
        let found = seen.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        problem(
            &mut ex,
            Code::NotElf,
            format!("not a loadable ELF shared object: expected the ELF magic 7f 45 4c 46, found {found}"),
        );
        return ex;
    }
    const EI_NIDENT: u64 = 16;
    if len < EI_NIDENT {
        problem(&mut ex, Code::Truncated, truncated(EI_NIDENT, "the ELF identification", len));
        return ex;
    }
    // The class and byte order decide how every later field is laid out: with either wrong,
    // nothing further can be read meaningfully, so the examination stops here.
    let (class, encoding, version) = (elf::FileClass(ident[4]), elf::DataEncoding(ident[5]), ident[6]);
    if class != HOST_CLASS {
        problem(
            &mut ex,
            Code::ElfClass,
            format!(
                "wrong ELF class: expected {} (this machine), found {}",
                class_name(HOST_CLASS),
                class_name(class)
            ),
        );
        return ex;
    }
    if encoding != HOST_DATA {
        problem(
            &mut ex,
            Code::ElfEndian,
            format!(
                "wrong ELF byte order: expected {} (this machine), found {}",
                data_name(HOST_DATA),
                data_name(encoding)
            ),
        );
        return ex;
    }
    if version != elf::EV_CURRENT.0 {
        problem(
            &mut ex,
            Code::ElfMalformed,
            format!(
                "malformed ELF file: expected ELF identification version 1 (EV_CURRENT), found {version}"
            ),
        );
        return ex;
    }
    examine_host::<HostHeader, R>(data, len, &mut ex);
    ex
}

fn truncated(needed: u64, what: &str, len: u64) -> String {
    format!("truncated ELF file: expected at least {needed} bytes ({what}), found {len}")
}

fn malformed(what: &str, found: impl std::fmt::Display) -> Refusal {
    Refusal::new(Code::ElfMalformed, format!("malformed ELF file: expected {what}, found {found}"))
}

fn examine_host<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
    data: R,
    len: u64,
    ex: &mut Examined,
) {
    let header_size = std::mem::size_of::<Elf>() as u64;
    if len < header_size {
        let what = format!("the {}-bit ELF header", if Elf::is_type_64_sized() { 64 } else { 32 });
        ex.problems.push(Refusal::new(Code::Truncated, truncated(header_size, &what, len)));
        return;
    }
    let header = match Elf::parse(data) {
        Ok(h) => h,
        Err(e) => return ex.problems.push(malformed("a readable ELF header", e)),
    };
    let endian = match header.endian() {
        Ok(e) => e,
        Err(e) => return ex.problems.push(malformed("a known byte order", e)),
    };
    let machine = header.e_machine(endian);
    if machine != HOST_MACHINE {
        ex.problems.push(Refusal::new(
            Code::ElfMachine,
            format!(
                "wrong ELF machine: expected {} (this machine), found {}",
                machine_name(HOST_MACHINE),
                machine_name(machine)
            ),
        ));
    }
    let e_type = header.e_type(endian);
    if e_type != elf::ET_DYN {
        ex.problems.push(Refusal::new(
            Code::ElfType,
            format!("wrong ELF type: expected {}, found {}", type_name(elf::ET_DYN), type_name(e_type)),
        ));
    }
    // What glibc's loader checks before it maps anything (elf/dl-load.c, open_verify): a file that
    // passes everything else but fails one of these is refused by dlopen.
    let ident = header.e_ident();
    match ident.os_abi {
        elf::ELFOSABI_SYSV if ident.abi_version != 0 => ex.problems.push(malformed(
            "ABI version 0 for OS ABI ELFOSABI_SYSV (0), as glibc's loader requires",
            format!("EI_ABIVERSION {}", ident.abi_version),
        )),
        elf::ELFOSABI_SYSV | elf::ELFOSABI_GNU => {}
        other => ex.problems.push(malformed(
            "OS ABI ELFOSABI_SYSV (0) or ELFOSABI_GNU (3), the ones glibc's loader accepts",
            format!("EI_OSABI {}", other.0),
        )),
    }
    if ident.padding.iter().any(|b| *b != 0) {
        ex.problems.push(malformed(
            "zero padding in e_ident[9..16] (glibc's loader refuses nonzero padding)",
            format!("{:02x?}", ident.padding),
        ));
    }
    let e_version = header.e_version(endian);
    if e_version != u32::from(elf::EV_CURRENT.0) {
        ex.problems.push(malformed("e_version 1 (EV_CURRENT)", format!("e_version {e_version}")));
    }
    match header.e_phnum(endian) {
        0 => {
            return ex.problems.push(malformed(
                "program headers (e_phnum > 0): without them glibc's loader has nothing to map",
                "e_phnum 0",
            ));
        }
        elf::PN_XNUM => {
            return ex.problems.push(malformed(
                "e_phnum below 0xffff (PN_XNUM, an extended count glibc's loader does not read)",
                "e_phnum 0xffff",
            ));
        }
        _ => {}
    }
    if let Err(p) = check_extents(header, endian, data, len) {
        return ex.problems.push(p);
    }
    let sections = match header.sections(endian, data) {
        Ok(s) => s,
        Err(e) => return ex.problems.push(malformed("a readable section header table", e)),
    };
    if sections.is_empty() {
        ex.notes.push(
            "has no section headers, so its dynamic symbols were not read (exports and imports unknown)"
                .to_owned(),
        );
    }
    let dynsym = match sections.symbols(endian, data, elf::SHT_DYNSYM) {
        Ok(s) => s,
        Err(e) => return ex.problems.push(malformed("a readable dynamic symbol table (.dynsym)", e)),
    };
    // The names are looked up one by one, in no order: from a file, read the whole dynamic string
    // table in one piece first (a no-op on bytes in memory; an error shows up in the lookups).
    let strtab = sections
        .iter()
        .find(|s| s.sh_type(endian) == elf::SHT_DYNSYM)
        .and_then(|s| sections.section(object::SectionIndex(s.sh_link(endian) as usize)).ok())
        .and_then(|s| s.file_range(endian));
    if let Some((offset, size)) = strtab {
        let _ = data.read_bytes_at(offset, size);
    }
    let mut ev = Evidence::default();
    let mut bad_names = 0usize;
    for sym in dynsym.iter() {
        let name = match dynsym.symbol_name(endian, sym).ok().map(std::str::from_utf8) {
            Some(Ok(name)) => name,
            _ => {
                bad_names += 1;
                continue;
            }
        };
        if name.is_empty() {
            continue;
        }
        let bind = sym.st_bind();
        if sym.is_undefined(endian) {
            if FT_MARKERS.contains(&name) {
                ev.ft_markers.push(name.to_owned());
            }
            if GIL_MARKERS.contains(&name) {
                ev.gil_markers.push(name.to_owned());
            }
            if bind != elf::STB_WEAK {
                if name.starts_with("Py") || name.starts_with("_Py") {
                    ev.python_imports.push(name.to_owned());
                }
                ev.undefined.push(name.to_owned());
            }
        } else if matches!(bind, elf::STB_GLOBAL | elf::STB_WEAK | elf::STB_GNU_UNIQUE)
            && sym.st_visibility() != elf::STV_HIDDEN
            && sym.st_visibility() != elf::STV_INTERNAL
        {
            ev.exports.push(name.to_owned());
        }
    }
    if bad_names > 0 {
        ex.problems.push(malformed(
            "every dynamic symbol name inside the dynamic string table (.dynstr)",
            format!("{bad_names} that are not"),
        ));
    }
    match read_dynamic(&sections, endian, data) {
        Ok(dynamic) => ev.dynamic = dynamic,
        Err(e) => {
            ex.notes.push(format!("its dynamic section cannot be read ({e}): its libraries were not checked"))
        }
    }
    ex.evidence = Some(ev);
}

/// The library entries of the file's `SHT_DYNAMIC` section (empty when it has none).
fn read_dynamic<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
    sections: &object::read::elf::SectionTable<'d, Elf, R>,
    endian: Endianness,
    data: R,
) -> object::read::Result<Dynamic> {
    use object::read::elf::Dyn;
    let mut out = Dynamic::default();
    let Some((entries, link)) = sections.dynamic(endian, data)? else {
        return Ok(out);
    };
    let strings = sections.strings(endian, data, link)?;
    for entry in entries {
        let tag = entry.tag(endian);
        if tag == elf::DT_NULL {
            break;
        }
        let wanted = [elf::DT_NEEDED, elf::DT_RUNPATH, elf::DT_RPATH, elf::DT_SONAME];
        if !wanted.contains(&tag) {
            continue;
        }
        let text = String::from_utf8_lossy(entry.string(endian, strings)?).into_owned();
        let split = |t: &str| t.split(':').filter(|p| !p.is_empty()).map(str::to_owned).collect::<Vec<_>>();
        match tag {
            elf::DT_NEEDED => out.needed.push(text),
            elf::DT_RUNPATH => out.runpath.extend(split(&text)),
            elf::DT_RPATH => out.rpath.extend(split(&text)),
            _ => out.soname = Some(text),
        }
    }
    Ok(out)
}

/// Checks that every byte the headers describe is in the file: the program and section header
/// tables, every section with contents and every segment's file image. A shorter file is
/// `truncated`; offsets that overflow or tables of the wrong entry size are `elf-malformed`.
fn check_extents<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
    header: &Elf,
    endian: Endianness,
    data: R,
    len: u64,
) -> Result<(), Refusal> {
    let end = |off: u64, count: u64, size: u64, what: &str| -> Result<u64, Refusal> {
        count
            .checked_mul(size)
            .and_then(|n| n.checked_add(off))
            .ok_or_else(|| malformed(&format!("{what} inside a 64-bit file offset"), "offsets that overflow"))
    };
    let need = |end: u64, what: &str| -> Result<(), Refusal> {
        if end > len { Err(Refusal::new(Code::Truncated, truncated(end, what, len))) } else { Ok(()) }
    };

    let phoff: u64 = header.e_phoff(endian).into();
    let phnum = header.e_phnum(endian);
    // (e_phnum 0 and PN_XNUM were refused before.)
    if phoff != 0 {
        let entsize = u64::from(header.e_phentsize(endian));
        if entsize != std::mem::size_of::<Elf::ProgramHeader>() as u64 {
            return Err(malformed(
                &format!("program header entries of {} bytes", std::mem::size_of::<Elf::ProgramHeader>()),
                format!("e_phentsize {entsize}"),
            ));
        }
        need(end(phoff, phnum.into(), entsize, "the program header table")?, "the program header table")?;
    }
    let shoff: u64 = header.e_shoff(endian).into();
    if shoff != 0 {
        let entsize = u64::from(header.e_shentsize(endian));
        if entsize != std::mem::size_of::<Elf::SectionHeader>() as u64 {
            return Err(malformed(
                &format!("section header entries of {} bytes", std::mem::size_of::<Elf::SectionHeader>()),
                format!("e_shentsize {entsize}"),
            ));
        }
        // Section 0 first: with more than 0xff00 sections its sh_size holds the real count.
        need(end(shoff, 1, entsize, "the section header table")?, "the section header table")?;
        let shnum = header.shnum(endian, data).map_err(|e| malformed("a readable section count", e))?;
        need(end(shoff, shnum.into(), entsize, "the section header table")?, "the section header table")?;
    }
    let segments =
        header.program_headers(endian, data).map_err(|e| malformed("a readable program header table", e))?;
    for (i, ph) in segments.iter().enumerate() {
        let (off, size): (u64, u64) = (ph.p_offset(endian).into(), ph.p_filesz(endian).into());
        if size != 0 {
            let what = format!("the file image of segment {i}");
            need(end(off, 1, size, &what)?, &what)?;
        }
    }
    let sections =
        header.section_headers(endian, data).map_err(|e| malformed("a readable section header table", e))?;
    for (i, sh) in sections.iter().enumerate() {
        let kind = sh.sh_type(endian);
        if kind == elf::SHT_NOBITS || kind == elf::SHT_NULL {
            continue;
        }
        let (off, size): (u64, u64) = (sh.sh_offset(endian).into(), sh.sh_size(endian).into());
        if size != 0 {
            let what = format!("the contents of section {i}");
            need(end(off, 1, size, &what)?, &what)?;
        }
    }
    Ok(())
}

/// The defined, exported dynamic symbols of an ELF file (an interpreter's libpython or
/// executable), for checking a module's undefined symbols against. The error names what is wrong.
pub(crate) fn exports_of<'d, R: ReadRef<'d>>(data: R) -> Result<Vec<String>, String> {
    let ex = examine(data);
    if let Some(first) = ex.problems.into_iter().find(|p| p.code != Code::ElfType) {
        return Err(first.message);
    }
    Ok(ex.evidence.map(|ev| ev.exports).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::examine`] on bytes in memory.
    fn examine(data: &[u8]) -> Examined {
        super::examine(data)
    }

    fn codes(ex: &Examined) -> Vec<Code> {
        ex.problems.iter().map(|p| p.code).collect()
    }

    /// The running test executable: a real ELF file of this machine (PIE: ET_DYN).
    fn exe() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn non_elf_and_empty_inputs_name_what_was_found() {
        let ex = examine(b"");
        assert_eq!(codes(&ex), vec![Code::EmptyFile]);
        assert_eq!(
            ex.problems[0].message,
            "not a loadable ELF shared object: expected an ELF file, found an empty file (0 bytes)"
        );
        let ex = examine(b"#!/bin/sh\n");
        assert_eq!(codes(&ex), vec![Code::NotElf]);
        assert_eq!(
            ex.problems[0].message,
            "not a loadable ELF shared object: expected the ELF magic 7f 45 4c 46, found 23 21 2f 62"
        );
        // A prefix of the magic is a truncated ELF file, not a non-ELF one.
        let ex = examine(b"\x7fEL");
        assert_eq!(codes(&ex), vec![Code::Truncated]);
        assert_eq!(
            ex.problems[0].message,
            "truncated ELF file: expected at least 16 bytes (the ELF identification), found 3"
        );
    }

    #[test]
    fn a_real_elf_file_parses_and_shows_no_python_markers() {
        let ex = examine(&exe());
        assert!(ex.problems.is_empty(), "{:?}", ex.problems);
        let ev = ex.evidence.expect("the test binary parses");
        assert!(ev.ft_markers.is_empty() && ev.gil_markers.is_empty());
        assert!(ev.python_imports.is_empty());
    }

    #[test]
    fn every_truncation_of_a_real_file_is_reported_as_truncated() {
        let data = exe();
        for len in [1usize, 4, 15, 16, 63, 64, 65, 200, 4096, data.len() / 2, data.len() - 1] {
            let ex = examine(&data[..len]);
            assert_eq!(codes(&ex), vec![Code::Truncated], "length {len}: {:?}", ex.problems);
        }
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn class_byte_order_machine_and_type_are_named() {
        let data = exe();
        let mut d = data.clone();
        d[4] = elf::ELFCLASS32.0;
        let ex = examine(&d);
        assert_eq!(codes(&ex), vec![Code::ElfClass]);
        assert_eq!(
            ex.problems[0].message,
            "wrong ELF class: expected ELFCLASS64 (64-bit) (this machine), found ELFCLASS32 (32-bit)"
        );
        let mut d = data.clone();
        d[5] = elf::ELFDATA2MSB.0;
        let ex = examine(&d);
        assert_eq!(codes(&ex), vec![Code::ElfEndian]);
        assert_eq!(
            ex.problems[0].message,
            "wrong ELF byte order: expected ELFDATA2LSB (little-endian) (this machine), found ELFDATA2MSB (big-endian)"
        );
        let mut d = data.clone();
        d[18..20].copy_from_slice(&elf::EM_AARCH64.0.to_le_bytes());
        let ex = examine(&d);
        assert_eq!(codes(&ex), vec![Code::ElfMachine]);
        assert_eq!(
            ex.problems[0].message,
            "wrong ELF machine: expected EM_X86_64 (62) (this machine), found EM_AARCH64 (183)"
        );
        let mut d = data;
        d[16..18].copy_from_slice(&elf::ET_EXEC.0.to_le_bytes());
        let ex = examine(&d);
        assert_eq!(codes(&ex), vec![Code::ElfType]);
        assert_eq!(
            ex.problems[0].message,
            "wrong ELF type: expected ET_DYN (shared object), found ET_EXEC (executable)"
        );
    }
}
