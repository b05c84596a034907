"""Report verdicts at the boundary: a score equal to the threshold is OK (NG only when >).

The run file (``guard_helpers.make_boundary_run``) holds hand-picked float32-exact
scores: good 0.5, 1.25, 2.0; defect 3.0, 4.5; one unreadable image; threshold 2.0.
Each test names exactly which images the report lists and with which verdict.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from guard_helpers import make_boundary_run, report_rows

from patchcore_gui.cli import main
from patchcore_gui.reports.report import write_report


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_boundary_run(tmp_path_factory.mktemp("boundary") / "parts")


def test_html_flags_only_scores_above_the_threshold(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = write_report(run, out)
    # good_c scores exactly the threshold (2.0): OK, so not in the flagged list.
    assert report_rows(out) == [("bad_a.png", "NG"), ("bad_b.png", "NG")]
    assert res.images == 2
    text = out.read_text(encoding="utf-8")
    assert "Flagged images (NG): 2" in text
    assert "<td>2 (TP)</td><td>0 (FN)</td>" in text and "<td>0 (FP)</td><td>3 (TN)</td>" in text


def test_html_all_images_at_a_threshold_between_scores(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.html"
    res = write_report(run, out, include_all=True, threshold=1.25)
    # 1.25 is good_b's own score: good_b OK, good_c (2.0) and both defects NG.
    assert report_rows(out) == [("good_a.png", "OK"), ("good_b.png", "OK"), ("good_c.png", "NG"),
                           ("bad_a.png", "NG"), ("bad_b.png", "NG"), ("broken.png", "error")]
    assert res.images == 6
    assert "given for this report" in out.read_text(encoding="utf-8").lower()


def test_csv_verdicts_at_the_threshold(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert main(["report", str(run), "--output", str(out), "--quiet"]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = [(Path(r["path"]).name, r["verdict"], r["normalized_score"]) for r in csv.DictReader(fh)]
    assert rows == [("good_a.png", "OK", "0.25"), ("good_b.png", "OK", "0.625"), ("good_c.png", "OK", "1"),
                    ("bad_a.png", "NG", "1.5"), ("bad_b.png", "NG", "2.25"), ("broken.png", "error", "")]


def test_pdf_lists_only_the_flagged_images(run: Path, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    out = tmp_path / "r.pdf"
    assert write_report(run, out).images == 2
    doc = pdfium.PdfDocument(str(out))
    try:
        text = " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    finally:
        doc.close()
    assert "bad_a.png" in text and "bad_b.png" in text
    assert "good_c.png" not in text and "good_a.png" not in text
