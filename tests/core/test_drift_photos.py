"""The drift check on real photographs: a tiny model trained on tiles of scikit-image's brick
photograph (it ships in the wheel), then batches of held-out tiles as they are, with planted
defects, and under the shifts a line meets (lighting, gamma, focus, camera distance, product)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from patchcore_gui.core import drift
from patchcore_gui.core.demo_defects import DEFECT_TYPES, plant_defect

TILE = 72
N_TRAIN = 60
N_BATCH = 60


def _tiles(photo: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` tiles at random places (the training and the held-out tiles come from one draw, as
    good parts from one line: a batch cut from another part of the wall scores higher, and
    the check rightly says so)."""
    ys = rng.integers(0, photo.shape[0] - TILE, n)
    xs = rng.integers(0, photo.shape[1] - TILE, n)
    return [np.ascontiguousarray(photo[y : y + TILE, x : x + TILE]) for y, x in zip(ys, xs, strict=True)]


def _brightness(a: np.ndarray, f: float) -> np.ndarray:
    return np.clip(np.rint(a.astype(np.float64) * f), 0, 255).astype(np.uint8)


def _gamma(a: np.ndarray, g: float) -> np.ndarray:
    return np.rint(255.0 * (a / 255.0) ** g).astype(np.uint8)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(sigma)))


def _zoom(a: np.ndarray, z: float) -> np.ndarray:
    """The camera moved closer: the centre 1 / z of the tile fills the frame."""
    c = int(round(TILE / z))
    o = (TILE - c) // 2
    return np.asarray(Image.fromarray(a[o : o + c, o : o + c]).resize((TILE, TILE), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[np.ndarray]]:
    """(model trained on tiles of the photo, held-out good tiles from the same draw)."""
    from skimage import data

    from patchcore_gui.core.engine import TrainConfig, train_model

    photo = np.asarray(data.brick())
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("brick")
    paths = []
    tiles = _tiles(photo, N_TRAIN + N_BATCH, rng)
    for i, t in enumerate(tiles[:N_TRAIN]):
        paths.append(root / f"{i:03d}.png")
        Image.fromarray(t).save(paths[-1])
    model = train_model(
        paths, TrainConfig(backbone="efficientnet_lite0", resize=TILE, crop=64, coreset=0.25),
        device="cpu", batch_size=8,
    )
    assert len(model.calibration_scores) >= drift.MIN_CALIBRATION_SCORES
    return model, tiles[N_TRAIN:]


def _check(model: object, tiles: list[np.ndarray]) -> drift.DriftResult:
    scores, _ = model.predict(tiles)  # type: ignore[attr-defined]
    return drift.check_drift(np.asarray(scores), model.calibration_scores)  # type: ignore[attr-defined]


def test_held_out_good_tiles_raise_nothing(photo_model: tuple[object, list[np.ndarray]]) -> None:
    model, good = photo_model
    res = _check(model, good)
    assert res.status == drift.NORMAL, res.message()


def test_five_percent_defective_parts_raise_nothing(photo_model: tuple[object, list[np.ndarray]]) -> None:
    model, good = photo_model
    rng = np.random.default_rng(1)
    batch = [plant_defect(t, DEFECT_TYPES[i % len(DEFECT_TYPES)], rng)[0] if i % 20 == 7 else t
             for i, t in enumerate(good)]
    assert sum(1 for a, b in zip(batch, good, strict=True) if not np.array_equal(a, b)) == 3
    scores, _ = model.predict(batch)  # type: ignore[attr-defined]
    res = drift.check_drift(np.asarray(scores), model.calibration_scores)  # type: ignore[attr-defined]
    assert res.status == drift.NORMAL, res.message()
    # The defects did score high: the tail moved, the median did not.
    planted = np.asarray(scores)[7::20]
    assert np.all(planted > res.calibration_median)


@pytest.mark.parametrize("shift", ["darker x0.5", "brighter x1.6", "gamma 2", "blur 1.5 px", "zoom 1.5x"])
def test_shifted_batches_raise_drift(photo_model: tuple[object, list[np.ndarray]], shift: str) -> None:
    model, good = photo_model
    change = {
        "darker x0.5": lambda a: _brightness(a, 0.5),
        "brighter x1.6": lambda a: _brightness(a, 1.6),
        "gamma 2": lambda a: _gamma(a, 2.0),
        "blur 1.5 px": lambda a: _blur(a, 1.5),
        "zoom 1.5x": lambda a: _zoom(a, 1.5),
    }[shift]
    res = _check(model, [change(t) for t in good])
    assert res.shifted and res.direction == "higher", res.message()
    assert res.message().endswith("check lighting, focus, camera, product)")


def test_another_product_raises_drift(photo_model: tuple[object, list[np.ndarray]]) -> None:
    from skimage import data

    model, _ = photo_model
    grass = _tiles(np.asarray(data.grass()), N_BATCH, np.random.default_rng(2))
    res = _check(model, grass)
    assert res.shifted and res.ratio > 2.0, res.message()


def test_the_cli_says_drift_on_stderr_only_when_shifted(photo_model: tuple[object, list[np.ndarray]],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui.cli import main

    model, good = photo_model
    mp = tmp_path / "m.patchcore"
    model.save(mp)  # type: ignore[attr-defined]
    half = good[:30]  # enough for a verdict (20), half the CLI's scoring time
    for name, tiles in (("normal", half), ("bright", [_brightness(t, 1.6) for t in half])):
        folder = tmp_path / name
        folder.mkdir()
        for i, t in enumerate(tiles):
            Image.fromarray(t).save(folder / f"{i:03d}.png")
    assert main(["predict", "--model", str(mp), "--images", str(tmp_path / "normal"), "--device", "cpu",
                 "--quiet", "--output", str(tmp_path / "n.csv")]) == 0
    assert "drift" not in capsys.readouterr().err
    run = tmp_path / "bright.pcrun"
    assert main(["predict", "--model", str(mp), "--images", str(tmp_path / "bright"), "--device", "cpu",
                 "--quiet", "--output", str(tmp_path / "b.csv"), "--run", str(run)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("drift:")]
    assert len(err) == 1 and "x the training median" in err[0] and err[0].endswith("camera, product)")
    from patchcore_gui.core.run_file import RunFile

    with RunFile.open(run, readonly=True) as rs:
        record = rs.meta["drift"]
    assert record["status"] == "shifted" and record["run_count"] == 30
