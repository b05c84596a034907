"""Hostile inputs end to end: a corpus of bad and odd image files through the real CLI,
hostile model files, and a full disk while saving.

Every listed image must be scored correctly or become an error row with its reason;
the run always finishes and the counts add up. Every bad model file is one line,
no code runs, nothing crashes.
"""

from __future__ import annotations

import builtins
import csv
import errno
import io
import json
import math
import os
import pickle
import re
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from patchcore_gui.cli import main
from patchcore_gui.core import datasets, image_dataset
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.modelfile import (
    BANK_KEY,
    ModelFileError,
    read_model_file,
    save_model_file,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TINY_TRAIN = ["--backbone", "efficientnet_lite0", "--resize", "72", "--crop", "64", "--coreset", "0.5",
              "--holdout", "0", "--quiet", "--device", "cpu"]


# =========================================================================== image corpus


@dataclass
class Expect:
    """What must happen to one listed file."""

    outcome: str  # "scored" or "error"
    reason: str = ""  # for errors: a fragment of the message
    rgb: np.ndarray | None = None  # for scored files: the image the model must see


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height``: enough for the size check, a few bytes on disk."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16)) + _png_chunk(b"IEND", b""))


def _encoded(arr: np.ndarray, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def _make_deeper_than_path_max(root: Path, name: str) -> str:
    """A PNG nested so deep that its path exceeds PATH_MAX; built with descriptors."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(root, flags)
    depth = 0
    try:
        for _ in range(45):  # 45 x 101 > 4096
            os.mkdir("E" * 100, dir_fd=fd)
            nfd = os.open("E" * 100, flags, dir_fd=fd)
            os.close(fd)
            fd = nfd
            depth += 1
        out = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(out, "wb") as fh:
            fh.write(_encoded(np.zeros((40, 40, 3), np.uint8), "PNG"))
    finally:
        os.close(fd)
    return os.path.join(str(root), *(["E" * 100] * depth), name)


def build_corpus(root: Path) -> dict[str, Expect]:
    """Write the hostile corpus under ``root``; returns {listed path: expectation}."""
    from tests_helpers import textured  # type: ignore[import-not-found]

    rng = np.random.default_rng(5)
    base = textured(rng)  # the reference picture for all "same pixels, odd name" cases
    exp: dict[str, Expect] = {}

    def put(rel: str | bytes, data: bytes, expect: Expect) -> str:
        path = os.path.join(os.fsencode(root), rel) if isinstance(rel, bytes) else os.path.join(str(root), rel)
        with open(path, "wb") as fh:
            fh.write(data)
        key = os.fsdecode(path)
        exp[key] = expect
        return key

    put("ok.png", _encoded(base, "PNG"), Expect("scored", rgb=base))
    put("UPPER.PNG", _encoded(base, "PNG"), Expect("scored", rgb=base))
    put("empty.png", b"", Expect("error", "empty file (0 bytes)"))
    png = _encoded(textured(rng), "PNG")
    put("truncated.png", png[: len(png) // 2], Expect("error", "truncated or corrupt image data"))
    jpg = _encoded(textured(rng), "JPEG", quality=90)
    put("truncated.jpg", jpg[: len(jpg) // 2], Expect("error", "truncated or corrupt image data"))
    put("text.png", b"just some notes\nnot an image\n", Expect("error", "not a recognised image format"))
    put("jpeg_named.png", jpg, Expect("scored", rgb=_rgb(Image.open(io.BytesIO(jpg)))))

    # A folder named like an image is a folder: walked, never a row of its own.
    (root / "x.png").mkdir()
    put("x.png/inside.png", _encoded(base, "PNG"), Expect("scored", rgb=base))

    # Permissions. Root reads a mode-000 file anyway, so the outcome depends on who runs
    # the test; the "denied.png" case below simulates the refusal for everyone.
    key = put("mode000.png", _encoded(base, "PNG"),
              Expect("scored", rgb=base) if IS_ROOT else Expect("error", "permission denied"))
    os.chmod(key, 0)
    put("denied.png", _encoded(base, "PNG"), Expect("error", "permission denied"))

    # Links: a loop, a dangling one, one to a FIFO (reading it would block forever).
    os.symlink("loop_b.png", root / "loop_a.png")
    os.symlink("loop_a.png", root / "loop_b.png")
    for name in ("loop_a.png", "loop_b.png"):
        exp[str(root / name)] = Expect("error", "Too many levels of symbolic links")
    os.symlink("missing_target.png", root / "dangling.png")
    exp[str(root / "dangling.png")] = Expect("error", "file not found")
    os.mkfifo(root / "pipe")
    os.symlink("pipe", root / "fifo_link.png")
    exp[str(root / "fifo_link.png")] = Expect("error", "not a regular file")
    os.mkfifo(root / "bare_fifo.png")  # skipped by the listing (not a file): no row, no hang

    put("bomb.png", _png_claiming(20000, 20000), Expect("error", "image too large: 400,000,000 pixels"))
    # Few pixels but extreme shape: the resize of the shorter side would make it huge.
    put("thin.png", _encoded(np.full((1, 20000, 3), 90, np.uint8), "PNG"), Expect("error", "aspect ratio too extreme"))
    put("tall.png", _encoded(np.full((20000, 1, 3), 90, np.uint8), "PNG"), Expect("error", "aspect ratio too extreme"))
    wide = np.tile(base, (1, 6, 1))  # 6:1 is a plausible line-scan strip: scored
    put("wide_6to1.png", _encoded(wide, "PNG"), Expect("scored", rgb=wide))

    # Formats that need more than a plain convert("RGB").
    grey = base[..., 1]
    g16 = grey.astype(np.uint16) * 257
    grey_rgb = np.repeat(grey[..., None], 3, axis=2)
    put("grey16.png", _encoded(g16, "PNG"), Expect("scored", rgb=grey_rgb))
    put("grey16.tif", _encoded(g16, "TIFF"), Expect("scored", rgb=grey_rgb))
    one_bit = Image.fromarray(base).convert("1")
    put("one_bit.png", _encoded(np.asarray(one_bit), "PNG"), Expect("scored", rgb=_rgb(one_bit)))
    pal = Image.fromarray(base).convert("P")
    buf = io.BytesIO()
    pal.save(buf, "PNG")
    put("palette.png", buf.getvalue(), Expect("scored", rgb=_rgb(pal)))
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)
    put("palette_transparent.png", buf.getvalue(), Expect("scored", rgb=_rgb(pal.convert("RGBA"))))
    buf = io.BytesIO()
    Image.fromarray(base).convert("CMYK").save(buf, "JPEG", quality=95)
    put("cmyk.jpg", buf.getvalue(), Expect("scored", rgb=_rgb(Image.open(io.BytesIO(buf.getvalue())))))
    alpha = rng.integers(0, 256, base.shape[:2], dtype=np.uint8)
    put("rgba.png", _encoded(np.dstack([base, alpha]), "PNG"), Expect("scored", rgb=base))  # alpha dropped
    for ext, fmt in (("png", "PNG"), ("jpg", "JPEG")):
        im = Image.fromarray(base)
        exif = im.getexif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
        buf = io.BytesIO()
        im.save(buf, fmt, exif=exif)
        raw = _rgb(Image.open(io.BytesIO(buf.getvalue())))
        assert Image.open(io.BytesIO(buf.getvalue())).getexif().get(0x0112) == 6
        put(f"exif_rotated.{ext}", buf.getvalue(), Expect("scored", rgb=np.ascontiguousarray(np.rot90(raw, -1))))

    # Names: not UTF-8 (Latin-1 bytes), 255 bytes long, deep but legal, deeper than PATH_MAX.
    put(b"caf\xe9_latin1.png", _encoded(base, "PNG"), Expect("scored", rgb=base))
    put("L" * 251 + ".png", _encoded(base, "PNG"), Expect("scored", rgb=base))
    deep = root / "deep"
    for _ in range(30):
        deep = deep / ("D" * 100)
    deep.mkdir(parents=True)
    put(str(deep.relative_to(root) / "deep.png"), _encoded(base, "PNG"), Expect("scored", rgb=base))
    too_deep = _make_deeper_than_path_max(root, "too_deep.png")
    assert len(os.fsencode(too_deep)) > 4096
    exp[too_deep] = Expect("error", "File name too long")

    # Deleted after the folder was listed, before prediction reaches it; and deleted
    # while the run is under way (when the first image is being decoded).
    put("zz_deleted.png", _encoded(base, "PNG"), Expect("error", "file not found"))
    put("zz_deleted_mid_run.png", _encoded(base, "PNG"), Expect("error", "file not found"))
    return exp


def _read_csv(path: Path) -> list[dict[str, str]]:
    # The CLI writes file names that are not UTF-8 with surrogateescape; read them back so.
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def test_hostile_image_corpus_through_cli(tmp_path: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    expected = build_corpus(root)

    listed: list[str] = []
    real_list = datasets.list_images

    def list_then_delete(folder: str | Path) -> list[Path]:
        paths = real_list(folder)
        if not listed:  # the listing the run goes by (a second one reads the ground truth)
            listed.extend(str(p) for p in paths)
        # Gone between listing and prediction (predict lists twice when it also reads the
        # folder's ground truth: the second listing finds it gone already).
        (root / "zz_deleted.png").unlink(missing_ok=True)
        return paths

    real_open = builtins.open

    def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(file).endswith("denied.png"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    real_load = image_dataset.load_image
    decoded: list[str] = []

    def load_and_delete_later_file(path: Any, *args: Any, **kwargs: Any) -> Any:
        if not decoded:  # the run has started: remove a file it has not reached yet
            os.unlink(root / "zz_deleted_mid_run.png")
        decoded.append(os.fsdecode(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "list_images", list_then_delete)
    monkeypatch.setattr(image_dataset, "load_image", load_and_delete_later_file)
    monkeypatch.setattr(builtins, "open", deny)
    out = tmp_path / "results.csv"
    t0 = time.perf_counter()
    rc = main(["predict", "--model", str(tiny_model_path), "--images", str(root), "--output", str(out),
               "--quiet", "--device", "cpu", "--batch-size", "4"])
    elapsed = time.perf_counter() - t0
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 0, err
    assert elapsed < 60
    assert decoded and not decoded[0].endswith("zz_deleted_mid_run.png")

    # Every file of the corpus was listed (nothing vanished), and nothing else was.
    assert sorted(listed) == sorted(expected), set(listed) ^ set(expected)
    rows = _read_csv(out)
    assert len(rows) == len(listed)
    by_path = {r["path"]: r for r in rows}
    assert sorted(by_path) == sorted(listed)

    model = PatchCoreModel.load(tiny_model_path, device="cpu")
    scored = [p for p, e in expected.items() if e.outcome == "scored"]
    want, _ = model.predict([expected[p].rgb for p in scored])
    for path, w in zip(scored, want, strict=True):
        row = by_path[path]
        assert row["error"] == "", (path, row["error"])
        assert row["verdict"] in ("OK", "NG")
        assert math.isclose(float(row["score"]), w, rel_tol=1e-4), (path, row["score"], w)
    for path, e in expected.items():
        if e.outcome == "error":
            row = by_path[path]
            assert row["score"] == "" and row["verdict"] == "", path  # no verdict: the error column says why
            assert e.reason in row["error"], (path, row["error"])
            assert "\n" not in row["error"] and len(row["error"]) < 300, path
    # The bare FIFO named .png is not a file: not listed, and the run did not hang on it.
    assert str(root / "bare_fifo.png") not in by_path

    # The summary line adds up.
    m = re.search(r"(\d+) images, (\d+) NG, (\d+) OK, (\d+) errors", err)
    assert m, err
    n, ng, ok, n_err = map(int, m.groups())
    assert n == len(rows) and ng + ok + n_err == n
    assert n_err == sum(1 for e in expected.values() if e.outcome == "error")
    assert ng == sum(1 for r in rows if r["verdict"] == "NG")


def test_mode_000_file_honestly(tmp_path: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real chmod 000: an error row for ordinary users; root can still read it."""
    from tests_helpers import textured  # type: ignore[import-not-found]

    (tmp_path / "imgs").mkdir()
    p = tmp_path / "imgs" / "locked.png"
    Image.fromarray(textured(np.random.default_rng(1))).save(p)
    os.chmod(p, 0)
    out = tmp_path / "r.csv"
    assert main(["predict", "--model", str(tiny_model_path), "--images", str(tmp_path / "imgs"),
                 "--output", str(out), "--quiet", "--device", "cpu"]) == 0
    (row,) = _read_csv(out)
    if IS_ROOT:
        assert row["error"] == "" and row["score"] != ""
    else:
        assert row["error"] == "permission denied" and row["verdict"] == ""


def test_non_utf8_name_to_strict_stdout(tmp_path: Path, tiny_model_path: Path,
                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    name = os.fsencode(folder) + b"/caf\xe9.png"
    Image.new("RGB", (70, 70), (120, 120, 120)).save(os.fsdecode(name), "PNG")
    # capsys' stream encodes strictly, like a UTF-8 terminal: the name's raw bytes must
    # come out unchanged (as the file system holds them), and the run must not abort.
    rc = main(["predict", "--model", str(tiny_model_path), "--images", str(folder), "--quiet", "--device", "cpu"])
    out = capsysbinary.readouterr().out
    assert rc == 0
    assert name in out


# =========================================================================== disk full


@pytest.mark.parametrize("where", ["fsync", "write"])
def test_disk_full_while_saving_a_model(where: str, image_dirs: dict[str, Path], tiny_model_path: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui.core import modelfile

    out_dir = tmp_path / "models"
    out_dir.mkdir()
    target = out_dir / "line3.patchcore"
    previous = tiny_model_path.read_bytes()
    target.write_bytes(previous)

    def no_space(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "fsync":
        monkeypatch.setattr(modelfile.os, "fsync", no_space)
    else:
        real_fdopen = os.fdopen

        class HalfWriter:
            """Writes half of what it is given, then the disk is full."""

            def __init__(self, fh: Any) -> None:
                self.fh = fh

            def __enter__(self) -> HalfWriter:
                return self

            def __exit__(self, *exc: Any) -> None:
                self.fh.close()

            def write(self, data: bytes) -> int:
                self.fh.write(data[: len(data) // 2])
                self.fh.flush()
                no_space()
                return 0

            def __getattr__(self, name: str) -> Any:
                return getattr(self.fh, name)

        def fdopen(fd: int, mode: str = "r", *a: Any, **k: Any) -> Any:
            fh = real_fdopen(fd, mode, *a, **k)
            return HalfWriter(fh) if mode == "wb" else fh  # only atomic_write_bytes' binary write

        monkeypatch.setattr(modelfile.os, "fdopen", fdopen)
    few = tmp_path / "few"  # four images keep the training (which must succeed) short
    few.mkdir()
    for src in sorted(image_dirs["train"].glob("*.png"))[:4]:
        (few / src.name).write_bytes(src.read_bytes())
    rc = main(["train", "--images", str(few), "--output", str(target), *TINY_TRAIN])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "No space left on device" in lines[0] and "line3.patchcore" in lines[0]
    assert target.read_bytes() == previous  # previous model intact
    assert sorted(p.name for p in out_dir.iterdir()) == ["line3.patchcore"]  # no partial temp file
    PatchCoreModel.load(target, device="cpu")


def test_disk_full_while_writing_results(image_dirs: dict[str, Path], tiny_model_path: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from patchcore_gui.core import modelfile

    out = tmp_path / "r.csv"
    out.write_text("old results\n")

    def no_space(*_: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(modelfile.os, "fsync", no_space)
    rc = main(["predict", "--model", str(tiny_model_path), "--images", str(image_dirs["test"]), "--output", str(out),
               "--quiet", "--device", "cpu"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 2
    assert [ln for ln in err.splitlines() if ln.startswith("patchcore: error:")] == [
        "patchcore: error: No space left on device"]
    assert out.read_text() == "old results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


# =========================================================================== model files


@pytest.fixture(scope="module")
def model_parts(tiny_model_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return read_model_file(tiny_model_path)


def _resave(path: Path, parts: tuple[dict[str, torch.Tensor], dict[str, Any]],
            meta_change: Callable[[dict[str, Any]], None] | None = None,
            tensor_change: Callable[[dict[str, torch.Tensor]], None] | None = None) -> Path:
    """A model file with edited metadata/tensors and a valid checksum (past the integrity check)."""
    tensors = dict(parts[0])
    meta = json.loads(json.dumps(parts[1]))
    if meta_change:
        meta_change(meta)
    if tensor_change:
        tensor_change(tensors)
    for key in ("format", "format_version", "tensor_sha256"):
        meta.pop(key, None)
    save_model_file(path, tensors, meta)
    return path


def _raw_file(path: Path, header: dict[str, Any] | bytes, data: bytes = b"", length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def _meta_block() -> dict[str, str]:
    return {"patchcore_gui": json.dumps({"format": "patchcore_gui.model", "format_version": 1})}


def _expect_one_line(path: Path, fragment: str) -> str:
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError) as ei:
        PatchCoreModel.load(path, device="cpu")
    assert time.perf_counter() - t0 < 10
    msg = str(ei.value)
    assert "\n" not in msg and path.name in msg and fragment in msg, msg
    return msg


def _cfg(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        for dotted, value in changes.items():
            node = meta
            *parents, leaf = dotted.split("__")
            for k in parents:
                node = node[k]
            node[leaf] = value
    return change


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"config__crop": "64"}, "crop must be an integer"),
        ({"config__crop": 64.5}, "crop must be an integer"),
        ({"config__crop": -64}, "crop must be an integer"),
        ({"config__crop": 10**9}, "crop must be an integer"),
        ({"config__crop": float("inf")}, "crop must be an integer"),
        ({"config__crop": True}, "crop must be an integer"),
        ({"config__resize": float("nan")}, "resize must be 0 or"),
        ({"config__resize": 10}, "resize must be 0 or"),
        ({"config__k": 0}, "k must be an integer"),
        ({"config__k": 10**6}, "k must be an integer"),
        ({"config__k": -1}, "k must be an integer"),
        ({"config__mean": [float("nan"), 0.5, 0.5]}, "mean must be three finite numbers"),
        ({"config__std": [0.5, 0.0, 0.5]}, "std values must lie in"),
        ({"config__mean": [1e308, 0.5, 0.5]}, "mean values must lie in"),
        ({"threshold__image": [1, 2]}, "threshold.image is not a number"),
        ({"threshold__pixel": "high"}, "threshold.pixel is not a number"),
        ({"threshold": None}, "threshold is not an object"),
        ({"training": [1]}, "training is not an object"),
        ({"calibration": "none"}, "calibration is not an object"),
        ({"config__std": [0.5, "x", 0.5]}, "std must be three finite numbers"),
        ({"config__layers": "blocks.2"}, "config.layers"),
        ({"config__layers": []}, "config.layers"),
        ({"config__backbone": 7}, "config.backbone"),
        ({"config__embedding__mode": "evil"}, "unknown embedding mode"),
        ({"config__embedding__patch_size": 4}, "patch_size must be an odd integer"),
        ({"config__embedding__pretrain_dim": 10**9}, "pretrain_dim must be an integer"),
        ({"config__embedding": [1, 2]}, "config.embedding"),
        ({"config": "wide_resnet50_2"}, "config is not an object"),
        ({"config__backbone": "resnet9000"}, "unknown backbone"),
        ({"bank_rows": float("nan")}, "metadata says bank nan"),
        ({"feature_dim": -3}, "metadata says bank"),
        ({"format_version": -1}, "unsupported format version"),
        ({"format_version": "1"}, "format_version missing"),
    ],
)
def test_hostile_metadata(model_parts: Any, tmp_path: Path, changes: dict[str, Any], fragment: str) -> None:
    path = _resave(tmp_path / "m.patchcore", model_parts, _cfg(**changes))
    if any(k.startswith("format_version") for k in changes):
        # save_model_file stamps the version; put the hostile one back into the header.
        tensors, meta = model_parts
        meta = dict(meta, **changes)
        from safetensors.torch import save

        path.write_bytes(save(tensors, metadata={"patchcore_gui": json.dumps(meta)}))
    _expect_one_line(path, fragment)


def test_missing_config_block(model_parts: Any, tmp_path: Path) -> None:
    path = _resave(tmp_path / "m.patchcore", model_parts, lambda m: m.pop("config"))
    _expect_one_line(path, "does not describe a usable model")


def test_backbone_tensor_with_wrong_shape(model_parts: Any, tmp_path: Path) -> None:
    def change(t: dict[str, torch.Tensor]) -> None:
        t["backbone.conv_stem.weight"] = torch.zeros(3, 3, 3, 3)

    _expect_one_line(_resave(tmp_path / "m.patchcore", model_parts, tensor_change=change), "backbone weights do not fit")


def test_missing_backbone_tensor(model_parts: Any, tmp_path: Path) -> None:
    def change(t: dict[str, torch.Tensor]) -> None:
        del t["backbone.conv_stem.weight"]

    _expect_one_line(_resave(tmp_path / "m.patchcore", model_parts, tensor_change=change), "tensors missing")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda t: t.update({BANK_KEY: t[BANK_KEY].half()}), "not a 2-D float32 tensor"),
        (lambda t: t.update({BANK_KEY: t[BANK_KEY].double()}), "not a 2-D float32 tensor"),
        (lambda t: t.update({BANK_KEY: t[BANK_KEY].to(torch.int32)}), "not a 2-D float32 tensor"),
        (lambda t: t.update({BANK_KEY: t[BANK_KEY].reshape(-1)}), "not a 2-D float32 tensor"),
        (lambda t: t.update({BANK_KEY: t[BANK_KEY][:, :10].contiguous()}), "metadata says bank"),
        (lambda t: t[BANK_KEY].__setitem__((3, 4), float("nan")), "NaN or infinite"),
        (lambda t: t[BANK_KEY].__setitem__((0, 0), float("inf")), "NaN or infinite"),
        (lambda t: t.pop(BANK_KEY), "no memory bank"),
    ],
)
def test_hostile_bank(model_parts: Any, tmp_path: Path, change: Callable[[dict[str, torch.Tensor]], None],
                      fragment: str) -> None:
    def safe_change(t: dict[str, torch.Tensor]) -> None:
        t[BANK_KEY] = t[BANK_KEY].clone()  # never edit the shared fixture's tensor
        change(t)

    _expect_one_line(_resave(tmp_path / "m.patchcore", model_parts, tensor_change=safe_change), fragment)


def test_hostile_headers(tmp_path: Path) -> None:
    meta = _meta_block()
    cases: list[tuple[str, Path, str]] = [
        ("huge shape, small offsets", _raw_file(tmp_path / "a.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}},
            b"\0" * 16), "truncated or corrupt"),
        ("shape product overflows int64", _raw_file(tmp_path / "b.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F32", "shape": [2**62, 2**62, 16], "data_offsets": [0, 0]}}),
            "truncated or corrupt"),
        ("negative shape", _raw_file(tmp_path / "c.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F32", "shape": [-4, 1], "data_offsets": [0, 16]}},
            b"\0" * 16), "invalid shape"),
        ("float shape", _raw_file(tmp_path / "d.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F32", "shape": [4.0, 1], "data_offsets": [0, 16]}},
            b"\0" * 16), "invalid shape"),
        ("negative offsets", _raw_file(tmp_path / "e.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F32", "shape": [4, 1], "data_offsets": [-16, 0]}},
            b"\0" * 16), "truncated or corrupt"),
        ("string offsets", _raw_file(tmp_path / "f.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F32", "shape": [4, 1], "data_offsets": ["0", "16"]}},
            b"\0" * 16), "invalid data offsets"),
        ("overlapping tensors", _raw_file(tmp_path / "g.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F32", "shape": [4, 1], "data_offsets": [0, 16]},
            "backbone.x": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, b"\0" * 24), "overlaps"),
        ("unknown dtype", _raw_file(tmp_path / "h.patchcore", {
            "__metadata__": meta, BANK_KEY: {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}},
            b"\0" * 4), "unsupported dtype"),
        ("header length just below the file size, garbage JSON",
         _raw_file(tmp_path / "i.patchcore", b"\xff{garbage" + b"\x00" * 100 + b"}", b"x"), "not valid JSON"),
        ("header length one past the file size", _raw_file(tmp_path / "j.patchcore", b"{}", length=3),
         "header length field"),
        ("deeply nested JSON header", _raw_file(tmp_path / "k.patchcore", b"[" * 200_000 + b"]" * 200_000),
         "not valid JSON"),
        ("deeply nested metadata", _raw_file(tmp_path / "l.patchcore", {
            "__metadata__": {"patchcore_gui": "[" * 200_000 + "]" * 200_000}}), "not valid JSON"),
        ("metadata not a string", _raw_file(tmp_path / "m.patchcore", {
            "__metadata__": {"patchcore_gui": {"format": "patchcore_gui.model"}}}), "not valid JSON"),
        ("header is a list", _raw_file(tmp_path / "n.patchcore", b"[1, 2, 3]"), "not a JSON object"),
        ("NaN everywhere", _raw_file(tmp_path / "o.patchcore", b'{"__metadata__": NaN, "x": NaN}'),
         "no patchcore_gui metadata"),
    ]
    for name, path, fragment in cases:
        msg = _expect_one_line(path, fragment)
        assert len(msg) < 400, (name, msg)


def test_foreign_files_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    torch_file = tmp_path / "torch_save.patchcore"
    torch.save({"bank": Boom()}, torch_file)  # a zip with a pickle inside
    plain = tmp_path / "plain.patchcore"
    plain.write_bytes(pickle.dumps(Boom()))
    for path in (torch_file, plain):
        _expect_one_line(path, "not a PatchCore model file")
    assert not marker.exists()
