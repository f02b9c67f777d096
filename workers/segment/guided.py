"""Similarity-guided prompting: where on a target image to prompt the segmenter.

The reference's FFA embedding is compared with every DINOv2 patch token of the target
(cosine similarity): the product lights up where it is. Instead of a full grid of
``n x n`` prompts, the segmenter is prompted only at the strongest local peaks of that
map, each prompt carrying negative points where the map is lowest. The pipeline falls
back to the full grid when no proposal from the peaks matches (``prodseg.workers.plan.pipeline``).

All functions are pure NumPy.
"""

from __future__ import annotations

import numpy as np


def similarity_map(tokens: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine similarity of each patch token to the reference embedding.

    Args:
        tokens: ``(gh, gw, D)`` patch features of the target image.
        reference: ``(D,)`` unit FFA embedding of the reference.

    Returns:
        ``(gh, gw)`` float32 in [-1, 1] (0 where a token is all zeros).
    """
    norms = np.linalg.norm(tokens, axis=-1)
    dots = tokens @ reference.astype(tokens.dtype)
    return np.where(norms > 0, dots / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def local_peaks(values: np.ndarray, count: int, min_distance: int = 1) -> np.ndarray:
    """The ``count`` highest cells that are maxima of their neighbourhood.

    A cell is a peak when no cell within ``min_distance`` (Chebyshev) is higher; among
    equal neighbours the first in row-major order wins. Peaks are taken greedily from the
    highest, each suppressing cells within ``min_distance`` of it, so plateaus give one
    peak.

    Args:
        values: ``(gh, gw)``.
        count: how many peaks at most.
        min_distance: neighbourhood radius in cells.

    Returns:
        ``(K, 2)`` int64 ``(row, col)``, highest first, ``K <= count``.
    """
    gh, gw = values.shape
    order = np.argsort(-values, axis=None, kind="stable")
    taken = np.zeros((gh, gw), bool)
    peaks: list[tuple[int, int]] = []
    r = min_distance
    for flat in order:
        if len(peaks) >= count:
            break
        row, col = divmod(int(flat), gw)
        if taken[row, col]:
            continue
        window = values[max(0, row - r) : row + r + 1, max(0, col - r) : col + r + 1]
        if values[row, col] < window.max():
            continue  # a higher neighbour exists: a slope, not a peak
        peaks.append((row, col))
        taken[max(0, row - r) : row + r + 1, max(0, col - r) : col + r + 1] = True
    return np.asarray(peaks, dtype=np.int64).reshape(-1, 2)


def cells_to_pixels(cells: np.ndarray, grid: tuple[int, int],
                    size: tuple[int, int]) -> np.ndarray:
    """Centres of patch-grid cells in image pixels.

    Args:
        cells: ``(K, 2)`` ``(row, col)``.
        grid: ``(gh, gw)`` of the patch grid covering the whole image.
        size: ``(H, W)`` of the image.

    Returns:
        ``(K, 2)`` float32 ``(x, y)``.
    """
    gh, gw = grid
    height, width = size
    x = (cells[:, 1] + 0.5) * width / gw
    y = (cells[:, 0] + 0.5) * height / gh
    return np.stack([x, y], axis=1).astype(np.float32)


def guided_prompts(sim: np.ndarray, size: tuple[int, int], positives: int,
                   negatives: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompt points from a similarity map: its peaks, and its lowest cells as negatives.

    Args:
        sim: ``(gh, gw)`` similarity of each patch to the reference.
        size: ``(H, W)`` of the image.
        positives: most peaks to prompt at (one prompt each).
        negatives: negative points shared by every prompt (0 for none).

    Returns:
        ``(P, 2)`` and ``(Q, 2)`` float32 ``(x, y)`` pixels.
    """
    peaks = local_peaks(sim, positives)
    lows = local_peaks(-sim, negatives) if negatives > 0 else np.zeros((0, 2), np.int64)
    return cells_to_pixels(peaks, sim.shape, size), cells_to_pixels(lows, sim.shape, size)
