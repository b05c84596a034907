"""GUI test set-up: offscreen Qt, isolated settings, generated images and a tiny real model."""

from __future__ import annotations

import os

# Before anything imports Qt (tests/conftest.py does the same; this keeps tests/qt
# self-sufficient when run on its own).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402

#: Where the planted defect sits in every defective test image (y, x, size): near one
#: corner, so the opposite corner is as far from it as the 64 px crop allows.
DEFECT = (62, 62, 10)
SIZE = 96


def textured(rng: np.random.Generator, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """Stripes plus noise: a stand-in for a good part surface."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 40 * np.sin(xx / 3.0 + rng.uniform(0, 6.28)) + 10 * np.cos(yy / 5.0)
    img = base[..., None] + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def with_defect(img: np.ndarray) -> np.ndarray:
    """A bright square at ``DEFECT``."""
    y, x, s = DEFECT
    out = img.copy()
    out[y : y + s, x : x + s] = (250, 240, 60)
    return out


@pytest.fixture(scope="session")
def qt_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train/ (12 good); mvtec/ (test/good 5 + 1 unreadable, test/square 4 + masks); many/ (48)."""
    root = tmp_path_factory.mktemp("qtdata")
    rng = np.random.default_rng(0)
    train = root / "train"
    train.mkdir()
    for i in range(12):
        Image.fromarray(textured(rng)).save(train / f"good_{i:02d}.png")
    mv = root / "mvtec"
    for sub in ("test/good", "test/square", "ground_truth/square"):
        (mv / sub).mkdir(parents=True)
    for i in range(5):
        Image.fromarray(textured(rng)).save(mv / "test/good" / f"{i:03d}.png")
    (mv / "test/good/broken.png").write_bytes(b"this is not a PNG")
    y, x, s = DEFECT
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y : y + s, x : x + s] = 255
    for i in range(4):
        Image.fromarray(with_defect(textured(rng))).save(mv / "test/square" / f"{i:03d}.png")
        Image.fromarray(mask).save(mv / "ground_truth/square" / f"{i:03d}_mask.png")
    many = root / "many"
    many.mkdir()
    for i in range(48):
        img = textured(rng)
        Image.fromarray(with_defect(img) if i % 6 == 0 else img).save(many / f"img_{i:03d}.png")
    return {"root": root, "train": train, "mvtec": mv, "many": many}


@pytest.fixture(scope="session")
def qt_model_path(qt_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real EfficientNet-Lite0 model (ImageNet weights ship offline) at crop 64."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    model = train_model(
        sorted(qt_data["train"].glob("*.png")),
        TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.5, holdout=0.25),
        device="cpu",
        batch_size=4,
    )
    out = tmp_path_factory.mktemp("model") / "m.patchcore"
    model.save(out)
    return out


@pytest.fixture(scope="session", autouse=True)
def _app_style(qapp: object) -> None:
    """The application's real look (as ``app.main`` sets it), so screenshots show it."""
    from patchcore_gui.qt.style import apply_style

    apply_style(qapp)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _isolated_settings(
    qapp: object, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Nothing a test does may reach the user's real QSettings or data folder (run files)."""
    folder = tmp_path_factory.mktemp("qsettings")
    # QStandardPaths reads XDG_DATA_HOME on every call: AppDataLocation, where run files
    # go by default, is then inside this test's folder.
    monkeypatch.setenv("XDG_DATA_HOME", str(folder / "data"))
    old_org, old_app = QCoreApplication.organizationName(), QCoreApplication.applicationName()
    QCoreApplication.setOrganizationName("PatchCoreTest")
    QCoreApplication.setApplicationName("PatchCoreInspectorTest")
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, str(folder))
    yield
    QCoreApplication.setOrganizationName(old_org)
    QCoreApplication.setApplicationName(old_app)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _thaw_heap() -> Iterator[None]:
    """A finished run freezes the heap (qt/gc_freeze.py); nothing frozen outlives its test."""
    yield
    import gc

    gc.unfreeze()


@pytest.fixture(autouse=True)
def _no_modal_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A modal Yes / No box would wait forever offscreen: a test that meets one fails instead
    (tests answer through ``window.confirm``)."""
    from PySide6.QtWidgets import QMessageBox

    def refuse(_parent: object, title: str, text: str, *_a: object) -> object:
        raise AssertionError(f"unexpected modal question: {title}: {text}")

    monkeypatch.setattr(QMessageBox, "question", staticmethod(refuse))


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    """An explicit ini file for one test's MainWindow."""
    return tmp_path / "settings.ini"


@pytest.fixture
def window(qtbot: object, settings_path: Path) -> Iterator[object]:
    """A MainWindow on an isolated settings file, closed (runs stopped) afterwards."""
    from patchcore_gui.qt.main_window import MainWindow
    from patchcore_gui.qt.settings import AppSettings

    w = MainWindow(AppSettings(settings_path))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    w.resize(1500, 900)
    yield w
    w.confirm = lambda _title, _text: True  # a test's "no" must not keep the window open
    w.close()
    assert w.controller.live_threads() == 0


@pytest.fixture
def run_to_end(qtbot: object):
    """``run_to_end(window)``: start a run, wait for ``run_finished``, return ``cancelled``."""

    def run(window: object, timeout: int = 60_000) -> bool:
        return _run_to_end(qtbot, window, timeout)

    return run


@pytest.fixture
def synthetic():
    """``synthetic(n, seed=0)`` -> (ImageSet, scores, grids, errors) without files."""
    return synthetic_results


def _run_to_end(qtbot: object, window: object, timeout: int = 60_000) -> bool:
    """Start a run and wait for ``run_finished``; returns its ``cancelled`` flag."""
    with qtbot.waitSignal(window.run_finished, timeout=timeout) as blocker:  # type: ignore[attr-defined]
        assert window.start_run()  # type: ignore[attr-defined]
    return bool(blocker.args[0])


def synthetic_results(n: int, seed: int = 0) -> tuple[object, np.ndarray, np.ndarray, list[str]]:
    """(ImageSet, scores, grids, errors) for ``n`` fake images, without files on disk.

    Labels: every 7th image is a defect (score drawn higher); every 97th is an error row.
    """
    from patchcore_gui.core.datasets import ImageSet

    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=np.int8)
    labels[::7] = 1
    scores = rng.gamma(4.0, 1.0, n).astype(np.float32) + labels * 6.0
    errors = [""] * n
    for i in range(3, n, 97):
        errors[i] = "not a recognised image format"
        scores[i] = np.nan
    root = Path("/nonexistent/synthetic")
    image_set = ImageSet(
        root=root,
        paths=[root / ("bad" if lab else "good") / f"img_{i:06d}.png" for i, lab in enumerate(labels)],
        labels=labels,
        mask_paths=[None] * n,
        defect_types=["crack" if lab else "good" for lab in labels],
        layout="mvtec",
    )
    grids = np.zeros((n, 2, 2), dtype=np.float16)
    return image_set, scores, grids, errors
