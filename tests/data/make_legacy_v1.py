"""How tests/data/legacy_v1.patchcore was made: run once at commit a4a243a (format 1, no BN warm-up).

Kept for provenance only; the tests never run it (the code that made the file is gone).
"""

import os
import tempfile

import numpy as np
import torch
from PIL import Image

from patchcore_gui.core.backbones import FeatureExtractor
from patchcore_gui.core.engine import TrainConfig, train_model

torch.manual_seed(1234)
ext = FeatureExtractor("efficientnet_lite0", ("blocks.1", "blocks.2"))
sd = ext.state_dict()
# Non-trivial running stats so that a warm-up applied by mistake would show.
g = torch.Generator().manual_seed(5)
for k, v in sd.items():
    if k.endswith("running_var"):
        sd[k] = 0.5 + torch.rand(v.shape, generator=g)
    elif k.endswith("running_mean"):
        sd[k] = 0.2 * torch.randn(v.shape, generator=g)
rng = np.random.default_rng(42)
train = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(6)]
d = tempfile.mkdtemp()
paths = []
for i, a in enumerate(train):
    p = os.path.join(d, f"t{i}.png")
    Image.fromarray(a).save(p)
    paths.append(p)
m = train_model(paths, TrainConfig(backbone="efficientnet_lite0", layers=("blocks.1", "blocks.2"),
                                   resize=40, crop=32, coreset=0.5, holdout=0.0),
                weights=sd, device="cpu")
m.save("tests/data/legacy_v1.patchcore")
test = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(3)]
scores, maps = m.predict(test)
np.savez_compressed("tests/data/legacy_v1_expected.npz", images=np.stack(test),
                    scores=np.array(scores, dtype=np.float64), maps=np.stack(maps).astype(np.float32))
print(scores, os.path.getsize("tests/data/legacy_v1.patchcore"), m.metadata.get("format_version"))
