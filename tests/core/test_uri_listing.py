"""``predict --images URI``: listing through pyarrow's file systems, and the local engine on URIs.

``file://`` URIs to a temporary folder go through pyarrow's LocalFileSystem exactly as
``s3://`` or ``gs://`` go through theirs: the listing, the URIs written to the run file
and the CSV, and the per-batch fetches are the same code. (The Ray engine on URIs:
tests/core/test_ray_engine.py.)
"""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image
from tests_helpers import textured, with_defect

from patchcore_gui.cli import main
from patchcore_gui.core.datasets import list_images
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.run_driver import predict_into_run
from patchcore_gui.core.run_file import RunFile
from patchcore_gui.core.uri_listing import (
    UriPath,
    join_uri,
    list_uri_images,
    local_copies,
    stored_path,
)
from patchcore_gui.core.uri_scoring import CHUNK_BATCHES, uri_iter_predict

N_GOOD = 7


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images in nested folders with awkward names, a broken image, hidden and non-image files."""
    root = tmp_path_factory.mktemp("uri_imgs")
    rng = np.random.default_rng(21)
    names = ["a b.png", "sub dir/c%41.PNG", "sub dir/deeper/d.jpg", "ü.png", "e.bmp", "f.png", "g.png"]
    for i, name in enumerate(names):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        img = textured(rng, 56, 60)
        Image.fromarray(with_defect(img, 10, 12, size=10) if i % 3 == 0 else img).save(p)
    (root / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (root / ".hidden.png").write_bytes(b"x")
    (root / ".cache").mkdir()
    (root / ".cache" / "h.png").write_bytes(b"x")
    (root / "notes.txt").write_text("not an image")
    (root / "folder.png").mkdir()  # a folder named like an image is not an image
    return root


def _uri(path: Path) -> str:
    return path.as_uri()


def test_a_uri_folder_lists_as_the_local_folder_does(folder: Path) -> None:
    image_set, labelled = list_uri_images(_uri(folder))
    local = list_images(folder)
    assert len(image_set) == len(local) == N_GOOD + 1
    assert not labelled and image_set.layout == "folder" and (image_set.labels == -1).all()
    for got, want in zip(image_set.paths, local, strict=True):
        text = str(got)
        assert text.startswith("file:///") and os.fspath(got) == text
        assert unquote(urlsplit(text).path) == str(want)  # same file, same order
        assert got.name == want.name
    assert str(image_set.root) == _uri(folder)
    # Names with a space, a "%" and a non-ASCII letter are percent-encoded and open back.
    assert str(image_set.paths[0]).endswith("/a%20b.png")
    assert any(str(p).endswith("/c%2541.PNG") for p in image_set.paths)
    with local_copies([str(p) for p in image_set.paths]) as (copies, errors):
        assert errors == {}
        assert [Path(c).read_bytes() for c in copies] == [p.read_bytes() for p in local]


def test_uri_listing_errors_say_what_is_wrong(folder: Path) -> None:
    with pytest.raises(FileNotFoundError, match="folder not found"):
        list_uri_images(_uri(folder / "missing"))
    with pytest.raises(NotADirectoryError, match="not a folder"):
        list_uri_images(_uri(folder / "e.bmp"))
    with pytest.raises(ValueError, match="Unrecognized filesystem"):
        list_uri_images("nosuchscheme://bucket/x")


def test_a_labelled_layout_is_flagged(tmp_path: Path) -> None:
    for rel in ("test/good/a.png", "test/crack/b.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert list_uri_images(_uri(tmp_path))[1]
    assert not list_uri_images(_uri(tmp_path / "test" / "crack"))[1]


def test_uri_paths_keep_the_uri() -> None:
    u = UriPath("s3://bucket/a/b%20c.png?region=eu-west-1")
    assert str(u) == os.fspath(u) == "s3://bucket/a/b%20c.png?region=eu-west-1"
    assert (u.name, u.suffix, u.stem) == ("b c.png", ".png", "b c")
    assert pickle.loads(pickle.dumps(u)) == u
    assert u != UriPath("gs://bucket/a/b%20c.png?region=eu-west-1") and len({u, UriPath(str(u))}) == 1
    assert stored_path(u) == str(u) and stored_path("rel/x.png") == os.path.abspath("rel/x.png")
    assert join_uri("s3://b/x/?region=eu-west-1", "a b/%c.png") == "s3://b/x/a%20b/%25c.png?region=eu-west-1"


def _rows(csv: str) -> list[list[str]]:
    return [r.split(",") for r in csv.splitlines()]


def test_the_local_engine_scores_a_uri_folder_as_the_folder(tiny_model_path: Path, folder: Path,
                                                           tmp_path: Path) -> None:
    assert main(["predict", "--model", str(tiny_model_path), "--images", str(folder), "--batch-size", "3",
                 "--output", str(tmp_path / "local.csv"), "--quiet"]) == 0
    run = tmp_path / "uri.pcrun"
    assert main(["predict", "--model", str(tiny_model_path), "--images", _uri(folder), "--batch-size", "3",
                 "--run", str(run), "--output", str(tmp_path / "uri.csv"), "--quiet"]) == 0
    local, uri = _rows((tmp_path / "local.csv").read_text()), _rows((tmp_path / "uri.csv").read_text())
    assert len(uri) == N_GOOD + 2 and uri[0] == local[0]
    for a, b in zip(uri[1:], local[1:], strict=True):
        assert a[0].startswith("file:///") and unquote(urlsplit(a[0]).path) == b[0]
        assert a[1:] == b[1:]  # same batches, same scores, verdicts and error texts
    assert [r[4] for r in uri[1:] if r[4]] == ["not a recognised image format"]
    with RunFile.open(run, readonly=True) as rf:
        assert rf.paths() == [r[0] for r in uri[1:]]  # the run file keeps the URIs
        assert rf.meta["folder"] == _uri(folder)


def test_a_uri_run_resumes_with_the_uris(tiny_model_path: Path, folder: Path, tmp_path: Path) -> None:
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    image_set, _ = list_uri_images(_uri(folder))
    run, stop = tmp_path / "part.pcrun", threading.Event()
    # Batches of 1 fetched CHUNK_BATCHES at a time: a cancel after the first stops after that chunk.
    out = predict_into_run(model, image_set, run, batch_size=1, cancel=stop, scorer=uri_iter_predict,
                           on_batch=lambda r: stop.set())
    assert out.status == "cancelled" and out.done == CHUNK_BATCHES < N_GOOD + 1
    assert main(["predict", "--run", str(run), "--resume", "--output", str(tmp_path / "resumed.csv"),
                 "--quiet"]) == 0
    rows = _rows((tmp_path / "resumed.csv").read_text())[1:]
    assert [r[0] for r in rows] == [str(p) for p in image_set.paths]
    assert sum(1 for r in rows if r[1]) == N_GOOD  # every image scored: the URIs were read back intact
    with RunFile.open(run, readonly=True) as rf:
        assert rf.status == "finished" and int(rf.columns()["done"].sum()) == N_GOOD + 1


def test_a_missing_image_behind_a_uri_is_an_error_row(tiny_model_path: Path, folder: Path) -> None:
    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    names = [_uri(folder / "f.png"), _uri(folder / "gone.png"), _uri(folder / "g.png")]
    (r,) = list(uri_iter_predict(model, names, batch_size=3, grid_dtype=np.float32))
    assert r.errors == ["", "file not found", ""] and np.isnan(r.scores[1]) and np.isfinite(r.scores[[0, 2]]).all()


@pytest.mark.parametrize(("where", "words"), [
    ("missing", "folder not found: file://"),
    ("e.bmp", "not a folder: file://"),
])
def test_a_bad_uri_is_one_line_and_exit_2(tiny_model_path: Path, folder: Path, capsys: pytest.CaptureFixture[str],
                                          where: str, words: str) -> None:
    assert main(["predict", "--model", str(tiny_model_path), "--images", _uri(folder / where), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_an_unknown_scheme_is_one_line_and_exit_2(tiny_model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(tiny_model_path), "--images", "nosuchscheme://b/x", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot list nosuchscheme://b/x: Unrecognized filesystem" in err


def test_a_labelled_uri_folder_says_its_ground_truth_is_not_read(tiny_model_path: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    for rel in ("test/good/a.png", "test/crack/b.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(textured(rng, 56, 60)).save(tmp_path / rel)
    assert main(["predict", "--model", str(tiny_model_path), "--images", _uri(tmp_path), "--quiet",
                 "--output", str(tmp_path / "o.csv")]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "ground truth" in ln]
    assert len(notes) == 1 and "read from local folders only" in notes[0]
    assert len(_rows((tmp_path / "o.csv").read_text())) == 3


def test_a_uri_image_is_fetched_and_decoded_as_the_file_is(tmp_path: Path) -> None:
    """A run of ``predict --images URI`` names its images by URI: the window shows them."""
    from patchcore_gui.core.uri_listing import load_any_image
    from patchcore_gui.io.images import ImageLoadError, load_image

    arr = np.random.default_rng(5).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    p = tmp_path / "part 1.png"
    Image.fromarray(arr).save(p)
    got = load_any_image(p.as_uri())  # file:///.../part%201.png, through pyarrow's LocalFileSystem
    assert np.array_equal(np.asarray(got), np.asarray(load_image(p)))
    assert np.array_equal(np.asarray(load_any_image(p)), np.asarray(got))  # a path: load_image itself
    with pytest.raises(ImageLoadError, match="^file not found$"):
        load_any_image((tmp_path / "gone.png").as_uri())
    (tmp_path / "bad.png").write_bytes(b"GIF89a nothing")
    with pytest.raises(ImageLoadError, match="not a recognised image format"):
        load_any_image((tmp_path / "bad.png").as_uri())
