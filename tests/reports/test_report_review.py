"""Reports with a review band: REVIEW counted and listed apart from NG, the band on the histogram.

The run is ``guard_helpers.make_boundary_run`` (good 0.5, 1.25, 2.0; defect 3.0, 4.5;
one unreadable) with its threshold moved to 3.0 and the band starting at 1.25: good_b
sits on the band's start (OK), bad_a on the threshold (REVIEW), good_c inside (REVIEW).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from guard_helpers import make_boundary_run, report_rows

from patchcore_gui.core.run_file import RunFile
from patchcore_gui.reports import render
from patchcore_gui.reports.report import write_report

BAND_RGB = render.BAND_RGB


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_boundary_run(tmp_path_factory.mktemp("review") / "parts")
    with RunFile.open(path) as st:
        st.set_threshold(3.0, "review test")
        st.set_threshold(1.25, "review test", kind="review")
    return path


def test_html_lists_ng_then_review(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = write_report(run, out)
    assert report_rows(out) == [("bad_b.png", "NG"), ("good_c.png", "REVIEW"), ("bad_a.png", "REVIEW")]
    assert res.images == 3
    text = out.read_text(encoding="utf-8")
    assert "Flagged images (NG): 1" in text and "Sent to review (REVIEW): 2" in text
    assert "<div class='tile rev'><b>2</b>REVIEW</div>" in text
    assert "<div class='tile ok'><b>2</b>OK</div>" in text  # good_a and good_b (on the band's start)
    # Counts at the threshold stay: bad_a (3.0) is not NG; the REVIEW column says who a person checks.
    assert "<td>1 (TP)</td><td>1 (FN)</td><td>1</td>" in text
    assert "<td>0 (FP)</td><td>3 (TN)</td><td>1</td>" in text
    assert "Review band: REVIEW when 1.25 &lt; score &lt;= 3" in text


def test_html_without_a_band_has_no_review_section(tmp_path: Path) -> None:
    run = make_boundary_run(tmp_path / "parts")
    out = tmp_path / "r.html"
    write_report(run, out)
    body = out.read_text(encoding="utf-8").split("</style>", 1)[1]  # the style sheet names every badge
    assert "REVIEW" not in body and "of which" not in body and "Review band" not in body


def test_all_images_show_review_badges_once(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.html"
    res = write_report(run, out, include_all=True)
    assert report_rows(out) == [("good_a.png", "OK"), ("good_b.png", "OK"), ("good_c.png", "REVIEW"),
                                ("bad_a.png", "REVIEW"), ("bad_b.png", "NG"), ("broken.png", "error")]
    assert res.images == 6 and "Sent to review" not in out.read_text(encoding="utf-8")


def test_csv_and_pdf(run: Path, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    out = tmp_path / "r.csv"
    write_report(run, out)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = [(Path(r["path"]).name, r["verdict"]) for r in csv.DictReader(fh)]
    assert rows == [("good_a.png", "OK"), ("good_b.png", "OK"), ("good_c.png", "REVIEW"), ("bad_a.png", "REVIEW"),
                    ("bad_b.png", "NG"), ("broken.png", "error")]
    pdf = tmp_path / "r.pdf"
    assert write_report(run, pdf).images == 3
    doc = pdfium.PdfDocument(str(pdf))
    try:
        text = " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    finally:
        doc.close()
    assert "Sent to review (REVIEW): 2" in text and "of which REVIEW" in text
    assert text.index("bad_b.png") < text.index("good_c.png") < text.index("bad_a.png")
    assert "good_a.png" not in text


def test_histogram_shades_the_band_between_its_lines() -> None:
    scores = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0], dtype=np.float32)
    plain = np.asarray(render.histogram_image(scores, 3.0))
    shaded = np.asarray(render.histogram_image(scores, 3.0, review_from=1.25))
    assert not (plain == BAND_RGB).all(axis=2).any()
    band = (shaded == BAND_RGB).all(axis=2)
    cols = np.flatnonzero(band.any(axis=0))
    # Same axis both ways (1.25 is inside the scores' range): the band spans 1.25 .. 3.0 of it.
    width, left, right = 1200, 70, 20
    lo, hi = 0.5 - 0.03 * 3.5, 4.0 + 0.03 * 3.5
    x = lambda v: left + (v - lo) / (hi - lo) * (width - left - right)  # noqa: E731
    assert abs(cols.min() - x(1.25)) <= 3 and abs(cols.max() - x(3.0)) <= 3
    # An empty band (start above the threshold) shades nothing.
    assert not (np.asarray(render.histogram_image(scores, 1.0, review_from=2.0)) == BAND_RGB).all(axis=2).any()
