"""Entry script of the desktop bundle: one script behind both executables.

PyInstaller runs an entry script as ``__main__`` outside any package, so every import
here is absolute (a relative import is what made the old recipe's program die at once).
The executable's own name picks the program: ``patchcore-gui`` is the window, anything
else the ``patchcore`` command line. ``<exe> -m patchcore_gui.<module> ...`` runs a
bundled module as ``python -m`` would: the window starts its demo builder that way
(``sys.executable -m patchcore_gui.qt.demo_child``) and, in the bundle, ``sys.executable``
is this program, not a Python interpreter.
"""

import os
import runpy
import sys

#: Only the application's own modules may be run with ``-m``.
RUNNABLE_PREFIX = "patchcore_gui."


def _run_module(argv: list[str]) -> int:
    module = argv[0] if argv else ""
    if not module.startswith(RUNNABLE_PREFIX):
        print(f"{os.path.basename(sys.executable)}: -m runs only patchcore_gui modules, not {module!r}",
              file=sys.stderr)
        return 2
    sys.argv = [module, *argv[1:]]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["-m"]:
        return _run_module(args[1:])
    if os.path.basename(sys.executable).startswith("patchcore-gui"):
        from patchcore_gui.app import main as program
    else:
        from patchcore_gui.cli import entry as program
    return program(args)


if __name__ == "__main__":
    sys.exit(main())
