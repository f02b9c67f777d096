"""Background left along a cutout's edge: how much of the mask's rim shows the shelf.

A mask that reaches a few pixels past the product (a halo) puts the background's colour
in the cutout's rim, which shows on a white storefront page. Measured on the mask's
inner band, the pixels at most ``band`` inside its edge: each is compared with the
local background (the mean colour of the pixels outside the mask, ``band`` to
``3 * band`` away from its edge, in a window around the pixel) and with the local
product (the mask's pixels ``band`` to ``3 * band`` inside). The residue is the share of
the band's pixels nearer the background than the product. Pixels where the two local
colours are closer than ``MIN_CONTRAST`` (a product the colour of its shelf) tell
nothing and are left out.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_CONTRAST = 24.0
"""Least distance (RGB levels) between the local background and product colours for a
pixel to count."""

def residue_band(height: int, width: int) -> int:
    """The band's width for an image: 0.4 % of its longer side, at least 2 pixels."""
    return max(2, round(0.004 * max(height, width)))


def edge_residue(image: np.ndarray, mask: np.ndarray, band: int | None = None) -> float | None:
    """The share of the mask's inner edge band whose colour is the local background's.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool, the product.
        band: the band's width in pixels (``residue_band`` by default).

    Returns:
        The residue in [0, 1]; None when no band pixel can tell (an empty mask, a mask
        with no background around it, or no contrast).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        return None
    height, width = mask.shape
    band = band or residue_band(height, width)
    ys, xs = np.nonzero(mask)
    margin = 4 * band + 1
    y0, y1 = max(0, ys.min() - margin), min(height, ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(width, xs.max() + margin + 1)
    inside = mask[y0:y1, x0:x1]
    pixels = image[y0:y1, x0:x1].astype(np.float32)
    depth_in = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    depth_out = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
    rim = inside & (depth_in <= band)
    product = inside & (depth_in > band) & (depth_in <= 3 * band)
    background = ~inside & (depth_out > band) & (depth_out <= 3 * band)
    window = (2 * margin + 1, 2 * margin + 1)
    local = {}
    for name, where in (("product", product), ("background", background)):
        weight = cv2.boxFilter(where.astype(np.float32), -1, window, normalize=False)
        total = cv2.boxFilter(pixels * where[..., None], -1, window, normalize=False)
        local[name] = (total / np.maximum(weight, 1e-6)[..., None], weight > 0)
    (mean_p, has_p), (mean_b, has_b) = local["product"], local["background"]
    contrast = np.linalg.norm(mean_p - mean_b, axis=2)
    decided = rim & has_p & has_b & (contrast >= MIN_CONTRAST)
    if not decided.any():
        return None
    near_b = np.linalg.norm(pixels - mean_b, axis=2) < np.linalg.norm(pixels - mean_p, axis=2)
    return float(near_b[decided].mean())
