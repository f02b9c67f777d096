"""Spin sets tracked instead of searched: the verified track's masks become results.

With ``propagation=track`` on a spin capture, the product is followed through the views
in order from the reference click (``prodseg.workers.capture.tracking``): SAM2's video predictor, or
the contour tracker with the classic backend. Every tracked mask is verified against the
product's embeddings; a view whose mask is accepted gets it as its match (``found_by:
"tracked"``), and the views where the track was lost or rejected are matched as usual.
A tracker may follow a part of the product (a panel of a carton turned away); the
segmenter's masks at a point inside the tracked mask then give the whole, chosen by the
matching's nested-instance rule (``prodseg.workers.match.instances``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prodseg.prompts import Prompt
from prodseg.results import ImageResult, Match
from prodseg.settings import Settings
from prodseg.workers.capture.order import natural_key
from prodseg.workers.capture.sam2_video import Sam2VideoTracker
from prodseg.workers.capture.tracking import Tracker, propagate
from prodseg.workers.classic.tracker import ContourTracker
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.match.instances import MaskShape, interior_point, whole_of
from prodseg.workers.ops.masks import area_filter, mask_to_box
from prodseg.workers.segment.protocol import Segmenter

log = logging.getLogger(__name__)


def build_tracker(settings: Settings) -> Tracker:
    """SAM2's video predictor for the SAM2 backend, the contour tracker for ``classic``."""
    if settings.backend == "classic":
        return ContourTracker()
    from prodseg.workers.models.builders import resolve_device

    return Sam2VideoTracker.build(settings.sam2_checkpoint, settings.weights,
                                  settings.model_cache_dir, str(resolve_device(settings.device)),
                                  settings.seed)


def settle(segmenter: Segmenter, frame: np.ndarray, mask: np.ndarray, settings: Settings,
           shape: MaskShape) -> tuple[np.ndarray, int]:
    """The mask standing for a tracked mask's instance, and how many masks it absorbed.

    Args:
        segmenter: gives the candidate masks at a point inside ``mask``.
        frame: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool, the tracked mask.
        settings: area limits of proposals and ``nested_containment``.
        shape: the reference mask's shape.

    Returns:
        ``mask`` and 0, or the segmenter's whole holding it and 1.
    """
    point = np.asarray([interior_point(mask)], dtype=np.float64)
    candidates = segmenter.propose_at(frame, point, np.zeros((0, 2))).masks
    candidates = candidates[area_filter(candidates, settings.min_mask_area_ratio,
                                        settings.max_mask_area_ratio)]
    kept = whole_of(mask, candidates, settings.nested_containment, shape)
    return (mask, 0) if kept == 0 else (candidates[kept - 1], 1)


@dataclass(frozen=True)
class Frame:
    """One decoded view of the spin, in file-name order.

    Attributes:
        index: the target's index in the job, -1 for the reference.
        image_id: its id within the job.
        source: where it came from.
        image: ``(H, W, 3)`` uint8 RGB.
    """

    index: int
    image_id: str
    source: str
    image: np.ndarray


def spin_sequence(reference: str, targets: Sequence[str]) -> list[int]:
    """The spin's views in file-name order: indices into ``targets``, -1 for the
    reference."""
    items = [(-1, reference), *enumerate(targets)]
    return [i for i, _ in sorted(items, key=lambda item: natural_key(Path(item[1])))]


def tracked_results(settings: Settings, embedder: FFAEmbedder, tracker: Tracker,
                    prompt: Prompt, bank: np.ndarray, frames: Sequence[Frame],
                    segmenter: Segmenter, shape: MaskShape) -> dict[int, ImageResult]:
    """Results for the targets whose tracked mask was accepted, by target index.

    Args:
        settings: the run's settings (``similarity_threshold`` is the acceptance bar).
        embedder: the FFA embedder.
        tracker: follows the product from frame to frame.
        prompt: the click, in the reference's pixels.
        bank: ``(K, D)`` the product's embeddings (the reference's, at least).
        frames: the readable views in ``spin_sequence`` order, the reference among them;
            unreadable ones are left out and left to the normal path, which reports them.
        segmenter: the run's segmenter, for the whole of a tracked part (``settle``).
        shape: the reference mask's shape.

    Returns:
        Accepted targets only.
    """
    images = [f.image for f in frames]
    ref_index = next(k for k, f in enumerate(frames) if f.index < 0)
    views = propagate(images, ref_index, prompt, tracker, embedder, bank,
                      settings.similarity_threshold,
                      step_threshold=settings.propagation_step_threshold)
    out: dict[int, ImageResult] = {}
    for view in views:
        frame = frames[view.index]
        if frame.index < 0 or not view.accepted or view.mask is None:
            continue
        h, w = frame.image.shape[:2]
        mask, absorbed = settle(segmenter, frame.image, view.mask, settings, shape)
        match = Match(mask=mask, bbox=mask_to_box(mask), score=view.score, absorbed=absorbed)
        out[frame.index] = ImageResult(image_id=frame.image_id, source=frame.source, width=w,
                                       height=h, matches=[match], num_proposals=1,
                                       found_by="tracked")
    log.info("tracking accepted %d of %d views", len(out), len(frames) - 1)
    return out
