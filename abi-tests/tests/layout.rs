//! Every layout constant libftshim hard-codes, checked against bindgen's view of each
//! interpreter's real headers (clang computes the sizes and offsets), and the macro values
//! bindgen cannot evaluate, checked by compiling a C program against the same headers.

use std::collections::BTreeMap;
use std::process::Command;

use ftshim::immortal::layout;
use ftshim_abi_tests::{Interpreter, c_program, interpreters, scratch, workspace_root, write_source};

/// Sizes, alignments, field offsets and simple constants as bindgen's generated layout tests
/// state them.
#[derive(Debug, Default)]
struct Layout {
    size: BTreeMap<String, usize>,
    align: BTreeMap<String, usize>,
    offset: BTreeMap<String, usize>,
    constant: BTreeMap<String, u64>,
}

impl Layout {
    fn of(interp: &Interpreter) -> Layout {
        let code = bindgen::Builder::default()
            .header_contents("wrapper.h", "#include \"ftshim.h\"\n")
            .clang_arg(format!("-I{}", workspace_root().join("include").display()))
            .clang_arg(format!("-I{}", interp.include_dir.display()))
            .allowlist_type(
                "PyObject|PyCriticalSection|PyCriticalSection2|PyMutex|ftshim_critical_section|ftshim_mutex",
            )
            .allowlist_var("Py_TPFLAGS_UNICODE_SUBCLASS|_Py_IMMORTAL_REFCNT_LOCAL|_Py_UNOWNED_TID")
            .layout_tests(true)
            .generate()
            .unwrap_or_else(|e| panic!("bindgen on {}: {e}", interp.include_dir.display()))
            .to_string();
        let mut l = Layout::default();
        // Whitespace-insensitive scan: `["<label>"][ ... - <n>usize]` for layout assertions.
        let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
        for chunk in flat.split("[\"").skip(1) {
            let Some((label, rest)) = chunk.split_once("\"]") else { continue };
            let Some(n) = rest.split("usize]").next().and_then(|t| t.rsplit("- ").next()) else { continue };
            let Ok(n) = n.trim().parse::<usize>() else { continue };
            if let Some(ty) = label.strip_prefix("Size of ") {
                l.size.insert(ty.to_owned(), n);
            } else if let Some(ty) = label.strip_prefix("Alignment of ") {
                l.align.insert(ty.to_owned(), n);
            } else if let Some(field) = label.strip_prefix("Offset of field: ") {
                l.offset.insert(field.to_owned(), n);
            }
        }
        for name in ["Py_TPFLAGS_UNICODE_SUBCLASS", "_Py_IMMORTAL_REFCNT_LOCAL", "_Py_UNOWNED_TID"] {
            let marker = format!("pub const {name}:");
            if let Some(rest) = flat.split(&marker).nth(1) {
                let v = rest.split('=').nth(1).unwrap().split(';').next().unwrap().trim();
                l.constant.insert(name.to_owned(), v.parse().unwrap_or_else(|_| panic!("{name} = {v}")));
            }
        }
        l
    }

    fn size(&self, ty: &str) -> usize {
        *self.size.get(ty).unwrap_or_else(|| panic!("bindgen gave no size for {ty}: {:?}", self.size.keys()))
    }

    fn offset(&self, field: &str) -> usize {
        *self
            .offset
            .get(field)
            .unwrap_or_else(|| panic!("bindgen gave no offset for {field}: {:?}", self.offset.keys()))
    }
}

/// Values of macros bindgen cannot evaluate (casts), printed by a C program built against the
/// interpreter's headers.
fn macro_values(label: &str, interp: &Interpreter, exprs: &[&str]) -> Vec<i128> {
    let dir = scratch(&format!("layout-macros-{label}"));
    let body: String =
        exprs.iter().map(|e| format!("    printf(\"%lld\\n\", (long long)({e}));\n")).collect();
    let src = write_source(
        &dir,
        "values.c",
        &format!("#include <Python.h>\n#include <stdio.h>\nint main(void) {{\n{body}    return 0;\n}}\n"),
    );
    let exe = c_program(&src, interp, &dir, &[]);
    let run = Command::new(&exe).output().unwrap();
    String::from_utf8_lossy(&run.stdout).lines().map(|l| l.parse().unwrap()).collect()
}

/// The ftshim types themselves fit and mirror CPython's on every interpreter.
fn check_ftshim_types(l: &Layout) {
    assert_eq!(l.size("ftshim_critical_section"), 64);
    assert_eq!(l.align["ftshim_critical_section"], 8);
    assert_eq!(l.size("ftshim_mutex"), 1);
    assert_eq!(l.align["ftshim_mutex"], 1);
    if l.size.contains_key("PyMutex") {
        assert_eq!(l.size("PyMutex"), l.size("ftshim_mutex"), "ftshim_mutex mirrors PyMutex");
        assert_eq!(l.offset("PyMutex::_bits"), l.offset("ftshim_mutex::_bits"));
    }
}

#[test]
fn free_threaded_313t_layout_matches_the_constants() {
    let ft = &interpreters().ft;
    let l = Layout::of(ft);
    check_ftshim_types(&l);
    assert_eq!(l.size("_object"), layout::FT_PYOBJECT_SIZE);
    assert_eq!(l.offset("_object::ob_tid"), layout::FT_OB_TID);
    assert_eq!(l.offset("_object::ob_ref_local"), layout::FT_OB_REF_LOCAL);
    assert_eq!(l.offset("_object::ob_ref_shared"), layout::FT_OB_REF_SHARED);
    assert_eq!(l.offset("_object::ob_type"), layout::FT_OB_TYPE);
    assert_eq!(l.constant["_Py_IMMORTAL_REFCNT_LOCAL"], u64::from(layout::FT_IMMORTAL_REFCNT_LOCAL));
    assert_eq!(l.constant["_Py_UNOWNED_TID"], layout::FT_UNOWNED_TID as u64);
    assert_eq!(l.constant["Py_TPFLAGS_UNICODE_SUBCLASS"], layout::TPFLAGS_UNICODE_SUBCLASS);
    // Critical-section storage: CPython's structs fit before ftshim's state word (slot 7).
    assert_eq!(l.size("PyCriticalSection"), 16);
    assert_eq!(l.size("PyCriticalSection2"), 24);
    assert!(l.size("PyCriticalSection2") <= 7 * 8, "must fit before the state word");
    assert!(l.align["PyCriticalSection2"] <= l.align["ftshim_critical_section"]);
    assert_eq!(l.size("PyMutex"), 1);
}

#[test]
fn gil_layouts_match_the_constants() {
    let all = interpreters();
    for (label, interp) in [("3.13", &all.gil313), ("3.11", &all.py311)] {
        let l = Layout::of(interp);
        check_ftshim_types(&l);
        assert_eq!(l.size("_object"), layout::GIL_PYOBJECT_SIZE, "{label}");
        assert_eq!(l.offset("_object::ob_type"), layout::GIL_OB_TYPE, "{label}");
        // 3.12+ wraps ob_refcnt in an anonymous union (with its 32-bit halves) as _object's first
        // member, which C places at offset 0; 3.11 has a plain field.
        let refcnt = match l.offset.get("_object::ob_refcnt") {
            Some(&off) => off,
            None => {
                assert_eq!(l.size("_object__bindgen_ty_1"), 8, "{label}: the refcount union");
                l.offset("_object__bindgen_ty_1::ob_refcnt")
            }
        };
        assert_eq!(refcnt, layout::GIL_OB_REFCNT, "{label}");
        assert_eq!(l.constant["Py_TPFLAGS_UNICODE_SUBCLASS"], layout::TPFLAGS_UNICODE_SUBCLASS, "{label}");
    }
    // The immortal refcount of a GIL 3.12+ build, and that ftshim's reading of it as a negative
    // int32 matches CPython's _Py_IsImmortal.
    let v =
        macro_values("3.13", &all.gil313, &["_Py_IMMORTAL_REFCNT", "(PY_INT32_T)_Py_IMMORTAL_REFCNT < 0"]);
    assert_eq!(v, vec![layout::GIL_IMMORTAL_REFCNT as i128, 1]);
    // 3.11 has no immortal objects: the pin bias needs a 64-bit Py_SSIZE_T (the bias's own bounds
    // are a compile-time assertion in shim/src/immortal.rs).
    assert_eq!(macro_values("3.11", &all.py311, &["sizeof(Py_ssize_t)"]), vec![8]);
}
