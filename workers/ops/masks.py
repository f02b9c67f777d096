"""Mask math as typed free functions: boxes, areas, IoU, area filters, NMS.

Masks are bool arrays, ``(H, W)`` for one or ``(N, H, W)`` for many. Boxes are
``(x0, y0, x1, y1)`` with exclusive upper edges, in pixels.
"""

from __future__ import annotations

import numpy as np


def mask_to_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box of a mask.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive; ``(0, 0, 0, 0)`` for an empty mask.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes of many masks.

    Args:
        masks: ``(N, H, W)`` bool.

    Returns:
        ``(N, 4)`` int64 ``(x0, y0, x1, y1)``; zeros for empty masks.
    """
    boxes = np.zeros((masks.shape[0], 4), dtype=np.int64)
    for i, mask in enumerate(masks):
        boxes[i] = mask_to_box(mask)
    return boxes


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of masks.

    Args:
        a: ``(N, H, W)`` bool.
        b: ``(M, H, W)`` bool.

    Returns:
        ``(N, M)`` float64 in [0, 1]; 0 where both masks are empty.
    """
    fa = a.reshape(a.shape[0], -1).astype(np.float32)
    fb = b.reshape(b.shape[0], -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1.0), 0.0).astype(np.float64)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``(H, W)`` bool masks; 0 if both are empty."""
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0


def area_filter(masks: np.ndarray, min_ratio: float, max_ratio: float) -> np.ndarray:
    """Which masks have an area within ``[min_ratio, max_ratio]`` of the image.

    Args:
        masks: ``(N, H, W)`` bool.
        min_ratio: smallest allowed area as a fraction of ``H * W``.
        max_ratio: largest allowed area as a fraction of ``H * W``.

    Returns:
        ``(N,)`` bool keep-flags.
    """
    if masks.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    total = masks.shape[1] * masks.shape[2]
    ratios = masks.reshape(masks.shape[0], -1).sum(axis=1) / total
    return (ratios >= min_ratio) & (ratios <= max_ratio) & (ratios > 0)


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression on mask IoU.

    Args:
        masks: ``(N, H, W)`` bool.
        scores: ``(N,)`` higher is better.
        iou_threshold: a mask overlapping a kept, better one by more than this is dropped.

    Returns:
        ``(K,)`` int64 indices of kept masks, best first.
    """
    order = np.argsort(-scores, kind="stable")
    if order.size == 0:
        return order.astype(np.int64)
    iou = mask_iou_matrix(masks[order], masks[order])
    keep: list[int] = []
    for i in range(order.size):
        if all(iou[i, j] <= iou_threshold for j in keep):
            keep.append(i)
    return order[np.asarray(keep, dtype=np.int64)]
