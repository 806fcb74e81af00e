//! Wheels (feature `wheel`): a `.whl` read in memory with the `zip` crate — nothing is extracted
//! to disk and nothing in it runs. Every extension module in it is inspected as a file would be
//! ([`inspect_bytes`](crate::inspect_bytes)), its libraries are resolved inside the wheel first
//! (`$ORIGIN/../pkg.libs`), and the wheel's `Tag` lines, each module's file-name tag and each
//! module's build evidence are cross-checked (`mistagged`), the tags against the target too
//! (`wheel-tag`).

use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::code::{Code, Refusal};
use crate::inspect::{exports_entry_point, inspect_bytes, name_tag};
use crate::linkage::{self, Host, Overlay};
use crate::report::{Report, Verdict};
use crate::target::Target;

/// A member larger than this is not read (a zip bomb must not exhaust memory): 2 GiB.
const MAX_MEMBER: u64 = 2 << 30;

/// What inspecting one wheel found: its own refusals, and one [`Report`] per extension module.
#[derive(Debug, Clone)]
pub struct Wheel {
    /// The `.whl` file.
    pub path: PathBuf,
    /// The `Tag:` lines of its `*.dist-info/WHEEL`, in order (each `python-abi-platform`).
    pub tags: Vec<String>,
    /// Why the wheel itself is refused (`wheel-malformed`, `wheel-tag`, or an I/O code); the
    /// sentences are without the wheel's path (see [`Wheel::about`]).
    pub refusals: Vec<Refusal>,
    /// Every extension module in it; each report's path is `<wheel>/<installed path>`.
    pub modules: Vec<Report>,
    /// Shared objects in it that are not extension modules (no Python tag, no entry point).
    pub libraries: Vec<String>,
}

impl Wheel {
    /// Nothing found yet.
    fn empty(path: &Path) -> Wheel {
        Wheel {
            path: path.to_owned(),
            tags: Vec::new(),
            refusals: Vec::new(),
            modules: Vec::new(),
            libraries: Vec::new(),
        }
    }

    /// The verdict on the wheel: its bytes could not be had ([`Verdict::IoFailed`]); it or any of
    /// its modules is refused ([`Verdict::Refused`]); else [`Verdict::Accepted`].
    pub fn verdict(&self) -> Verdict {
        if self.refusals.iter().any(|r| r.code.is_io()) {
            Verdict::IoFailed
        } else if !self.refusals.is_empty() || self.modules.iter().any(|m| !m.accepted()) {
            Verdict::Refused
        } else {
            Verdict::Accepted
        }
    }

    /// `<wheel path>: <sentence>`, both parts [`escaped`](crate::escaped), as
    /// [`Report::about`](crate::Report::about).
    pub fn about(&self, sentence: &str) -> String {
        format!("{}: {}", crate::escaped(&self.path), crate::escaped(sentence))
    }
}

/// True when `path`'s name ends in `.whl`.
pub fn is_wheel(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "whl")
}

/// Inspects the wheel at `path` for `target`; libraries outside the wheel are looked up as
/// `host`'s dynamic linker would.
pub fn inspect_wheel(path: &Path, target: &Target, host: &Host) -> Wheel {
    let mut wheel = Wheel::empty(path);
    let source = match crate::file::open(path) {
        Ok(s) => s,
        Err(unreadable) => {
            wheel.refusals.push(unreadable.reading());
            return wheel;
        }
    };
    let mut overlay = Overlay::new(path);
    let mut shared: Vec<(String, Arc<Vec<u8>>)> = Vec::new();
    // Buffered: the central directory is read in many small pieces.
    let archive = BufReader::with_capacity(64 << 10, source.reader());
    let wheel_meta = read_members(archive, &mut wheel, &mut overlay, &mut shared);
    // Whatever was read from a wheel that changed (or failed) while it was read is not reported.
    if let Err(refusal) = source.settle() {
        wheel.refusals = vec![refusal.reading()];
        return wheel;
    }
    finish(wheel, wheel_meta, &overlay, &shared, target, host)
}

/// [`inspect_wheel`] of a wheel already in memory: `bytes` are the archive at `path` (which names
/// it in messages and roots `$ORIGIN`; nothing is read from it). The fuzz target's entry point.
pub fn inspect_wheel_in_memory(path: &Path, bytes: &[u8], target: &Target, host: &Host) -> Wheel {
    let mut wheel = Wheel::empty(path);
    let mut overlay = Overlay::new(path);
    let mut shared: Vec<(String, Arc<Vec<u8>>)> = Vec::new();
    let wheel_meta = read_members(Cursor::new(bytes), &mut wheel, &mut overlay, &mut shared);
    finish(wheel, wheel_meta, &overlay, &shared, target, host)
}

/// The checks on a wheel whose members were read: its `WHEEL` tags (`wheel_meta`, see
/// [`read_members`]) against `target`, then every shared object as a module or a library.
fn finish(
    mut wheel: Wheel,
    wheel_meta: Option<Option<String>>,
    overlay: &Overlay,
    shared: &[(String, Arc<Vec<u8>>)],
    target: &Target,
    host: &Host,
) -> Wheel {
    let Some(wheel_meta) = wheel_meta else { return wheel };
    match wheel_meta {
        None => {
            wheel.refusals.push(malformed("expected a <name>.dist-info/WHEEL file, found none".to_owned()))
        }
        Some(meta) => {
            wheel.tags = meta
                .lines()
                .filter_map(|l| l.strip_prefix("Tag:"))
                .flat_map(|t| expand_tag(t.trim()))
                .collect();
            if wheel.tags.is_empty() {
                wheel
                    .refusals
                    .push(malformed("expected Tag: lines in its WHEEL file, found none".to_owned()));
            }
        }
    }
    if !wheel.tags.is_empty() && !wheel.tags.iter().any(|t| installs(target, t)) {
        wheel.refusals.push(Refusal::new(
            Code::WheelTag,
            format!(
                "the target must install one of the wheel's tags: expected a tag such as '{}' for {}{}, found {}",
                example_tag(target),
                target.kind(),
                if target.free_threaded && target.version < (3, 15) {
                    " (abi3 does not apply to free-threaded builds before 3.15)"
                } else {
                    ""
                },
                wheel.tags.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for (installed, bytes) in shared {
        let file = installed.rsplit('/').next().unwrap_or_default();
        let (_, named) = name_tag(file, target);
        let path = overlay.path_of(installed);
        let mut report = inspect_bytes(&path, bytes, target);
        if !named && !exports_entry_point(&report) {
            wheel.libraries.push(installed.clone());
            continue;
        }
        report.refusals.extend(mistagged(&wheel.tags, file, &report));
        linkage::check(&mut report, host, Some(overlay));
        wheel.modules.push(report);
    }
    wheel
}

/// A `wheel-malformed` refusal.
fn malformed(why: String) -> Refusal {
    Refusal::new(Code::WheelMalformed, format!("not a readable wheel: {why}"))
}

/// Reads the archive: every shared object into `overlay` and `shared`, problems into
/// `wheel.refusals`. `Some(meta)` is the `WHEEL` file's text when the members could be read
/// (`None` inside it when there is none); `None` when the archive itself cannot be read.
fn read_members(
    archive: impl Read + Seek,
    wheel: &mut Wheel,
    overlay: &mut Overlay,
    shared: &mut Vec<(String, Arc<Vec<u8>>)>,
) -> Option<Option<String>> {
    let mut zip = match zip::ZipArchive::new(archive) {
        Ok(z) => z,
        Err(e) => {
            wheel.refusals.push(malformed(format!("expected a zip archive (PEP 427), found: {e}")));
            return None;
        }
    };
    let mut wheel_meta: Option<String> = None;
    for i in 0..zip.len() {
        let mut member = match zip.by_index(i) {
            Ok(m) => m,
            Err(e) => {
                wheel.refusals.push(malformed(format!("expected readable members, found member {i}: {e}")));
                return None;
            }
        };
        let name = member.name().to_owned();
        if member.is_dir() {
            continue;
        }
        let is_meta = name.ends_with(".dist-info/WHEEL") && name.matches('/').count() == 1;
        let file = name.rsplit('/').next().unwrap_or_default();
        let is_shared = file.ends_with(".so") || file.contains(".so.");
        if !is_meta && !is_shared {
            continue;
        }
        if member.enclosed_name().is_none() {
            wheel.refusals.push(malformed(format!(
                "expected member names inside the archive, found '{name}', which points outside it"
            )));
            continue;
        }
        if member.size() > MAX_MEMBER {
            wheel.refusals.push(malformed(format!(
                "expected members of at most {MAX_MEMBER} bytes, found '{name}' of {} bytes",
                member.size()
            )));
            continue;
        }
        // The size comes from the archive: a hint, capped, never an up-front allocation of it.
        const HINT_CAP: u64 = 64 << 20;
        let mut bytes = Vec::with_capacity(usize::try_from(member.size().min(HINT_CAP)).unwrap_or(0));
        if let Err(e) = member.by_ref().take(MAX_MEMBER).read_to_end(&mut bytes) {
            wheel.refusals.push(malformed(format!("expected '{name}' to decompress, found: {e}")));
            continue;
        }
        if is_meta {
            wheel_meta = Some(String::from_utf8_lossy(&bytes).into_owned());
        } else {
            let installed = installed_path(&name);
            let bytes = Arc::new(bytes);
            overlay.insert(&installed, Arc::clone(&bytes));
            shared.push((installed, bytes));
        }
    }
    Some(wheel_meta)
}

/// Where a member is installed, relative to site-packages: `<dist>.data/platlib/x` and
/// `<dist>.data/purelib/x` go to `x`; everything else stays where it is.
fn installed_path(name: &str) -> String {
    let mut parts = name.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(data), Some("platlib" | "purelib"), Some(rest)) if data.ends_with(".data") => rest.to_owned(),
        _ => name.to_owned(),
    }
}

/// A compressed tag set (`cp315-abi3.abi3t-manylinux_a.manylinux_b`) as single tags.
fn expand_tag(tag: &str) -> Vec<String> {
    let parts: Vec<&str> = tag.split('-').collect();
    let [py, abi, plat] = parts[..] else { return vec![tag.to_owned()] };
    let mut out = Vec::new();
    for p in py.split('.') {
        for a in abi.split('.') {
            for pl in plat.split('.') {
                out.push(format!("{p}-{a}-{pl}"));
            }
        }
    }
    out
}

/// `cp313` → `Some(13)` (CPython 3 only).
fn cp_minor(py: &str) -> Option<u8> {
    py.strip_prefix("cp3").and_then(|m| m.parse().ok())
}

/// The build an ABI tag claims: `(minor, free-threaded)` for `cp313t` / `cp313`.
fn abi_build(abi: &str) -> Option<(u8, bool)> {
    let rest = abi.strip_prefix("cp3")?;
    let rest = rest.trim_end_matches('d');
    match rest.strip_suffix('t') {
        Some(m) => Some((m.parse().ok()?, true)),
        None => Some((rest.parse().ok()?, false)),
    }
}

/// Whether `target` (on this machine) installs a wheel with `tag`, as pip's tag list has it.
fn installs(target: &Target, tag: &str) -> bool {
    let parts: Vec<&str> = tag.split('-').collect();
    let [py, abi, plat] = parts[..] else { return false };
    let arch = std::env::consts::ARCH;
    let plat_ok = plat == "any"
        || ((plat.starts_with("manylinux") || plat.starts_with("linux_")) && plat.ends_with(arch));
    let (_, minor) = target.version;
    let py_minor = cp_minor(py);
    let py_ok = py_minor.is_some_and(|m| m <= minor);
    plat_ok
        && match abi {
            "none" => py.starts_with("py3") || py_ok,
            "abi3" => !target.free_threaded && py_ok,
            "abi3t" => target.version >= (3, 15) && py_ok,
            _ => abi_build(abi) == Some((minor, target.free_threaded)) && py_minor == Some(minor),
        }
}

/// A tag `target` installs, for messages.
fn example_tag(target: &Target) -> String {
    let (major, minor) = target.version;
    let t = if target.free_threaded { "t" } else { "" };
    format!("cp{major}{minor}-cp{major}{minor}{t}-manylinux_2_17_{}", std::env::consts::ARCH)
}

/// The contradictions between the wheel's tags, the module's file-name tag (`file`) and the
/// module's build evidence: one `mistagged` refusal each.
fn mistagged(tags: &[String], file: &str, report: &Report) -> Vec<Refusal> {
    let mut out = Vec::new();
    let Some(ev) = report.evidence.as_ref() else { return out };
    let ft = !ev.ft_markers.is_empty();
    let gil = !ft && !ev.gil_markers.is_empty();
    let ft_ev = || format!("references {} (free-threaded inline refcounting)", ev.ft_markers.join(", "));
    let gil_ev = || {
        format!(
            "references {} and none of {} (GIL inline refcounting)",
            ev.gil_markers.join(", "),
            crate::FT_MARKERS.join(", ")
        )
    };
    let mut push = |claim: String, evidence: String| {
        out.push(Refusal::new(Code::Mistagged, format!("{claim}, but the module {evidence}")))
    };
    // The wheel's tags, one claim per distinct ABI.
    let mut abis_seen: Vec<&str> = Vec::new();
    for tag in tags {
        let abi = tag.split('-').nth(1).unwrap_or_default();
        if abis_seen.contains(&abi) {
            continue;
        }
        abis_seen.push(abi);
        match (abi, abi_build(abi)) {
            (_, Some((_, true))) if gil => {
                push(format!("the wheel's tag '{tag}' claims a free-threaded build"), gil_ev())
            }
            (_, Some((_, false))) if ft => {
                push(format!("the wheel's tag '{tag}' claims a GIL build"), ft_ev())
            }
            ("abi3", _) if ft => push(
                format!(
                    "the wheel's tag '{tag}' claims the stable ABI abi3, which free-threaded builds do not have before 3.15 (their stable ABI is abi3t, PEP 803)"
                ),
                ft_ev(),
            ),
            ("abi3t", _) if gil => push(
                format!("the wheel's tag '{tag}' claims abi3t, which free-threaded interpreters load"),
                gil_ev(),
            ),
            _ => {}
        }
    }
    // The file name's tag.
    let tail = file.find('.').map_or("", |i| &file[i + 1..]);
    let name_tag = tail.strip_suffix(".so").unwrap_or(tail);
    let cpython = name_tag.strip_prefix("cpython-").and_then(|rest| rest.split('-').next());
    let claimed = cpython.and_then(|t| abi_build(&format!("cp{t}")));
    match claimed {
        Some((_, true)) if gil => {
            push(format!("its file name's tag '{name_tag}' claims a free-threaded build"), gil_ev())
        }
        Some((_, false)) if ft => {
            push(format!("its file name's tag '{name_tag}' claims a GIL build"), ft_ev())
        }
        _ => {}
    }
    // The file name's tag against the wheel's.
    let abis: Vec<&str> = abis_seen;
    if !abis.is_empty() && !abis.contains(&"none") {
        let stable = name_tag.split('-').next().unwrap_or_default();
        let matches = match (claimed, cpython) {
            (Some((minor, ft_name)), Some(t)) => {
                abis.iter().any(|a| abi_build(a) == Some((minor, ft_name)))
                    || abis.iter().any(|a| *a == format!("cp{t}"))
            }
            _ if stable == "abi3" || stable == "abi3t" => abis.contains(&stable),
            _ => true,
        };
        if !matches {
            out.push(Refusal::new(
                Code::Mistagged,
                format!(
                    "the file name's tag and the wheel's tags must agree: expected a Tag with the ABI of '{name_tag}', found {}",
                    tags.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: (u8, u8), ft: bool) -> Target {
        let sfx = format!(".cpython-{}{}{}-x86_64-linux-gnu.so", v.0, v.1, if ft { "t" } else { "" });
        Target::new(v, ft, sfx)
    }

    #[test]
    fn tags_a_target_installs() {
        if std::env::consts::ARCH != "x86_64" {
            return;
        }
        let ft313 = t((3, 13), true);
        assert!(installs(&ft313, "cp313-cp313t-manylinux_2_17_x86_64"));
        assert!(!installs(&ft313, "cp313-cp313-manylinux_2_17_x86_64"));
        assert!(!installs(&ft313, "cp311-abi3-manylinux_2_17_x86_64"));
        assert!(installs(&ft313, "py3-none-any"));
        assert!(!installs(&ft313, "cp313-cp313t-manylinux_2_17_aarch64"));
        let gil313 = t((3, 13), false);
        assert!(installs(&gil313, "cp311-abi3-manylinux_2_17_x86_64"));
        assert!(!installs(&gil313, "cp315-abi3t-manylinux_2_17_x86_64"));
        assert!(installs(&t((3, 15), true), "cp315-abi3t-manylinux_2_17_x86_64"));
        assert!(!installs(&t((3, 15), true), "cp315-abi3-manylinux_2_17_x86_64"));
    }

    fn report(ft: &[&str], gil: &[&str]) -> Report {
        let ev = crate::Evidence {
            ft_markers: ft.iter().map(|s| s.to_string()).collect(),
            gil_markers: gil.iter().map(|s| s.to_string()).collect(),
            ..crate::Evidence::default()
        };
        Report {
            path: PathBuf::from("w.whl/m.so"),
            module: "m".into(),
            refusals: Vec::new(),
            evidence: Some(ev),
            inconclusive: Vec::new(),
            entry: None,
            gil: None,
            abi_info: None,
        }
    }

    fn mistags(tags: &[&str], file: &str, r: &Report) -> Vec<String> {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        mistagged(&tags, file, r).into_iter().map(|r| r.message).collect()
    }

    #[test]
    fn abi3_on_free_threaded_builds_and_abi3t_on_gil_builds_are_mistagged() {
        let ft = report(&["_Py_DecRefShared"], &[]);
        let gil = report(&[], &["_Py_Dealloc"]);
        let markers = crate::FT_MARKERS.join(", ");
        assert_eq!(
            mistags(&["cp313-abi3-manylinux_2_17_x86_64"], "m.abi3.so", &ft),
            [
                "the wheel's tag 'cp313-abi3-manylinux_2_17_x86_64' claims the stable ABI abi3, which free-threaded builds do not have before 3.15 (their stable ABI is abi3t, PEP 803), but the module references _Py_DecRefShared (free-threaded inline refcounting)"
            ]
        );
        assert_eq!(
            mistags(&["cp315-abi3t-manylinux_2_17_x86_64"], "m.abi3t.so", &gil),
            [format!(
                "the wheel's tag 'cp315-abi3t-manylinux_2_17_x86_64' claims abi3t, which free-threaded interpreters load, but the module references _Py_Dealloc and none of {markers} (GIL inline refcounting)"
            )]
        );
        assert_eq!(
            mistags(&["cp313-cp313-linux_x86_64"], "m.cpython-313t-x86_64-linux-gnu.so", &ft),
            [
                "the wheel's tag 'cp313-cp313-linux_x86_64' claims a GIL build, but the module references _Py_DecRefShared (free-threaded inline refcounting)".to_owned(),
                "the file name's tag and the wheel's tags must agree: expected a Tag with the ABI of 'cpython-313t-x86_64-linux-gnu', found 'cp313-cp313-linux_x86_64'".to_owned(),
            ]
        );
        // Consistent: nothing to say; limited-API code (no markers) proves nothing.
        assert!(
            mistags(&["cp313-cp313t-linux_x86_64"], "m.cpython-313t-x86_64-linux-gnu.so", &ft).is_empty()
        );
        assert!(mistags(&["cp311-abi3-linux_x86_64"], "m.abi3.so", &report(&[], &[])).is_empty());
    }

    #[test]
    fn compressed_tags_expand_and_data_members_install_at_the_root() {
        assert_eq!(expand_tag("cp315-abi3.abi3t-any"), ["cp315-abi3-any", "cp315-abi3t-any"]);
        assert_eq!(installed_path("x-1.0.data/platlib/m.so"), "m.so");
        assert_eq!(installed_path("pkg/m.so"), "pkg/m.so");
    }
}
