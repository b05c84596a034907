"""The streaming predictor, the reference-style predict API and map geometry."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from patchcore_gui.core.engine import iter_predict
from patchcore_gui.core.image_dataset import ImageDataset, collate
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.preprocess import Preprocess


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> PatchCoreModel:
    return PatchCoreModel.load(tiny_model_path, device="cpu")


def _test_paths(image_dirs) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(str(p) for p in image_dirs["test"].glob("*.png"))


def test_stream_yields_batches_with_error_rows(model, image_dirs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    paths = _test_paths(image_dirs) + [str(bad)]
    results = list(iter_predict(model, paths, batch_size=4))
    assert [len(r) for r in results] == [4, 3]
    scores = np.concatenate([r.scores for r in results])
    errors = sum((r.errors for r in results), [])
    assert np.isnan(scores[-1]) and errors[-1]
    assert np.isfinite(scores[:-1]).all() and not any(errors[:-1])
    g = results[0].grids
    assert g.dtype == np.float16 and g.shape == (4, 8, 8)
    assert np.isnan(results[-1].grids[-1]).all()
    # Defective images (b_bad_*) score above every good one.
    names = [Path(p).name for p in paths[:-1]]
    good = [s for n, s in zip(names, scores, strict=False) if n.startswith("a_good")]
    badness = [s for n, s in zip(names, scores, strict=False) if n.startswith("b_bad")]
    assert min(badness) > max(good)


def test_cancel_between_batches_keeps_finished_batches(model, image_dirs) -> None:  # type: ignore[no-untyped-def]
    cancel = threading.Event()
    got = []
    for r in iter_predict(model, _test_paths(image_dirs), batch_size=2, cancel=cancel):
        got.append(r)
        cancel.set()  # cancel after the first batch arrives
    assert len(got) == 1 and len(got[0]) == 2


def test_skip_scores_only_remaining(model, image_dirs) -> None:  # type: ignore[no-untyped-def]
    paths = _test_paths(image_dirs)
    full = np.concatenate([r.scores for r in iter_predict(model, paths, batch_size=4, grid_dtype=np.float32)])
    rest = list(iter_predict(model, paths, batch_size=4, skip=[0, 1, 2], grid_dtype=np.float32))
    idx = np.concatenate([r.indices for r in rest])
    np.testing.assert_array_equal(idx, [3, 4, 5])
    np.testing.assert_array_equal(np.concatenate([r.scores for r in rest]), full[3:])


def test_predict_api_variants_agree(model, image_dirs) -> None:  # type: ignore[no-untyped-def]
    paths = _test_paths(image_dirs)
    s_paths, m_paths = model.predict(paths)
    pils = [Image.open(p).convert("RGB") for p in paths]
    s_pil, _ = model.predict(pils)
    s_np, _ = model.predict([np.asarray(p) for p in pils])
    batch = torch.stack([model.preprocess(p) for p in pils])
    s_t, m_t = model.predict(batch)
    assert s_paths == s_pil == s_np == s_t
    assert all(m.shape == (64, 64) and m.dtype == np.float32 for m in m_paths)
    assert np.array_equal(m_paths[0], m_t[0])
    labels = [0, 0, 0, 1, 1, 1]
    ds = ImageDataset(paths, model.preprocess, labels=labels)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate)
    scores, masks, labels_gt, masks_gt = model.predict(loader)
    assert scores == s_paths and labels_gt == labels and len(masks) == len(masks_gt) == 6
    assert masks_gt[0].shape == (64, 64)


def test_map_to_original_undoes_resize_and_crop() -> None:
    pre = Preprocess(resize=256, crop=224)
    # Original 400 x 300 -> resized 341 x 256 -> crop left 58, top 16.
    amap = np.zeros((224, 224), dtype=np.float32)
    amap[100:124, 100:124] = 1.0
    out = pre.to_original(amap, 400, 300)
    assert out.shape == (300, 400)
    # Crop pixel (112, 112) is resized pixel (128, 170) -> original (150, 199.4).
    assert out[150, 199] == pytest.approx(1.0)
    assert out[150, 120] == pytest.approx(0.0)
    # Margins cut by the crop (68 px left/right, 19 px top/bottom) are NaN.
    assert np.isnan(out[:, :60]).all() and np.isnan(out[:, -60:]).all()
    assert np.isnan(out[:15]).all() and np.isnan(out[-15:]).all()
    assert np.isfinite(out[25:275, 75:325]).all()


def test_normalized_score_is_one_at_threshold(model) -> None:  # type: ignore[no-untyped-def]
    t = model.image_threshold
    assert model.normalized(t) == pytest.approx(1.0)
    assert model.normalized(2 * t) == pytest.approx(2.0)


def test_eq7_reweighting_matches_naive(image_dirs) -> None:  # type: ignore[no-untyped-def]
    """Image score = (1 - softmax_0(||x* - m||, m in N_9(m*))) * max patch score."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    train = sorted(image_dirs["train"].glob("*.png"))
    cfg = TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=1.0, holdout=0.0, reweight=9)
    model = train_model(train, cfg, device="cpu")
    paths = _test_paths(image_dirs)[:2]
    scores, _ = model.predict(paths)
    batch = torch.stack([model.preprocess(Image.open(p).convert("RGB")) for p in paths])
    feats, _ = model.embed(batch)
    bank = model.bank.double()
    for i in range(2):
        d = torch.cdist(feats[i].double(), bank)
        nn_d, nn_i = d.min(dim=1)
        j = int(torch.argmax(nn_d))
        s_star = float(nn_d[j] ** 2)
        m_star = bank[nn_i[j]]
        support = torch.cdist(m_star[None], bank)[0].topk(9, largest=False).indices
        dist = torch.linalg.vector_norm(bank[support] - feats[i][j].double()[None], dim=1)
        w = 1 - torch.softmax(dist, 0)[0].item()
        assert 0 < w < 1
        assert scores[i] == pytest.approx(w * s_star, rel=1e-4)


def test_fast_precision_matches_exact_path(tiny_model_path, image_dirs) -> None:  # type: ignore[no-untyped-def]
    exact = PatchCoreModel.load(tiny_model_path, device="cpu", precision="fp32")
    fast = PatchCoreModel.load(tiny_model_path, device="cpu", precision="bf16")
    assert fast.search.backend.startswith("reduced")
    paths = _test_paths(image_dirs)
    s_exact, m_exact = exact.predict(paths)
    s_fast, m_fast = fast.predict(paths)
    np.testing.assert_allclose(s_fast, s_exact, rtol=1e-2)
    for a, b in zip(m_fast, m_exact, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-2, atol=1e-3 * float(np.max(b)))
    with pytest.raises(ValueError, match="precision"):
        PatchCoreModel.load(tiny_model_path, device="cpu", precision="int4")


def test_auto_precision_is_exact_on_cpu_and_fast_on_cuda(tiny_model_path) -> None:  # type: ignore[no-untyped-def]
    from patchcore_gui.core.model import resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) == "exact"
    assert resolve_precision("auto", torch.device("cuda", 0)) == "fast"
    assert resolve_precision("bf16", torch.device("cpu")) == "fast"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", torch.device("cpu"))
    auto = PatchCoreModel.load(tiny_model_path, device="cpu")
    assert auto.precision == "exact" and auto.search.backend == "blocked"
    assert auto.requested_precision == "auto"


def test_set_precision_switches_paths_and_back_exactly(tiny_model_path, image_dirs) -> None:  # type: ignore[no-untyped-def]
    paths = _test_paths(image_dirs)
    m = PatchCoreModel.load(tiny_model_path, device="cpu", precision="fp32")
    exact, _ = m.predict(paths)
    m.set_precision("bf16")
    assert m.precision == "fast" and m.search.backend.startswith("reduced")
    fast, _ = m.predict(paths)
    np.testing.assert_allclose(fast, exact, rtol=1e-2)
    m.set_precision("auto")  # the CPU's auto is the exact path, bit for bit as before
    assert m.precision == "exact" and m.search.backend == "blocked"
    again, _ = m.predict(paths)
    np.testing.assert_array_equal(again, exact)
    with pytest.raises(ValueError, match="precision"):
        m.set_precision("fp8")


def test_out_of_memory_halves_the_batch_and_continues(model, image_dirs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A (simulated) GPU out-of-memory error on a big batch: split in halves, same scores."""
    paths = _test_paths(image_dirs)
    want = np.concatenate([r.scores for r in iter_predict(model, paths, batch_size=6)])
    real = PatchCoreModel.score_tensor
    sizes, scored = [], []

    def flaky(self, images):  # type: ignore[no-untyped-def]
        sizes.append(images.shape[0])
        if images.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        scored.append(images.shape[0])
        return real(self, images)

    monkeypatch.setattr(PatchCoreModel, "score_tensor", flaky)
    got = np.concatenate([r.scores for r in iter_predict(model, paths, batch_size=6)])
    assert sizes[:3] == [6, 3, 1] and sum(scored) == 6 and max(scored) <= 2
    np.testing.assert_allclose(got, want, rtol=1e-5)

    # Over several batches the halved size sticks: only the first batch fails.
    sizes.clear()
    scored.clear()
    got = np.concatenate([r.scores for r in iter_predict(model, paths, batch_size=3)])
    assert sizes == [3, 1, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_batch_size_from_free_gpu_memory() -> None:
    from patchcore_gui.core.batching import gpu_batch_for

    gib = 1 << 30
    # Half of 60 GiB free at 100 MiB per image: 307 images fit, power of two -> 256.
    assert gpu_batch_for(60 * gib, 100 * 2**20) == 256
    assert gpu_batch_for(60 * gib, 1 * 2**20) == 512  # capped
    assert gpu_batch_for(100 * 2**20, 400 * 2**20) == 1  # nothing fits: one at a time
    assert gpu_batch_for(gib, 0) == 512


def test_default_batch_size_on_cpu_is_fixed(model) -> None:  # type: ignore[no-untyped-def]
    from patchcore_gui.core.batching import CPU_BATCH, default_batch_size

    assert default_batch_size(model) == CPU_BATCH
