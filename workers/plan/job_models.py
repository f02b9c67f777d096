"""What the steps of a job ask of its models: the ``JobModels`` protocol.

``ProductSegmentationPipeline`` (``plan.pipeline``) is the implementation; the steps
(``plan.local_run``, ``plan.views``, ``plan.view_prompts``) are written against this
protocol, so they do not import the pipeline that runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from prodseg.prompts import Prompt
from prodseg.results import ReferenceResult
from prodseg.settings import Settings
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import ViewCandidates
from prodseg.workers.segment.protocol import Segmenter


class JobModels(Protocol):
    """A job's settings and models, and the model steps every executor calls."""

    settings: Settings

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter (built on first use)."""

    @property
    def embedder(self) -> FFAEmbedder:
        """The FFA embedder (built on first use)."""

    @property
    def uses_image_tokens(self) -> bool:
        """Whether views batched together share one whole-image pass."""

    def describe(self) -> dict[str, object]:
        """Models, weights and settings, as recorded in ``results.json``."""

    def segment_reference(self, image: np.ndarray, prompt: Prompt, image_id: str,
                          source: str) -> ReferenceResult:
        """The clicked product on ``(H, W, 3)`` uint8 ``image``, segmented and embedded."""

    def embed_distractors(self, image: np.ndarray, points: Sequence[tuple[float, float]],
                          source: str) -> np.ndarray | None:
        """``(M, D)`` embeddings of the lookalikes clicked on ``image``, or None."""

    def reference_neighbours(self, image: np.ndarray,
                             reference: ReferenceResult) -> np.ndarray | None:
        """``(K, D)`` embeddings of the reference photo's other objects, or None."""

    def view_candidates(self, image: np.ndarray, fixed: PrototypeBank, image_id: str,
                        source: str, tokens: np.ndarray | None = None) -> ViewCandidates:
        """One view's proposals and their FFA embeddings."""
