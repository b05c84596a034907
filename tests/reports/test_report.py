"""Report export: HTML / PDF / CSV from a real run file, atomic writes, and the rendering helpers."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from guard_helpers import report_rows
from PIL import Image
from tests_helpers import textured, with_defect

from patchcore_gui.cli import main
from patchcore_gui.core import heatmap
from patchcore_gui.core.datasets import scan_folder
from patchcore_gui.core.model import PatchCoreModel
from patchcore_gui.core.run_driver import predict_into_run
from patchcore_gui.core.run_file import RunFile
from patchcore_gui.reports import render
from patchcore_gui.reports.report import ReportError, write_report


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A labelled MVTec-like test folder, a tiny real model and a finished run with verdicts."""
    from patchcore_gui.core.engine import TrainConfig, train_model

    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(3)
    for d in ("train", "test/good", "test/red"):
        (root / d).mkdir(parents=True)
    for i in range(8):
        Image.fromarray(textured(rng)).save(root / "train" / f"{i}.png")
    for i in range(4):
        Image.fromarray(textured(rng)).save(root / "test/good" / f"ok_{i}.png")
        Image.fromarray(with_defect(textured(rng), 30 + 8 * i, 40)).save(root / "test/red" / f"défaut_{i}.png")
    (root / "test/good" / "zz_broken.png").write_bytes(b"")
    model = train_model(sorted((root / "train").glob("*.png")),
                        TrainConfig(backbone="efficientnet_lite0", resize=72, crop=64, coreset=0.5, holdout=0.25),
                        device="cpu", batch_size=4)
    model_path = root / "tiny.patchcore"
    model.save(model_path)
    run = root / "run.sqlite"
    predict_into_run(model, scan_folder(root / "test"), run, batch_size=4)
    with RunFile.open(run) as st:
        st.set_operator_verdict(5, "NG", operator="Ana")
        st.set_operator_verdict(0, "OK", operator="Ana")
    return {"root": root, "run": run, "model": model_path}


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.srcs.append(dict(attrs).get("src") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> tuple[list[str], str]:
    p = _Images()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p.srcs, " ".join(p.text)


def _flagged(run: Path, threshold: float | None = None) -> tuple[list[str], list[str]]:
    with RunFile.open(run, readonly=True) as st:
        cols, names = st.columns(), [Path(p).name for p in st.paths()]
        t = st.image_threshold if threshold is None else threshold
    ng = cols["score"] > t
    return [n for n, f in zip(names, ng, strict=True) if f], [n for n, f in zip(names, ng, strict=True) if not f]


def test_html_holds_every_flagged_image(run_file: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(run_file["run"]), "--output", str(out), "--operator", "Ana Q.", "--quiet"]) == 0
    srcs, text = _parse(out)
    flagged, others = _flagged(run_file["run"])
    assert 0 < len(flagged) < 9
    # two thumbnails per flagged image + histogram + colour scale; all embedded
    assert len(srcs) == 2 * len(flagged) + 2
    assert all(s.startswith(("data:image/jpeg;base64,", "data:image/png;base64,")) for s in srcs)
    for name in flagged:
        assert name in text
    for name in others:
        if name != "zz_broken.png":  # listed with the errors
            assert name not in text
    assert "Operator: Ana Q." in text or "Ana Q." in text
    assert "predicted NG" in text and "AUROC" in text  # ground truth exists
    # Operator verdicts are counted (images 0 and 5 were reviewed in the fixture).
    assert "2 of 9 images reviewed (1 confirmed OK, 1 confirmed NG" in " ".join(text.split())
    assert "cannot" in text or "empty file" in text  # the broken image's reason
    assert not [p for p in tmp_path.iterdir() if p.name != "r.html"]


def test_html_all_and_threshold_override(run_file: dict[str, Path], tmp_path: Path) -> None:
    with RunFile.open(run_file["run"], readonly=True) as st:
        scores = st.columns()["score"]
        names = [f"{Path(p).parent.name}/{Path(p).name}" for p in st.paths()]
    # A threshold that is one image's own score, between the others: some rows OK
    # (that image included: NG only when score > threshold), some NG.
    t = float(np.sort(scores[np.isfinite(scores)])[4])
    want = [(n, "error" if np.isnan(s) else ("NG" if s > t else "OK")) for n, s in zip(names, scores, strict=True)]
    assert [v for _, v in want].count("OK") == 5 and [v for _, v in want].count("NG") == 3
    out = tmp_path / "all.html"
    res = write_report(run_file["run"], out, include_all=True, threshold=t)
    srcs, text = _parse(out)
    assert res.images == 9
    assert len(srcs) == 2 * 8 + 2  # 8 scored x 2 (the broken one none), histogram, colour scale
    assert "given for this report" in text.lower()
    assert report_rows(out) == want  # every image, in run order, each with its verdict at t


def test_pdf_first_page_renders(run_file: dict[str, Path], tmp_path: Path) -> None:
    import pypdfium2 as pdfium
    out = tmp_path / "r.pdf"
    assert main(["report", str(run_file["run"]), "--output", str(out), "--operator", "Ana", "--quiet"]) == 0
    doc = pdfium.PdfDocument(str(out))
    try:
        assert len(doc) >= 2
        page = doc[0].render(scale=1.0).to_pil().convert("L")
        arr = np.asarray(page)
        assert arr.shape[0] > 700 and (arr < 200).mean() > 0.02 and arr.std() > 10
        text = doc[0].get_textpage().get_text_range()
        assert "PatchCore inspection report" in text and "Operator: Ana" in text and "Threshold" in text
        listing = doc[1].get_textpage().get_text_range()
        for name in _flagged(run_file["run"])[0][:3]:
            assert name in listing
    finally:
        doc.close()


def test_csv_round_trip(run_file: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert write_report(run_file["run"], out).images == 9
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with RunFile.open(run_file["run"], readonly=True) as st:
        paths, cols, thr, errs = st.paths(), st.columns(), st.image_threshold, st.errors()
    assert [r["path"] for r in rows] == paths
    for i, r in enumerate(rows):
        s = cols["score"][i]
        if np.isnan(s):
            assert r["score"] == "" and r["verdict"] == "error" and r["error"] == errs[i]
        else:
            assert np.float32(float(r["score"])) == s
            assert float(r["normalized_score"]) == pytest.approx(float(s) / thr, rel=1e-6)
            assert r["verdict"] == ("NG" if s > thr else "OK")
        assert r["sha256"] == hashlib.sha256(Path(paths[i]).read_bytes()).hexdigest()
        assert r["ground_truth"] == ("good" if cols["label"][i] == 0 else "defect")
    assert (rows[5]["operator_verdict"], rows[5]["operator"]) == ("NG", "Ana")
    assert rows[0]["operator_verdict"] == "OK" and rows[1]["operator_verdict"] == ""


def test_missing_model_still_reports_without_heatmaps(run_file: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "copy.sqlite"
    shutil.copy(run_file["run"], run)
    moved = tmp_path / "elsewhere.patchcore"
    shutil.move(run_file["model"], moved)
    try:
        res = write_report(run, tmp_path / "r.html")
        srcs, text = _parse(tmp_path / "r.html")
        assert "Heatmaps omitted" in res.note and "Heatmaps omitted" in text
        assert len(srcs) == res.images + 1  # originals + histogram only
        res2 = write_report(run, tmp_path / "r2.html", model_path=moved)  # --model finds the moved file
        assert res2.note == "" and len(_parse(tmp_path / "r2.html")[0]) == 2 * res2.images + 2
    finally:
        shutil.move(moved, run_file["model"])


@pytest.mark.parametrize("where", ["replace", "fsync", "mkstemp"])
@pytest.mark.parametrize("ext", [".pdf", ".html", ".csv"])
def test_failed_write_leaves_no_partial_file(run_file: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], where: str, ext: str) -> None:
    out = tmp_path / f"report{ext}"

    def enospc(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def denied(*a: object, **k: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    if where == "replace":
        monkeypatch.setattr(os, "replace", enospc)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", enospc)
    else:
        monkeypatch.setattr(tempfile, "mkstemp", denied)
    code = main(["report", str(run_file["run"]), "--output", str(out), "--quiet"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2
    assert list(tmp_path.iterdir()) == []  # no report, no temporary file
    reason = os.strerror(errno.EACCES if where == "mkstemp" else errno.ENOSPC)
    assert err[-1] == f"patchcore: error: cannot write {out.name}: {reason}"


def test_failed_overwrite_keeps_old_report(run_file: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r.csv"
    out.write_text("old report\n")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(ReportError, match="No space left on device"):
        write_report(run_file["run"], out)
    assert out.read_text() == "old report\n" and [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_unknown_extension_exit_2(run_file: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run_file["run"]), "--output", str(tmp_path / "r.docx")]) == 2
    assert "unknown report format '.docx'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_map_for_size_matches_map_to_original(run_file: dict[str, Path]) -> None:
    model = PatchCoreModel.load(run_file["model"], device="cpu")
    rng = np.random.default_rng(0)
    amap = rng.random((64, 64)).astype(np.float32)
    for w, h in ((104, 96), (50, 130), (64, 64)):
        np.testing.assert_allclose(render.map_for_size(model.preprocess, amap, w, h, w, h),
                                   model.map_to_original(amap, w, h), rtol=1e-6, atol=1e-6, equal_nan=True)


def test_overlay_colours_are_absolute_and_contoured() -> None:
    base = Image.new("RGB", (40, 20), (128, 128, 128))
    low = np.full((20, 40), 0.2, dtype=np.float32)
    peak = low.copy()
    peak[5:15, 25:35] = 3.0
    a = np.asarray(render.overlay_heatmap(base, low, pixel_threshold=1.0))
    b = np.asarray(render.overlay_heatmap(base, peak, pixel_threshold=1.0))
    # Same map value -> same colour, whatever else the image holds (no per-image min-max).
    assert np.array_equal(a[2, 2], b[2, 2])
    # The window's rule (core/heatmap.py): every pixel in the crop is tinted at the window's
    # opacity, 0.55, in inferno on the scale 0 .. 2 x threshold: 0.2 -> index int(0.2 / 2 x 255) = 25.
    lut = heatmap.lookup_table("inferno")
    assert render.OVERLAY_ALPHA == 0.55
    np.testing.assert_array_equal(a[2, 2], np.floor(128 * 0.45 + lut[25] * 0.55 + 0.5).astype(np.uint8))
    assert tuple(b[5, 28]) == render.CONTOUR_RGB and tuple(b[10, 30]) != render.CONTOUR_RGB
    assert not (a == np.array(render.CONTOUR_RGB, dtype=np.uint8)).all(axis=2).any()  # nothing above threshold


def test_histogram_draws_threshold_line() -> None:
    scores = np.concatenate([np.linspace(1, 2, 50), np.linspace(5, 6, 10), [np.nan]])
    labels = np.array([0] * 50 + [1] * 10 + [-1])
    img = np.asarray(render.histogram_image(scores, 3.5, labels, width=600, height=300))
    red = np.all(img == render.NG_RGB, axis=2)
    cols = np.flatnonzero(red[150])
    assert cols.size and 600 * 0.3 < cols.mean() < 600 * 0.6  # the line sits between the two groups
