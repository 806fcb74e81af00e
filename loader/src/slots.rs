//! What a module's slot array says, read from the file without running it: whether the module
//! declares that it does not need the GIL (`Py_mod_gil`), and the `PyABIInfo` it carries
//! (`Py_mod_abi`, CPython 3.15).
//!
//! The slot array is found from the entry point, never by guessing: the first instructions of
//! `PyModExport_<name>` / `PyInit_<name>` are read for RIP-relative `lea`/`mov` operands (x86-64
//! only); an operand is taken as the slot array itself (`PyModExport_*` returns it) or as a
//! `PyModuleDef` whose relocated pointers are tried as its `m_slots`. An array is accepted only
//! when every record has a module slot ID, zero padding, and a value of the right kind (a
//! relocated pointer for functions, `0`/`1` for `Py_mod_gil`, …) up to an all-zero terminator.
//! Both record layouts are read: `PyModuleDef_Slot {int; void *}` and 3.15's
//! `PySlot {uint16 id; uint16 flags; uint32 reserved; union}` (PEP 820): 16 bytes each.
//! Whatever cannot be found this way is reported as unknown, with the reason.

use std::collections::BTreeMap;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Rela, SectionHeader, Sym};
use object::{Endianness, ReadRef};

use crate::code::{Code, Refusal};
use crate::elf::Evidence;
use crate::report::Entry;
use crate::target::Target;

/// `PyABIInfo` (CPython 3.15 `modsupport.h`), as found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiInfo {
    /// `abiinfo_major_version` (1 today; 0 means "no information").
    pub major: u8,
    /// `abiinfo_minor_version`.
    pub minor: u8,
    /// `PyABIInfo_STABLE` 0x1, `_GIL` 0x2, `_FREETHREADED` 0x4, `_INTERNAL` 0x8.
    pub flags: u16,
    /// `PY_VERSION_HEX` of the headers it was built with (0: not given).
    pub build_version: u32,
    /// The ABI version it needs (0: not given).
    pub abi_version: u32,
}

/// `PyABIInfo_STABLE`.
pub const ABI_STABLE: u16 = 0x1;
/// `PyABIInfo_GIL`.
pub const ABI_GIL: u16 = 0x2;
/// `PyABIInfo_FREETHREADED`.
pub const ABI_FREETHREADED: u16 = 0x4;
/// `PyABIInfo_INTERNAL`.
pub const ABI_INTERNAL: u16 = 0x8;

impl AbiInfo {
    /// The flags by name, e.g. `STABLE|GIL|FREETHREADED`.
    pub fn flag_names(&self) -> String {
        let names = [
            (ABI_STABLE, "STABLE"),
            (ABI_GIL, "GIL"),
            (ABI_FREETHREADED, "FREETHREADED"),
            (ABI_INTERNAL, "INTERNAL"),
        ];
        let mut out: Vec<String> =
            names.iter().filter(|(bit, _)| self.flags & bit != 0).map(|(_, n)| (*n).to_owned()).collect();
        let unknown = self.flags & !names.iter().fold(0, |all, (bit, _)| all | bit);
        if unknown != 0 {
            out.push(format!("{unknown:#x}"));
        }
        if out.is_empty() { "0".to_owned() } else { out.join("|") }
    }
}

/// Whether the module declares that it runs without the GIL, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GilFreedom {
    /// It declares GIL freedom; the sentence says how.
    Yes(String),
    /// It does not (CPython re-enables the GIL when a free-threaded build imports it).
    No(String),
    /// Not statically visible; the sentence says why.
    Unknown(String),
}

impl GilFreedom {
    /// `"yes"`, `"no"` or `"unknown"` (the CLI's words).
    pub fn as_str(&self) -> &'static str {
        match self {
            GilFreedom::Yes(_) => "yes",
            GilFreedom::No(_) => "no",
            GilFreedom::Unknown(_) => "unknown",
        }
    }

    /// The evidence, or why there is none.
    pub fn because(&self) -> &str {
        match self {
            GilFreedom::Yes(s) | GilFreedom::No(s) | GilFreedom::Unknown(s) => s,
        }
    }
}

/// One record of a module's slot array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The slot ID (`Py_mod_exec`, …) as stored.
    pub id: u16,
    /// The raw value when it is not a relocated pointer.
    pub raw: u64,
    /// The relocated pointer's target address, when it is one.
    pub target: Option<u64>,
}

/// The module's slot array, when it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotArray {
    /// Its records, without the terminator.
    pub slots: Vec<Slot>,
    /// The `PyABIInfo` its `Py_mod_abi` slot points to, when it has one that could be read.
    pub abi_info: Option<AbiInfo>,
}

/// What [`read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// The slot array reached from the entry point, or why there is none.
    pub array: Result<SlotArray, String>,
    /// Whether the module declares GIL freedom.
    pub gil: GilFreedom,
    /// It creates its module with `PyModule_Create2` and never calls `PyModuleDef_Init`:
    /// single-phase init, which has no slot array.
    pub single_phase: bool,
}

/// Module slot IDs and the kind of value each carries. 1–4 are the IDs before 3.15 (still
/// accepted); 84–110 are 3.15's (`slots_generated.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A function: a relocated pointer.
    Func,
    /// A data pointer: relocated, or NULL.
    Ptr,
    /// `Py_mod_gil`: 0 or 1.
    Gil,
    /// `Py_mod_multiple_interpreters`: 0, 1 or 2.
    Interpreters,
    /// `Py_mod_state_size`: an integer.
    Size,
}

/// `Py_mod_gil` (before 3.15, and 3.15's number).
pub const MOD_GIL: [u16; 2] = [4, 87];
/// `Py_mod_abi` (3.15).
pub const MOD_ABI: u16 = 109;

/// The slot's name and kind, for module slot IDs only.
pub fn slot_name(id: u16) -> Option<&'static str> {
    slot_kind(id).map(|(name, _)| name)
}

fn slot_kind(id: u16) -> Option<(&'static str, Kind)> {
    Some(match id {
        1 | 84 => ("Py_mod_create", Kind::Func),
        2 | 85 => ("Py_mod_exec", Kind::Func),
        3 | 86 => ("Py_mod_multiple_interpreters", Kind::Interpreters),
        4 | 87 => ("Py_mod_gil", Kind::Gil),
        94 => ("Py_mod_slots", Kind::Ptr),
        100 => ("Py_mod_name", Kind::Ptr),
        101 => ("Py_mod_doc", Kind::Ptr),
        102 => ("Py_mod_state_size", Kind::Size),
        103 => ("Py_mod_methods", Kind::Ptr),
        104 => ("Py_mod_state_traverse", Kind::Func),
        105 => ("Py_mod_state_clear", Kind::Func),
        106 => ("Py_mod_state_free", Kind::Func),
        109 => ("Py_mod_abi", Kind::Ptr),
        110 => ("Py_mod_token", Kind::Ptr),
        _ => return None,
    })
}

/// The module slot IDs CPython `version` accepts (it raises `SystemError: module … uses unknown
/// slot ID` for the others).
pub fn known_to(id: u16, version: (u8, u8)) -> bool {
    match id {
        1 | 2 => true,
        3 => version >= (3, 12),
        4 => version >= (3, 13),
        _ => version >= (3, 15) && slot_kind(id).is_some(),
    }
}

/// The most records an array may have before it is not taken for a slot array.
const MAX_SLOTS: usize = 64;
/// How many bytes of the entry point's code are searched for the operand.
const CODE_WINDOW: usize = 64;
/// How many bytes of a `PyModuleDef` are searched for its `m_slots` pointer (it is at 72 on
/// GIL builds, 88 on free-threaded ones; the struct is 104/120 bytes).
const DEF_WINDOW: u64 = 128;

/// The file's loadable image and its relocations.
struct Image<R> {
    data: R,
    /// `(p_vaddr, p_filesz, p_offset)` of each `PT_LOAD`.
    loads: Vec<(u64, u64, u64)>,
    /// Relocated addresses → the target address when it is known (`RELATIVE`, RELR, or a symbol
    /// defined in the file), `None` for a symbol from elsewhere.
    relocs: BTreeMap<u64, Option<u64>>,
}

impl<'a, R: ReadRef<'a>> Image<R> {
    fn bytes(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let end = addr.checked_add(len)?;
        let &(vaddr, _, offset) = self
            .loads
            .iter()
            .find(|(v, size, _)| addr >= *v && v.checked_add(*size).is_some_and(|top| end <= top))?;
        self.data.read_bytes_at(offset.checked_add(addr - vaddr)?, len).ok()
    }

    fn u64_at(&self, addr: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(addr, 8)?.try_into().ok()?))
    }
}

/// The image of a little-endian x86-64 file (the one machine whose code is read) and the
/// address and size of its dynamic symbol `entry`.
fn image<'a, R: ReadRef<'a>>(data: R, entry: &str) -> Result<(Image<R>, u64, u64), String> {
    type Header = elf::FileHeader64<Endianness>;
    let header = Header::parse(data).map_err(|e| format!("the ELF header cannot be read ({e})"))?;
    let endian = header.endian().map_err(|e| format!("the ELF byte order is unknown ({e})"))?;
    if header.e_machine(endian) != elf::EM_X86_64 || endian != Endianness::Little {
        return Err(format!("{entry}'s code is read on x86-64 only"));
    }
    let mut img = Image { data, loads: Vec::new(), relocs: BTreeMap::new() };
    for ph in header.program_headers(endian, data).map_err(|e| format!("no program headers ({e})"))? {
        if ph.p_type(endian) == elf::PT_LOAD {
            img.loads.push((ph.p_vaddr(endian), ph.p_filesz(endian), ph.p_offset(endian)));
        }
    }
    let sections = header.sections(endian, data).map_err(|e| format!("no section headers ({e})"))?;
    if sections.is_empty() {
        return Err("it has no section headers, so its relocations were not read".to_owned());
    }
    let dynsym = sections
        .symbols(endian, data, elf::SHT_DYNSYM)
        .map_err(|e| format!("the dynamic symbol table cannot be read ({e})"))?;
    // Each symbol's value when the file defines it (relocations name symbols by index).
    let values: Vec<Option<u64>> =
        dynsym.iter().map(|sym| (!sym.is_undefined(endian)).then(|| sym.st_value(endian))).collect();
    let (addr, size) = dynsym
        .iter()
        .find(|sym| !sym.is_undefined(endian) && dynsym.symbol_name(endian, sym) == Ok(entry.as_bytes()))
        .map(|sym| (sym.st_value(endian), sym.st_size(endian)))
        .ok_or_else(|| format!("{entry} has no address"))?;
    for section in sections.iter() {
        if section.sh_flags(endian).0 & elf::SHF_ALLOC.0 == 0 {
            continue;
        }
        if let Ok(Some((relas, _))) = section.rela(endian, data) {
            for r in relas {
                let addend = r.r_addend(endian) as u64;
                let symbol = || values.get(r.r_sym(endian, false) as usize).copied().flatten();
                let target = match r.r_type(endian, false) {
                    elf::R_X86_64_RELATIVE => Some(addend),
                    elf::R_X86_64_64 => symbol().map(|v| v.wrapping_add(addend)),
                    elf::R_X86_64_GLOB_DAT | elf::R_X86_64_JUMP_SLOT => symbol(),
                    _ => None,
                };
                img.relocs.insert(r.r_offset(endian), target);
            }
        } else if let Ok(Some(relr)) = section.relr(endian, data) {
            // RELR keeps the addend in place.
            for at in relr {
                let value = img.u64_at(at);
                img.relocs.insert(at, value);
            }
        }
    }
    Ok((img, addr, size))
}

/// RIP-relative `lea`/`mov` operands in the first bytes of the function at `addr`: `lea` gives
/// the address, `mov` (a pointer loaded from memory) the relocated pointer stored there.
fn operands<'a, R: ReadRef<'a>>(img: &Image<R>, addr: u64, size: u64) -> Vec<u64> {
    let len = if size == 0 { CODE_WINDOW as u64 } else { size.min(CODE_WINDOW as u64) };
    let Some(code) = (1..=len).rev().find_map(|n| img.bytes(addr, n)) else { return Vec::new() };
    let mut out = Vec::new();
    for i in 0..code.len().saturating_sub(6) {
        let (rex, op, modrm) = (code[i], code[i + 1], code[i + 2]);
        if !matches!(rex, 0x48 | 0x4c) || !matches!(op, 0x8d | 0x8b) || modrm & 0xc7 != 0x05 {
            continue;
        }
        let disp = i32::from_le_bytes([code[i + 3], code[i + 4], code[i + 5], code[i + 6]]);
        let operand = addr.wrapping_add(i as u64 + 7).wrapping_add(disp as i64 as u64);
        if op == 0x8d {
            out.push(operand);
        } else if let Some(Some(t)) = img.relocs.get(&operand) {
            out.push(*t);
        }
    }
    out
}

/// The slot array at `addr`, if every record up to the terminator is a well-formed module slot.
fn slot_array<'a, R: ReadRef<'a>>(img: &Image<R>, addr: u64) -> Option<SlotArray> {
    let mut slots = Vec::new();
    for k in 0..MAX_SLOTS as u64 {
        let at = addr.checked_add(16 * k)?;
        let rec = img.bytes(at, 16)?;
        if img.relocs.contains_key(&at) {
            return None;
        }
        let word = u32::from_le_bytes(rec[0..4].try_into().ok()?);
        let pad = u32::from_le_bytes(rec[4..8].try_into().ok()?);
        let raw = u64::from_le_bytes(rec[8..16].try_into().ok()?);
        let value = img.relocs.get(&(at + 8)).copied();
        if word == 0 {
            return (pad == 0 && raw == 0 && value.is_none() && !slots.is_empty())
                .then(|| SlotArray { abi_info: abi_info(img, &slots), slots });
        }
        let (id, flags) = ((word & 0xffff) as u16, word >> 16);
        let (_, kind) = slot_kind(id)?;
        if flags & !0x7 != 0 || pad != 0 {
            return None;
        }
        let target = match (kind, value) {
            (Kind::Func, Some(t)) => t,
            (Kind::Ptr, Some(t)) => t,
            (Kind::Ptr, None) if raw == 0 => None,
            (Kind::Gil, None) if raw <= 1 => None,
            (Kind::Interpreters, None) if raw <= 2 => None,
            (Kind::Size, None) => None,
            _ => return None,
        };
        slots.push(Slot { id, raw, target });
    }
    None
}

fn abi_info<'a, R: ReadRef<'a>>(img: &Image<R>, slots: &[Slot]) -> Option<AbiInfo> {
    let at = slots.iter().find(|s| s.id == MOD_ABI)?.target?;
    let b = img.bytes(at, 12)?;
    Some(AbiInfo {
        major: b[0],
        minor: b[1],
        flags: u16::from_le_bytes([b[2], b[3]]),
        build_version: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        abi_version: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
    })
}

/// The slot array `entry` leads to: returned by it (`PyModExport_*`), or the `m_slots` of the
/// `PyModuleDef` it passes on (`PyInit_*` → `PyModuleDef_Init(&def)`).
fn find_array<'a, R: ReadRef<'a>>(data: R, entry: &Entry) -> Result<SlotArray, String> {
    let symbol = entry.symbol();
    let (img, addr, size) = image(data, symbol)?;
    let img = &img;
    let candidates = operands(img, addr, size);
    if candidates.is_empty() {
        return Err(format!(
            "{symbol}'s first instructions load no address (its slots are built at run time)"
        ));
    }
    for &c in &candidates {
        if let Some(array) = slot_array(img, c) {
            return Ok(array);
        }
    }
    if let Entry::Init(_) = entry {
        for &def in &candidates {
            let window = def..def.saturating_add(DEF_WINDOW);
            for (_, target) in img.relocs.range(window) {
                if let Some(array) = target.and_then(|t| slot_array(img, t)) {
                    return Ok(array);
                }
            }
        }
    }
    Err(format!("no module slot array found where {symbol}'s first instructions point"))
}

/// Reads the module's slot array (from `entry`) and decides [`GilFreedom`].
pub(crate) fn read<'a, R: ReadRef<'a>>(data: R, entry: Option<&Entry>, ev: &Evidence) -> Slots {
    let array = match entry {
        None => Err("the module has no entry point for the target".to_owned()),
        Some(entry) => find_array(data, entry),
    };
    let imports = |name: &str| ev.undefined.iter().any(|s| s == name);
    // Declared at run time, for single-phase modules: CPython's call or ftshim's.
    let caller =
        ["PyUnstable_Module_SetGIL", "ftshim_module_set_gil_not_used"].into_iter().find(|n| imports(n));
    let calls = |n: &str| format!("calls {n}; the value it passes is not read");
    let single_phase = imports("PyModule_Create2") && !imports("PyModuleDef_Init");
    let gil = match (&array, caller) {
        (Ok(a), caller) => match (a.slots.iter().find(|s| MOD_GIL.contains(&s.id)), caller) {
            (Some(s), _) if s.raw == 1 => {
                GilFreedom::Yes("Py_mod_gil slot is Py_MOD_GIL_NOT_USED".to_owned())
            }
            (_, Some(n)) => GilFreedom::Yes(calls(n)),
            (Some(_), None) => GilFreedom::No("Py_mod_gil slot is Py_MOD_GIL_USED".to_owned()),
            (None, None) => GilFreedom::No(
                "its slot array has no Py_mod_gil slot (CPython's default is Py_MOD_GIL_USED)".to_owned(),
            ),
        },
        (Err(_), Some(n)) => GilFreedom::Yes(calls(n)),
        (Err(_), None) if single_phase => {
            if imports("dlsym") {
                GilFreedom::Unknown(
                    "single-phase init (PyModule_Create2) that may look up PyUnstable_Module_SetGIL at run time (it calls dlsym)"
                        .to_owned(),
                )
            } else {
                GilFreedom::No(
                    "single-phase init (PyModule_Create2) without PyUnstable_Module_SetGIL".to_owned(),
                )
            }
        }
        (Err(why), None) => GilFreedom::Unknown(why.clone()),
    };
    Slots { array, gil, single_phase }
}

/// What the target makes of the slot array: `unknown-slot` for a slot ID it does not know (it
/// raises `SystemError` on import), `abi-info` when CPython's `PyABIInfo_Check` (3.15) would
/// raise `ImportError` for the `PyABIInfo`; the sentences that could not be decided.
pub(crate) fn check(slots: &Slots, target: &Target) -> (Vec<Refusal>, Vec<String>) {
    let mut refusals = Vec::new();
    let mut notes = Vec::new();
    let (major, minor) = target.version;
    let Ok(array) = &slots.array else {
        if target.version >= ABI_INFO_SINCE
            && !slots.single_phase
            && let Err(why) = &slots.array
        {
            notes.push(format!("its PyABIInfo (Py_mod_abi) was not read: {why}"));
        }
        return (refusals, notes);
    };
    let unknown: Vec<String> = array
        .slots
        .iter()
        .filter(|s| !known_to(s.id, target.version))
        .map(|s| format!("{} ({})", slot_name(s.id).unwrap_or("?"), s.id))
        .collect();
    if !unknown.is_empty() {
        refusals.push(Refusal::new(
            Code::UnknownSlot,
            format!(
                "every module slot must be known to the target (CPython raises SystemError 'uses unknown slot ID' otherwise): target {} does not know {}",
                target.kind(),
                unknown.join(", ")
            ),
        ));
    }
    if target.version < ABI_INFO_SINCE {
        return (refusals, notes);
    }
    let Some(info) = array.abi_info else {
        if array.slots.iter().any(|s| s.id == MOD_ABI) {
            notes.push(
                "its Py_mod_abi slot points to memory the file does not hold; PyABIInfo not read".to_owned(),
            );
        }
        return (refusals, notes);
    };
    let rule = "the module's PyABIInfo (Py_mod_abi) must pass the target's PyABIInfo_Check";
    let xy = |v: u32| format!("{}.{}", v >> 24, (v >> 16) & 0xff);
    let target_xy = (u32::from(major) << 24) | (u32::from(minor) << 16);
    let mut refuse = |why: String| {
        refusals.push(Refusal::new(
            Code::AbiInfo,
            format!("{rule}: {why} (flags {}, target {})", info.flag_names(), target.kind()),
        ))
    };
    if info.major == 0 {
        return (refusals, notes);
    }
    if info.major > 1 {
        refuse("PyABIInfo version too high".to_owned());
        return (refusals, notes);
    }
    let abi = info.abi_version;
    if info.flags & ABI_INTERNAL != 0 && abi != 0 {
        if abi & 0xffff_0000 != target_xy {
            refuse(format!("incompatible internal ABI ({abi:#x})"));
        } else {
            notes.push(format!(
                "its PyABIInfo pins the internal ABI of CPython {abi:#x}; the target's full version is not known here"
            ));
        }
    }
    if info.flags & ABI_STABLE != 0 {
        if abi != 0 && abi & 0xffff_0000 > target_xy {
            refuse(format!("incompatible future stable ABI version ({})", xy(abi)));
        } else if abi != 0 && abi < 0x0302_0000 {
            refuse(format!("invalid stable ABI version ({})", xy(abi)));
        }
        if info.flags & ABI_INTERNAL != 0 {
            refuse("cannot use both internal and stable ABI".to_owned());
        }
    } else if abi != 0 && abi & 0xffff_0000 != target_xy {
        refuse(format!("incompatible ABI version ({})", xy(abi)));
    }
    let gil = info.flags & (ABI_GIL | ABI_FREETHREADED);
    if target.free_threaded && gil == ABI_GIL {
        refuse("incompatible with free-threaded CPython".to_owned());
    } else if !target.free_threaded && gil == ABI_FREETHREADED {
        refuse("only compatible with free-threaded CPython".to_owned());
    }
    (refusals, notes)
}

/// The first CPython that reads `PyABIInfo` (`Py_mod_abi`).
const ABI_INFO_SINCE: (u8, u8) = (3, 15);
