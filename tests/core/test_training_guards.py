"""Guards on what training and import-official build: bank rows, calibration, k.

Planted bugs these catch (scripts/mutation_check.py): a final bank built without some
of the images, an image's own bank rows left in when it is scored for calibration, and
import-official ignoring ``anomaly_scorer_num_nn``. Expected values are literal row
counts or brute-force numpy distances computed here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch
from guard_helpers import CROP, RESIZE, ROWS_PER_IMAGE, r18_weights, sq_dists, write_images

from patchcore_gui.core.engine import TrainConfig, train_model
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.official_import import INDEX_FILE, PARAMS_FILE, import_official
from patchcore_gui.io.images import load_image

#: 12 training images x 16 rows = 192 rows.
N_IMAGES = 12
#: z of the standard normal at 0.99 (the 1 % false-reject rate's log-normal extrapolation).
Z_99 = 2.3263478740408408


@pytest.fixture(scope="module")
def train_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("guards") / "train", N_IMAGES, seed=21, prefix="good")


def _train(paths: list[Path], coreset: float, **kw: object) -> PatchCoreModel:
    return train_model(paths, TrainConfig(backbone="resnet18", resize=RESIZE, crop=CROP, coreset=coreset, **kw),
                       weights=r18_weights(), device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def full_bank_model(train_paths: list[Path]) -> PatchCoreModel:
    """Coreset 1.0: the bank is every patch row of every image, in image order."""
    return _train(train_paths, 1.0)


def test_full_bank_holds_every_image(full_bank_model: PatchCoreModel) -> None:
    m = full_bank_model
    assert m.bank.shape == (192, 1024)  # 12 images x 16 rows, not 11 x 16 = 176
    assert m.metadata["training"]["image_count"] == 12
    assert m.metadata["calibration"]["images"] == 12  # every image is scored, none held out
    assert m.metadata["coreset"]["rows_before"] == 192
    assert m.bank_source.tolist() == [[i, p] for i in range(12) for p in range(16)]


def test_coreset_bank_counts_rows_of_all_images(train_paths: list[Path]) -> None:
    m = _train(train_paths, 0.5, calibrate=False)
    # int(192 * 0.5) = 96; a bank built without one image would hold int(176 * 0.5) = 88.
    assert m.bank.shape == (96, 1024)
    assert m.metadata["coreset"]["rows_kept"] == 96
    assert m.metadata["calibration"]["method"] == "none" and np.isnan(m.image_threshold)


def test_calibration_scores_come_from_the_bank_without_each_images_own_rows(full_bank_model: PatchCoreModel) -> None:
    m = full_bank_model
    bank = m.bank.numpy().reshape(N_IMAGES, ROWS_PER_IMAGE, -1)
    # k = 1: an image's score is its worst patch's squared distance to the nearest row of the others.
    want = np.array([
        sq_dists(bank[i], np.concatenate([bank[j] for j in range(N_IMAGES) if j != i])).min(axis=1).max()
        for i in range(N_IMAGES)
    ])
    got = np.asarray(m.metadata["calibration"]["scores"], dtype=np.float64)
    assert got.shape == (12,)
    # With its own rows in the bank, every patch would find itself: scores ~0.
    assert got.min() > 0.1 * np.median(want) > 0
    np.testing.assert_allclose(got, want, rtol=2e-3)
    # 12 scores are too few for the 1 % order statistic (99 needed): the threshold is the
    # log-normal extrapolation, mean + z(0.99) std of the logs (ddof 1), never below the max.
    logs = np.log(want)
    rule = max(np.exp(logs.mean() + Z_99 * logs.std(ddof=1)), want.max())
    assert m.image_threshold == pytest.approx(rule, rel=5e-3)
    assert m.threshold_info["image_estimate"] == "log-normal extrapolation"
    assert "1 % false rejects estimated from 12 out-of-bank scores (extrapolated" in m.threshold_info["rule"]


def test_coreset_calibration_masks_exactly_the_rows_of_the_scored_image(train_paths: list[Path]) -> None:
    m = _train(train_paths, 0.5, k=2)
    from PIL import Image

    imgs = torch.stack([m.preprocess(Image.open(p).convert("RGB")) for p in train_paths])
    feats = m.embed(imgs)[0].numpy()
    bank, owner = m.bank.numpy(), m.bank_source[:, 0]
    want = []
    for i in range(N_IMAGES):
        d = np.sort(sq_dists(feats[i], bank[owner != i]), axis=1)
        want.append(d[:, :2].mean(axis=1).max())
    np.testing.assert_allclose(m.calibration_scores, want, rtol=2e-3)


# --------------------------------------------------------------------------- import-official


def _official_folder(folder: Path, bank: np.ndarray, num_nn: int) -> Path:
    """A patchcore-inspection model folder (pickle.dump of its settings + faiss.write_index)."""
    folder.mkdir(parents=True)
    params = {
        "backbone.name": "resnet18", "layers_to_extract_from": ["layer2", "layer3"],
        "input_shape": (3, CROP, CROP), "pretrain_embed_dimension": 1024, "target_embed_dimension": 1024,
        "patchsize": 3, "patchstride": 1, "anomaly_scorer_num_nn": num_nn,
    }
    with open(folder / PARAMS_FILE, "wb") as fh:
        pickle.dump(params, fh)
    index = faiss.IndexFlatL2(bank.shape[1])
    index.add(np.ascontiguousarray(bank, dtype=np.float32))
    faiss.write_index(index, str(folder / INDEX_FILE))
    return folder


def test_import_official_scores_with_the_mean_of_num_nn_neighbours(
    full_bank_model: PatchCoreModel, tmp_path: Path
) -> None:
    bank = full_bank_model.bank.numpy()
    folder = _official_folder(tmp_path / "official", bank, num_nn=3)
    imported = import_official(folder, weights=r18_weights(), resize=RESIZE, device="cpu")
    assert imported.config.k == 3 and imported.metadata["k"] == 3
    probes = write_images(tmp_path / "probe", 3, seed=99, prefix="probe")
    scores, _ = imported.predict([str(p) for p in probes])
    batch = torch.stack([imported.preprocess(load_image(p)) for p in probes])
    feats, grid = imported.embed(batch)
    assert tuple(grid) == (4, 4)
    for i in range(len(probes)):
        d = np.sort(sq_dists(feats[i].numpy(), bank), axis=1)
        want = d[:, :3].mean(axis=1).max()  # patch score = mean of the 3 smallest squared distances
        assert float(scores[i]) == pytest.approx(want, rel=1e-3)
        # The nearest neighbour alone gives a clearly different (smaller) score.
        assert d[:, 0].max() < want * 0.99
