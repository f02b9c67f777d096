"""The ``Segmenter`` protocol: a prompt into one mask, an image into proposals.

Its partner, ``embed.protocol.PatchBackbone``, turns images into a grid of patch
features. SAM2 and DINOv2 fill them in production (``segment.sam2_image``,
``embed.dinov2``); simple deterministic implementations (``workers.classic``) fill them in
tests and fast runs. The FFA embedding on top of any backbone is ``embed.ffa_embedder``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from prodseg.prompts import Prompt


@dataclass(frozen=True)
class SegmentedMask:
    """One mask from a prompt, and the candidates it was chosen from.

    Attributes:
        mask: ``(H, W)`` bool.
        score: the segmenter's quality estimate in [0, 1] (SAM2's predicted IoU).
        candidate_areas: the pixel areas of the candidate masks for the prompt, smallest
            first (SAM2's multimask output: subpart, part, whole); empty if unknown.
        candidate_scores: their quality estimates, in the same order.
        candidate: the index of ``mask`` among them; None if unknown.
    """

    mask: np.ndarray
    score: float
    candidate_areas: tuple[int, ...] = ()
    candidate_scores: tuple[float, ...] = ()
    candidate: int | None = None


@dataclass(frozen=True)
class Proposals:
    """Candidate object masks on one image.

    Attributes:
        masks: ``(N, H, W)`` bool.
        scores: ``(N,)`` float32 quality estimates (predicted IoU).
    """

    masks: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.masks.shape[0])


class Segmenter(Protocol):
    """Prompted segmentation and automatic proposals on RGB images."""

    def segment(self, image: np.ndarray, prompt: Prompt) -> SegmentedMask:
        """Best mask for the prompt.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            prompt: points and/or box in the image's pixels.
        """
        ...

    def propose(self, image: np.ndarray) -> Proposals:
        """Candidate object masks, before area filtering.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
        """
        ...

    def propose_at(self, image: np.ndarray, positives: np.ndarray,
                   negatives: np.ndarray) -> Proposals:
        """Candidate masks for prompts at chosen points (similarity-guided prompting).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            positives: ``(P, 2)`` ``(x, y)`` pixels; each is one prompt.
            negatives: ``(Q, 2)`` ``(x, y)`` pixels that no proposal may contain.
        """
        ...


def from_candidates(masks: np.ndarray, scores: np.ndarray, wanted: int | None) -> SegmentedMask:
    """The mask a prompt asked for among its candidates, with all their areas.

    Args:
        masks: ``(K, H, W)`` bool candidate masks, ``K >= 1``, in any order.
        scores: ``(K,)`` their quality estimates.
        wanted: ``Prompt.candidate``: by area, 0 the smallest (past the last: the largest);
            None: the best-scoring one.

    Returns:
        The chosen mask, with the candidates' areas and scores smallest first.
    """
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    order = np.argsort(areas, kind="stable")
    ranked = np.asarray(scores, dtype=np.float64)[order]
    pick = int(np.argmax(ranked)) if wanted is None else min(wanted, len(order) - 1)
    return SegmentedMask(np.asarray(masks[order[pick]], dtype=bool), float(ranked[pick]),
                         tuple(int(a) for a in areas[order]), tuple(float(s) for s in ranked),
                         pick)
