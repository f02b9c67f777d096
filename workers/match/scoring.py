"""Matching proposals to the reference: cosine similarity, threshold, one mask per
instance (``prodseg.workers.match.instances``), NMS, instances of one product, top-K."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prodseg.workers.match.instances import (
    Instance,
    MaskShape,
    alike_instances,
    nested_instances,
    suppress_duplicates,
)


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
    """How similar is similar enough, what is one instance, and how many to keep.

    Attributes:
        threshold: minimum cosine similarity.
        nms_iou: mask IoU above which a weaker match is a duplicate.
        top_k: maximum matches kept.
        nested_containment: intersection over the smaller area from which two proposals
            are one instance (``nested_containment`` setting).
        reference: the reference mask's shape: of an instance's proposals, the one
            closest to it is kept; None keeps the best-scoring one.
        instance_similarity: the least cosine similarity of a further instance's
            embedding to the best instance's: several instances in one photo are copies
            of one product and look alike; None keeps every instance.
    """

    threshold: float
    nms_iou: float
    top_k: int
    nested_containment: float = 0.8
    reference: MaskShape | None = None
    instance_similarity: float | None = None


def select_matches(masks: np.ndarray, similarities: np.ndarray, params: MatchParams,
                   embeddings: np.ndarray | None = None) -> list[Instance]:
    """Proposals that match, one per instance, de-duplicated, copies of the best one,
    the best ``top_k``.

    Args:
        masks: ``(N, H, W)`` bool proposals.
        similarities: ``(N,)`` cosine similarity of each proposal to the reference (or
            whatever ranks them against ``params.threshold``).
        params: threshold, nesting, NMS IoU, likeness of instances and top-K.
        embeddings: ``(N, D)`` the proposals' embeddings, for
            ``params.instance_similarity``.

    Returns:
        At most ``top_k`` instances, best first: each names the proposal kept as its mask,
        the proposal whose score it reports, and how many matching proposals it absorbed.
    """
    instances = nested_instances(masks, similarities, params.threshold,
                                 params.nested_containment, params.reference)
    instances = suppress_duplicates(masks, instances, params.nms_iou)
    if params.instance_similarity is not None and embeddings is not None:
        instances = alike_instances(embeddings, instances, params.instance_similarity)
    return instances[: params.top_k]
