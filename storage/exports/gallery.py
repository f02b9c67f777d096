"""The job's gallery: one self-contained HTML page and a PNG contact sheet.

Both are built from the ``results.json`` document and the per-image overlay thumbnails
(``thumbs/<image-id>.jpg``), never from the full images, so the distributed finaliser can
assemble them from stored objects alone. The HTML page inlines every thumbnail as a
``data:`` URI and forbids every external fetch with a Content-Security-Policy; its small
inline script only sorts the cards and enlarges a clicked thumbnail.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from prodseg.storage.exports import palette
from prodseg.storage.exports.markup import escape

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_CELL = 240  # contact sheet: thumbnail box side in pixels
_PAD = 8
_CAPTION = 36
_MAX_COLUMNS = 8


def load_font(size: int = 12) -> Font:
    """Pillow's built-in font at ``size`` pixels (a bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError, ValueError):
        return ImageFont.load_default()


def fit_text(draw: ImageDraw.ImageDraw, text: str, font: Font, max_width: float) -> str:
    """``text`` shortened with ``...`` to fit ``max_width`` pixels, drawable by ``font``.

    Bitmap fonts only know Latin-1, so other characters become ``?`` with them.
    """
    if not isinstance(font, ImageFont.FreeTypeFont):
        text = text.encode("latin-1", errors="replace").decode("latin-1")
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "...", font=font) > max_width:
        text = text[:-1]
    return text + "..."


def card_kind(entry: Mapping[str, Any], is_reference: bool = False) -> str:
    """``"reference"``, ``"error"``, ``"matched"`` or ``"unmatched"`` for one entry."""
    if is_reference:
        return "reference"
    if entry.get("status") == "error":
        return "error"
    return "matched" if entry.get("matches") else "unmatched"


def gallery_html(results_doc: Mapping[str, Any], thumbnails: Mapping[str, bytes],
                 spin_viewer: str | None = None) -> str:
    """One self-contained HTML page showing every image of the job.

    The reference comes first, marked; then every target image in input order with its
    overlay, status, matches (score, box, links to mask and cutout) or error text. If
    the document has a ``"warning"`` (e.g. random weights) it is shown at the top.

    Args:
        results_doc: the ``results.json`` document (``exports.results_document``).
        thumbnails: thumbnail bytes (JPEG or PNG) by their key relative to the job root,
            as named in the document's ``"thumbnail"`` fields; missing ones show a
            placeholder.
        spin_viewer: the address of the job's exported 360° viewer (``viewer.html``,
            relative to the gallery), linked at the top; none when None.

    Returns:
        The HTML text (UTF-8 when saved); all document text is escaped.
    """
    reference = results_doc["reference"]
    cards = [_html_card(reference, thumbnails, 0, is_reference=True)]
    for order, entry in enumerate(results_doc.get("images", []), start=1):
        cards.append(_html_card(entry, thumbnails, order, is_reference=False))
    job = results_doc.get("job")
    title = f"prodseg results - {job}" if job else "prodseg results"
    warning = results_doc.get("warning")
    banner = f'<div class="warning" role="alert">{escape(warning)}</div>\n' if warning else ""
    if spin_viewer is not None:
        banner += (f'<p class="spin"><a href="{escape(spin_viewer)}">360° viewer</a> of '
                   'the exported spin</p>\n')
    return _PAGE.format(
        title=escape(title),
        banner=banner,
        summary=escape(_summary_text(results_doc.get("summary", {}))),
        cards="\n".join(cards),
        style=_STYLE,
        script=_SCRIPT,
    )


def contact_sheet(results_doc: Mapping[str, Any], thumbnails: Mapping[str, bytes]) -> bytes:
    """A PNG grid of every image's overlay with a two-line caption, reference first.

    Args:
        results_doc: the ``results.json`` document.
        thumbnails: thumbnail bytes by relative key (see ``gallery_html``).

    Returns:
        PNG bytes of an RGB image; each cell is framed in the colour of its kind
        (blue reference, green matched, grey unmatched, red error).
    """
    entries = [(results_doc["reference"], True)]
    entries += [(entry, False) for entry in results_doc.get("images", [])]
    columns = min(_MAX_COLUMNS, max(1, math.ceil(math.sqrt(len(entries)))))
    rows = math.ceil(len(entries) / columns)
    cell_w, cell_h = _CELL + 2 * _PAD, _CELL + 2 * _PAD + _CAPTION
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = load_font(13)
    for n, (entry, is_reference) in enumerate(entries):
        left, top = (n % columns) * cell_w, (n // columns) * cell_h
        kind = card_kind(entry, is_reference)
        colour = palette.STATUS[kind]
        draw.rectangle(
            [left + 2, top + 2, left + cell_w - 3, top + cell_h - 3], outline=colour, width=3
        )
        thumb = _open_thumbnail(thumbnails.get(entry.get("thumbnail") or ""))
        if thumb is None:
            draw.rectangle(
                [left + _PAD, top + _PAD, left + _PAD + _CELL - 1, top + _PAD + _CELL - 1],
                fill=(235, 235, 235),
            )
        else:
            thumb.thumbnail((_CELL, _CELL))
            sheet.paste(
                thumb,
                (
                    left + _PAD + (_CELL - thumb.width) // 2,
                    top + _PAD + (_CELL - thumb.height) // 2,
                ),
            )
        line1, line2 = _caption(entry, kind)
        y = top + _PAD + _CELL + 2
        for line, fill in ((line1, (0, 0, 0)), (line2, colour)):
            draw.text((left + _PAD, y), fit_text(draw, line, font, _CELL), fill=fill, font=font)
            y += _CAPTION // 2
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def _caption(entry: Mapping[str, Any], kind: str) -> tuple[str, str]:
    """Two caption lines of a contact-sheet cell: the image id, then the outcome."""
    name = str(entry.get("image", ""))
    if kind == "reference":
        return name, f"REFERENCE  mask score {float(entry.get('score', 0.0)):.3f}"
    if kind == "error":
        return name, f"error: {entry.get('error') or 'unknown'}"
    matches = entry.get("matches") or []
    if not matches:
        return name, "no match"
    return name, f"score {float(matches[0]['score']):.3f}  ({len(matches)} found)"


def _open_thumbnail(data: bytes | None) -> Image.Image | None:
    """The decoded RGB thumbnail, or None when absent or unreadable."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError):
        return None


def _html_card(
    entry: Mapping[str, Any], thumbnails: Mapping[str, bytes], order: int, is_reference: bool
) -> str:
    """One ``<figure>`` of the HTML gallery."""
    kind = card_kind(entry, is_reference)
    matches = [] if is_reference else list(entry.get("matches") or [])
    if is_reference:
        score = 2.0  # sorts first
    elif matches:
        score = float(matches[0]["score"])
    else:
        score = -1.0 if kind == "unmatched" else -2.0
    name = str(entry.get("image", ""))
    data = thumbnails.get(entry.get("thumbnail") or "")
    if data:
        mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        picture = f'<img class="thumb" src="{uri}" alt="{escape(name)}" title="click to enlarge">'
    else:
        missing = "could not be read" if kind == "error" else "no thumbnail"
        picture = f'<div class="thumb missing">{missing}</div>'
    lines = [
        f'<div class="name">{escape(name)}</div>',
        f'<div class="source">{escape(entry.get("source", ""))}</div>',
    ]
    if kind != "error":
        width, height = escape(entry.get("width", 0)), escape(entry.get("height", 0))
        lines.append(f'<div class="size">{width} x {height} pixels</div>')
    if is_reference:
        lines.append('<div class="badge">REFERENCE</div>')
        lines.append(
            f"<div>mask score {float(entry.get('score', 0.0)):.3f}, "
            f"box {escape(_box(entry.get('bbox')))}</div>"
        )
        lines.append(_links(entry))
    elif kind == "error":
        lines.append(f'<div class="status error">error: {escape(entry.get("error") or "")}</div>')
    elif not matches:
        lines.append(
            f'<div class="status">no match among {escape(entry.get("num_proposals", 0))} '
            "proposals</div>"
        )
    else:
        items = [
            f"<li>#{k + 1} score {float(m['score']):.3f}, box {escape(_box(m.get('bbox')))} "
            f"{_links(m)}</li>"
            for k, m in enumerate(matches)
        ]
        lines.append(f'<ol class="matches">{"".join(items)}</ol>')
    return (
        f'<figure class="card {kind}" data-order="{order}" data-score="{score:.6f}">'
        f"{picture}<figcaption>{''.join(lines)}</figcaption></figure>"
    )


def _links(entry: Mapping[str, Any]) -> str:
    """Relative links to an entry's mask and cutout files."""
    links = [
        f'<a href="{escape(entry[name])}">{name}</a>'
        for name in ("mask", "cutout")
        if entry.get(name)
    ]
    return " ".join(links)


def _box(bbox: Any) -> str:
    """``[x0, y0, x1, y1]`` as text."""
    return "[" + ", ".join(str(int(v)) for v in bbox) + "]" if bbox else "-"


def _summary_text(summary: Mapping[str, Any]) -> str:
    """One line summing up the job."""
    return (
        f"{summary.get('images', 0)} images besides the reference: "
        f"{summary.get('matched', 0)} matched, {summary.get('unmatched', 0)} without a "
        f"match, {summary.get('error', 0)} could not be read"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1em; background: #fafafa; color: #222; }
.warning { background: #c62828; color: #fff; font-weight: bold; font-size: 1.2em;
  padding: .8em 1em; border-radius: 6px; margin: .5em 0; }
.controls button { margin-right: .5em; }
#cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { margin: 0; width: 340px; background: #fff; border: 3px solid #999; border-radius: 6px;
  padding: 8px; box-sizing: border-box; }
.card.reference { border-color: #006ee6; } .card.matched { border-color: #14aa46; }
.card.error { border-color: #d22828; }
.thumb { display: block; max-width: 320px; max-height: 320px; margin: auto; cursor: zoom-in; }
.thumb.missing { width: 320px; height: 160px; background: #eee; color: #888;
  display: flex; align-items: center; justify-content: center; cursor: default; }
.name { font-weight: bold; word-break: break-all; }
.source, .size { color: #666; font-size: .85em; word-break: break-all; }
.badge { display: inline-block; background: #006ee6; color: #fff; padding: 0 .4em;
  border-radius: 3px; font-weight: bold; }
.error { color: #d22828; } .matches { margin: .3em 0; padding-left: 1.4em; }
#lightbox { position: fixed; inset: 0; background: rgba(0,0,0,.85); display: flex;
  align-items: center; justify-content: center; cursor: zoom-out; }
#lightbox[hidden] { display: none; }
#lightbox img { max-width: 95vw; max-height: 95vh; min-width: 60vmin; image-rendering: auto; }
"""

_SCRIPT = """
(function () {
  var cards = document.getElementById('cards');
  function sortBy(key) {
    var items = Array.prototype.slice.call(cards.children);
    items.sort(function (a, b) {
      if (key === 'score') {
        var d = parseFloat(b.dataset.score) - parseFloat(a.dataset.score);
        if (d !== 0) { return d; }
      }
      return parseInt(a.dataset.order, 10) - parseInt(b.dataset.order, 10);
    });
    items.forEach(function (item) { cards.appendChild(item); });
  }
  document.querySelectorAll('button[data-sort]').forEach(function (button) {
    button.addEventListener('click', function () { sortBy(button.dataset.sort); });
  });
  var box = document.getElementById('lightbox');
  var big = box.querySelector('img');
  cards.addEventListener('click', function (event) {
    if (event.target.tagName === 'IMG') {
      big.src = event.target.src; big.alt = event.target.alt; box.hidden = false;
    }
  });
  box.addEventListener('click', function () { box.hidden = true; });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') { box.hidden = true; }
  });
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>{title}</h1>
{banner}<p class="summary">{summary}</p>
<div class="controls">Sort by: <button type="button" data-sort="order">input order</button>\
<button type="button" data-sort="score">best score</button></div>
</header>
<main id="cards">
{cards}
</main>
<div id="lightbox" hidden><img alt=""></div>
<script>{script}</script>
</body>
</html>
"""
