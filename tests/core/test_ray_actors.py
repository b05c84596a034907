"""The Ray engine's model replica outside Ray: URIs, error rows and batches as the local engine's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests_helpers import textured

from patchcore_gui.core.engine import iter_predict
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.ray_actors import ModelReplica
from patchcore_gui.core.ray_engine import engine_batches
from patchcore_gui.core.uri_listing import is_uri, local_copies


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("replica")
    rng = np.random.default_rng(3)
    out = []
    for i in range(4):
        p = root / f"a{i}.png"
        Image.fromarray(textured(rng, 50, 54)).save(p)
        out.append(p)
    (root / "broken.png").write_bytes(b"GIF89a nothing")
    return [*out, root / "broken.png", root / "missing.png"]


def test_uris_are_told_from_paths() -> None:
    assert is_uri("s3://bucket/a.png") and is_uri("file:///tmp/a.png") and is_uri("gs://b/c.jpg")
    assert not is_uri("/data/a.png") and not is_uri("C:/data/a.png") and not is_uri("rel/a://b.png")


def test_uris_are_fetched_and_a_missing_one_is_an_error_row(images: list[Path]) -> None:
    names = [images[0].as_uri(), str(images[1]), images[0].with_name("nope.png").as_uri()]
    with local_copies(names) as (local, errors):
        assert Path(local[0]).read_bytes() == images[0].read_bytes()
        assert local[1] == str(images[1])
        assert errors == {2: "file not found"}
        tmp = Path(local[0]).parent
    assert not tmp.exists()  # the copies are gone afterwards


def test_a_replica_scores_a_batch_as_the_local_engine_does(tiny_model_path: Path, images: list[Path]) -> None:
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    (ref,) = list(iter_predict(model, images, batch_size=len(images), grid_dtype=np.float32))
    replica = ModelReplica([tiny_model_path.read_bytes()], "cpu", model.precision, threads=0, grid_dtype="float32")
    # Global indices 10..15: the replica maps the batch's rows back to them. Two images as file:// URIs.
    names = [images[0].as_uri(), *map(str, images[1:3]), images[3].as_uri(), *map(str, images[4:])]
    out = replica({"indices": np.array([list(range(10, 16))], dtype=object),
                   "paths": np.array([names], dtype=object)})
    assert out["index"].tolist() == list(range(10, 16))
    assert np.array_equal(out["score"], ref.scores, equal_nan=True)
    assert np.array_equal(out["grid"], ref.grids, equal_nan=True)
    assert out["error"].tolist() == ref.errors
    assert ref.errors[4] == "not a recognised image format" and ref.errors[5] == "file not found"


def test_a_replica_scores_a_block_of_batches_as_the_local_engine_does(tiny_model_path: Path,
                                                                     images: list[Path]) -> None:
    """Rows of full batches (the last short) go through one iter_predict cut at the batch size:
    the local engine's batches, so its scores; rows that are not such a run are scored alone."""
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    ref = {tuple(r.indices.tolist()): r for r in iter_predict(model, images, batch_size=4, grid_dtype=np.float32)}
    replica = ModelReplica([tiny_model_path.read_bytes()], "cpu", model.precision, threads=0, grid_dtype="float32",
                           batch_size=4)
    names = [str(p) for p in images]
    out = replica({"indices": np.array([[0, 1, 2, 3], [4, 5]], dtype=object),
                   "paths": np.array([names[:4], names[4:]], dtype=object)})
    want = [*ref[(0, 1, 2, 3)].scores, *ref[(4, 5)].scores]
    assert out["index"].tolist() == list(range(6))
    assert np.array_equal(out["score"], np.array(want, dtype=np.float32), equal_nan=True)
    assert out["error"].tolist()[4:] == ["not a recognised image format", "file not found"]
    # A short row first: not consecutive full batches, each row is its own batch.
    out = replica({"indices": np.array([[4, 5], [0, 1, 2, 3]], dtype=object),
                   "paths": np.array([names[4:], names[:4]], dtype=object)})
    assert out["index"].tolist() == [4, 5, 0, 1, 2, 3]
    assert np.array_equal(out["score"], np.array(want[4:] + want[:4], dtype=np.float32), equal_nan=True)


def test_batches_are_cut_as_the_local_engine_cuts_them() -> None:
    todo = np.array([0, 1, 3, 4, 5, 8, 9])  # 2, 6 and 7 done (a resume)
    rows = engine_batches(todo, [f"/d/{i}.png" for i in range(10)], 3)
    assert [r["indices"] for r in rows] == [[0, 1, 3], [4, 5, 8], [9]]
    assert rows[2]["paths"] == ["/d/9.png"]
