"""Overlay thumbnails: each image small, its matches tinted, boxed and scored.

The gallery, the contact sheet and the catalog report are made of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from prodseg.results import Match
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.exports.gallery import load_font
from prodseg.storage.exports.palette import match_colour
from prodseg.storage.image_encoding import check_image_and_mask, encode_jpeg
from prodseg.storage.layout import JobLayout

_TINT_ALPHA = 0.45


def overlay_thumbnail(
    image: np.ndarray, matches: Sequence[Match], max_side: int = 320, is_reference: bool = False
) -> bytes:
    """A small JPEG of the image with each match tinted, boxed and labelled with its score.

    The best match is green, the others orange; with ``is_reference`` the (single)
    match is the reference mask, drawn in blue and labelled ``REF``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        matches: best first; masks ``(H, W)`` bool, boxes in image pixels.
        max_side: the thumbnail's longer side in pixels (never upscaled).
        is_reference: whether this is the reference image.
    """
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).resize(
        size, Image.Resampling.BILINEAR, reducing_gap=2.0
    )
    pixels = np.asarray(small, dtype=np.float32).copy()
    colours = [match_colour(k, is_reference) for k in range(len(matches))]
    for match, colour in reversed(list(zip(matches, colours, strict=True))):
        check_image_and_mask(image, match.mask)
        mask_image = Image.fromarray(np.asarray(match.mask, dtype=np.uint8) * 255)
        tinted = np.asarray(mask_image.resize(size, Image.Resampling.BILINEAR)) >= 128
        pixels[tinted] = pixels[tinted] * (1 - _TINT_ALPHA) + np.array(colour) * _TINT_ALPHA
    canvas = Image.fromarray(np.rint(pixels).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    font = load_font(12)
    for k, (match, colour) in reversed(list(enumerate(zip(matches, colours, strict=True)))):
        x0, y0, x1, y1 = (v * scale for v in match.bbox)
        draw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=colour, width=2)
        label = f"REF {match.score:.2f}" if is_reference else f"#{k + 1} {match.score:.3f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        text_w, text_h = right - left + 4, bottom - top + 4
        tx = min(max(0.0, x0), max(0.0, size[0] - text_w))
        ty = y0 - text_h if y0 >= text_h else y0
        draw.rectangle([tx, ty, tx + text_w, ty + text_h], fill=colour)
        draw.text((tx + 2 - left, ty + 2 - top), label, fill=(255, 255, 255), font=font)
    return encode_jpeg(np.asarray(canvas), quality=85)


def load_thumbnails(
    store: ObjectStore, layout: JobLayout, document: Mapping[str, Any]
) -> dict[str, bytes]:
    """The thumbnails a results document names, by relative key; missing ones skipped."""
    entries = [document["reference"], *document.get("images", [])]
    thumbnails: dict[str, bytes] = {}
    for entry in entries:
        relative = entry.get("thumbnail")
        if relative:
            try:
                thumbnails[relative] = store.get(layout.key(relative))
            except ObjectNotFound:
                continue
    return thumbnails
