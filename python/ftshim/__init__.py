"""ftshim for Python build systems and tools.

Where the wheel put what ftshim ships (all inside this package, so two projects never fight
over one file in site-packages):

    get_include()        include/: ftshim.h, ftshim_status.h, ftshim_loader.h
    get_library_dir()    lib/: libftshim.a, libftshim.so.1, and the loader's
    get_pkgconfig_dir()  lib/pkgconfig/: ftshim.pc, ftshim_loader.pc (relocatable, ${pcfiledir})
    get_cmake_dir()      lib/cmake/ftshim/: find_package(ftshim CONFIG)
    get_cli()            the ftshim command this wheel installed

inspect(path, target=None) checks an extension module file before anything loads it, through the
bundled libftshim_loader (include/ftshim_loader.h), and returns a typed Report. The command line
(`python -m ftshim`) is the ftshim CLI: check, audit, and guard for this environment.
"""

from __future__ import annotations

import os
import re
import shutil
import sysconfig
from dataclasses import dataclass

__version__ = "0.1.0"
__all__ = [
    "Reason",
    "Report",
    "get_cli",
    "get_cmake_dir",
    "get_include",
    "get_library_dir",
    "get_pkgconfig_dir",
    "inspect",
]

_HERE = os.path.dirname(os.path.abspath(__file__))


def get_include() -> str:
    """The directory holding ftshim.h, ftshim_status.h and ftshim_loader.h."""
    return os.path.join(_HERE, "include")


def get_library_dir() -> str:
    """The directory holding libftshim.a, libftshim.so.1 and libftshim_loader.{a,so.1}."""
    return os.path.join(_HERE, "lib")


def _loader_library() -> str:
    """libftshim_loader.so.1 in this package: what inspect() and the import guard load."""
    return os.path.join(get_library_dir(), "libftshim_loader.so.1")


def get_pkgconfig_dir() -> str:
    """The directory holding ftshim.pc and ftshim_loader.pc (for PKG_CONFIG_PATH)."""
    return os.path.join(_HERE, "lib", "pkgconfig")


def get_cmake_dir() -> str:
    """The directory holding ftshimConfig.cmake (for ftshim_DIR or CMAKE_PREFIX_PATH)."""
    return os.path.join(_HERE, "lib", "cmake", "ftshim")


def get_cli() -> str:
    """The path of the ftshim executable installed with this package (the environment's scripts
    directory, else PATH). Raises FileNotFoundError naming where it looked."""
    scripts = sysconfig.get_path("scripts")
    candidates = [os.path.join(scripts, "ftshim")] if scripts else []
    # A user-scheme or --prefix install puts scripts beside the package's prefix.
    prefix = _HERE
    for _ in range(4):
        prefix = os.path.dirname(prefix)
    candidates.append(os.path.join(prefix, "bin", "ftshim"))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which("ftshim")
    if found:
        return found
    raise FileNotFoundError(f"no ftshim executable in {' or '.join(candidates)} or on PATH")


@dataclass(frozen=True)
class Reason:
    """One refusal: a stable code (docs/loader.md) and a message naming what was expected and found."""

    code: str
    message: str


@dataclass(frozen=True)
class Report:
    """What libftshim_loader said about one file."""

    path: str
    status: int
    """The ftshim_status (0: accepted; -10 refused; -11 the file could not be read)."""
    status_text: str
    reasons: tuple[Reason, ...]

    @property
    def accepted(self) -> bool:
        return self.status == 0

    def __bool__(self) -> bool:
        return self.accepted


_TARGET = re.compile(r"^3\.(\d+)(t?)$")
# The rule `ftshim check --target` states (cli/src/target.rs), with the same words.
_TARGET_RULE = (
    "expected 3.<minor>[t] with minor 11 or later (the versions whose Py_Version the loader knows),"
    " and 't' (free-threaded) only from 3.13, e.g. 3.14t, 3.15t, 3.13"
)
_loader = None


def inspect(path: str | os.PathLike[str], target: str | None = None) -> Report:
    """Checks the extension module file at `path` without loading it.

    target None: the interpreter running this code (its EXT_SUFFIX, version, build, and its
    exports looked up in this process). target "3.X" or "3.Xt": that CPython version, GIL or
    free-threaded, EXT_SUFFIX derived (the exports check is then inconclusive, not refused).
    """
    from . import _binding as binding  # cli/src/guard/_ftshim_guard.py: the one ctypes binding

    global _loader
    if _loader is None:
        _loader = binding.Loader(_loader_library())
    if target is None:
        described = binding.this_interpreter()
    else:
        m = _TARGET.match(target)
        minor = int(m.group(1)) if m else 0
        if not m or not 11 <= minor <= 255 or (m.group(2) and minor < 13):
            raise ValueError(f"invalid target {target!r}: {_TARGET_RULE}")
        described = binding.Target()
        described.size = binding.ctypes.sizeof(binding.Target)
        described.version_hex = (3 << 24) | (minor << 16)
        described.flags = binding.FTSHIM_LOADER_FREE_THREADED if m.group(2) else 0
        described.ext_suffix = None
        described.exports_path = None
    fspath = os.fspath(path)
    status, text, reasons = _loader.inspect(fspath, described)
    return Report(fspath, status, text, tuple(Reason(c, msg) for c, msg in reasons))

