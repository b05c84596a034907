"""The background-job dialog base: Start again as soon as a job's outcome arrives."""

from __future__ import annotations

import threading
import time
from typing import Any

from PySide6.QtCore import Qt

from patchcore_gui.qt.task_dialog import TaskDialog


class _EchoDialog(TaskDialog):
    """Runs a job that waits for ``gate``, then returns ``value`` (or raises it)."""

    def __init__(self) -> None:
        super().__init__("Echo", "Start")
        self.finish_layout()
        self.gate = threading.Event()
        self.value: Any = 1

    def start(self) -> bool:
        value, gate = self.value, self.gate

        def job(progress: Any, cancel: threading.Event) -> Any:
            gate.wait(30)
            if isinstance(value, Exception):
                raise value
            return value

        return self.run_task(job, "echo", "Working…")


def _slow_wind_down(dlg: _EchoDialog) -> None:
    """Hold the job's thread for a moment after its outcome is sent (as a busy machine might)."""
    assert dlg.task is not None
    dlg.task.worker.ended.connect(lambda: time.sleep(0.4), Qt.ConnectionType.DirectConnection)


def test_start_is_accepted_while_the_last_jobs_thread_still_winds_down(qtbot: Any) -> None:
    dlg = _EchoDialog()
    qtbot.addWidget(dlg)
    for value in (1, RuntimeError("disk full"), 2):
        dlg.value = value
        dlg.gate = threading.Event()
        signal = dlg.task_failed if isinstance(value, Exception) else dlg.task_succeeded
        with qtbot.waitSignal(signal, timeout=30_000) as got:
            assert dlg.start()
            assert dlg.is_running() and not dlg.start_button.isEnabled()
            _slow_wind_down(dlg)
            dlg.gate.set()
        assert got.args[0] == (value if not isinstance(value, Exception) else "RuntimeError: disk full")
        # The outcome is in; the thread is still inside its 0.4 s wind-down.
        assert dlg.task is not None and dlg.task.thread.isRunning()
        assert not dlg.is_running() and dlg.start_button.isEnabled()
    dlg.shutdown()
    assert dlg.task is not None and not dlg.task.thread.isRunning()


def test_a_second_start_while_a_job_runs_is_refused(qtbot: Any) -> None:
    dlg = _EchoDialog()
    qtbot.addWidget(dlg)
    assert dlg.start()
    first = dlg.task
    assert not dlg.start() and dlg.task is first
    with qtbot.waitSignal(dlg.task_succeeded, timeout=30_000):
        dlg.gate.set()
    dlg.shutdown()
