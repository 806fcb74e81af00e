# ftshim-guard: installed by `ftshim guard install`; `ftshim guard uninstall` removes this package.
"""The ftshim import guard.

`ftshim-guard.pth` in site-packages imports this package at interpreter startup and calls
install(), which puts one finder in front of CPython's path-based finder (PathFinder) in
sys.meta_path. The finder asks PathFinder for the spec exactly as the import system would; when
the spec is an extension module (its loader is an ExtensionFileLoader), libftshim's loader
inspects the file for *this* interpreter before anything loads it:

* refused  -> ImportError carrying the loader's reasons (code and message each); nothing loads;
* accepted -> the very spec PathFinder returned, so CPython's own ExtensionFileLoader imports the
              module exactly as without the guard.

Everything else (source modules, packages, namespace packages, not-found) passes through
untouched. Set FTSHIM_GUARD=off in the environment to start an interpreter without the guard.
"""

import ctypes
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, PathFinder

FTSHIM_OK = 0
FTSHIM_LOADER_FREE_THREADED = 0x1
FTSHIM_LOADER_PROCESS_SYMBOLS = 0x2


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


def _load():
    global _loader, _target
    here = os.path.dirname(os.path.abspath(__file__))
    _loader, _target = Loader(os.path.join(here, "libftshim_loader.so.1")), this_interpreter()


def inspect(path):
    """Inspects the extension module file at `path` for this interpreter.

    Returns (status, status_text, [(code, message), ...]); status 0 means accepted.
    """
    return _loader.inspect(path, _target)


class FtshimGuardFinder:
    """A sys.meta_path finder in front of PathFinder that refuses extension modules libftshim's
    loader refuses and otherwise returns PathFinder's own spec unchanged."""

    _ftshim_guard = True

    def __init__(self, path_finder):
        self._path_finder = path_finder

    def find_spec(self, fullname, path=None, target=None):
        spec = self._path_finder.find_spec(fullname, path, target)
        if spec is not None and isinstance(spec.loader, ExtensionFileLoader) and spec.origin:
            _check(fullname, spec.origin)
        return spec

    def __repr__(self):
        return "<ftshim import guard>"


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


def install():
    """Puts the guard in front of PathFinder in sys.meta_path, once."""
    if os.environ.get("FTSHIM_GUARD", "").lower() in ("off", "0", "no"):
        return
    if any(getattr(f, "_ftshim_guard", False) for f in sys.meta_path):
        return
    for i, finder in enumerate(sys.meta_path):
        if finder is PathFinder:
            break
    else:
        raise ImportError("ftshim guard: no importlib.machinery.PathFinder in sys.meta_path to guard")
    _load()
    sys.meta_path.insert(i, FtshimGuardFinder(finder))
