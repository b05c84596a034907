"""The PDF report, laid out with fpdf2 (pure Python): an A4 quality record.

Page 1: title, date, operator; verdict counts; threshold and how it was set; the
confusion matrix and AUROC / precision / recall when ground truth exists; the score
histogram with the threshold line; model and run facts. Then a table of the reported
images (original and heatmap thumbnails, file, score, verdict as a word on a coloured
chip, ground truth, operator verdict), its header repeated on every page, and a footer
with the page number. Thumbnails are embedded as the JPEG bytes rendered once per image.

Text uses DejaVu Sans when the system has it (any file name prints); otherwise the PDF
core fonts, with characters outside Latin-1 shown as "?".
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from . import render
from .context import Progress, ReportContext, ReportItem, when
from .report_evidence import add_evidence_pdf
from .thumbnails import histogram_png, iter_rendered

NAVY = (31, 58, 95)
GREY = (82, 96, 109)
LIGHT = (241, 244, 247)
RULE = (213, 221, 229)
VERDICT_RGB = {"OK": render.OK_RGB, "NG": render.NG_RGB, "REVIEW": render.REVIEW_RGB}

_FONT_DIRS = (str(Path(__file__).resolve().parents[2] / "resources" / "fonts"), "/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF",
              "/usr/local/share/fonts", "/Library/Fonts", str(Path.home() / ".fonts"), "C:/Windows/Fonts")


def _find_font(name: str) -> str | None:
    for d in _FONT_DIRS:
        p = Path(d) / name
        if p.is_file():
            return str(p)
    return None


class _Doc(FPDF):
    """FPDF with our footer and the fonts chosen once."""

    def __init__(self, ctx: ReportContext) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.ctx = ctx
        self.set_margins(14, 14, 14)
        self.set_auto_page_break(True, margin=16)
        regular, bold, mono = (_find_font(n) for n in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf"))
        self.unicode = bool(regular and bold)
        if self.unicode:
            self.add_font("Sans", "", regular)
            self.add_font("Sans", "B", bold)
            self.sans = "Sans"
            if mono:
                self.add_font("Mono", "", mono)
            self.mono = "Mono" if mono else "Sans"
        else:
            self.sans, self.mono = "Helvetica", "Courier"
        self.table_header: Any = None

    def t(self, text: str) -> str:
        """Text the current fonts can print."""
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-11)
        self.set_draw_color(*RULE)
        self.line(self.l_margin, self.get_y() - 1, self.w - self.r_margin, self.get_y() - 1)
        self.set_font(self.sans, "", 7.5)
        self.set_text_color(*GREY)
        left = f"PatchCore Inspector · {self.ctx.run_path.name} · {self.ctx.created}"
        self.cell(0, 5, self.t(left), align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"page {self.page_no()} of {{nb}}", align="R")

    def header(self) -> None:
        if self.page_no() > 1 and self.table_header is not None:
            self.table_header()


def _fmt(v: float, spec: str = ".4g") -> str:
    return format(v, spec) if math.isfinite(v) else "-"


def _h2(pdf: _Doc, text: str) -> None:
    pdf.ln(3)
    pdf.set_font(pdf.sans, "B", 11)
    pdf.set_text_color(*NAVY)
    pdf.cell(0, 6, pdf.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    pdf.set_text_color(0, 0, 0)


def _facts(pdf: _Doc, rows: list[tuple[str, str]], x: float, width: float, key_w: float = 30) -> float:
    """Label/value rows in a column starting at x; returns the y below them."""
    for k, v in rows:
        pdf.set_x(x)
        pdf.set_font(pdf.sans, "", 8)
        pdf.set_text_color(*GREY)
        pdf.cell(key_w, 4.4, pdf.t(k))
        pdf.set_text_color(20, 30, 40)
        mono = k == "SHA-256"
        pdf.set_font(pdf.mono if mono else pdf.sans, "", 7 if mono else 8)
        # Words wrap at spaces; a long path or hash (one "word") wraps at any character.
        wrap = "CHAR" if mono or max((pdf.get_string_width(w) for w in v.split()), default=0) > width - key_w \
            else "WORD"
        pdf.multi_cell(width - key_w, 4.4, pdf.t(v), wrapmode=wrap, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return pdf.get_y()


def _chip(pdf: _Doc, x: float, y: float, word: str, w: float = 15, h: float = 5.5) -> None:
    """A verdict as a word on a coloured chip (grey for error / other)."""
    pdf.set_fill_color(*VERDICT_RGB.get(word, render.ERROR_RGB))
    pdf.rect(x, y, w, h, style="F", round_corners=True, corner_radius=1.4)
    pdf.set_xy(x, y)
    pdf.set_text_color(255, 255, 255)
    pdf.set_font(pdf.sans, "B", 8 if len(word) <= 5 else 6.5)
    pdf.cell(w, h, pdf.t(word), align="C")
    pdf.set_text_color(0, 0, 0)


def _first_page(pdf: _Doc, ctx: ReportContext) -> None:
    """Page one: title, result counts, threshold, quality against ground truth, scores, model and run."""
    pdf.add_page()
    _title(pdf, ctx)
    _result(pdf, ctx)
    _threshold(pdf, ctx)
    _quality(pdf, ctx)
    _h2(pdf, "Score distribution")
    pdf.image(io.BytesIO(histogram_png(ctx)), x=pdf.l_margin, w=pdf.epw, h=pdf.epw * 420 / 1200)
    pdf.ln(1)
    _h2(pdf, "Score drift")
    pdf.set_font(pdf.sans, "B" if ctx.drift.shifted else "", 8)
    pdf.multi_cell(0, 4.2, pdf.t(ctx.drift_line), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _h2(pdf, "Model and run")
    half = (pdf.epw - 6) / 2
    y0 = pdf.get_y()
    y1 = _facts(pdf, ctx.facts_model(), pdf.l_margin, half, key_w=27)
    pdf.set_y(y0)
    y2 = _facts(pdf, ctx.facts_run(), pdf.l_margin + half + 6, half, key_w=22)
    pdf.set_y(max(y1, y2))


def _title(pdf: _Doc, ctx: ReportContext) -> None:
    """The navy band, the report title, who and when, and the maps note when there is one."""
    pdf.set_fill_color(*NAVY)
    pdf.rect(0, 0, pdf.w, 4, style="F")
    pdf.set_y(11)
    pdf.set_font(pdf.sans, "B", 18)
    pdf.set_text_color(*NAVY)
    pdf.cell(0, 9, pdf.t(ctx.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.sans, "", 9)
    pdf.set_text_color(*GREY)
    line = f"Created {ctx.created}" + (f"   ·   Operator: {ctx.operator}" if ctx.operator else "")
    pdf.cell(0, 5, pdf.t(line + f"   ·   Run file {ctx.run_path.name}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if ctx.maps_note:
        pdf.ln(2)
        pdf.set_fill_color(255, 244, 229)
        pdf.set_text_color(120, 60, 0)
        pdf.multi_cell(0, 5, pdf.t(ctx.maps_note), fill=True, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _result(pdf: _Doc, ctx: ReportContext) -> None:
    """The "Result" section: one tile per count (images, OK, NG, errors, not scored) and the review line."""
    _h2(pdf, "Result")
    c = ctx.counts
    tiles = [("images", c["total"], NAVY), ("OK", c["OK"], render.OK_RGB), ("NG", c["NG"], render.NG_RGB),
             ("errors", c["error"], render.ERROR_RGB)]
    if ctx.has_band:
        tiles.insert(2, ("REVIEW", c["REVIEW"], render.REVIEW_RGB))
    if c["not scored"]:
        tiles.append(("not scored", c["not scored"], render.ERROR_RGB))
    y, tw = pdf.get_y() + 1, 30
    for k, (label, n, rgb) in enumerate(tiles):
        x = pdf.l_margin + k * (tw + 4)
        pdf.set_draw_color(*RULE)
        pdf.rect(x, y, tw, 14, style="D", round_corners=True, corner_radius=1.5)
        pdf.set_fill_color(*rgb)
        pdf.rect(x, y, 1.6, 14, style="F")
        pdf.set_xy(x + 3, y + 1)
        pdf.set_font(pdf.sans, "B", 14)
        pdf.set_text_color(*rgb)
        pdf.cell(tw - 4, 7, str(n))
        pdf.set_xy(x + 3, y + 8)
        pdf.set_font(pdf.sans, "", 8)
        pdf.set_text_color(*GREY)
        pdf.cell(tw - 4, 4.5, label)
    pdf.set_y(y + 16)
    pdf.set_font(pdf.sans, "", 8)
    pdf.set_text_color(*GREY)
    pdf.multi_cell(0, 4.2, pdf.t(ctx.review_line), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _threshold(pdf: _Doc, ctx: ReportContext) -> None:
    """The threshold in force, how it was chosen, the pixel threshold and the last threshold changes."""
    pdf.ln(1)
    pdf.set_font(pdf.sans, "B", 9)
    pdf.set_text_color(20, 30, 40)
    pdf.cell(0, 5, pdf.t(f"Threshold {_fmt(ctx.threshold, '.6g')}  (NG when the raw score is above it)"),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.sans, "", 8)
    pdf.set_text_color(*GREY)
    pdf.multi_cell(0, 4.2, pdf.t(ctx.threshold_how), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if ctx.has_band:
        pdf.multi_cell(0, 4.2, pdf.t(ctx.band_line), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if math.isfinite(ctx.pixel_threshold):
        pdf.multi_cell(0, 4.2, pdf.t(f"Pixel threshold {_fmt(ctx.pixel_threshold, '.6g')}: heatmap contour and "
                                     "colour-scale anchor."), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if ctx.threshold_log:
        pdf.ln(1)
        pdf.set_font(pdf.sans, "B", 8)
        pdf.cell(0, 4.4, "Threshold changes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(pdf.sans, "", 8)
        shown = ctx.threshold_log[-6:]
        if len(ctx.threshold_log) > len(shown):
            pdf.cell(0, 4.2, f"({len(ctx.threshold_log) - len(shown)} earlier changes not shown)",
                     new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for ch in shown:
            pdf.multi_cell(0, 4.2, pdf.t(f"{when(ch.time)}: {ch.kind} {_fmt(ch.old, '.6g')} -> {_fmt(ch.new, '.6g')}"
                                         + (f"  ({ch.note})" if ch.note else "")),
                           align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _quality(pdf: _Doc, ctx: ReportContext) -> None:
    """The "Against ground truth" section (confusion matrix and scores) when the run has labels."""
    if ctx.quality is None:
        return
    q, cm = ctx.quality, ctx.quality["confusion"]
    _h2(pdf, f"Against ground truth ({q['labelled']} labelled images)")
    x0, y0, cw, rh = pdf.l_margin, pdf.get_y(), 27, 6
    cells = [["", "predicted NG", "predicted OK"], ["defect", f"{cm['tp']}  TP", f"{cm['fn']}  FN"],
             ["good", f"{cm['fp']}  FP", f"{cm['tn']}  TN"]]
    sent = q.get("review")
    if sent:  # the band leaves the counts at the threshold; REVIEW images are among the OK ones
        for row, text in zip(cells, ("of which REVIEW", str(sent["defect"]), str(sent["good"])), strict=True):
            row.append(text)
    pdf.set_draw_color(*RULE)
    for r, row in enumerate(cells):
        for k, text in enumerate(row):
            head = r == 0 or k == 0
            pdf.set_fill_color(*(LIGHT if head else (255, 255, 255)))
            pdf.set_xy(x0 + k * cw, y0 + r * rh)
            pdf.set_font(pdf.sans, "B" if head else "", 8)
            pdf.cell(cw, rh, text, border=1, align="C", fill=True)
    pdf.set_y(y0)
    _facts(pdf, [("AUROC", _fmt(q["auroc"], ".4f")), ("Precision", _fmt(q["precision"], ".3f")),
                 ("Recall", _fmt(q["recall"], ".3f")), ("F1", _fmt(q["f1"], ".3f"))],
           x0 + len(cells[0]) * cw + 12, 60, key_w=22)
    pdf.set_y(max(pdf.get_y(), y0 + 3 * rh) + 1)


def _colorbar(pdf: _Doc, width: float = 80.0) -> None:
    """The heatmap colour ramp with its three anchors labelled in the PDF's own font."""
    x, y = pdf.l_margin, pdf.get_y() + 1
    ramp = render.colorbar_image(width=400, height=12, labels=False)
    pdf.image(io.BytesIO(render.png_bytes(ramp)), x=x, y=y, w=width, h=3.5)
    pdf.set_font(pdf.sans, "", 6.5)
    pdf.set_text_color(*GREY)
    for frac, text in ((0.0, "0"), (1.0 / render.SCALE_FACTOR, "pixel threshold"),
                       (1.0, f"{render.SCALE_FACTOR:g} x threshold")):
        tw = pdf.get_string_width(text)
        pdf.set_xy(min(max(x + frac * width - tw / 2, x), x + width - tw) - 1, y + 4)
        pdf.cell(tw + 2, 3, text)
    pdf.set_text_color(0, 0, 0)
    pdf.set_y(y + 9)


COLS = (("#", 8), ("Original", 33), ("Heatmap", 33), ("File", 46), ("Score", 19), ("Verdict", 18),
        ("Truth", 16), ("Operator", 17))
ROW_H = 33.0


def _widths(pdf: _Doc) -> list[float]:
    total = sum(w for _, w in COLS)
    return [w * pdf.epw / total for _, w in COLS]


def _table_header(pdf: _Doc) -> None:
    pdf.set_font(pdf.sans, "B", 8)
    pdf.set_fill_color(*LIGHT)
    pdf.set_text_color(*NAVY)
    pdf.set_x(pdf.l_margin)
    for (name, _), w in zip(COLS, _widths(pdf), strict=True):
        pdf.cell(w, 6, name, fill=True)
    pdf.ln(6)
    pdf.set_text_color(0, 0, 0)


def _image_rows(pdf: _Doc, ctx: ReportContext, items: list[ReportItem], step: Callable[[], None],
                cancel: threading.Event | None) -> None:
    """One table row per item: thumbnails, file, score, verdict chip, truth, operator."""
    widths = _widths(pdf)
    xs = [pdf.l_margin + sum(widths[:k]) for k in range(len(widths))]
    for r in iter_rendered(ctx, cancel=cancel, items=items):
        it = r.item
        if pdf.get_y() + ROW_H > pdf.page_break_trigger:
            pdf.add_page()  # header() repeats the table header
        y = pdf.get_y()
        pdf.set_font(pdf.sans, "", 8)
        pdf.set_xy(xs[0], y + 1)
        pdf.cell(widths[0], 5, str(it.index + 1))
        for k, data in ((1, r.original), (2, r.overlay)):
            if data is not None:
                pdf.image(io.BytesIO(data), x=xs[k] + 1, y=y + 1, w=widths[k] - 3, h=ROW_H - 2, keep_aspect_ratio=True)
            else:
                pdf.set_xy(xs[k] + 1, y + 2)
                pdf.set_font(pdf.sans, "", 6.5)
                pdf.set_text_color(*GREY)
                pdf.multi_cell(widths[k] - 3, 3.2, pdf.t(r.note or "-"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.set_text_color(0, 0, 0)
        pdf.set_font(pdf.mono, "", 7)
        lines = pdf.multi_cell(widths[3] - 2, 3.4, pdf.t(it.name), wrapmode="CHAR", dry_run=True, output="LINES")
        for j, line in enumerate(lines[:5]):
            pdf.set_xy(xs[3], y + 1 + j * 3.4)
            pdf.cell(widths[3] - 2, 3.4, line + ("…" if j == 4 and len(lines) > 5 and pdf.unicode else ""))
        if it.error:
            pdf.set_xy(xs[3], y + 1 + min(len(lines), 5) * 3.4 + 1)
            pdf.set_font(pdf.sans, "", 6.5)
            pdf.set_text_color(*GREY)
            pdf.multi_cell(widths[3] - 2, 3.2, pdf.t(it.error[:160]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_text_color(0, 0, 0)
        pdf.set_font(pdf.sans, "B", 8.5)
        pdf.set_xy(xs[4], y + 1)
        pdf.cell(widths[4], 5, _fmt(it.score, ".5g"))
        pdf.set_font(pdf.sans, "", 6.5)
        pdf.set_text_color(*GREY)
        pdf.set_xy(xs[4], y + 6)
        pdf.cell(widths[4], 4, f"{_fmt(it.normalized, '.3f')} x thr")
        pdf.set_text_color(0, 0, 0)
        _chip(pdf, xs[5], y + 1, it.verdict, w=min(widths[5] - 2, 17))
        pdf.set_font(pdf.sans, "", 7)
        pdf.set_xy(xs[6], y + 1)
        pdf.multi_cell(widths[6], 3.4, pdf.t(it.truth), wrapmode="CHAR", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if it.operator:
            _chip(pdf, xs[7], y + 1, it.operator, w=min(widths[7] - 1, 12))
            if it.operator_by:
                pdf.set_font(pdf.sans, "", 6.5)
                pdf.set_text_color(*GREY)
                pdf.set_xy(xs[7], y + 7.5)
                pdf.multi_cell(widths[7], 3.2, pdf.t(it.operator_by[:40]), align="L",
                               new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.set_text_color(0, 0, 0)
        pdf.set_draw_color(*RULE)
        pdf.line(pdf.l_margin, y + ROW_H, pdf.w - pdf.r_margin, y + ROW_H)
        pdf.set_y(y + ROW_H)
        step()


def write_pdf(ctx: ReportContext, fh: IO[bytes], *, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> int:
    """Write the PDF report to the binary file ``fh``; returns the number of images shown.

    The flagged (NG) images, then those sent to review (REVIEW) in a table of their own.
    """
    pdf = _Doc(ctx)
    pdf.set_title(ctx.title)
    pdf.set_creator("PatchCore Inspector")
    if ctx.operator:
        pdf.set_author(pdf.t(ctx.operator))
    _first_page(pdf, ctx)
    pdf.add_page()
    what = "All images" if ctx.include_all else "Flagged images (NG)"
    _h2(pdf, f"{what}: {len(ctx.selected)}")
    review = [] if ctx.include_all else ctx.review_items  # with --all they are in the list above
    if ctx.model is not None and (ctx.selected or review):
        pdf.set_font(pdf.sans, "", 7.5)
        pdf.set_text_color(*GREY)
        pdf.multi_cell(0, 4, pdf.t(
            f"Heatmap colours are absolute: 0 to {render.SCALE_FACTOR:g} x the pixel threshold "
            f"({_fmt(ctx.pixel_threshold)}), faint below it; white contour where the map exceeds the pixel "
            "threshold."), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        _colorbar(pdf)
    if ctx.selected:
        _table_header(pdf)
        pdf.table_header = lambda: _table_header(pdf)
    total, done = len(ctx.selected) + len(review), [0]

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    _image_rows(pdf, ctx, ctx.selected, step, cancel)
    if ctx.has_band and not ctx.include_all:
        pdf.table_header = None
        if ctx.selected:
            pdf.ln(2)
        _h2(pdf, f"Sent to review (REVIEW): {len(review)}")
        if review:
            _table_header(pdf)
            pdf.table_header = lambda: _table_header(pdf)
            _image_rows(pdf, ctx, review, step, cancel)
    pdf.table_header = None
    shown = {it.index for it in ctx.selected}
    errors = [it for it in ctx.items if it.verdict == "error" and it.index not in shown]
    if errors:
        _h2(pdf, f"Images that could not be scored: {len(errors)}")
        _facts(pdf, [(it.name, it.error) for it in errors], pdf.l_margin, pdf.epw, key_w=pdf.epw * 0.45)
    add_evidence_pdf(pdf, ctx, cancel)  # nothing unless asked for (report --evidence)
    fh.write(bytes(pdf.output()))
    return total
