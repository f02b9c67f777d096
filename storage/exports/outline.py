"""A mask as one polygon: the YOLO segmentation rule, one line per mask, nothing lost.

A YOLO segmentation line is one polygon, and a mask may have several parts and holes.
``mask_outline`` traces every part and every hole on the pixels' corners (so a mask one
pixel wide still encloses its pixels) and joins the rings into one polygon by zero-width
cuts, the way Ultralytics joins a COCO object's parts. Read with the even-odd rule, the
polygon covers exactly the mask's pixels: a pixel is inside when its centre is. A
rasteriser that also paints a polygon's edges (OpenCV's ``fillPoly``, which Ultralytics
uses) adds the cuts, one pixel wide, between a mask's parts.
"""

from __future__ import annotations

import numpy as np


def mask_outline(mask: np.ndarray) -> np.ndarray | None:
    """The polygon of a whole mask, on pixel corners, its parts and holes joined by cuts.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(N, 2)`` float64 ``(x, y)`` corners in pixels (``0..W``, ``0..H``), N >= 4;
        ``None`` for an empty mask.
    """
    import cv2  # on use: the client imports the exports for COCO too

    region = np.asarray(mask, dtype=bool)
    if not region.any():
        return None
    # Pixel (x, y) becomes the 2x2 block at (2x, 2y): a traced border pixel then lies on
    # an even index at its pixel's left or top edge, on an odd one at its right or bottom
    # edge, so the corner is (index + 1) // 2, which is padded index // 2.
    doubled = np.pad(np.repeat(np.repeat(region, 2, axis=0), 2, axis=1), 1).astype(np.uint8)
    found, _ = cv2.findContours(doubled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    rings = [_without_repeats(c.reshape(-1, 2) // 2) for c in found]
    polygon = rings[0]
    for ring in rings[1:]:
        polygon = _joined(polygon, ring)
    return polygon.astype(np.float64)


def _without_repeats(ring: np.ndarray) -> np.ndarray:
    """A closed ring ``(N, 2)`` without a point equal to the one before it."""
    keep = np.any(ring != np.roll(ring, 1, axis=0), axis=1)
    return ring[keep] if keep.any() else ring[:1]


def _joined(polygon: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """``polygon`` walked to its point nearest ``ring``, round ``ring`` and back.

    Args:
        polygon: ``(N, 2)`` int corners.
        ring: ``(M, 2)`` int corners of another part or a hole.

    Returns:
        ``(N + M + 2, 2)``: the cut is walked both ways, so it encloses nothing.
    """
    gaps = ((polygon[:, None, :] - ring[None, :, :]) ** 2).sum(axis=-1)
    i, j = np.unravel_index(int(gaps.argmin()), gaps.shape)
    turned = np.roll(ring, -int(j), axis=0)
    return np.concatenate([polygon[: i + 1], turned, turned[:1], polygon[i:]])


def polygon_covers(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Which pixels' centres a polygon encloses, by the even-odd rule.

    Args:
        polygon: ``(N, 2)`` ``(x, y)`` corners in pixels.
        height: image height.
        width: image width.

    Returns:
        ``(height, width)`` bool.
    """
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5
    inside = np.zeros((height, width), dtype=bool)
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for ax, ay, bx, by in zip(x0, y0, x1, y1, strict=True):
        if ay == by:
            continue  # a horizontal edge is never crossed by a row through pixel centres
        rows = (ay > ys) != (by > ys)  # (H, 1): the edge spans this row's centre
        cross_x = ax + (ys - ay) * (bx - ax) / (by - ay)  # (H, 1)
        inside ^= rows & (xs < cross_x)
    return inside
