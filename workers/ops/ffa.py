"""Foreground feature averaging (FFA): pool patch features under a mask.

A mask is mapped onto the backbone's patch grid by area: each patch is weighted by the
fraction of its area that lies inside the mask (not by nearest-neighbour sampling), so a
thin or small product still contributes exactly what it covers. The embedding is the
weighted mean of the patch features, L2-normalised.
"""

from __future__ import annotations

import numpy as np


def grid_for_image(height: int, width: int, long_side_patches: int) -> tuple[int, int]:
    """Patch grid for an image resized so that its long side has ``long_side_patches``.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        long_side_patches: patches along the longer side.

    Returns:
        ``(grid_h, grid_w)``, each at least 1, keeping the aspect ratio to within a patch.
    """
    if height >= width:
        gh = long_side_patches
        gw = max(1, round(width / height * long_side_patches))
    else:
        gw = long_side_patches
        gh = max(1, round(height / width * long_side_patches))
    return gh, gw


def _overlap_matrix(length: int, cells: int) -> np.ndarray:
    """``(cells, length)`` float32: fraction of cell i's extent covered by pixel j.

    Cell i spans ``[i * length / cells, (i + 1) * length / cells)`` in pixel units, the
    same mapping a resize of ``length`` pixels to ``cells`` patches makes.
    """
    edges = np.linspace(0.0, float(length), cells + 1)
    pix_lo = np.arange(length, dtype=np.float64)[None, :]
    lo = np.maximum(edges[:-1, None], pix_lo)
    hi = np.minimum(edges[1:, None], pix_lo + 1.0)
    overlap = np.clip(hi - lo, 0.0, None)
    return (overlap / (length / cells)).astype(np.float32)


def patch_coverage(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Fraction of each patch's area inside each mask.

    Args:
        masks: ``(N, H, W)`` bool, in the pixels of the image the grid was laid over.
        grid: ``(grid_h, grid_w)`` patches covering the whole image.

    Returns:
        ``(N, grid_h, grid_w)`` float32 in [0, 1].
    """
    n, height, width = masks.shape
    gh, gw = grid
    rows = _overlap_matrix(height, gh)  # (gh, H)
    cols = _overlap_matrix(width, gw)  # (gw, W)
    out = np.zeros((n, gh, gw), dtype=np.float32)
    for i in range(n):
        ys = np.flatnonzero(masks[i].any(axis=1))
        if ys.size == 0:
            continue
        xs = np.flatnonzero(masks[i].any(axis=0))
        y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        crop = masks[i, y0:y1, x0:x1].astype(np.float32)
        out[i] = rows[:, y0:y1] @ crop @ cols[:, x0:x1].T
    return np.clip(out, 0.0, 1.0)


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero.

    Args:
        vectors: ``(N, D)`` float.

    Returns:
        ``(N, D)`` float32.
    """
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > eps)


def foreground_average(tokens: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """FFA embeddings: weighted mean of patch features, L2-normalised.

    Args:
        tokens: ``(grid_h, grid_w, D)`` float patch features of one image.
        weights: ``(N, grid_h, grid_w)`` float patch weights (e.g. ``patch_coverage``).

    Returns:
        ``(N, D)`` float32 unit vectors; a zero vector where a mask covers no patch area.
    """
    gh, gw, dim = tokens.shape
    w = weights.reshape(weights.shape[0], gh * gw).astype(np.float32)
    sums = w @ tokens.reshape(gh * gw, dim).astype(np.float32)
    totals = w.sum(axis=1, keepdims=True)
    means = np.divide(sums, totals, out=np.zeros_like(sums), where=totals > 0)
    return l2_normalize(means)
