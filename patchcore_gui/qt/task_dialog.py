"""A dialog that runs one background job: a form, a progress bar, a status line, Start / Cancel / Close.

The training, import and report dialogs build on it. The job runs in a
``BackgroundTask`` (never on the GUI thread); closing the dialog or the window while it
runs cancels it and waits for its thread. Everything the user must see (validation
errors, failures, success) lands in the status line and in ``last_message``, so tests
drive the dialog through ``start()`` and its signals instead of a modal ``exec``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .background import BackgroundTask, Progress, one_line

Job = Callable[[Progress, Any], Any]


class TaskDialog(QDialog):
    """Base class: subclasses fill ``form``, implement ``start`` and call ``run_task``."""

    #: the job's return value.
    task_succeeded = Signal(object)
    #: one-line reason (validation problems included).
    task_failed = Signal(str)
    task_cancelled = Signal()

    def __init__(self, title: str, start_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(620)
        self.task: BackgroundTask | None = None
        # Busy from ``run_task`` until the job's outcome is delivered here. Not the
        # thread's state: the thread is still winding down for a moment after its
        # result arrives, and a Start pressed in that moment must not be refused.
        self._busy = False
        self.last_message = ""
        self._describe: Callable[[BaseException], str] = one_line
        self.outer = QVBoxLayout(self)
        self.outer.setSpacing(10)
        self.form = QFormLayout()
        self.form.setHorizontalSpacing(12)
        self.form.setVerticalSpacing(8)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.outer.addLayout(self.form)

        self.stage_label = QLabel("")
        self.stage_label.setObjectName("muted")
        self.stage_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        # Its room stays reserved while hidden, and the stage text beside the buttons
        # takes only the room left to it: the buttons never move under the pointer.
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.setVisible(False)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Two lines reserved: a one- or two-line message moves nothing below it.
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing() + 4)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        buttons = QHBoxLayout()
        self.start_button = QPushButton(start_text)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop at the next check; nothing is written")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons.addWidget(self.stage_label, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        self._tail = (self.progress, self.status_label, buttons)

    def finish_layout(self) -> None:
        """Call at the end of a subclass's ``__init__``: progress, status and buttons go last."""
        progress, status, buttons = self._tail
        self.outer.addStretch(1)
        self.outer.addWidget(progress)
        self.outer.addWidget(status)
        self.outer.addLayout(buttons)

    # ------------------------------------------------------------------ API
    def start(self) -> bool:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def is_running(self) -> bool:
        """True from ``run_task`` until the job's outcome (success, failure, cancel) arrives."""
        return self._busy

    def cancel(self) -> None:
        """Ask the job to stop; the dialog reports "cancelled" when it has."""
        if self.task is not None and self._busy:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self.set_status("Cancelling…")

    def shutdown(self) -> None:
        """Cancel a running job and wait for its thread (window closing)."""
        if self.task is not None:
            self.task.stop()

    # ------------------------------------------------------------------ for subclasses
    def refuse(self, text: str) -> bool:
        """A problem found before starting: shown, emitted, and ``start`` returns False."""
        self.set_status(text, "error")
        self.task_failed.emit(text)
        return False

    def run_task(self, fn: Job, name: str, busy_text: str) -> bool:
        if self.is_running():
            return False
        if self.task is not None:
            # The previous job has delivered its outcome; its thread is only quitting.
            self.task.thread.wait(10_000)
        self.task = BackgroundTask(fn, name, self._describe, parent=self)
        self.task.progressed.connect(self._on_progress)
        self.task.succeeded.connect(self._on_succeeded)
        self.task.failed.connect(self._on_failed)
        self.task.cancelled.connect(self._on_cancelled)
        self._set_busy(True)
        self.progress.setRange(0, 0)
        self.set_status(busy_text)
        self.task.start()
        return True

    def describe_progress(self, stage: str, done: int, total: int) -> str:
        """The line beside the progress bar for one progress report."""
        return f"{stage}: {done} of {total}"

    def succeeded_text(self, result: Any) -> str:
        return "Done."

    def set_status(self, text: str, kind: str = "info") -> None:
        self.last_message = text
        self.status_label.setObjectName({"error": "errorText", "ok": "okText"}.get(kind, ""))
        self.status_label.style().unpolish(self.status_label)
        self.status_label.style().polish(self.status_label)
        self.status_label.setText(text)

    def set_form_enabled(self, enabled: bool) -> None:
        for i in range(self.form.rowCount()):
            for role in (QFormLayout.ItemRole.FieldRole, QFormLayout.ItemRole.SpanningRole):
                item = self.form.itemAt(i, role)
                if item is not None and item.widget() is not None:
                    item.widget().setEnabled(enabled)

    # ------------------------------------------------------------------ internals
    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.set_form_enabled(not busy)
        self.start_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if not busy:
            self.stage_label.setText("")

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.stage_label.setText(self.describe_progress(stage, done, total))

    def _on_succeeded(self, result: Any) -> None:
        self._set_busy(False)
        self.set_status(self.succeeded_text(result), "ok")
        self.task_succeeded.emit(result)

    def _on_failed(self, message: str) -> None:
        self._set_busy(False)
        self.set_status(message, "error")
        self.task_failed.emit(message)

    def _on_cancelled(self) -> None:
        self._set_busy(False)
        self.set_status("Cancelled: nothing was written.")
        self.task_cancelled.emit()

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        """Closing while the job runs cancels it and waits: no thread outlives the dialog."""
        self.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:
        """Esc: as closing."""
        self.shutdown()
        super().reject()
