"""Evidence as a picture: the query region beside its nearest normal region, with captions.

:func:`evidence_image` lays out one :class:`~patchcore_gui.core.evidence.Evidence`
(``patchcore explain --output``, ``report --evidence``, the window's copy):

* the query's inspected area (the preprocessed crop) with the patch's receptive-field box;
* the query region magnified (the box with one box of context around it);
* the nearest normal region, magnified the same way, from the model file's picture of
  that training image, and that picture with its box;
* captions: file names, grid positions, the patch score against the image threshold,
  the map value against the pixel threshold, and the next nearest training images.

:func:`evidence_html` and :func:`add_evidence_pdf` are the report's evidence section
(one block per flagged image). Qt-free: PIL only.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections.abc import Iterator
from html import escape
from typing import Any

from PIL import Image, ImageDraw

from ..core.evidence import Box, Evidence, EvidenceFinder, NormalPatch
from .render import font, png_bytes

#: Side of each of the four panels, in pixels.
PANEL = 240
#: Box colours: magenta for the query patch (apart from the heatmap's colours, the NG-red region
#: outline and the cyan ground truth), green for its nearest normal patch.
QUERY_RGB = (224, 64, 251)
NORMAL_RGB = (46, 204, 113)
TEXT_RGB = (31, 41, 51)
GREY_RGB = (110, 120, 130)


def _num(v: float, spec: str = ".4g") -> str:
    return format(v, spec) if math.isfinite(v) else "-"


def compare_line(value: float, threshold: float, what: str) -> str:
    """'0.82 x the image threshold (12.3 vs 15.0)' or 'no image threshold'."""
    if not math.isfinite(threshold) or threshold <= 0:
        return f"{_num(value)} (no {what} threshold)"
    return f"{_num(value)} = {value / threshold:.2f} x the {what} threshold {_num(threshold)}"


def _context_box(box: Box, side: float) -> Box:
    """``box`` grown by one box on each side (context), clipped to a ``side`` square."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    return (max(0.0, x0 - bw), max(0.0, y0 - bh), min(side, x1 + bw), min(side, y1 + bh))


def _magnified(img: Image.Image, box: Box, side: int, colour: tuple[int, int, int]) -> Image.Image:
    """The region around ``box`` (in ``img``'s pixels) scaled to ``side`` px, the box drawn on it."""
    cx0, cy0, cx1, cy1 = _context_box(box, float(img.width))
    region = img.crop((int(cx0), int(cy0), max(int(cx0) + 1, math.ceil(cx1)), max(int(cy0) + 1, math.ceil(cy1))))
    sx, sy = side / region.width, side / region.height
    out = region.resize((side, side), Image.Resampling.NEAREST if sx >= 4 else Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(out)
    d.rectangle([(box[0] - int(cx0)) * sx, (box[1] - int(cy0)) * sy,
                 (box[2] - int(cx0)) * sx - 1, (box[3] - int(cy0)) * sy - 1], outline=colour, width=3)
    return out


def _with_box(img: Image.Image, box: Box, side: int, colour: tuple[int, int, int]) -> Image.Image:
    """``img`` scaled to ``side`` px with ``box`` (in ``img``'s pixels) drawn."""
    s = side / img.width
    out = img.resize((side, side), Image.Resampling.BICUBIC)
    ImageDraw.Draw(out).rectangle([box[0] * s, box[1] * s, box[2] * s - 1, box[3] * s - 1], outline=colour, width=2)
    return out


def _scaled_box(box: Box, crop: int, side: int) -> Box:
    f = side / crop
    return (box[0] * f, box[1] * f, box[2] * f, box[3] * f)


def _blank(side: int, text: str) -> Image.Image:
    img = Image.new("RGB", (side, side), (236, 239, 242))
    d = ImageDraw.Draw(img)
    f = font(13)
    words, lines, line = text.split(), [], ""
    for w in words:
        if d.textlength(f"{line} {w}".strip(), font=f) > side - 20:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    y = side / 2 - 9 * len(lines)
    for ln in lines:
        d.text(((side - d.textlength(ln, font=f)) / 2, y), ln, fill=GREY_RGB, font=f)
        y += 18
    return img


def normal_place_text(p: NormalPatch) -> str:
    """'good_03.png, grid row 4 col 7, distance 1.23' (or the bank row when provenance is missing)."""
    if p.image_index < 0:
        return f"bank row {p.bank_row}, distance {_num(p.distance)}"
    return f"{p.name or f'training image {p.image_index}'}, grid row {p.cell[0]} col {p.cell[1]}, " \
           f"distance {_num(p.distance)}"


def caption_lines(ev: Evidence) -> list[str]:
    """The captions under the evidence picture (also the window's and the CLI's text)."""
    where = "hottest patch" if ev.hottest else "chosen patch"
    x0, y0, x1, y1 = ev.box_original
    lines = [
        f"Query: {ev.image.rsplit('/', 1)[-1]}, {where} at grid row {ev.cell[0]} col {ev.cell[1]} "
        f"of {ev.grid[0]} x {ev.grid[1]} (box {x0:.0f},{y0:.0f} - {x1:.0f},{y1:.0f} px)",
        f"Patch score {compare_line(ev.patch_score, ev.image_threshold, 'image')}; "
        f"map there {compare_line(ev.map_value, ev.pixel_threshold, 'pixel')}",
        f"Nearest normal: {normal_place_text(ev.nearest)}",
    ]
    if ev.others:
        lines.append("Next nearest images: " + "; ".join(
            f"{o.name or o.image_index} ({_num(o.distance)})" for o in ev.others))
    lines.extend(ev.notes)
    return lines


def evidence_panels(ev: Evidence, finder: EvidenceFinder, query: Image.Image,
                    side: int = PANEL) -> list[tuple[str, Image.Image]]:
    """The four (title, picture) panels of ``ev``, each ``side`` px square; ``query`` is the original image."""
    crop_img = finder.model.preprocess.pil(query.convert("RGB"))
    panels = [
        ("query", _with_box(crop_img, ev.box, side, QUERY_RGB)),
        ("query region", _magnified(crop_img, ev.box, side, QUERY_RGB)),
    ]
    pic = finder.picture(ev.nearest)
    if pic is None:
        why = "training picture unavailable" if ev.nearest.image_index >= 0 or not finder.pictures.available \
            else "bank provenance unavailable"
        panels += [("nearest normal region", _blank(side, why)), ("nearest training image", _blank(side, why))]
    else:
        nb = _scaled_box(ev.nearest.box, ev.crop, pic.width)
        panels += [("nearest normal region", _magnified(pic, nb, side, NORMAL_RGB)),
                   ("nearest training image", _with_box(pic, nb, side, NORMAL_RGB))]
    return panels


def evidence_image(ev: Evidence, finder: EvidenceFinder, query: Image.Image) -> Image.Image:
    """The evidence picture (four panels and captions) for ``ev``; ``query`` is the original image."""
    panels = evidence_panels(ev, finder, query)
    lines = caption_lines(ev)
    pad, title_h, line_h = 12, 22, 19
    width = pad + len(panels) * (PANEL + pad)
    height = pad + title_h + PANEL + pad + line_h * len(lines) + pad
    out = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(out)
    ft, fc = font(14), font(13)
    for k, (title, img) in enumerate(panels):
        x = pad + k * (PANEL + pad)
        d.text((x, pad), title, fill=(150, 40, 170) if k < 2 else (30, 140, 80), font=ft)
        out.paste(img, (x, pad + title_h))
        d.rectangle([x - 1, pad + title_h - 1, x + PANEL, pad + title_h + PANEL], outline=(200, 206, 212))
    y = pad + title_h + PANEL + pad
    for ln in lines:
        while d.textlength(ln, font=fc) > width - 2 * pad and len(ln) > 8:
            ln = ln[:-4] + "…"
        d.text((pad, y), ln, fill=TEXT_RGB, font=fc)
        y += line_h
    return out


def evidence_png(ev: Evidence, finder: EvidenceFinder, query: Image.Image) -> bytes:
    """:func:`evidence_image` as PNG bytes."""
    return png_bytes(evidence_image(ev, finder, query))


# --------------------------------------------------------------------------- reports


def iter_evidence(ctx: Any, cancel: threading.Event | None = None) -> Iterator[tuple[Any, bytes | None, str]]:
    """(report item, PNG or None, note) for each NG image of the report, when evidence is asked for."""
    if not getattr(ctx, "evidence", False):
        return
    if ctx.model is None:
        return
    from ..io.images import ImageLoadError, load_image

    finder = EvidenceFinder(ctx.model)
    for it in ctx.selected:
        if it.verdict != "NG":
            continue
        if cancel is not None and cancel.is_set():
            from .context import ReportCancelled

            raise ReportCancelled("report cancelled")
        try:
            img = load_image(it.path)
        except (ImageLoadError, OSError) as exc:
            yield it, None, f"image not readable now: {exc}"
            continue
        ev = finder.explain(img)
        yield it, evidence_png(ev, finder, img), ""


def evidence_html(ctx: Any, cancel: threading.Event | None = None) -> str:
    """The HTML report's evidence section ('' when not asked for)."""
    if not getattr(ctx, "evidence", False):
        return ""
    out = ["<h2>Evidence: nearest normal patch of each flagged image</h2>"]
    if ctx.model is None:
        out.append(f"<p class=small>Evidence omitted: {escape(ctx.maps_note or 'no model')}</p>")
        return "".join(out)
    for it, png, note in iter_evidence(ctx, cancel):
        out.append(f"<h3 class=mono>{escape(it.name)}</h3>")
        if png is None:
            out.append(f"<p class=small>{escape(note)}</p>")
        else:
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            out.append(f"<img alt='evidence for {escape(it.name)}' style='max-width:100%' src='{uri}'>")
    return "".join(out)


def add_evidence_pdf(pdf: Any, ctx: Any, cancel: threading.Event | None = None) -> None:
    """The PDF report's evidence section: one picture per flagged image (nothing when not asked for)."""
    if not getattr(ctx, "evidence", False) or ctx.model is None:
        return
    first = True
    for it, png, note in iter_evidence(ctx, cancel):
        if first:
            pdf.add_page()
            pdf.set_font(pdf.sans, "B", 11)
            pdf.cell(0, 6, pdf.t("Evidence: nearest normal patch of each flagged image"), new_x="LMARGIN", new_y="NEXT")
            first = False
        h = pdf.epw * 0.42
        if pdf.get_y() + h + 8 > pdf.page_break_trigger:
            pdf.add_page()
        pdf.set_font(pdf.mono, "", 7.5)
        pdf.cell(0, 4.5, pdf.t(it.name), new_x="LMARGIN", new_y="NEXT")
        if png is None:
            pdf.set_font(pdf.sans, "", 7.5)
            pdf.multi_cell(0, 4, pdf.t(note), new_x="LMARGIN", new_y="NEXT")
        else:
            img = Image.open(io.BytesIO(png))
            w = pdf.epw
            pdf.image(io.BytesIO(png), x=pdf.l_margin, y=pdf.get_y(), w=w, h=w * img.height / img.width)
            pdf.set_y(pdf.get_y() + w * img.height / img.width + 3)
