"""A second carton beside the first on a rendered photo: two instances, or a lookalike.

Copying the carton's columns together with a few pixels of shelf on either side keeps
its outline as clean as the original's (a pasted silhouette alone would merge with what
stood behind it), so the copy is segmented as well as the carton.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _strip(mask: np.ndarray, gap: int, image_width: int) -> tuple[int, int, int]:
    """The columns copied: ``(left, shift, width)``, the copy's left edge at left + shift."""
    cols = np.flatnonzero(mask.any(axis=0))
    x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 0)
    left, shift = max(x0 - gap, 0), x1 - x0 + gap
    width = max(min(x1 + gap, image_width - shift) - left, 0)
    return left, shift, width


def beside(image: np.ndarray, mask: np.ndarray, gap: int = 6,
           green: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The photo with a second carton standing ``gap`` px right of the first.

    Args:
        image: ``(H, W, 3)`` uint8 RGB photo of the carton.
        mask: ``(H, W)`` bool, the carton.
        gap: pixels of shelf copied on either side, and left between the two.
        green: the copy's green channel is scaled by this (1: an identical carton; below
            1: a lookalike in another flavour).

    Returns:
        The new ``(H, W, 3)`` uint8 photo, and the copy's ``(H, W)`` bool mask (cut at
        the image's right edge).
    """
    left, shift, width = _strip(mask, gap, image.shape[1])
    strip = image[:, left:left + width].astype(np.float32)
    strip[..., 1] = np.where(mask[:, left:left + width], strip[..., 1] * green, strip[..., 1])
    out, copy = image.copy(), np.zeros_like(mask)
    out[:, left + shift:left + shift + width] = np.clip(strip + 0.5, 0, 255).astype(np.uint8)
    copy[:, left + shift:left + shift + width] = mask[:, left:left + width]
    return out, copy


def standing_beside(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], index: int = 0,
                    gap: int = 6, green: float = 0.8) -> tuple[list[np.ndarray],
                                                              list[np.ndarray]]:
    """A spin set with a lookalike that stays put beside the turning carton.

    The copy of view ``index`` (``beside``) stands on the shelf in every view, in front of
    whatever was there, the carton included.

    Args:
        images: the views, ``(H, W, 3)`` uint8 RGB each, all one size.
        masks: the carton's ``(H, W)`` bool mask on each.
        index: the view whose carton is copied.
        gap: as ``beside``'s.
        green: as ``beside``'s (below 1: a lookalike in another flavour).

    Returns:
        The views with the lookalike, and the carton's masks less what it hides.
    """
    out, _ = beside(images[index], masks[index], gap, green)
    left, shift, width = _strip(masks[index], gap, out.shape[1])
    cols = slice(left + shift, left + shift + width)
    new_images, new_masks = [], []
    for image, mask in zip(images, masks, strict=True):
        image, mask = image.copy(), mask.copy()
        image[:, cols] = out[:, cols]
        mask[:, cols] = False
        new_images.append(image)
        new_masks.append(mask)
    return new_images, new_masks
