"""What the windows draw on their matplotlib figures: the window's title and keys, a
prompt's markers and box, a mask overlay, thumbnails, and the note on SAM2's masks.

Coordinates are original image pixels, as ``ui.select`` describes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from prodseg.producer.ui.selection import Box, MaskPreview
from prodseg.storage.exports import palette

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MASK_RGBA = (30, 144, 255, 110)  # preview overlay: blue, ~43 % opaque
THUMB_SIDE = 96  # thumbnails are subsampled to about this many pixels on the long side


def prepare_canvas(figure: Figure, window_title: str) -> None:
    """Title the window and drop matplotlib's default keys (``s`` saves, ``p`` pans...)."""
    manager = figure.canvas.manager
    if manager is not None:
        manager.set_window_title(window_title)
        if manager.key_press_handler_id is not None:
            figure.canvas.mpl_disconnect(manager.key_press_handler_id)


def draw_prompt(ax: Axes, points: Sequence[tuple[float, float]], labels: Sequence[int],
                distractors: Sequence[tuple[float, float]], box: Box | None) -> list[Artist]:
    """Draw a prompt's clicks (``+`` on the product, ``x`` not), its lookalikes (orange
    diamonds) and its box on ``ax``; return what was drawn, to remove it later."""
    artists: list[Artist] = []
    for (x, y), label in zip(points, labels, strict=True):
        positive = label == 1
        marker = "+" if positive else "x"
        colour = palette.POSITIVE_POINT if positive else palette.NEGATIVE_POINT
        artists += ax.plot(x, y, marker=marker, color=colour, markersize=14,
                           markeredgewidth=2.5, zorder=4)
    for x, y in distractors:  # lookalikes: orange diamonds
        artists += ax.plot(x, y, marker="D", color=palette.LOOKALIKE_POINT,
                           markersize=9, fillstyle="none",
                           markeredgewidth=2.5, zorder=4)
    if box is not None:
        artists.append(add_rectangle(ax, box, "-"))
    return artists


def mask_overlay(mask: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA: ``MASK_RGBA`` on ``mask`` (``(H, W)`` bool), clear elsewhere."""
    height, width = mask.shape
    overlay = np.zeros((height, width, 4), dtype=np.uint8)
    overlay[mask] = MASK_RGBA
    return overlay


def thumbnail(image: np.ndarray) -> np.ndarray:
    """``image`` subsampled to about ``THUMB_SIDE`` pixels on its long side (a copy)."""
    stride = max(1, math.ceil(max(image.shape[:2]) / THUMB_SIDE))
    return image[::stride, ::stride].copy()


def draw_thumbnail(ax: Axes, image: np.ndarray | None, name: str, current: bool) -> None:
    """Draw a thumbnail (None: "unreadable") named ``name``, framed orange when
    ``current``."""
    ax.clear()
    ax.set_xticks([])
    ax.set_yticks([])
    if image is None:
        ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.imshow(image)
    for spine in ax.spines.values():
        spine.set_edgecolor("orange" if current else "0.7")
        spine.set_linewidth(3.0 if current else 0.5)
    ax.set_xlabel(name, fontsize=6)


def candidates_note(result: MaskPreview) -> str:
    """``", mask 1 of 3 by size (600 / 2,900 / 5,100 px; c: next)"``, or "" when the
    segmenter does not say."""
    areas = tuple(getattr(result, "candidate_areas", ()))
    chosen = getattr(result, "candidate", None)
    if len(areas) < 2 or chosen is None:
        return ""
    sizes = " / ".join(f"{int(a):,}" for a in areas)
    return f", mask {int(chosen) + 1} of {len(areas)} by size ({sizes} px; c: next)"


def add_rectangle(ax: Axes, box: Box, linestyle: str) -> Artist:
    """Draw ``(x0, y0, x1, y1)`` (corners in any order) on ``ax``; return the patch."""
    from matplotlib.patches import Rectangle

    x0, x1 = sorted(box[0::2])
    y0, y1 = sorted(box[1::2])
    return ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="yellow",
                                  linewidth=2, linestyle=linestyle, zorder=4))
