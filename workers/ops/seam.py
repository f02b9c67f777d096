"""Masks on the panorama's circle: boxes across the seam, duplicates joined.

An object on the left/right seam of an equirectangular panorama is one mask in two pieces
at the image's edges. ``wrapped_box`` gives its box as one interval on the circle
(``x1`` may exceed the width ``W``); duplicates of one object seen by several tiles are
joined by mask IoU computed on the circle.
"""

from __future__ import annotations

import numpy as np

from prodseg.workers.ops.equirectangular import is_panorama_size

Shape = tuple[int, int]  # (H, W) of a panorama


def _wrapped_interval(cols: np.ndarray, w: int) -> tuple[int, int]:
    """Smallest circular ``[x0, x1)`` (``x1`` may exceed ``w``) holding the sorted columns."""
    if cols.size == 0:
        return 0, 0
    gaps = np.diff(cols) - 1
    wrap_gap = int(cols[0] + w - cols[-1] - 1)
    if gaps.size == 0 or wrap_gap >= int(gaps.max()):
        return int(cols[0]), int(cols[-1]) + 1
    i = int(np.argmax(gaps))
    return int(cols[i + 1]), int(cols[i]) + 1 + w


def wrapped_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box of a panorama mask, with x treated as a circle.

    The horizontal part is the smallest interval on the circle that holds every column of
    the mask (ties go to the interval that does not wrap). For a mask on the seam,
    ``x0`` is its left edge near the right side of the panorama and ``x1 = W + `` its
    right edge near the left side, so ``x1 > W`` means "wraps": its columns are
    ``x0 .. W-1`` then ``0 .. x1-W-1``. ``y1`` and ``x1`` are exclusive.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(x0, y0, x1, y1)`` with ``0 <= x0 < W`` and ``x0 < x1 < x0 + W`` (``x1 = W`` when
        every column is used); ``(0, 0, 0, 0)`` for an empty mask.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    x0, x1 = _wrapped_interval(np.flatnonzero(mask.any(axis=0)), mask.shape[1])
    return (x0, int(rows[0]), x1, int(rows[-1]) + 1)


def wrapped_columns(array: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """Columns ``x0 .. x1-1`` of an ``(H, W, ...)`` array, taken modulo ``W`` (a seam cut-out)."""
    return np.take(array, np.arange(x0, x1) % array.shape[1], axis=1)


def centre_on_box(array: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, int]:
    """Roll an ``(H, W, ...)`` panorama sideways so that a (wrapped) box sits in the middle.

    Crops around a seam-crossing mask (embedding crops, cut-outs) can then be cut as in an
    ordinary image: column ``x`` of the input is column ``(x + shift) % W`` of the output.

    Returns:
        The rolled array and ``shift``.
    """
    w = array.shape[1]
    shift = int(w // 2 - (box[0] + box[2]) // 2) % w
    return np.roll(array, shift, axis=1), shift


def join_pixel_lists(pixels: list[np.ndarray], scores: np.ndarray, w: int, iou: float
                     ) -> tuple[list[np.ndarray], list[float]]:
    """``join_duplicates`` on masks held as pixel lists (no full-size arrays).

    Args:
        pixels: per mask, ``(K_i,)`` int64 sorted flat indices into an ``(H, w)`` image,
            none empty.
        scores: ``(N,)`` higher is better.
        w: the panorama's width.
        iou: IoU at which two masks are the same object.

    Returns:
        The kept pixel lists and their scores, best first.
    """
    kept: list[np.ndarray] = []
    kept_scores: list[float] = []
    spans: list[tuple[int, int, int, int]] = []  # row range, circular column interval
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        px = pixels[i]
        r0, r1 = int(px[0] // w), int(px[-1] // w)
        c0, c1 = _wrapped_interval(np.unique(px % w), w)
        for k, (kr0, kr1, kc0, kc1) in enumerate(spans):
            if r1 < kr0 or r0 > kr1 or not any(c0 < kc1 + s and kc0 + s < c1 for s in (-w, 0, w)):
                continue
            inter = np.intersect1d(px, kept[k], assume_unique=True).size
            if inter / (px.size + kept[k].size - inter) >= iou:
                kept[k] = np.union1d(kept[k], px)
                cols = np.unique(kept[k] % w)
                spans[k] = (min(r0, kr0), max(r1, kr1), *_wrapped_interval(cols, w))
                break
        else:
            kept.append(px)
            kept_scores.append(float(scores[i]))
            spans.append((r0, r1, c0, c1))
    return kept, kept_scores


def join_duplicates(masks: np.ndarray, scores: np.ndarray, iou: float = 0.5
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Merge masks of one object seen in several tiles.

    Greedy, best score first: a mask whose IoU with a kept one reaches ``iou`` is merged
    into it (their union; the kept, better score stays). Masks are full panorama size, so
    pieces on both sides of the seam count as one mask.

    Args:
        masks: ``(N, H, W)`` bool, none empty.
        scores: ``(N,)`` higher is better.
        iou: IoU at which two masks are the same object.

    Returns:
        ``(K, H, W)`` bool masks and ``(K,)`` float32 scores, best first.
    """
    _, h, w = masks.shape
    pixels = [np.flatnonzero(m) for m in masks]
    kept, kept_scores = join_pixel_lists(pixels, np.asarray(scores), w, iou)
    return pixel_lists_to_masks(kept, (h, w)), np.asarray(kept_scores, np.float32)


def pixel_lists_to_masks(pixels: list[np.ndarray], shape: Shape) -> np.ndarray:
    """Flat pixel index lists -> ``(N, H, W)`` bool masks of the given ``(H, W)``."""
    out = np.zeros((len(pixels), shape[0] * shape[1]), bool)
    for i, px in enumerate(pixels):
        out[i, px] = True
    return out.reshape(len(pixels), *shape)


def seam_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``wrapped_box`` of a panorama mask that crosses the seam; None for any other mask
    (not a panorama, ``is_panorama_size``, or not crossing)."""
    h, w = mask.shape[:2]
    if not is_panorama_size(w, h) or not mask.any():
        return None
    box = wrapped_box(mask)
    return box if box[2] > w else None
