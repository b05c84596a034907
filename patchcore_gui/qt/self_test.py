"""``patchcore-gui --self-test``: drive the real window through one inspection, then exit.

Meant for a support engineer on a customer's PC (and for ``make bundle-check``): it
opens the demo model and folder the way a plain start does (the demo builder runs as a
child process), runs a prediction in the window's worker thread, moves the image
threshold and checks the verdict counts follow, and writes a PDF report through the
export dialog. Each step prints one line; the exit status is 0 when every step passed,
1 with the failing step's reason otherwise. ``--model`` / ``--images`` test those
instead of the demo. The window's settings and run files go to a temporary folder, so
the user's recent lists and data folder are left alone.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

#: Seconds each step may take. Preparing the demo trains a small model on first use
#: (minutes on a slow CPU); the other steps take seconds on the demo's 60-odd images.
STEP_TIMEOUTS = {"demo": 1800.0, "run": 900.0, "report": 300.0}


class SelfTestFailure(Exception):
    """A step failed; the message is the reason printed to the user."""


def process_age_s() -> float | None:
    """Seconds since this process was started (Linux /proc), or None where unknown.

    Taken from the kernel's start time, so a bundle's loader and library loading, which
    happen before any Python runs, are counted too.
    """
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        # Field 22 (starttime, in clock ticks since boot); fields after the ")" of the name.
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop until ``predicate()`` holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        QTimer.singleShot(20, loop.quit)
        loop.exec()
    return True


class SelfTest:
    """The steps, in order; ``run()`` returns the exit status."""

    def __init__(self, app: QApplication, args: argparse.Namespace, *, out: TextIO | None = None,
                 workdir: Path | None = None, demo_target: str | None = None,
                 demo_path: tuple[str, ...] = ()) -> None:
        self.app = app
        self.args = args
        self.out = out or sys.stdout
        self.workdir = workdir
        self.demo_target = demo_target
        self.demo_path = demo_path
        self.window: Any = None
        self.report_path: Path | None = None

    def say(self, text: str) -> None:
        print(f"self-test: {text}", file=self.out, flush=True)

    def run(self) -> int:
        with tempfile.TemporaryDirectory(prefix="patchcore-self-test-") as tmp:
            work = self.workdir or Path(tmp)
            step = "start"
            t_all = time.monotonic()
            try:
                for step, fn in (("window", self.step_window), ("open", self.step_open), ("run", self.step_run),
                                 ("threshold", self.step_threshold), ("report", self.step_report)):
                    t0 = time.monotonic()
                    detail = fn(work)
                    self.say(f"{step} ok ({detail}; {time.monotonic() - t0:.1f} s)")
            except SelfTestFailure as exc:
                self.say(f"{step} FAILED: {exc}")
                return 1
            except Exception as exc:  # a crash is a failed step with its reason
                self.say(f"{step} FAILED: {type(exc).__name__}: {exc}")
                return 1
            finally:
                if self.window is not None:
                    self.window.close()
            self.say(f"PASSED ({time.monotonic() - t_all:.1f} s)")
            return 0

    # ------------------------------------------------------------------ steps
    def step_window(self, work: Path) -> str:
        """Build the window as a plain start does and wait until it is shown and idle."""
        from patchcore_gui.qt.settings import AppSettings

        from .startup import create_window

        settings_file = work / "settings.ini"
        settings = AppSettings(settings_file)
        settings.runs_dir = work / "runs"
        settings.sync()
        args = argparse.Namespace(**{**vars(self.args), "settings": str(settings_file)})
        self.window = create_window(args, demo_target=self.demo_target, demo_path=self.demo_path)
        self.window.settings.runs_dir = work / "runs"
        self.window.show()
        if not wait_until(lambda: self.window.isVisible(), 30.0):
            raise SelfTestFailure("the window did not appear within 30 s")
        self.app.processEvents()
        age = process_age_s()
        return f"usable {age:.2f} s after launch" if age is not None else "shown"

    def step_open(self, work: Path) -> str:
        """The model and folder are open: from the arguments, or once the demo is ready."""
        w = self.window
        if not wait_until(lambda: (w.model is not None and w.image_set is not None) or bool(w.last_error),
                          STEP_TIMEOUTS["demo"]):
            raise SelfTestFailure(f"the model and images were not open after {STEP_TIMEOUTS['demo']:.0f} s")
        if w.last_error:
            raise SelfTestFailure(w.last_error)
        model_name = Path(str(getattr(w.model, "path", "") or "model")).name
        return f"{model_name}, {len(w.image_set)} images in {w.image_set.root}"

    def step_run(self, work: Path) -> str:
        """Score every image in the window's worker thread; nothing may fail."""
        w = self.window
        finished: list[bool] = []
        w.run_finished.connect(finished.append)
        if not w.start_run():
            raise SelfTestFailure(w.last_error or "the run did not start")
        if not wait_until(lambda: bool(finished) or bool(w.last_error), STEP_TIMEOUTS["run"]):
            raise SelfTestFailure(f"the run did not finish in {STEP_TIMEOUTS['run']:.0f} s")
        if w.last_error:
            raise SelfTestFailure(w.last_error)
        st = w.store
        if finished[0] or st is None or st.count != len(w.image_set):
            raise SelfTestFailure(f"only {0 if st is None else st.count} of {len(w.image_set)} images were scored")
        if st.errors:
            first = next(iter(st.errors.items()))
            raise SelfTestFailure(f"{len(st.errors)} image(s) failed, e.g. {st.paths[first[0]]}: {first[1]}")
        if w.session.path is None:
            raise SelfTestFailure("the run file was not written")
        c = st.counts(w.threshold)
        return f"{st.count} scored, {c['ng']} NG at threshold {w.threshold:.6g}, run file {w.session.path.name}"

    def step_threshold(self, work: Path) -> str:
        """Move the threshold to the median score: counts, panel and run-file log follow."""
        w = self.window
        scores = np.asarray(w.store.scores, dtype=np.float64)
        scores = scores[np.isfinite(scores)]
        new = float(np.median(scores))
        if new == w.threshold or not math.isfinite(new):
            raise SelfTestFailure(f"cannot move the threshold away from {w.threshold:.6g}")
        logged = len(w.session.threshold_log())
        w.set_threshold(new, "self-test", log=True)
        self.app.processEvents()
        expected_ng = int(np.sum(scores > new))
        got = w.store.counts(w.threshold)["ng"]
        if w.threshold != new or got != expected_ng:
            raise SelfTestFailure(f"threshold {w.threshold:.6g} gives {got} NG, expected {expected_ng}")
        panel = w.threshold_panel.ng_label.text()
        if panel != f"NG {expected_ng:,}":
            raise SelfTestFailure(f"the threshold panel shows {panel!r}, expected 'NG {expected_ng:,}'")
        if len(w.session.threshold_log()) != logged + 1:
            raise SelfTestFailure("the threshold change was not logged in the run file")
        return f"threshold {new:.6g}: {expected_ng} NG of {len(scores)}, logged"

    def step_report(self, work: Path) -> str:
        """Export a PDF report of every image through the window's export dialog."""
        w = self.window
        dialog = w.dialogs.show_report()
        if dialog is None:
            raise SelfTestFailure(w.last_error or "the export dialog did not open")
        out = work / "self-test-report.pdf"
        outcome: list[tuple[bool, str]] = []
        dialog.task_succeeded.connect(lambda result: outcome.append((True, str(getattr(result, "path", "")))))
        dialog.task_failed.connect(lambda msg: outcome.append((False, msg)))
        dialog.set_path(out)
        dialog.set_include_all(True)
        dialog.set_operator("self-test")
        if not dialog.start():  # a refusal also arrives as task_failed with its reason
            raise SelfTestFailure(outcome[0][1] if outcome else dialog.last_message or "the export was refused")
        if not wait_until(lambda: bool(outcome), STEP_TIMEOUTS["report"]):
            raise SelfTestFailure(f"the report was not written in {STEP_TIMEOUTS['report']:.0f} s")
        ok, text = outcome[0]
        if not ok:
            raise SelfTestFailure(text)
        head = out.read_bytes()[:5] if out.is_file() else b""
        if head != b"%PDF-":
            raise SelfTestFailure(f"{out} is not a PDF")
        self.report_path = out
        kept = ""
        if self.workdir is not None:
            kept = f" at {out}"
        return f"PDF of {out.stat().st_size:,} bytes{kept}"


def run_self_test(app: QApplication, args: argparse.Namespace, **kwargs: Any) -> int:
    """Run every step on ``app`` (styled already); returns the exit status."""
    return SelfTest(app, args, **kwargs).run()
