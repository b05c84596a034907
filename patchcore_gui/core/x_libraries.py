"""The X11 (xcb) system libraries Qt's window plugin loads, and which of them are missing.

On a fresh Linux machine without them Qt aborts ("could not load the Qt platform plugin
xcb") instead of opening a window. ``patchcore-gui`` (``make run``) and
``patchcore doctor`` name the missing Debian / Ubuntu packages and the one command that
installs them. Qt-free: ``ctypes.util.find_library`` asks the system's linker cache, so
nothing is loaded.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable

#: (name as ``find_library`` takes it, Debian / Ubuntu package) for what
#: ``libqxcb.so`` and Qt's GUI module load on X11 (Qt 6.5+: xcb-cursor too).
X_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("xcb", "libxcb1"),
    ("xcb-cursor", "libxcb-cursor0"),
    ("xcb-icccm", "libxcb-icccm4"),
    ("xcb-image", "libxcb-image0"),
    ("xcb-keysyms", "libxcb-keysyms1"),
    ("xcb-randr", "libxcb-randr0"),
    ("xcb-render-util", "libxcb-render-util0"),
    ("xcb-shape", "libxcb-shape0"),
    ("xcb-xfixes", "libxcb-xfixes0"),
    ("xcb-xinerama", "libxcb-xinerama0"),
    ("xcb-xkb", "libxcb-xkb1"),
    ("xkbcommon", "libxkbcommon0"),
    ("xkbcommon-x11", "libxkbcommon-x11-0"),
    ("X11-xcb", "libx11-xcb1"),
    ("EGL", "libegl1"),
    ("GL", "libgl1"),
    ("fontconfig", "libfontconfig1"),
    ("dbus-1", "libdbus-1-3"),
)

Finder = Callable[[str], str | None]


def missing_x_packages(find: Finder | None = None) -> list[str]:
    """Packages of ``X_LIBRARIES`` whose library ``find`` (default ``ctypes.util.find_library``) misses."""
    look = find or ctypes.util.find_library
    return [package for name, package in X_LIBRARIES if not look(name)]


def install_command(packages: list[str]) -> str:
    """The one apt command that installs ``packages``."""
    return "sudo apt-get install -y " + " ".join(packages)


def needs_xcb(environ: dict[str, str] | os._Environ[str] | None = None, platform: str = sys.platform) -> bool:
    """True when Qt will open its X11 (xcb) plugin: Linux, and no other platform chosen."""
    env = os.environ if environ is None else environ
    chosen = env.get("QT_QPA_PLATFORM", "")
    if not platform.startswith("linux"):
        return False
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def missing_x_message(find: Finder | None = None) -> str:
    """What to tell the user before Qt aborts ("" when nothing is missing)."""
    missing = missing_x_packages(find)
    if not missing:
        return ""
    return (f"The window needs system libraries that are not installed: {', '.join(missing)}.\n"
            f"Install them with:\n  {install_command(missing)}")
