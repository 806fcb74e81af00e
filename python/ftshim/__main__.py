"""`python -m ftshim ARGS...`: the ftshim CLI installed with this package.

`guard install|uninstall|status` act on the running environment: `--python` is this interpreter
and the guard copies this package's libftshim_loader.so.1 unless the arguments say otherwise.
"""

import os
import sys

import ftshim


def main(argv):
    args = list(argv)
    if args[:1] == ["guard"] and len(args) >= 2 and "--python" not in args:
        args += ["--python", sys.executable]
        if args[1] == "install" and "--loader-lib" not in args:
            args += ["--loader-lib", os.path.join(ftshim.get_library_dir(), "libftshim_loader.so.1")]
    cli = ftshim.get_cli()
    os.execv(cli, [cli, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
