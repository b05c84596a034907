"""Print the measured parity errors that tests/core/test_parity.py bounds.

Default configuration (WR50, layer2+layer3, 224 px, fixed-seed random weights), brick
crops cut from scikit-image's photograph: two to train, ``--test`` to score. The
reference is tests/official_reference.py, the official pipeline re-created from its
source (full torchvision network, official hooks and BatchNorm warm-up, Unfold
features, faiss IndexFlatL2), sharing no code with the engine.

- trained: ``train_model`` (100 % bank) vs the official fit + predict;
- imported: a folder written as the official ``save_to_path`` writes it (identity bank
  with k = 1, approximate-greedy 25 % bank with k = 3) through ``import_official``, vs
  the official predict on the same bank;
- the same comparison against a reference WITHOUT the warm-up, to show what it moves.

    .venv/bin/python benchmarks/parity_report.py [--test 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "core"))


def rel_errors(scores, maps, want_scores, want_maps) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    s = max(abs(a - b) / b for a, b in zip(scores, want_scores, strict=True))
    m = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(maps, want_maps, strict=True))
    return float(s), m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=int, default=4, help="number of test crops")
    args = ap.parse_args()
    import torchvision
    from official_reference import OfficialReference, load_images, save_official_folder
    from test_parity import _brick_images  # the tests' own crops

    from patchcore_gui.core.engine import TrainConfig, train_model
    from patchcore_gui.core.official_import import import_official

    tmp = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    wfile = tmp / "wr50.pth"
    torch.save(torchvision.models.wide_resnet50_2(weights=None).state_dict(), wfile)
    paths = _brick_images(tmp, 2 + args.test)
    train, test = paths[:2], [str(p) for p in paths[2:]]
    x_train, x_test = load_images(train, 256, 224), load_images(test, 256, 224)

    def official(**kw):  # type: ignore[no-untyped-def]
        net = torchvision.models.wide_resnet50_2(weights=None)
        net.load_state_dict(torch.load(wfile, weights_only=True))
        return OfficialReference(net, ["layer2", "layer3"], 224, **kw)

    model = train_model(train, TrainConfig(coreset=1.0, holdout=0.0), weights=wfile, device="cpu", batch_size=2)
    scores, maps = model.predict(test)
    ref = official()
    ref.fit(x_train)
    want = ref.predict(x_test)
    s, m = rel_errors(scores, maps, *want)
    print(f"trained (100 % bank), {len(test)} images: image scores {s:.2e} max relative, maps {m:.2e}")
    cold = official(warmup=False)
    cold.fit(x_train)
    s, m = rel_errors(scores, maps, *cold.predict(x_test))
    print(f"  same engine vs an official pipeline WITHOUT the warm-up: scores {s:.2e}, maps {m:.2e}")
    for coreset, k in ((1.0, 1), (0.25, 3)):
        ref = official(k=k)
        bank = ref.fit(x_train, coreset=coreset)
        folder = save_official_folder(tmp / f"official-{coreset}-{k}", bank, "wideresnet50", ["layer2", "layer3"],
                                      224, k=k)
        imported = import_official(folder, weights=wfile, device="cpu")
        s, m = rel_errors(*imported.predict(test), *ref.predict(x_test))
        kind = "identity" if coreset >= 1.0 else f"approximate greedy {coreset:.0%}"
        print(f"imported ({kind} bank, {len(bank)} rows, k={k}): image scores {s:.2e} max relative, maps {m:.2e}")


if __name__ == "__main__":
    main()
