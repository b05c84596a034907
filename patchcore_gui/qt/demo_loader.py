"""Preparing the embedded demo (model + images) in a child process at first launch.

``patchcore_gui.core.demo.ensure_demo`` may train the demo model on first use, which
takes minutes on a CPU. It runs in ``demo_child`` through a QProcess: the window is
up at once, messages arrive as signals, any failure (the module missing included) is
reported, and closing the window kills the child instead of hanging or aborting.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from .demo_child import DEFAULT_TARGET


class DemoLoader(QObject):
    """Runs the demo child; reports ``ready(model, images)``, ``failed(text)``, ``message(text)``."""

    ready = Signal(str, str)
    failed = Signal(str)
    message = Signal(str)

    def __init__(
        self, parent: QObject | None = None, *, target: str = DEFAULT_TARGET, extra_path: Sequence[str] = ()
    ) -> None:
        super().__init__(parent)
        self._target = target
        self._extra_path = list(extra_path)
        self._buffer = b""
        self._answered = False
        self.process = QProcess(self)
        # The child's traceback (if any) goes to our stderr, for the log.
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.ForwardedErrorChannel)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)

    def start(self) -> None:
        """Start the child (returns at once)."""
        env = QProcessEnvironment.systemEnvironment()
        if self._extra_path:
            # Only what was asked for: copying this process's sys.path would put
            # site-packages before the standard library in the child.
            old = env.value("PYTHONPATH", "")
            env.insert("PYTHONPATH", os.pathsep.join([*self._extra_path, *([old] if old else [])]))
        self.process.setProcessEnvironment(env)
        self.process.start(sys.executable, ["-m", "patchcore_gui.qt.demo_child", "--target", self._target])

    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self, wait_ms: int = 5000) -> None:
        """Kill the child if it still runs (window closing); nothing is reported after this."""
        self._answered = True
        if self.is_running():
            self.process.kill()
            self.process.waitForFinished(wait_ms)

    # ------------------------------------------------------------------ internals
    def _read(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            try:
                msg = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                continue  # stray output of a library: not ours
            if not isinstance(msg, dict) or (self._answered and "log" not in msg):
                continue
            if "log" in msg:
                self.message.emit(str(msg["log"]))
            elif "ready" in msg:
                self._answered = True
                self.ready.emit(str(msg["ready"][0]), str(msg["ready"][1]))
            elif "error" in msg:
                self._answered = True
                self.failed.emit(str(msg["error"]))

    def _on_finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self._read()
        if not self._answered:
            self._answered = True
            self.failed.emit(f"the demo process stopped unexpectedly (exit code {code})")

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._answered:
            self._answered = True
            self.failed.emit(f"could not start {sys.executable}")
