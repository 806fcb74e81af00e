//! What the dynamic linker will need from a module, decided from files: every `DT_NEEDED` library
//! found where `ld.so` would look, and every undefined symbol defined by one of those libraries or
//! by the interpreter process. The `Py*`/`_Py*` symbols stay with the target's own check
//! (`unresolved-symbol`); this adds the rest (`library-not-found`, `undefined-symbol`).
//!
//! The search follows ld.so(8): a needed name with a `/` is a path; a name the process has already
//! loaded (the interpreter's libpython and the libraries it and the executable need) is that
//! library; else the requesting object's `DT_RPATH` (only when it has no `DT_RUNPATH`), its
//! `DT_RUNPATH` (both with `$ORIGIN` expanded), then the directories of `/etc/ld.so.conf` (and the
//! files it includes) and the default `/lib`, `/usr/lib` (with the multiarch and `lib64` forms).
//! Not followed: `LD_LIBRARY_PATH` (it is the interpreter's environment, not the checker's), the
//! `$LIB`/`$PLATFORM` tokens, hardware-capability subdirectories, and the ld.so.cache file itself
//! (built from the same ld.so.conf directories). Symbols are matched by name, without versions:
//! a versioned glibc symbol is found when the library defines the name; weak undefined symbols
//! are never required. Only the module's own undefined symbols are checked, not those of the
//! libraries it needs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use object::ReadRef;

use crate::code::{Code, Refusal};
use crate::elf::{self, Dynamic, Evidence};
use crate::report::Report;

/// At most this many libraries are followed from one module (a loop guard).
const MAX_LIBRARIES: usize = 256;

/// Symbol names shown in a refusal before "and N more".
const SHOWN: usize = 12;

/// One shared library as the checks need it.
struct Library {
    path: PathBuf,
    exports: HashSet<String>,
    dynamic: Dynamic,
}

/// Files that are not on disk: the members of a wheel, under a virtual root (the wheel's path),
/// so `$ORIGIN/../pkg.libs/libx.so` inside the wheel resolves to its member.
#[derive(Default)]
pub struct Overlay {
    root: PathBuf,
    files: HashMap<PathBuf, Arc<Vec<u8>>>,
}

impl Overlay {
    /// An empty overlay whose members live under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Overlay {
        Overlay { root: normalize(&root.into()), files: HashMap::new() }
    }

    /// Adds the member `name` (a relative path inside the archive) with its bytes.
    pub fn insert(&mut self, name: &str, bytes: Arc<Vec<u8>>) {
        self.files.insert(normalize(&self.root.join(name)), bytes);
    }

    /// The path a member is known by (`root/name`).
    pub fn path_of(&self, name: &str) -> PathBuf {
        normalize(&self.root.join(name))
    }
}

/// The interpreter process a module will be loaded into, and where libraries are looked for.
pub struct Host {
    /// Libraries already in the process, by the name a `DT_NEEDED` entry would use.
    loaded: HashMap<String, PathBuf>,
    /// Every symbol the process's objects export; `None` when there is no interpreter to read.
    provided: Option<HashSet<String>>,
    /// What `provided` was read from, for messages.
    provided_by: String,
    /// ld.so.conf's directories, then the defaults.
    system_dirs: Vec<PathBuf>,
    cache: Mutex<HashMap<PathBuf, Option<Arc<Library>>>>,
}

impl Host {
    /// The process of an interpreter whose executable and libpython (the same file for a static
    /// build) are `objects`: their exports, and those of every library they need, are provided.
    pub fn interpreter(objects: &[PathBuf]) -> Host {
        let mut host = Host::unknown();
        let mut provided = HashSet::new();
        let mut queue: VecDeque<Arc<Library>> = VecDeque::new();
        let mut seen = HashSet::new();
        for object in objects {
            if let Some(lib) = host.library(object, None)
                && seen.insert(lib.path.clone())
            {
                queue.push_back(lib);
            }
        }
        let mut names = Vec::new();
        while let Some(lib) = queue.pop_front() {
            if seen.len() > MAX_LIBRARIES {
                break;
            }
            provided.extend(lib.exports.iter().cloned());
            let name = lib.dynamic.soname.clone().or_else(|| file_name(&lib.path));
            if let Some(name) = name {
                names.push(name.clone());
                host.loaded.entry(name).or_insert_with(|| lib.path.clone());
            }
            for needed in &lib.dynamic.needed {
                if let Ok(found) = host.find(needed, &lib.path, &lib.dynamic, None)
                    && seen.insert(found.path.clone())
                {
                    queue.push_back(found);
                }
            }
        }
        host.provided_by = format!("the interpreter process ({})", names.join(", "));
        host.provided = Some(provided);
        host
    }

    /// No interpreter to read: what the process provides is unknown, so symbols the module's own
    /// libraries do not define are reported as inconclusive rather than refused.
    pub fn unknown() -> Host {
        Host {
            loaded: HashMap::new(),
            provided: None,
            provided_by: String::new(),
            system_dirs: system_dirs(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads (once) the library at `path`, from `overlay` when it lies under the overlay's root.
    /// `None` when there is no file or it is not a shared object for this machine (the dynamic
    /// linker skips such a file and goes on searching).
    fn library(&self, path: &Path, overlay: Option<&Overlay>) -> Option<Arc<Library>> {
        let path = normalize(path);
        if let Some(hit) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&path) {
            return hit.clone();
        }
        let parsed = |ev: Evidence| {
            Arc::new(Library {
                path: path.clone(),
                exports: ev.exports.into_iter().collect(),
                dynamic: ev.dynamic,
            })
        };
        let lib = match overlay.filter(|o| path.starts_with(&o.root)) {
            Some(o) => o.files.get(&path).and_then(|bytes| loadable(bytes.as_slice())).map(parsed),
            None => read_loadable(&path).map(parsed),
        };
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(path, lib.clone());
        lib
    }

    /// Finds `needed` for the object at `requester` (whose dynamic section is `dynamic`) as the
    /// dynamic linker would. `Err` lists where it looked.
    fn find(
        &self,
        needed: &str,
        requester: &Path,
        dynamic: &Dynamic,
        overlay: Option<&Overlay>,
    ) -> Result<Arc<Library>, String> {
        let origin = requester.parent().unwrap_or(Path::new("/"));
        if needed.contains('/') {
            let path =
                if Path::new(needed).is_absolute() { PathBuf::from(needed) } else { origin.join(needed) };
            return self.library(&path, overlay).ok_or_else(|| format!("the path {}", path.display()));
        }
        if let Some(path) = self.loaded.get(needed)
            && let Some(lib) = self.library(path, overlay)
        {
            return Ok(lib);
        }
        let mut searched = Vec::new();
        let lists: [(&str, &[String]); 2] = if dynamic.runpath.is_empty() {
            [("RPATH", &dynamic.rpath), ("RUNPATH", &[])]
        } else {
            [("RPATH", &[]), ("RUNPATH", &dynamic.runpath)]
        };
        for (what, entries) in lists {
            for entry in entries {
                let dir = expand_origin(entry, origin);
                if let Some(lib) = self.library(&dir.join(needed), overlay) {
                    return Ok(lib);
                }
                searched.push(if dir.as_os_str() == entry.as_str() {
                    format!("{what} {entry}")
                } else {
                    format!("{what} '{entry}' = {}", normalize(&dir).display())
                });
            }
        }
        for dir in &self.system_dirs {
            if let Some(lib) = self.library(&dir.join(needed), overlay) {
                return Ok(lib);
            }
        }
        if self.provided.is_some() {
            searched.push("the interpreter's loaded libraries".to_owned());
        }
        searched.push(format!(
            "the system directories ({})",
            self.system_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        ));
        Err(searched.join(", "))
    }
}

/// The evidence of a shared object the dynamic linker would take for this machine: `None` for
/// what it skips and goes on searching (no ELF, truncated, another class, byte order or machine).
fn loadable<'d, R: ReadRef<'d>>(data: R) -> Option<Evidence> {
    let ex = elf::examine(data);
    let unusable =
        [Code::EmptyFile, Code::NotElf, Code::Truncated, Code::ElfClass, Code::ElfEndian, Code::ElfMachine];
    if ex.problems.iter().any(|p| unusable.contains(&p.code)) {
        return None;
    }
    ex.evidence
}

/// [`loadable`] for the file at `path`, read through bounded reads; `None` too when it cannot
/// be read or changes while it is read.
fn read_loadable(path: &Path) -> Option<Evidence> {
    let source = crate::file::open(path).ok()?;
    let ev = loadable(&source);
    source.settle().ok()?;
    ev
}

/// `$ORIGIN` and `${ORIGIN}` replaced by `origin`, as bytes: a directory whose name is not UTF-8
/// is searched like any other.
fn expand_origin(entry: &str, origin: &Path) -> PathBuf {
    let o = origin.as_os_str().as_bytes();
    let (mut out, mut rest) = (Vec::new(), entry.as_bytes());
    while let Some((&first, tail)) = rest.split_first() {
        if let Some(after) = rest.strip_prefix(b"${ORIGIN}").or_else(|| rest.strip_prefix(b"$ORIGIN")) {
            out.extend_from_slice(o);
            rest = after;
        } else {
            out.push(first);
            rest = tail;
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// `path` with `.` and `..` components resolved lexically (a `..` above the root is kept).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The directories of /etc/ld.so.conf (following `include`), then the multiarch and default ones.
fn system_dirs() -> Vec<PathBuf> {
    fn read_conf(path: &Path, out: &mut Vec<PathBuf>, depth: usize) {
        let Ok(text) = std::fs::read_to_string(path) else { return };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
                if depth < 8 {
                    let base = path.parent().unwrap_or(Path::new("/"));
                    for file in glob(&base.join(pattern)) {
                        read_conf(&file, out, depth + 1);
                    }
                }
            } else if line.starts_with('/') {
                out.push(PathBuf::from(line));
            }
        }
    }
    let mut dirs = Vec::new();
    read_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    if let Some(t) = crate::target::platform_triplet() {
        dirs.push(PathBuf::from(format!("/lib/{t}")));
        dirs.push(PathBuf::from(format!("/usr/lib/{t}")));
    }
    if cfg!(target_pointer_width = "64") {
        dirs.extend([PathBuf::from("/lib64"), PathBuf::from("/usr/lib64")]);
    }
    dirs.extend([PathBuf::from("/lib"), PathBuf::from("/usr/lib")]);
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// The files a pattern with `*` in its last component names, sorted (ld.so.conf's `include`).
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![pattern.to_owned()];
    };
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// How [`origin_preloads`] found a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Through an entry of the module's own `DT_RPATH`/`DT_RUNPATH` that uses `$ORIGIN`.
    ModuleOrigin,
    /// Through a `DT_RPATH` entry inherited from an object further up the chain of loaders.
    Inherited,
    /// Any other way (the requester's own entries without the module's `$ORIGIN`,
    /// `LD_LIBRARY_PATH`, the system directories).
    Other,
}

/// One object of the dependency tree, as the search needs it.
struct Node {
    /// The directory `$ORIGIN` stands for.
    origin: PathBuf,
    /// `DT_RPATH` (empty when the object has a `DT_RUNPATH`: the dynamic linker then ignores it).
    rpath: Vec<String>,
    runpath: Vec<String>,
    /// The module itself.
    module: bool,
}

impl Node {
    fn new(origin: PathBuf, dynamic: &Dynamic, module: bool) -> Node {
        let rpath = if dynamic.runpath.is_empty() { dynamic.rpath.clone() } else { Vec::new() };
        Node { origin, rpath, runpath: dynamic.runpath.clone(), module }
    }
}

fn uses_origin(entry: &str) -> bool {
    entry.contains("$ORIGIN") || entry.contains("${ORIGIN}")
}

/// The libraries `open` must load by path before it opens a module through `/proc/self/fd/N`,
/// in load order, so that the dynamic linker finds the same libraries as a `dlopen` of `module`
/// (the path it was opened by) would.
///
/// The dynamic linker takes `$ORIGIN` from the name given to `dlopen`: for `/proc/self/fd/N` it is
/// `/proc/self/fd`, and every `$ORIGIN` entry of the module's `DT_RUNPATH`/`DT_RPATH` points
/// nowhere. A `DT_NEEDED` name it finds already loaded (matched by `DT_SONAME`) is never searched
/// for. So every library the module would find through its own `$ORIGIN` — with `DT_RPATH`, also
/// everything found through an inherited `DT_RPATH` at any depth, as the chain of loaders of a
/// library loaded first is not the module — is listed here, dependencies first, for `open` to
/// load by its absolute path. The search is the dynamic linker's as [`Host`] models it, plus
/// `LD_LIBRARY_PATH` (the running process's); names `is_loaded` says the process already has are
/// not searched. `Err` when a listed library's `DT_SONAME` is not the `DT_NEEDED` name that finds
/// it: the dynamic linker could not match it, and would search on.
pub(crate) fn origin_preloads(
    module: &Path,
    dynamic: &Dynamic,
    is_loaded: &mut dyn FnMut(&str) -> bool,
) -> Result<Vec<PathBuf>, String> {
    let recursive = if !dynamic.runpath.is_empty() {
        if !dynamic.runpath.iter().any(|e| uses_origin(e)) {
            return Ok(Vec::new());
        }
        // A DT_RUNPATH serves the module's own DT_NEEDED entries only.
        false
    } else if dynamic.rpath.iter().any(|e| uses_origin(e)) {
        // A DT_RPATH is inherited by every library below that has no DT_RUNPATH.
        true
    } else {
        return Ok(Vec::new());
    };
    let absolute = std::path::absolute(module).unwrap_or_else(|_| module.to_owned());
    let origin = absolute.parent().unwrap_or(Path::new("/")).to_owned();
    let mut plan = Plan {
        preloads: Vec::new(),
        seen: HashSet::new(),
        ld_library_path: std::env::var("LD_LIBRARY_PATH")
            .map(|v| v.split([':', ';']).filter(|d| !d.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        system: system_dirs(),
        recursive,
        is_loaded,
    };
    plan.visit(&Node::new(origin, dynamic, true), &dynamic.needed, &[], 0)?;
    Ok(plan.preloads)
}

struct Plan<'a> {
    preloads: Vec<PathBuf>,
    seen: HashSet<String>,
    ld_library_path: Vec<String>,
    system: Vec<PathBuf>,
    recursive: bool,
    is_loaded: &'a mut dyn FnMut(&str) -> bool,
}

impl Plan<'_> {
    fn visit(&mut self, node: &Node, needed: &[String], above: &[&Node], depth: usize) -> Result<(), String> {
        for name in needed {
            if name.contains('/') || !self.seen.insert(name.clone()) || (self.is_loaded)(name) {
                continue;
            }
            // Not found: dlopen will say so, naming it.
            let Some((path, route, ev)) = self.find(name, node, above) else { continue };
            if self.recursive && depth < MAX_LIBRARIES {
                let origin = path.parent().unwrap_or(Path::new("/")).to_owned();
                let child = Node::new(origin, &ev.dynamic, false);
                let mut chain = vec![node];
                chain.extend_from_slice(above);
                self.visit(&child, &ev.dynamic.needed, &chain, depth + 1)?;
            }
            if route == Route::Other {
                continue;
            }
            if ev.dynamic.soname.as_deref() != Some(name.as_str()) {
                return Err(format!(
                    "it needs '{name}', found at {} through {}, which must be loaded first by its path, and the dynamic linker matches it to the module only by a DT_SONAME of '{name}': expected that DT_SONAME, found {}",
                    path.display(),
                    if route == Route::ModuleOrigin {
                        "the module's $ORIGIN"
                    } else {
                        "an inherited DT_RPATH"
                    },
                    ev.dynamic.soname.map_or_else(|| "none".to_owned(), |s| format!("'{s}'"))
                ));
            }
            self.preloads.push(path);
        }
        Ok(())
    }

    /// Where the dynamic linker finds `name` for `node` (whose loaders are `above`, nearest
    /// first): its DT_RPATH (without a DT_RUNPATH) and its loaders', `LD_LIBRARY_PATH`, its
    /// DT_RUNPATH, the system directories.
    fn find(&self, name: &str, node: &Node, above: &[&Node]) -> Option<(PathBuf, Route, Evidence)> {
        let own =
            |entry: &str| if node.module && uses_origin(entry) { Route::ModuleOrigin } else { Route::Other };
        let mut candidates: Vec<(PathBuf, Route)> = Vec::new();
        if node.runpath.is_empty() {
            candidates.extend(node.rpath.iter().map(|e| (expand_origin(e, &node.origin), own(e))));
            for up in above {
                candidates.extend(up.rpath.iter().map(|e| (expand_origin(e, &up.origin), Route::Inherited)));
            }
        }
        candidates.extend(self.ld_library_path.iter().map(|d| (PathBuf::from(d), Route::Other)));
        candidates.extend(node.runpath.iter().map(|e| (expand_origin(e, &node.origin), own(e))));
        candidates.extend(self.system.iter().map(|d| (d.clone(), Route::Other)));
        candidates.into_iter().find_map(|(dir, route)| {
            let path = dir.join(name);
            read_loadable(&path).map(|ev| (path, route, ev))
        })
    }
}

/// Checks the libraries and undefined symbols of the module `report` describes (its path is where
/// `$ORIGIN` points; members of a wheel are read from `overlay`) for the process `host`, adding
/// `library-not-found` and `undefined-symbol` refusals, or a note when the process is unknown.
pub fn check(report: &mut Report, host: &Host, overlay: Option<&Overlay>) {
    let Some(ev) = report.evidence.as_ref() else { return };
    let mut found: Vec<Arc<Library>> = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut missing: Vec<String> = Vec::new();
    let mut queue: VecDeque<(String, PathBuf, Dynamic, Option<String>)> = ev
        .dynamic
        .needed
        .iter()
        .map(|n| (n.clone(), report.path.clone(), ev.dynamic.clone(), None))
        .collect();
    while let Some((needed, requester, dynamic, by)) = queue.pop_front() {
        if seen.len() >= MAX_LIBRARIES {
            break;
        }
        match host.find(&needed, &requester, &dynamic, overlay) {
            Ok(lib) => {
                if seen.insert(lib.path.clone()) {
                    let name =
                        lib.dynamic.soname.clone().or_else(|| file_name(&lib.path)).unwrap_or_default();
                    for next in &lib.dynamic.needed {
                        queue.push_back((
                            next.clone(),
                            lib.path.clone(),
                            lib.dynamic.clone(),
                            Some(name.clone()),
                        ));
                    }
                    found.push(lib);
                }
            }
            Err(searched) => {
                let by = by.map_or_else(|| "the module".to_owned(), |b| format!("'{b}'"));
                let line = format!("'{needed}' (needed by {by}) in {searched}");
                if !missing.contains(&line) {
                    missing.push(line);
                }
            }
        }
    }
    let mut refusals = Vec::new();
    if !missing.is_empty() {
        refusals.push(Refusal::new(
            Code::LibraryNotFound,
            format!(
                "every DT_NEEDED library must be found where the dynamic linker looks: expected {}, found {} nowhere",
                missing.join("; expected "),
                if missing.len() == 1 { "it" } else { "them" }
            ),
        ));
    }
    let not_python = |s: &&String| !(s.starts_with("Py") || s.starts_with("_Py"));
    let candidates: Vec<&String> = ev.undefined.iter().filter(not_python).collect();
    let undefined: Vec<&str> = candidates
        .iter()
        .filter(|s| !found.iter().any(|lib| lib.exports.contains(s.as_str())))
        .filter(|s| !host.provided.as_ref().is_some_and(|p| p.contains(s.as_str())))
        .map(|s| s.as_str())
        .collect();
    let mut note = None;
    if !undefined.is_empty() {
        let mut list = undefined.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
        if undefined.len() > SHOWN {
            list.push_str(&format!(" and {} more", undefined.len() - SHOWN));
        }
        let libs = found
            .iter()
            .map(|l| l.dynamic.soname.clone().or_else(|| file_name(&l.path)).unwrap_or_default())
            .collect::<Vec<_>>();
        let libs = if libs.is_empty() { "no libraries".to_owned() } else { libs.join(", ") };
        if host.provided.is_some() {
            refusals.push(Refusal::new(
                Code::UndefinedSymbol,
                format!(
                    "every undefined symbol must be defined by a library it needs or by the interpreter process: expected all {} non-Py* undefined symbols to resolve in its libraries ({libs}) or {}, found {} defined nowhere: {list}",
                    candidates.len(),
                    host.provided_by,
                    undefined.len()
                ),
            ));
        } else {
            note = Some(format!(
                "{} undefined symbols are defined by none of its libraries ({libs}) and were not checked against the interpreter process (no interpreter to read): {list}",
                undefined.len()
            ));
        }
    }
    report.refusals.extend(refusals);
    report.inconclusive.extend(note);
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn origin_and_dot_dot_resolve_lexically() {
        assert_eq!(expand_origin("$ORIGIN/../libs", Path::new("/w/p")), Path::new("/w/p/../libs"));
        assert_eq!(expand_origin("${ORIGIN}/x:$ORIGIN", Path::new("/w")), Path::new("/w/x:/w"));
        assert_eq!(expand_origin("lib", Path::new("/w")), Path::new("lib"));
        // A directory that is not UTF-8 is kept byte for byte.
        let odd = Path::new(OsStr::from_bytes(b"/d\xff"));
        assert_eq!(expand_origin("$ORIGIN", odd).as_os_str().as_bytes(), b"/d\xff");
        assert_eq!(normalize(Path::new("/w/p/../../libs/./a.so")), PathBuf::from("/libs/a.so"));
    }

    #[test]
    fn system_dirs_include_the_defaults() {
        let dirs = system_dirs();
        assert!(dirs.contains(&PathBuf::from("/usr/lib")), "{dirs:?}");
        assert!(dirs.contains(&PathBuf::from("/lib")), "{dirs:?}");
    }
}
