"""A bank of product prototypes that grows around the spin, and lookalike negatives.

The back of a milk carton looks nothing like its front. Matching every view against the
one clicked side finds the front and misses the rest. So views are processed outward
from the reference (``prodseg.workers.capture.order``), and a view matched without doubt adds the
embedding of its match to the bank. Later views are scored against every prototype.

Drift is the danger: one wrong prototype pulls in more wrong matches. A match joins
the bank only when it is unambiguous. It must score at least ``add_threshold``, beat the
image's best proposal elsewhere (overlapping it less than half) by ``margin``, and not
resemble a lookalike the person marked as "not this".

Negatives (``--distractor-point``) are embeddings of lookalikes. With negatives the
score of a proposal is a margin: its similarity to the bank minus its similarity to the
nearest negative.

Neighbours (``prodseg.workers.match.neighbours``) are what the reference photo shows
besides the product. They change no score: a proposal at least as like a neighbour as
like the bank is that neighbour, and no match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prodseg.workers.ops.ffa import l2_normalize


@dataclass(frozen=True)
class BankParams:
    """When a match joins the bank, and how the bank scores.

    Attributes:
        max_size: most prototypes, the reference included (1: the reference alone).
        add_threshold: the least bank score for a match to become a prototype.
        margin: how far that match must beat the image's best other proposal.
        top_k: score = mean of the ``top_k`` best prototype similarities (1: the best).
        duplicate: a match this similar to a prototype already in the bank adds nothing.
    """

    max_size: int = 8
    add_threshold: float = 0.8
    margin: float = 0.1
    top_k: int = 1
    duplicate: float = 0.97


@dataclass
class PrototypeBank:
    """The reference, the prototypes added so far, and the negatives.

    Args:
        reference: ``(D,)`` the reference's FFA embedding.
        params: bank parameters.
        negatives: ``(M, D)`` embeddings of lookalikes (may be empty).
        neighbours: ``(K, D)`` embeddings of the reference photo's other objects (may be
            empty).
    """

    reference: np.ndarray
    params: BankParams = field(default_factory=BankParams)
    negatives: np.ndarray | None = None
    neighbours: np.ndarray | None = None
    prototypes: list[np.ndarray] = field(init=False)
    sources: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.prototypes = [l2_normalize(self.reference)]
        self.sources = ["reference"]
        if self.negatives is not None and len(self.negatives) == 0:
            self.negatives = None
        if self.neighbours is not None and len(self.neighbours) == 0:
            self.neighbours = None

    def bank_similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N,)`` similarity of each of ``embeddings`` (``(N, D)``) to the bank:
        the mean of its ``top_k`` best cosine similarities to the prototypes."""
        sims = l2_normalize(embeddings) @ np.stack(self.prototypes).T  # (N, K)
        k = min(self.params.top_k, sims.shape[1])
        best = -np.sort(-sims, axis=1)[:, :k]
        return best.mean(axis=1).astype(np.float32)

    def negative_similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N,)`` best cosine similarity to a negative (zeros without negatives)."""
        if self.negatives is None:
            return np.zeros(len(embeddings), dtype=np.float32)
        sims = l2_normalize(embeddings) @ l2_normalize(self.negatives).T  # (N, M)
        return sims.max(axis=1).astype(np.float32)

    def neighbour_vetoed(self, embeddings: np.ndarray, similarity: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: which of ``embeddings`` (``(N, D)``, bank similarity
        ``similarity``) look at least as much like a neighbour as like the bank."""
        if self.neighbours is None:
            return np.zeros(len(embeddings), dtype=bool)
        nearest = (l2_normalize(embeddings) @ l2_normalize(self.neighbours).T).max(axis=1)
        return np.asarray(nearest >= similarity)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N,)`` the match score of each proposal: its bank similarity, minus its
        similarity to the nearest negative when there are negatives."""
        bank = self.bank_similarity(embeddings)
        if self.negatives is None:
            return bank
        return (bank - self.negative_similarity(embeddings)).astype(np.float32)

    def consider(self, embedding: np.ndarray, score: float, runner_up: float,
                 source: str) -> bool:
        """Add a view's best match to the bank if it is unambiguous; True if added.

        The match must look like the bank (its bank similarity at least
        ``add_threshold``: with lookalikes its score is a margin, which would never get
        there), beat the image's best proposal elsewhere by ``margin`` (in score terms),
        add something (no near-copy of a prototype) and be nearer the bank than any
        lookalike.

        Args:
            embedding: ``(D,)`` the match's embedding.
            score: its score (``scores``).
            runner_up: the best score of a proposal elsewhere on the same image (not
                overlapping the match); -1 when there is none.
            source: the image it came from, kept for the record.
        """
        p = self.params
        if len(self.prototypes) >= p.max_size or score - runner_up < p.margin:
            return False
        unit = l2_normalize(embedding)
        similarity = float(self.bank_similarity(unit[None])[0])
        if similarity < p.add_threshold:
            return False
        if max(float(unit @ proto) for proto in self.prototypes) >= p.duplicate:
            return False
        if self.negatives is not None and \
                float(self.negative_similarity(unit[None])[0]) >= similarity:
            return False
        self.prototypes.append(unit)
        self.sources.append(source)
        return True


def score_proposals(embeddings: np.ndarray, bank: PrototypeBank,
                    threshold: float, distractor_margin: float
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """Scores of proposals, what to rank them by, and the threshold that ranking uses.

    Args:
        embeddings: ``(N, D)`` proposals' FFA embeddings.
        bank: the prototypes (the reference alone in a bank of one) and lookalikes.
        threshold: the least similarity to the product (``similarity_threshold``).
        distractor_margin: with negatives, the least margin over the nearest lookalike.

    Returns:
        ``scores`` ``(N,)`` reported per match: cosine similarity to the bank, or with
        negatives the margin over them; ``ranked`` ``(N,)``, the values selection compares
        with the returned threshold (with negatives: the margin, and -inf for proposals
        under ``threshold`` of similarity to the bank; -inf for a neighbour).
    """
    similarity = bank.bank_similarity(embeddings)
    vetoed = bank.neighbour_vetoed(embeddings, similarity)
    if bank.negatives is None:
        return similarity, np.where(vetoed, -np.inf, similarity).astype(np.float32), threshold
    margin = (similarity - bank.negative_similarity(embeddings)).astype(np.float32)
    ranked = np.where((similarity >= threshold) & ~vetoed, margin, -np.inf).astype(np.float32)
    return margin, ranked, distractor_margin


def runner_up(masks: np.ndarray, scores: np.ndarray, best: np.ndarray,
              containment: float) -> float:
    """The best score among proposals elsewhere than ``best``: overlapping it less than
    half (IoU < 0.5) and not nested with it (a part of it, or a whole holding it, is the
    same instance; ``prodseg.workers.match.instances``).

    Args:
        masks: ``(N, H, W)`` bool proposals.
        scores: ``(N,)`` their scores.
        best: ``(H, W)`` bool, the best match's mask.
        containment: intersection over the smaller area from which a proposal is nested
            with ``best`` (``nested_containment``).

    Returns:
        That score, or -1.0 when every proposal overlaps the best one.
    """
    flat = masks.reshape(len(masks), -1)
    b = best.reshape(-1)
    inter = (flat & b).sum(axis=1)
    areas = flat.sum(axis=1)
    union = areas + int(b.sum()) - inter
    smaller = np.minimum(areas, int(b.sum()))
    iou = np.divide(inter, union, out=np.zeros(len(masks)), where=union > 0)
    nested = np.divide(inter, smaller, out=np.zeros(len(masks)), where=smaller > 0)
    others = scores[(iou < 0.5) & (nested < containment)]
    return float(others.max()) if others.size else -1.0
