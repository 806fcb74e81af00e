"""`python -m ftshim ARGS...`: the ftshim CLI installed with this package.

`guard install|uninstall|status` act on the running environment: `--python` is this interpreter
and the guard copies this package's libftshim_loader.so.1 unless the arguments say otherwise.
"""

import os
import sys

import ftshim


def _given(args, flag):
    return any(a == flag or a.startswith(flag + "=") for a in args)


def main(argv):
    args = list(argv)
    if args[:1] == ["guard"] and len(args) >= 2:
        if not _given(args, "--python"):
            args += ["--python", sys.executable]
        if args[1] == "install" and not _given(args, "--loader-lib"):
            args += ["--loader-lib", ftshim._loader_library()]
    cli = ftshim.get_cli()
    os.execv(cli, [cli, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
