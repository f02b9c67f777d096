"""A cutout's edges: the alpha given to a mask, hard, feathered or matted.

- ``hard``: alpha 1 on the mask and 0 off it: every edge pixel is all product or all
  background, so a pixel the edge crosses keeps its background's colour (a halo).
- ``feather``: a linear ramp ``FEATHER_WIDTH`` pixels wide centred on the mask's edge,
  from the signed distance to it: cheap, and right where the edge is straight and the
  mask is right, but it knows nothing of the image.
- ``matte``: closed-form matting (Levin, Lischinski and Weiss, 2008, through
  ``pymatting``) in a band ``MATTE_BAND`` pixels either side of the mask's edge (the
  trimap's unknown region), the rest kept as the mask says. Chosen over a trimap-based
  network because it needs no weights, is deterministic and runs anywhere the worker
  runs; its cost is what the measurements in docs/performance.md weigh.

Each function takes ``(H, W)`` arrays of one view's box (a little more for the band) and
returns a float32 ``(H, W)`` alpha in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

EDGE_MODES = ("hard", "feather", "matte")
FEATHER_WIDTH = 1.5
MATTE_BAND = 2


def hard_alpha(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1 on the mask, 0 off it.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (unused).
        mask: ``(H, W)`` bool.
    """
    return np.asarray(mask, dtype=np.float32)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Each pixel centre's distance to the mask's edge: positive inside, negative outside.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(H, W)`` float32; the edge lies halfway between a pixel on and one off the mask.
    """
    inside = np.asarray(mask, dtype=np.uint8)
    to_outside = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    to_inside = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(inside > 0, to_outside - 0.5, 0.5 - to_inside).astype(np.float32)


def feather_alpha(image: np.ndarray, mask: np.ndarray,
                  width: float = FEATHER_WIDTH) -> np.ndarray:
    """A linear ramp ``width`` pixels wide across the mask's edge.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (unused).
        mask: ``(H, W)`` bool.
        width: the ramp's width in pixels.
    """
    return np.clip(0.5 + signed_distance(mask) / width, 0.0, 1.0).astype(np.float32)


def matte_alpha(image: np.ndarray, mask: np.ndarray, band: int = MATTE_BAND) -> np.ndarray:
    """Closed-form matting in a band of ``band`` pixels either side of the mask's edge.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool.
        band: the unknown region's half-width in pixels.
    """
    from pymatting import estimate_alpha_cf  # the [worker] extra; on use only

    distance = signed_distance(mask)
    unknown = np.abs(distance) < band
    if not unknown.any():
        return hard_alpha(image, mask)
    trimap = np.where(unknown, 0.5, np.asarray(mask, dtype=np.float64))
    alpha = estimate_alpha_cf(np.asarray(image, dtype=np.float64) / 255.0, trimap)
    return np.clip(np.where(unknown, alpha, trimap), 0.0, 1.0).astype(np.float32)


EDGES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "hard": hard_alpha, "feather": feather_alpha, "matte": matte_alpha,
}


def edge_alpha(mode: str, image: np.ndarray, mask: np.ndarray,
               box: tuple[int, int, int, int]) -> np.ndarray:
    """The alpha of a cutout cropped to ``box``, its edges as ``mode`` says.

    The work is done on the box grown by the band the modes look across, then cropped.

    Args:
        mode: one of ``EDGE_MODES``.
        image: ``(H, W, 3)`` uint8 RGB, the whole view.
        mask: ``(H, W)`` bool.
        box: ``(x0, y0, x1, y1)``, exclusive upper edges.

    Returns:
        ``(y1 - y0, x1 - x0)`` uint8 alpha.
    """
    if mode not in EDGES:
        raise ValueError(f"unknown edge mode {mode!r}; one of {', '.join(EDGE_MODES)}")
    x0, y0, x1, y1 = box
    height, width = mask.shape
    pad = MATTE_BAND + 2
    gx0, gy0 = max(x0 - pad, 0), max(y0 - pad, 0)
    gx1, gy1 = min(x1 + pad, width), min(y1 + pad, height)
    alpha = EDGES[mode](image[gy0:gy1, gx0:gx1], np.asarray(mask[gy0:gy1, gx0:gx1], bool))
    crop = alpha[y0 - gy0:y1 - gy0, x0 - gx0:x1 - gx0]
    return np.rint(crop * 255).astype(np.uint8)


def edges_for(mode: str) -> Callable[[np.ndarray, np.ndarray, tuple[int, int, int, int]],
                                      np.ndarray] | None:
    """What the output writers take for ``mode`` (``storage.exports.documents.EdgeAlpha``):
    None for ``hard`` (the mask's own alpha, as cutouts always were)."""
    if mode not in EDGES:
        raise ValueError(f"unknown edge mode {mode!r}; one of {', '.join(EDGE_MODES)}")
    return None if mode == "hard" else partial(edge_alpha, mode)
