"""A view's candidates, computed once, and the matches chosen from them against a bank.

Proposals and their FFA embeddings do not depend on the prototype bank, so each view's
are computed once (``ProductSegmentationPipeline.view_candidates``), in parallel in a
distributed job. What does depend on the bank, and so on the views matched before, is
only this module's cheap part: scoring the stored embeddings against the bank as it
stands and choosing the matches (threshold, one mask per instance, NMS, top-K). A
distributed job stores the candidates between the two (``to_bytes``), exactly.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import numpy as np

from prodseg.jsonio import dump_bytes
from prodseg.results import FoundBy, ImageResult, Match
from prodseg.workers.match.bank import PrototypeBank, runner_up, score_proposals
from prodseg.workers.match.instances import MaskShape
from prodseg.workers.match.scoring import MatchParams, select_matches
from prodseg.workers.ops.masks import mask_to_box
from prodseg.workers.ops.seam import seam_box


@dataclass(frozen=True)
class SelectParams:
    """What choosing matches from candidates needs besides the bank.

    Attributes:
        threshold: the least similarity to the product (``similarity_threshold``).
        distractor_margin: with lookalikes, the least margin over the nearest one.
        nms_iou: mask IoU above which a weaker match is a duplicate.
        top_k: most matches kept per view.
        nested_containment: from which two proposals are one instance.
        instance_similarity: the least likeness of a further instance to the best one.
    """

    threshold: float
    distractor_margin: float
    nms_iou: float
    top_k: int
    nested_containment: float
    instance_similarity: float


@dataclass(frozen=True)
class ViewCandidates:
    """One view's proposals, area-filtered, and their embeddings; or why there are none.

    Attributes:
        image_id: the view's id within the job.
        source: where the image came from.
        width: image width in pixels (0 when it could not be read).
        height: image height in pixels.
        masks: ``(N, H, W)`` bool proposals.
        embeddings: ``(N, D)`` float32 FFA embeddings, one per mask.
        found_by: ``"grid"``, ``"guided"`` or ``"guided+grid"``.
        error: why the view could not be processed (naming it), else None.
    """

    image_id: str
    source: str
    width: int
    height: int
    masks: np.ndarray
    embeddings: np.ndarray
    found_by: FoundBy = "grid"
    error: str | None = None

    @classmethod
    def failed(cls, image_id: str, source: str, error: str) -> ViewCandidates:
        """A view that could not be processed."""
        return cls(image_id, source, 0, 0, np.zeros((0, 0, 0), dtype=bool),
                   np.zeros((0, 0), dtype=np.float32), error=error)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``; ``(0, 0)`` for a view that could not be read."""
        return (self.width, self.height)

    def best_score(self, bank: PrototypeBank, params: SelectParams) -> float:
        """How much the view looks like the product: its best candidate's score against
        ``bank`` (-inf without candidates); orders an unordered capture."""
        if len(self.embeddings) == 0:
            return float("-inf")
        _, ranked, _ = score_proposals(self.embeddings, bank, params.threshold,
                                       params.distractor_margin)
        return float(ranked.max())

    def to_bytes(self) -> bytes:
        """The candidates, exactly, as one deterministic blob: a JSON header, the masks
        bit-packed and compressed, the embeddings as float32 (a second write of the same
        candidates gives the same bytes)."""
        header = {"image_id": self.image_id, "source": self.source, "width": self.width,
                  "height": self.height, "found_by": self.found_by, "error": self.error,
                  "count": len(self.masks)}
        packed = np.packbits(self.masks.reshape(len(self.masks), self.height * self.width),
                             axis=1)
        parts = [dump_bytes(header), zlib.compress(_npy(packed), 3),
                 _npy(self.embeddings.astype(np.float32))]
        return b"".join(len(p).to_bytes(8, "little") + p for p in parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> ViewCandidates:
        """Read what ``to_bytes`` wrote."""
        import json

        parts, at = [], 0
        while at < len(data):
            size = int.from_bytes(data[at : at + 8], "little")
            parts.append(data[at + 8 : at + 8 + size])
            at += 8 + size
        header = json.loads(parts[0])
        packed = np.load(io.BytesIO(zlib.decompress(parts[1])), allow_pickle=False)
        h, w, n = header["height"], header["width"], header["count"]
        masks = np.unpackbits(packed, axis=1, count=h * w).view(bool).reshape(n, h, w)
        embeddings = np.load(io.BytesIO(parts[2]), allow_pickle=False)
        if header["error"] is not None:
            return cls.failed(header["image_id"], header["source"], header["error"])
        return cls(header["image_id"], header["source"], w, h, masks, embeddings,
                   header["found_by"])


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def select_view(candidates: ViewCandidates, bank: PrototypeBank, params: SelectParams,
                shape: MaskShape) -> ImageResult:
    """The view's result: its candidates scored against ``bank`` as it stands, matched.

    Args:
        candidates: the view's candidates (a failed view gives an error result).
        bank: the prototypes and lookalikes to score against.
        params: threshold, lookalike margin, NMS, top-K, nesting and the likeness of
            further instances to the best one.
        shape: the reference mask's shape: of proposals nested in one another, the one
            closest to it is kept.
    """
    c = candidates
    if c.error is not None:
        return ImageResult(image_id=c.image_id, source=c.source, status="error",
                           error=c.error)
    result = ImageResult(image_id=c.image_id, source=c.source, width=c.width,
                         height=c.height, num_proposals=len(c.masks), found_by=c.found_by)
    if len(c.masks) == 0:
        return result
    scores, ranked, threshold = score_proposals(c.embeddings, bank, params.threshold,
                                                params.distractor_margin)
    chosen = MatchParams(threshold, params.nms_iou, params.top_k,
                         params.nested_containment, shape,
                         instance_similarity=params.instance_similarity)
    for found in select_matches(c.masks, ranked, chosen, c.embeddings):
        mask = c.masks[found.kept]
        result.matches.append(Match(mask=mask, bbox=mask_to_box(mask),
                                    score=float(scores[found.best]),
                                    embedding=c.embeddings[found.best],
                                    wrapped_bbox=seam_box(mask), absorbed=found.absorbed))
    if result.matches:
        result.runner_up_score = runner_up(c.masks, scores, result.matches[0].mask,
                                           params.nested_containment)
    return result


def any_match(candidates: ViewCandidates, bank: PrototypeBank, params: SelectParams) -> bool:
    """Whether some candidate passes the threshold against ``bank`` (guided prompting
    falls back to the full grid when none does)."""
    if len(candidates.embeddings) == 0:
        return False
    _, ranked, threshold = score_proposals(candidates.embeddings, bank, params.threshold,
                                           params.distractor_margin)
    return bool((ranked >= threshold).any())

