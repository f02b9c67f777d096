"""One job plan for both modes: which steps a job takes, and the steps' shared logic.

A job's steps follow from its settings alone, the same for ``prodseg run`` (executed in
one process by ``plan.local_run``) and for a distributed job (executed by the Celery
tasks through ``plan.steps``):

1. **reference**: the click segmented and embedded, and the lookalikes; together the
   *fixed bank* (a bank of one, minus lookalikes).
2. **track** (``propagation=track`` on a spin): the product followed around the spin;
   each verified view is done (``found_by: "tracked"``).
3. **candidates**, per remaining view: proposals and their FFA embeddings, computed
   once. Guided prompting falls back to the full grid when no guided proposal passes
   against the fixed bank, so a view's candidates never depend on another view.
4. **resolve**: the candidates scored against the bank and matched. When the bank grows
   (``bank_size > 1``) the views are resolved one after another in capture order, each
   match perhaps adding a prototype for the next (``resolve_in_order``); otherwise
   each view is resolved as soon as its candidates exist.
5. **results**: ``results.json`` and the other documents, with the capture mode and the
   bank's members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from prodseg.results import ImageResult
from prodseg.settings import Settings
from prodseg.workers.capture.order import detect_capture, visit_order
from prodseg.workers.match.bank import BankParams, PrototypeBank
from prodseg.workers.match.candidates import SelectParams, ViewCandidates, select_view
from prodseg.workers.match.instances import MaskShape
from prodseg.workers.ops.ffa import l2_normalize


@dataclass(frozen=True)
class JobPlan:
    """The steps of one job and their parameters.

    Attributes:
        grows_bank: views are resolved in capture order, growing the prototype bank.
        tracks: a spin is tracked before its views are matched.
        neighbours: the reference step also embeds the reference photo's other objects,
            which the fixed bank holds as neighbours.
        capture: the capture setting (``auto`` is resolved by ``capture_of``).
        bank: when a match joins the bank, and how the bank scores.
        select: threshold, lookalike margin, NMS, top-K and nesting.
    """

    grows_bank: bool
    tracks: bool
    neighbours: bool
    capture: str
    bank: BankParams
    select: SelectParams

    @classmethod
    def of(cls, settings: Settings) -> JobPlan:
        """The plan of a job with these settings."""
        s = settings
        return cls(
            grows_bank=s.bank_size > 1,
            tracks=s.propagation == "track",
            neighbours=s.reference_neighbours,
            capture=s.capture,
            bank=BankParams(s.bank_size, s.bank_add_threshold, s.bank_margin, s.bank_top_k),
            select=SelectParams(s.similarity_threshold, s.distractor_margin,
                                s.nms_iou_threshold, s.top_k_matches, s.nested_containment,
                                s.similarity_threshold if s.instance_similarity is None
                                else s.instance_similarity),
        )

    @classmethod
    def of_manifest(cls, job_settings: Mapping[str, Any]) -> JobPlan:
        """The plan of a stored job, from its manifest's settings (job settings only)."""
        from prodseg.settings import JOB_SETTINGS, load_settings

        return cls.of(load_settings(**{k: v for k, v in job_settings.items()
                                       if k in JOB_SETTINGS}))

    def fixed_bank(self, reference: np.ndarray, negatives: Sequence[np.ndarray | None] = (),
                   references: Sequence[tuple[str, np.ndarray]] = (),
                   neighbours: np.ndarray | None = None) -> PrototypeBank:
        """The bank before any view is matched.

        Args:
            reference: ``(D,)`` the clicked reference's embedding.
            negatives: ``(M, D)`` lookalike embeddings, one array per view clicked on (None
                or empty for none); all become the bank's negatives.
            references: ``(image id, (D,) embedding)`` of the views the job prompts as
                references too: fixed prototypes, which a growing bank's ``bank_size``
                does not count.
            neighbours: ``(K, D)`` the reference photo's other objects
                (``ProductSegmentationPipeline.reference_neighbours``), or None.
        """
        stacked = [np.asarray(n, dtype=np.float32) for n in negatives
                   if n is not None and len(n)]
        params = replace(self.bank, max_size=self.bank.max_size + len(references))
        bank = PrototypeBank(reference, params, np.concatenate(stacked) if stacked else None,
                             neighbours)
        for image_id, embedding in references:
            bank.prototypes.append(l2_normalize(np.asarray(embedding, dtype=np.float32)))
            bank.sources.append(image_id)
        return bank

    def capture_of(self, reference: tuple[str, tuple[int, int]], targets: Sequence[str],
                   sizes: Callable[[], Sequence[tuple[int, int]]]) -> str:
        """The capture mode, decided once per job by the reference step of either
        executor and stored with the reference: the setting, or for ``auto`` what the
        images are (``capture.order.detect_capture``).

        Args:
            reference: the reference's source and decoded ``(width, height)``.
            targets: each target's source, in job order.
            sizes: each target's displayed ``(width, height)`` (``(0, 0)`` if unreadable);
                called only for ``auto``.
        """
        if self.capture != "auto":
            return self.capture
        paths, target_sizes = [Path(t) for t in targets], list(sizes())
        if target_sizes and detect_capture(paths, target_sizes) == "panorama":
            return "panorama"
        return detect_capture([Path(reference[0]), *paths], [reference[1], *target_sizes])

    def visit_order(self, capture: str, reference: str, sources: Sequence[str],
                    best_scores: Sequence[float]) -> list[int]:
        """In which order a growing bank resolves the views of ``sources``: on a spin
        outward from the reference by file name, on an unordered set the most product-like
        first (``best_scores``: each view's best candidate against the fixed bank, so no
        extra model pass), otherwise as given."""
        return visit_order(capture, Path(reference), [Path(v) for v in sources],
                           lambda: best_scores)

    def bank_record(self, bank: PrototypeBank) -> dict[str, object] | None:
        """What ``results.json`` says of the bank: its members and how many lookalikes;
        None for the reference alone, not growing, without lookalikes."""
        distractors = 0 if bank.negatives is None else len(bank.negatives)
        if not self.grows_bank and distractors == 0 and len(bank.sources) == 1:
            return None
        neighbours = 0 if bank.neighbours is None else len(bank.neighbours)
        return {"prototypes": list(bank.sources), "distractors": distractors,
                "neighbours": neighbours}


def resolve_in_order(view: Callable[[int], ViewCandidates], order: Sequence[int],
                     bank: PrototypeBank, select: SelectParams, shape: MaskShape
                     ) -> Iterator[tuple[int, ImageResult]]:
    """Each view's result, in ``order``, the bank growing from each unambiguous match.

    Args:
        view: the candidates of view ``i`` (read as the resolution reaches it, so only
            one view's masks are unpacked at a time).
        order: the views' indices, in visit order.
        bank: grown in place (a bank of ``max_size`` 1 never grows).
        select: threshold, lookalike margin, NMS, top-K and nesting.
        shape: the reference mask's shape.

    Yields:
        ``(index, result)``.
    """
    for index in order:
        result = select_view(view(index), bank, select, shape)
        if result.matches:
            best = result.matches[0]
            if best.embedding is not None:
                bank.consider(best.embedding, best.score, result.runner_up_score,
                              result.image_id)
        yield index, result
