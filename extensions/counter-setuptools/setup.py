"""Builds the `counter` extension module against the ftshim wheel (a build requirement).

Static by default: libftshim.a is linked into the module with its symbols kept private, so the
wheel carries no extra shared library. FTSHIM_LINK=shared links libftshim.so.1 instead; then
vendor it into the wheel with `auditwheel repair` (docs/build-setuptools.md).
"""

import os

import ftshim
from setuptools import Extension, setup

lib_dir = ftshim.get_library_dir()
if os.environ.get("FTSHIM_LINK", "static") == "shared":
    link = {"libraries": ["ftshim"], "library_dirs": [lib_dir]}
else:
    link = {
        "extra_objects": [os.path.join(lib_dir, "libftshim.a")],
        "extra_link_args": ["-Wl,--exclude-libs,libftshim.a", "-Wl,--gc-sections"],
        "libraries": ["gcc_s", "pthread", "dl", "m"],
    }

setup(
    ext_modules=[
        Extension("counter", ["counter.c"], include_dirs=[ftshim.get_include()], **link),
    ],
)
