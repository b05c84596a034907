"""UI state kept between sessions (QSettings): geometry, recent files, run options.

Only UI state lives here; domain values (thresholds, preprocessing) belong to the model
file. Tests pass an explicit ini file so they never touch the user's settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

from patchcore_gui.core.precision import PRECISION_ALIASES, PRECISION_CHOICES

ORGANIZATION = "PatchCore"
APPLICATION = "PatchCore Inspector"
MAX_RECENT = 8
DEVICES = ("auto", "cpu", "cuda")
#: Run arithmetic: auto (exact on the CPU, fast on CUDA), exact, fast, half.
PRECISIONS = PRECISION_CHOICES


class AppSettings:
    """Typed access to the application's QSettings.

    Args:
        path: an ini file to use instead of the platform's default location.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is not None:
            self._qs = QSettings(os.fspath(path), QSettings.Format.IniFormat)
        else:
            self._qs = QSettings(
                QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
            )

    @property
    def file_name(self) -> str:
        """Where the settings are stored."""
        return self._qs.fileName()

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._qs.sync()

    # ------------------------------------------------------------------ helpers
    def _get(self, key: str, default: Any, kind: type) -> Any:
        value = self._qs.value(key, default)
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default

    def _get_int(self, key: str, default: int, lo: int, hi: int) -> int:
        return min(hi, max(lo, self._get(key, default, int)))

    # ------------------------------------------------------------------ recent lists
    def recent(self, kind: str) -> list[str]:
        """Recent "models", "folders" or "runs", newest first, existing paths only."""
        value = self._qs.value(f"recent/{kind}", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or []) if v and Path(str(v)).exists()]

    def add_recent(self, kind: str, path: str | os.PathLike[str]) -> None:
        """Put ``path`` first in the recent list ``kind``."""
        p = str(Path(path).resolve())
        items = [p] + [x for x in self.recent(kind) if x != p]
        self._qs.setValue(f"recent/{kind}", items[:MAX_RECENT])

    @property
    def last_opened(self) -> str:
        """The run file or model opened last ("" before the first): the next start reopens it."""
        return str(self._qs.value("session/last", "") or "")

    @last_opened.setter
    def last_opened(self, value: str | os.PathLike[str]) -> None:
        self._qs.setValue("session/last", str(Path(value).resolve()) if value else "")

    # ------------------------------------------------------------------ run files
    @property
    def runs_dir(self) -> Path:
        """Where new run files go: ``runs/folder``, else ``<app data>/runs``."""
        value = str(self._qs.value("runs/folder", "") or "")
        if value:
            return Path(value)
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        return Path(base or Path.home() / ".patchcore-inspector") / "runs"

    @runs_dir.setter
    def runs_dir(self, value: str | os.PathLike[str]) -> None:
        self._qs.setValue("runs/folder", os.fspath(value))

    @property
    def operator_name(self) -> str:
        """The reviewer's name, stored with operator verdicts and printed on reports."""
        return str(self._qs.value("review/operator", "") or "")

    @operator_name.setter
    def operator_name(self, value: str) -> None:
        self._qs.setValue("review/operator", value.strip())

    @property
    def report_include_all(self) -> bool:
        return str(self._qs.value("report/include_all", "false")).lower() in ("true", "1")

    @report_include_all.setter
    def report_include_all(self, value: bool) -> None:
        self._qs.setValue("report/include_all", "true" if value else "false")

    @property
    def report_dir(self) -> str:
        """Folder of the last exported report ("" before the first)."""
        return str(self._qs.value("report/folder", "") or "")

    @report_dir.setter
    def report_dir(self, value: str) -> None:
        self._qs.setValue("report/folder", value)

    # ------------------------------------------------------------------ run options
    @property
    def device(self) -> str:
        value = str(self._qs.value("run/device", "auto"))
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._qs.setValue("run/device", value)

    @property
    def precision(self) -> str:
        """The remembered choice; values stored by older versions (fp32, bf16) read as exact / fast."""
        value = str(self._qs.value("run/precision", "auto"))
        value = PRECISION_ALIASES.get(value, value)
        return value if value in PRECISIONS else "auto"

    @precision.setter
    def precision(self, value: str) -> None:
        self._qs.setValue("run/precision", value)

    @property
    def batch_size(self) -> int:
        return self._get_int("run/batch_size", 8, 1, 1024)

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._qs.setValue("run/batch_size", int(value))

    @property
    def workers(self) -> int:
        return self._get_int("run/workers", 0, 0, 64)

    @workers.setter
    def workers(self, value: int) -> None:
        self._qs.setValue("run/workers", int(value))

    # ------------------------------------------------------------------ view options
    @property
    def overlay_opacity(self) -> int:
        """Heatmap opacity in percent."""
        return self._get_int("view/overlay_opacity", 55, 0, 100)

    @overlay_opacity.setter
    def overlay_opacity(self, value: int) -> None:
        self._qs.setValue("view/overlay_opacity", int(value))

    @property
    def colormap(self) -> str:
        return str(self._qs.value("view/colormap", "inferno"))

    @colormap.setter
    def colormap(self, value: str) -> None:
        self._qs.setValue("view/colormap", value)

    # ------------------------------------------------------------------ window
    def geometry(self, key: str) -> QByteArray | None:
        """A saved geometry / state blob, or None."""
        value = self._qs.value(f"window/{key}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, key: str, value: QByteArray) -> None:
        self._qs.setValue(f"window/{key}", value)

    def numbers(self, key: str) -> list[int] | None:
        """Saved whole numbers (a window size, splitter widths), or None when absent or unreadable."""
        value = self._qs.value(f"window/{key}")
        if value is None:
            return None
        try:
            return [int(v) for v in (value if isinstance(value, list) else [value])]
        except (TypeError, ValueError):
            return None

    def set_numbers(self, key: str, values: list[int]) -> None:
        self._qs.setValue(f"window/{key}", [int(v) for v in values])
