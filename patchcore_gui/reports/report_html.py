"""The HTML report: one self-contained file (images as base64 data URIs), print-friendly.

Written in a streaming way: the summary first, then one table row per reported image as
its thumbnails are rendered, so a run of thousands of images never sits in memory.
Verdicts are words (OK / NG / error) as well as colours, legible in grey-scale print.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections.abc import Callable
from html import escape
from typing import IO

from . import render
from .context import Progress, ReportContext, ReportItem, when
from .report_evidence import evidence_html
from .thumbnails import histogram_png, iter_rendered

CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font: 13px/1.45 "Segoe UI", "Helvetica Neue", Arial, sans-serif; color: #1f2933; margin: 0 auto;
       max-width: 1040px; padding: 24px; background: #fff; }
header { border-bottom: 3px solid #1f3a5f; padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 24px; margin: 0 0 4px; color: #1f3a5f; }
h2 { font-size: 16px; color: #1f3a5f; border-bottom: 1px solid #d5dde5; padding-bottom: 4px; margin: 26px 0 10px; }
.sub { color: #52606d; }
.note { background: #fff4e5; border-left: 4px solid #e67e22; padding: 8px 12px; margin: 12px 0; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
table { border-collapse: collapse; width: 100%; }
table.facts td { padding: 3px 8px 3px 0; vertical-align: top; }
table.facts td:first-child { color: #52606d; width: 34%; white-space: nowrap; }
td.mono, .mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 11.5px; word-break: break-all; }
.tiles { display: flex; gap: 10px; flex-wrap: wrap; }
.tile { border: 1px solid #d5dde5; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.tile b { display: block; font-size: 22px; }
.tile.ok b { color: #2e7d32; } .tile.ng b { color: #c62828; } .tile.err b { color: #616161; }
.tile.rev b { color: #7c4dc8; }
table.cm { width: auto; } table.cm td, table.cm th { border: 1px solid #c5ced8; padding: 4px 12px; text-align: center; }
table.cm th { background: #f1f4f7; font-weight: 600; }
table.images th { text-align: left; background: #f1f4f7; padding: 6px; border-bottom: 2px solid #c5ced8; font-weight: 600; }
table.images td { padding: 6px; border-bottom: 1px solid #e4e9ee; vertical-align: middle; }
table.images tr { page-break-inside: avoid; break-inside: avoid; }
table.images img { display: block; max-width: 160px; max-height: 160px; border: 1px solid #c5ced8; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 700; color: #fff; font-size: 12px; }
.badge.OK { background: #2e7d32; } .badge.NG { background: #c62828; } .badge.REVIEW { background: #7c4dc8; }
.badge.error, .badge.other { background: #757575; }
.small { font-size: 11.5px; color: #52606d; }
img.hist { width: 100%; border: 1px solid #e4e9ee; }
footer { margin-top: 30px; border-top: 1px solid #d5dde5; padding-top: 8px; color: #7b8794; font-size: 11px; }
@media print { body { padding: 0; max-width: none; } h2 { page-break-after: avoid; } }
"""


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _facts(rows: list[tuple[str, str]], mono: tuple[str, ...] = ("SHA-256",)) -> str:
    cells = "".join(
        f"<tr><td>{escape(k)}</td><td{' class=mono' if k in mono else ''}>{escape(v)}</td></tr>" for k, v in rows
    )
    return f"<table class=facts>{cells}</table>"


def _fmt(v: float, spec: str = ".4g") -> str:
    return format(v, spec) if math.isfinite(v) else "–"


def badge(word: str) -> str:
    cls = word if word in ("OK", "REVIEW", "NG", "error") else "other"
    return f"<span class='badge {cls}'>{escape(word)}</span>"


def _head(ctx: ReportContext) -> str:
    c, q = ctx.counts, ctx.quality
    out = io.StringIO()
    w = out.write
    w("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>")
    w(f"<title>{escape(ctx.title)} – {escape(ctx.run_path.name)}</title><style>{CSS}</style></head><body>")
    w(f"<header><h1>{escape(ctx.title)}</h1><div class=sub>Created {escape(ctx.created)}")
    if ctx.operator:
        w(f" &nbsp;·&nbsp; Operator: <b>{escape(ctx.operator)}</b>")
    w(f" &nbsp;·&nbsp; Run file {escape(ctx.run_path.name)}</div></header>")
    if ctx.maps_note:
        w(f"<div class=note>{escape(ctx.maps_note)}</div>")
    w("<h2>Result</h2><div class=tiles>")
    tiles = [("", "total", "images"), ("ok", "OK", "OK"), ("ng", "NG", "NG"), ("err", "error", "errors")]
    if ctx.has_band:
        tiles.insert(2, ("rev", "REVIEW", "REVIEW"))
    for cls, key, label in tiles:
        w(f"<div class='tile {cls}'><b>{c[key]}</b>{label}</div>")
    if c["not scored"]:
        w(f"<div class='tile err'><b>{c['not scored']}</b>not scored</div>")
    w("</div>")
    w(f"<p class=review>{escape(ctx.review_line)}</p>")
    w(f"<p><b>Threshold {escape(_fmt(ctx.threshold, '.6g'))}</b> (NG when the raw score is above it). "
      f"{escape(ctx.threshold_how)}")
    if ctx.has_band:
        w(f"<br>{escape(ctx.band_line)}")
    if math.isfinite(ctx.pixel_threshold):
        w(f"<br>Pixel threshold {escape(_fmt(ctx.pixel_threshold, '.6g'))}: heatmap contour and colour-scale anchor.")
    w("</p>")
    if ctx.threshold_log:
        w("<table class=facts><tr><td>Threshold changes</td><td>")
        w("<br>".join(f"{escape(when(t.time))}: {escape(t.kind)} {_fmt(t.old, '.6g')} → {_fmt(t.new, '.6g')}"
                      + (f" – {escape(t.note)}" if t.note else "") for t in ctx.threshold_log))
        w("</td></tr></table>")
    if q is not None:
        cm = q["confusion"]
        w(f"<h2>Against ground truth ({q['labelled']} labelled images)</h2><div class=grid2><div>")
        w("<table class=cm><tr><th></th><th>predicted NG</th><th>predicted OK</th>"
          + ("<th>of which REVIEW</th>" if q.get("review") else "") + "</tr>"
          f"<tr><th>defect</th><td>{cm['tp']} (TP)</td><td>{cm['fn']} (FN)</td>"
          + (f"<td>{q['review']['defect']}</td>" if q.get("review") else "") + "</tr>"
          f"<tr><th>good</th><td>{cm['fp']} (FP)</td><td>{cm['tn']} (TN)</td>"
          + (f"<td>{q['review']['good']}</td>" if q.get("review") else "") + "</tr></table>")
        if q.get("review"):
            w("<p class=small>Counts at the threshold: a REVIEW image is on the OK side; the last column "
              "says how many of them a person checks.</p>")
        w("</div><div>")
        w(_facts([("AUROC", _fmt(q["auroc"], ".4f")), ("Precision", _fmt(q["precision"], ".3f")),
                  ("Recall", _fmt(q["recall"], ".3f")), ("F1", _fmt(q["f1"], ".3f"))]))
        w("</div></div>")
    w("<h2>Score distribution</h2>")
    w(f"<img class=hist alt='score histogram with threshold line' src='{_uri(histogram_png(ctx), 'image/png')}'>")
    w(f"<h2>Score drift</h2><p{' class=note' if ctx.drift.shifted else ''}>{escape(ctx.drift_line)}</p>")
    w("<div class=grid2><div><h2>Model</h2>" + _facts(ctx.facts_model()) + "</div>")
    w("<div><h2>Run</h2>" + _facts(ctx.facts_run()) + "</div></div>")
    return out.getvalue()


def _image_table(ctx: ReportContext, items: list[ReportItem], put: Callable[[str], None], step: Callable[[], None],
                 cancel: threading.Event | None) -> None:
    """One table row per item (thumbnails, file, score, verdict, truth, operator), streamed."""
    put("<table class=images><tr><th>#</th><th>Original</th><th>Heatmap</th><th>File</th>"
        "<th>Score</th><th>Verdict</th><th>Truth</th><th>Operator</th></tr>")
    for r in iter_rendered(ctx, cancel=cancel, items=items):
        it = r.item
        orig = (f"<img alt='{escape(it.name)}' src='{_uri(r.original, 'image/jpeg')}'>" if r.original
                else f"<span class=small>{escape(r.note)}</span>")
        over = (f"<img alt='heatmap of {escape(it.name)}' src='{_uri(r.overlay, 'image/jpeg')}'>" if r.overlay
                else "<span class=small>–</span>")
        detail = f"<div class=small>{escape(it.error)}</div>" if it.error else ""
        op = badge(it.operator) + (f"<div class=small>{escape(it.operator_by)}</div>" if it.operator_by else "") \
            if it.operator else ""
        put(f"<tr><td>{it.index + 1}</td><td>{orig}</td><td>{over}</td>"
            f"<td class=mono>{escape(it.name)}{detail}</td>"
            f"<td>{_fmt(it.score, '.5g')}<div class=small>{_fmt(it.normalized, '.3f')} × thr</div></td>"
            f"<td>{badge(it.verdict)}</td><td>{escape(it.truth)}</td><td>{op}</td></tr>\n")
        step()
    put("</table>")


def write_html(ctx: ReportContext, fh: IO[bytes], *, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> int:
    """Write the HTML report to the binary file ``fh``; returns the number of images shown.

    The flagged (NG) images first, then those sent to review (REVIEW) in a list of their
    own; with ``include_all`` one list holds every image, REVIEW ones by their badge.
    """
    def put(text: str) -> None:
        fh.write(text.encode("utf-8"))

    review = [] if ctx.include_all else ctx.review_items
    total, done = len(ctx.selected) + len(review), [0]

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    put(_head(ctx))
    what = "All images" if ctx.include_all else "Flagged images (NG)"
    put(f"<h2>{what}: {len(ctx.selected)}</h2>")
    if ctx.model is not None and (ctx.selected or review):
        put(f"<p class=small>Heatmap colours are absolute: 0 to {render.SCALE_FACTOR:g} × the pixel threshold "
            f"({_fmt(ctx.pixel_threshold, '.4g')}); white contour where the anomaly map exceeds the pixel threshold."
            f"<br><img alt='heatmap colour scale' style='width:360px' "
            f"src='{_uri(render.png_bytes(render.colorbar_image()), 'image/png')}'></p>")
    if ctx.selected:
        _image_table(ctx, ctx.selected, put, step, cancel)
    if ctx.has_band and not ctx.include_all:
        put(f"<h2>Sent to review (REVIEW): {len(review)}</h2>")
        if review:
            _image_table(ctx, review, put, step, cancel)
    shown = {it.index for it in ctx.selected}
    errors = [it for it in ctx.items if it.verdict == "error" and it.index not in shown]
    if errors:
        put(f"<h2>Images that could not be scored: {len(errors)}</h2><table class=facts>")
        put("".join(f"<tr><td class=mono>{escape(it.name)}</td><td>{escape(it.error)}</td></tr>" for it in errors))
        put("</table>")
    put(evidence_html(ctx, cancel))  # "" unless asked for (report --evidence)
    put(f"<footer>PatchCore Inspector {escape(str(ctx.meta.get('software', {}).get('patchcore_gui', '')))} · "
        f"{escape(ctx.run_path.name)} · {escape(ctx.created)}</footer></body></html>\n")
    return total
