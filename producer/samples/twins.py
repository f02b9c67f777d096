"""A second carton beside the first on a rendered photo: two instances, or a lookalike.

Copying the carton's columns together with a few pixels of shelf on either side keeps
its outline as clean as the original's (a pasted silhouette alone would merge with what
stood behind it), so the copy is segmented as well as the carton.
"""

from __future__ import annotations

import numpy as np


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
    cols = np.flatnonzero(mask.any(axis=0))
    x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 0)
    left, shift = max(x0 - gap, 0), x1 - x0 + gap
    width = max(min(x1 + gap, image.shape[1] - shift) - left, 0)
    strip = image[:, left:left + width].astype(np.float32)
    strip[..., 1] = np.where(mask[:, left:left + width], strip[..., 1] * green, strip[..., 1])
    out, copy = image.copy(), np.zeros_like(mask)
    out[:, left + shift:left + shift + width] = np.clip(strip + 0.5, 0, 255).astype(np.uint8)
    copy[:, left + shift:left + shift + width] = mask[:, left:left + width]
    return out, copy
