# ftshim-guard: installed by `ftshim guard install`; `ftshim guard uninstall` removes this package.
"""The ftshim import guard.

`ftshim-guard.pth` in site-packages imports this package at interpreter startup and calls
install(), which wraps `_imp.create_dynamic`: the one function every importlib route calls to
create an extension module from a file (`ExtensionFileLoader.create_module`, whichever finder,
editable-install finder, `spec_from_file_location`, `PathFinder`/`FileFinder` called directly or
`ExtensionFileLoader` built by hand produced the spec). Before CPython loads the file, libftshim's
loader inspects it for *this* interpreter:

* refused  -> ImportError carrying the loader's reasons (code and message each); nothing loads;
* accepted -> CPython's own `_imp.create_dynamic` runs with the very same arguments, so the module
              imports exactly as without the guard.

Fail closed: if the guard cannot start (its libftshim_loader.so.1 missing, truncated, of another
ABI major; this package broken), install() raises and the `.pth` line makes every
extension-module import fail with an ImportError that says why and how to repair, remove or turn
off the guard. Set FTSHIM_GUARD=off in the environment to start an interpreter without the
guard. What it promises and what it does not: docs/loader.md.
"""

import ctypes
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES

FTSHIM_OK = 0
FTSHIM_LOADER_FREE_THREADED = 0x1
FTSHIM_LOADER_PROCESS_SYMBOLS = 0x2
LOADER_ABI_MAJOR = 1


# ---------------------------------------------------------------------------------------------
# The Python binding of libftshim_loader's C API (include/ftshim_loader.h, loader ABI 1.0): the
# one ctypes description of its structs and functions. The guard uses it with its own copy of the
# library; the abi-tests import this module (from cli/src/guard) instead of keeping a copy.
# ---------------------------------------------------------------------------------------------


class Target(ctypes.Structure):
    """ftshim_loader_target (include/ftshim_loader.h, loader ABI 1.0)."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("version_hex", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ext_suffix", ctypes.c_char_p),
        ("exports_path", ctypes.c_char_p),
    ]


class Report(ctypes.Structure):
    """ftshim_loader_report (include/ftshim_loader.h, loader ABI 1.0)."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("status", ctypes.c_int32),
        ("reason_count", ctypes.c_uint32),
        ("inconclusive_count", ctypes.c_uint32),
        ("evidence", ctypes.c_uint32),
        ("_ftshim_private", ctypes.c_void_p),
    ]


class Loader:
    """libftshim_loader at `path`, loaded with ctypes."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        lib.ftshim_loader_abi_version.argtypes = []
        lib.ftshim_loader_abi_version.restype = ctypes.c_uint32
        version = lib.ftshim_loader_abi_version()
        if version >> 16 != LOADER_ABI_MAJOR:
            raise OSError(
                f"{path}: loader ABI {version >> 16}.{version & 0xFFFF}, expected {LOADER_ABI_MAJOR}.x")
        lib.ftshim_loader_inspect.argtypes = [
            ctypes.c_char_p, ctypes.POINTER(Target), ctypes.POINTER(Report)]
        lib.ftshim_loader_inspect.restype = ctypes.c_int32
        lib.ftshim_loader_report_reason.argtypes = [
            ctypes.POINTER(Report), ctypes.c_uint32,
            ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p)]
        lib.ftshim_loader_report_reason.restype = ctypes.c_int32
        lib.ftshim_loader_report_clear.argtypes = [ctypes.POINTER(Report)]
        lib.ftshim_loader_report_clear.restype = ctypes.c_int32
        lib.ftshim_loader_status_str.argtypes = [ctypes.c_int32]
        lib.ftshim_loader_status_str.restype = ctypes.c_char_p
        self._lib = lib

    def inspect(self, path, target=None):
        """Inspects the extension module file at `path` for `target` (a Target; None: the
        interpreter running this process, the C API's NULL target).

        Returns (status, status_text, [(code, message), ...]); status 0 means accepted.
        """
        lib = self._lib
        report = Report()
        report.size = ctypes.sizeof(Report)
        status = lib.ftshim_loader_inspect(
            os.fsencode(path), None if target is None else ctypes.byref(target), ctypes.byref(report))
        try:
            reasons = []
            for i in range(report.reason_count):
                code, message = ctypes.c_char_p(), ctypes.c_char_p()
                if lib.ftshim_loader_report_reason(
                        ctypes.byref(report), i, ctypes.byref(code), ctypes.byref(message)) == FTSHIM_OK:
                    reasons.append((code.value.decode(), message.value.decode("utf-8", "replace")))
        finally:
            lib.ftshim_loader_report_clear(ctypes.byref(report))
        return status, lib.ftshim_loader_status_str(status).decode(), reasons


def this_interpreter():
    """This interpreter, described as the import system sees it: its own first extension suffix
    (EXT_SUFFIX), its version, its build, and its exports looked up in this process."""
    target = Target()
    target.size = ctypes.sizeof(Target)
    target.version_hex = sys.hexversion
    target.flags = FTSHIM_LOADER_PROCESS_SYMBOLS
    if "t" in sys.abiflags:
        target.flags |= FTSHIM_LOADER_FREE_THREADED
    target.ext_suffix = EXTENSION_SUFFIXES[0].encode()
    target.exports_path = None
    return target


# ---------------------------------------------------------------------------------------------
# The guard.
# ---------------------------------------------------------------------------------------------

_loader = None
_target = None


def _sha256(data):
    try:
        from _sha2 import sha256  # 3.12+: no OpenSSL import at startup
    except ImportError:
        try:
            from _sha256 import sha256  # 3.11
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


def _load():
    """Loads the library install copied, after checking it is byte for byte that copy: glibc's
    dlopen of a truncated library dies of SIGBUS rather than failing."""
    global _loader, _target
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "libftshim_loader.so.1")
    with open(path + ".sha256", encoding="ascii") as f:
        expected = f.read().split(" ", 1)[0]
    with open(path, "rb") as f:
        found = _sha256(f.read())
    if found != expected:
        raise OSError(f"{path}: SHA-256 {found}, expected {expected} (the copy install made): changed or truncated")
    _loader, _target = Loader(path), this_interpreter()


def inspect(path):
    """Inspects the extension module file at `path` for this interpreter.

    Returns (status, status_text, [(code, message), ...]); status 0 means accepted.
    """
    return _loader.inspect(path, _target)


def _check(fullname, origin):
    try:
        status, text, reasons = inspect(origin)
    except Exception as e:  # fail closed: an unchecked module is not loaded
        raise ImportError(
            f"ftshim guard could not inspect {origin} for {fullname!r}: {type(e).__name__}: {e}",
            name=fullname, path=origin) from e
    if status == FTSHIM_OK:
        return
    lines = [f"ftshim guard refused to import {fullname!r} from {origin} ({text}):"]
    lines += [f"  [{code}] {message}" for code, message in reasons]
    err = ImportError("\n".join(lines), name=fullname, path=origin)
    err.ftshim_status = status
    err.ftshim_reasons = reasons
    raise err


def _guarded(create_dynamic):
    """`create_dynamic` (CPython's `_imp.create_dynamic(spec, file=None)`) behind the check."""

    def guarded_create_dynamic(spec, *args):
        name, origin = getattr(spec, "name", None), getattr(spec, "origin", None)
        if not isinstance(origin, str):
            raise ImportError(
                f"ftshim guard refused to import {name!r}: its spec names no file to inspect"
                f" (origin {origin!r})", name=name)
        _check(name, origin)
        return create_dynamic(spec, *args)

    guarded_create_dynamic._ftshim_guard = "active"
    return guarded_create_dynamic


def install():
    """Wraps `_imp.create_dynamic`, once. Raises when the guard cannot start: the `.pth` line
    that calls this (cli/src/guard.rs) then makes extension-module imports fail closed, and
    honours FTSHIM_GUARD=off before calling."""
    import _imp

    if getattr(_imp.create_dynamic, "_ftshim_guard", None):
        return
    _load()
    _imp.create_dynamic = _guarded(_imp.create_dynamic)
