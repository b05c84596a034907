"""Guards against plausible wrong constants: literal expected values, independent references.

Each test here exists because a planted bug survived the rest of the suite
(scripts/mutation_check.py plants them again): the calibration rule with 1 std
instead of 3, the ImageNet mean reversed, and the coreset's initial distances changed.
Expected values are written out as numbers or recomputed here from the spec's words,
never read from the project's own constants or helpers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from patchcore_gui.core.backbones import get_spec
from patchcore_gui.core.calibration import calibrate, threshold_rule
from patchcore_gui.core.coreset import _start_points, greedy_coreset, projection_matrix
from patchcore_gui.core.features import EmbeddingConfig
from patchcore_gui.core.model import ModelConfig
from patchcore_gui.core.preprocess import Preprocess

# --------------------------------------------------------------------------- calibration


def test_threshold_rule_by_hand() -> None:
    # scores 1, 2, 3, 4, 10: mean 4; squared deviations 9 + 4 + 1 + 0 + 36 = 50; the
    # sample std (ddof 1, what calibration.describe reports) is sqrt(50 / 4) = sqrt(12.5).
    # mean + 3 std = 4 + 3 * 3.5355339... = 14.6066..., above the max 10.
    assert threshold_rule(np.array([1.0, 2.0, 3.0, 4.0, 10.0])) == pytest.approx(14.606601717798213, rel=1e-12)
    # Identical scores: std 0, so the rule gives the max itself.
    assert threshold_rule(np.array([2.5, 2.5, 2.5])) == 2.5
    # A single score: no spread to estimate, the rule is that score.
    assert threshold_rule(np.array([7.0])) == 7.0
    # NaN (unreadable hold-out images) are left out, not propagated.
    assert threshold_rule(np.array([1.0, np.nan, 2.0, 3.0, 4.0, 10.0])) == pytest.approx(14.606601717798213)


def test_threshold_rule_other_hand_cases() -> None:
    # 1, 2, 3: mean 2, sample std sqrt((1 + 0 + 1) / 2) = 1 -> 2 + 3 * 1 = 5.
    assert threshold_rule(np.array([1.0, 2.0, 3.0])) == pytest.approx(5.0, rel=1e-12)
    # Nine 1s and a 100: mean 10.9, sample std sqrt((9 * 9.9^2 + 89.1^2) / 9) = sqrt(980.1).
    v = np.array([1.0] * 9 + [100.0])
    assert threshold_rule(v) == pytest.approx(10.9 + 3 * np.sqrt(980.1), rel=1e-12)
    # Ten 0s and a 1 (11 scores: enough for one outlier to lie beyond 3 sample stds):
    # mean 1/11, sample std sqrt(1/11) -> 0.0909 + 0.9045 = 0.9954 < 1, so the max wins.
    assert threshold_rule(np.array([0.0] * 10 + [1.0])) == 1.0


def test_calibrate_blocks_carry_the_rate_value() -> None:
    # 19 scores 1..19 at 5 %: the Weibull position 20 * 0.95 = 19 is the largest score.
    # 5 scores at 5 % are too few (19 needed): logs of 0.5 have no spread, the max stays.
    blocks = calibrate(np.arange(1.0, 20.0), np.array([0.5, 0.5, 0.5, 0.5, 0.5]), 0.05)
    assert blocks["threshold"]["image"] == 19.0
    assert blocks["threshold"]["pixel"] == 0.5
    # 20 scores at 5 %: 21 * 0.95 = 19.95 -> 19 + 0.95 * (20 - 19).
    assert calibrate(np.arange(1.0, 21.0), np.ones(3), 0.05)["threshold"]["image"] == pytest.approx(19.95, rel=1e-12)
    assert blocks["calibration"]["image_scores"]["std"] == pytest.approx(np.std(np.arange(1.0, 20.0), ddof=1))
    assert blocks["calibration"]["images"] == 19


# --------------------------------------------------------------------------- normalisation

#: A uniform image of this colour survives resize and crop unchanged.
PIXEL = (200, 100, 50)
#: (v / 255 - mean) / std per channel with ImageNet mean (0.485, 0.456, 0.406) and std
#: (0.229, 0.224, 0.225), worked out by hand:
#: (0.7843137 - 0.485) / 0.229, (0.3921569 - 0.456) / 0.224, (0.1960784 - 0.406) / 0.225.
IMAGENET_EXPECTED = (1.3070468362017296, -0.285014005602241, -0.9329847494553378)


def _normalised_pixel(pre: Preprocess) -> np.ndarray:
    img = Image.new("RGB", (40, 40), PIXEL)
    out = pre(img)
    assert out.shape == (3, 32, 32)
    # Uniform in, uniform out: every position carries the same three values.
    assert float((out - out[:, :1, :1]).abs().max()) == 0.0
    return out[:, 0, 0].double().numpy()


@pytest.mark.parametrize("source", ["preprocess_default", "model_config_default", "wide_resnet50_2", "resnet18"])
def test_imagenet_normalisation_of_a_known_pixel(source: str) -> None:
    if source == "preprocess_default":
        pre = Preprocess(resize=36, crop=32)
    elif source == "model_config_default":
        pre = ModelConfig(backbone="resnet18", layers=("layer2",), embedding=EmbeddingConfig(), resize=36,
                          crop=32).preprocess
    else:
        spec = get_spec(source)
        pre = Preprocess(resize=36, crop=32, mean=spec.mean, std=spec.std)
    np.testing.assert_allclose(_normalised_pixel(pre), IMAGENET_EXPECTED, rtol=1e-6)


def test_efficientnet_lite0_normalises_to_minus_one_one() -> None:
    # The tf EfficientNet-Lite0 weights expect (v / 255 - 0.5) / 0.5.
    spec = get_spec("efficientnet_lite0")
    got = _normalised_pixel(Preprocess(resize=36, crop=32, mean=spec.mean, std=spec.std))
    np.testing.assert_allclose(got, [200 / 127.5 - 1, 100 / 127.5 - 1, 50 / 127.5 - 1], rtol=1e-6)


# --------------------------------------------------------------------------- coreset


def _spec_coreset(features: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The approximate greedy coreset written from the spec's words (section 3), in float64.

    Project to 128-d, start from 10 random rows, initial distance = MEAN Euclidean
    distance to the start rows, then int(N * p) times: take the row with the largest
    distance, keep it, lower every row's distance to min(current, distance to it).
    Only the random draws (projection matrix, start rows) come from the project, so
    the same seed gives the same draws; every distance is computed here.

    Returns (picks, projected rows, initial distances).
    """
    n, dim = features.shape
    proj = projection_matrix(dim, seed)
    x = (features @ proj).double().numpy()  # same float32 product as the project's projection
    starts = _start_points(n, seed)
    assert len(starts) == 10
    to_starts = np.sqrt(((x[:, None, :] - x[None, starts, :]) ** 2).sum(axis=2))
    init = to_starts.mean(axis=1)
    d = init.copy()
    picks = []
    for _ in range(int(n * fraction)):
        j = int(np.argmax(d))
        picks.append(j)
        d = np.minimum(d, np.sqrt(((x - x[j]) ** 2).sum(axis=1)))
    return np.array(picks), x, init


@pytest.mark.parametrize("seed", [0, 5])
def test_coreset_picks_equal_an_independent_implementation(seed: int) -> None:
    g = torch.Generator().manual_seed(100 + seed)
    # Clustered rows (like patch features), 256-d so the projection is used.
    centres = torch.randn(12, 256, generator=g) * 3
    feats = centres[torch.randint(0, 12, (400,), generator=g)] + torch.randn(400, 256, generator=g)
    want, _, _ = _spec_coreset(feats, 0.1, seed)
    assert len(want) == 40
    np.testing.assert_array_equal(greedy_coreset(feats, 0.1, seed=seed), want)


def _spread_holds(x: np.ndarray, init: np.ndarray, picks: np.ndarray) -> bool:
    """Farthest-point property: picks are at least as far apart as any row is from them.

    For greedy max-min picking, pick j's distance when picked is v_j = max over rows of
    the current distance; v_j never increases; two picks are at least v_(later) apart;
    and after the last pick every row is within v_m of the picks (or of its initial
    distance). So min pairwise distance among picks >= max over rows of
    min(initial, distance to the nearest pick).
    """
    p = x[picks]
    pair = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(axis=2))
    min_pair = pair[np.triu_indices(len(picks), 1)].min()
    cover = np.minimum(init, np.sqrt(((x[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)).min(axis=1)).max()
    return bool(min_pair >= cover * (1 - 1e-9))


def test_coreset_spread_holds_for_the_picks_and_fails_for_random_ones() -> None:
    g = torch.Generator().manual_seed(7)
    feats = torch.randn(500, 200, generator=g)
    picks = greedy_coreset(feats, 0.06, seed=1)
    _, x, init = _spec_coreset(feats, 0.06, 1)
    assert len(picks) == 30 == len(set(picks.tolist()))
    assert _spread_holds(x, init, picks)
    # The property has teeth: random subsets of the same size break it.
    rng = np.random.default_rng(0)
    assert not any(_spread_holds(x, init, rng.choice(500, 30, replace=False)) for _ in range(20))
