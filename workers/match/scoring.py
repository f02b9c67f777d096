"""Matching proposals to the reference: cosine similarity, threshold, NMS, top-K."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prodseg.workers.ops.masks import mask_nms


def cosine_similarity(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine similarity of each query to one reference.

    Args:
        queries: ``(N, D)`` float.
        reference: ``(D,)`` float.

    Returns:
        ``(N,)`` float32 in [-1, 1]; 0 for a zero-length query or reference.
    """
    q = np.asarray(queries, dtype=np.float32)
    r = np.asarray(reference, dtype=np.float32)
    qn = np.linalg.norm(q, axis=1)
    rn = float(np.linalg.norm(r))
    denom = qn * rn
    dots = q @ r
    out = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class MatchParams:
    """How similar is similar enough, and how many to keep.

    Attributes:
        threshold: minimum cosine similarity.
        nms_iou: mask IoU above which a weaker match is a duplicate.
        top_k: maximum matches kept.
    """

    threshold: float
    nms_iou: float
    top_k: int


def select_matches(masks: np.ndarray, similarities: np.ndarray, params: MatchParams) -> np.ndarray:
    """Proposals that match: above the threshold, de-duplicated, the best ``top_k``.

    Args:
        masks: ``(N, H, W)`` bool proposals.
        similarities: ``(N,)`` cosine similarity of each proposal to the reference.
        params: threshold, NMS IoU and top-K.

    Returns:
        ``(K,)`` int64 indices into the proposals, best first, ``K <= top_k``.
    """
    candidates = np.flatnonzero(similarities >= params.threshold)
    if candidates.size == 0:
        return candidates.astype(np.int64)
    kept = mask_nms(masks[candidates], similarities[candidates], params.nms_iou)
    return candidates[kept][: params.top_k].astype(np.int64)
