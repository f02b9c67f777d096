"""How ``prodseg run`` executes the job plan (``plan.job_plan``) in one process.

The reference first (its mask, embedding and lookalikes), then the spin tracked when
tracking is on, then every other view's candidates, in batches whose whole-image DINOv2
passes run together. Without a growing bank each view is resolved as soon as its
candidates exist; with one, every view's candidates are kept (bit-packed) and resolved
in capture order, each reading its image again only to write its cutouts. Outputs go to
the store as each view is done and ``results.json`` last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prodseg.prompts import Prompt
from prodseg.results import ImageResult, JobResult
from prodseg.storage.base import ObjectStore
from prodseg.storage.images import read_image_file
from prodseg.storage.layout import JobLayout
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import ViewCandidates, select_view
from prodseg.workers.match.instances import mask_shape
from prodseg.workers.plan.job_plan import JobPlan, resolve_in_order
from prodseg.workers.plan.view_prompts import ViewPrompts, prompted_view
from prodseg.workers.plan.views import (
    Loader,
    cutout_alpha,
    load_view,
    track_spin,
    view_candidates,
)

if TYPE_CHECKING:
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

log = logging.getLogger(__name__)


def execute_run(pipeline: ProductSegmentationPipeline, prompt: Prompt, ref_path: Path,
                ref_image: np.ndarray, targets: list[Path], ids: list[str],
                store: ObjectStore | None, layout: JobLayout,
                on_image: Callable[[ImageResult], None] | None,
                distractor_points: Sequence[tuple[float, float]],
                output_dir: Path | None, prompted: ViewPrompts | None = None) -> JobResult:
    """``ProductSegmentationPipeline.run`` once its inputs are checked and its output
    directory is held: the job plan's steps, in this process."""
    from prodseg.storage.exports import documents as exports

    s = pipeline.settings
    plan = JobPlan.of(s)
    prompted = prompted or ViewPrompts()
    reference = pipeline.segment_reference(ref_image, prompt, ids[0], str(ref_path))
    negatives = pipeline.embed_distractors(ref_image, distractor_points, str(ref_path))
    neighbours = pipeline.reference_neighbours(ref_image, reference)
    shape = mask_shape(reference.mask)
    if store is not None:
        exports.write_reference_outputs(store, layout, ref_image, reference,
                                        cutout_alpha(s))

    def loader(path: Path) -> Loader:
        return lambda: read_image_file(path, s.max_image_pixels, s.max_image_bytes)

    views = [(image_id, str(path), loader(path))
             for image_id, path in zip(ids[1:], targets, strict=True)]
    found: dict[int, ImageResult] = {}

    def finish(index: int, result: ImageResult, image: np.ndarray | None) -> None:
        if store is not None and image is not None:
            exports.write_image_outputs(store, layout, image, result, cutout_alpha(s))
        found[index] = result
        if on_image is not None:
            on_image(result)

    # Views the job prompts are done first: their embeddings and lookalikes join the bank.
    refs, more = [], []
    for index, (image_id, source, load) in enumerate(views):
        done = prompted_view(pipeline, prompted, image_id, source, load)
        if done is not None:
            result, pixels, embedding, lookalikes = done
            if embedding is not None:
                refs.append((image_id, embedding))
            if lookalikes is not None:
                more.append(lookalikes)
            if result is not None:
                finish(index, result, pixels)
    fixed = plan.fixed_bank(reference.embedding, [negatives, *more], refs, neighbours)
    views_left = [k for k in range(len(views)) if k not in found]

    if plan.tracks:
        tracked = track_spin(pipeline, plan, prompt, fixed, shape, (str(ref_path), ref_image),
                             [views[k] for k in views_left])
        for k, result in tracked.results.items():
            finish(views_left[k], result, tracked.images[k])
    del ref_image

    kept: dict[int, KeptView] = {}  # with a growing bank: resolved below, in capture order
    remaining = [k for k in range(len(views)) if k not in found]
    step = max(1, s.image_batch_size)
    for start in range(0, len(remaining), step):
        batch = remaining[start : start + step]
        for index, candidates, image in _candidates(pipeline, fixed, views, batch):
            if plan.grows_bank:
                kept[index] = KeptView(candidates.to_bytes(), candidates.size,
                                       candidates.best_score(fixed, plan.select))
            else:
                finish(index, select_view(candidates, fixed, plan.select, shape), image)

    bank = fixed
    if kept:
        bank = plan.fixed_bank(reference.embedding, [negatives, *more], refs, neighbours)
        sizes = {k: v.size for k, v in kept.items()} | {
            k: (r.width, r.height) for k, r in found.items()}
        capture = plan.capture_of((str(ref_path), (reference.width, reference.height)),
                                  [(views[k][1], sizes[k]) for k in range(len(views))])
        order = list(kept)
        ranked = plan.visit_order(capture, str(ref_path), [views[k][1] for k in order],
                                  [kept[k].best_score for k in order])

        def unpacked(position: int) -> ViewCandidates:
            return ViewCandidates.from_bytes(kept[order[position]].blob)

        for position, result in resolve_in_order(unpacked, ranked, bank, plan.select, shape):
            index = order[position]
            image = None
            if result.status == "ok" and store is not None:  # for the cutouts
                image = load_view(views[index][2], views[index][1])[0]
            finish(index, result, image)
    results = [found[i] for i in range(len(views))]
    meta = pipeline.describe()
    meta["capture"] = plan.capture_of(
        (str(ref_path), (reference.width, reference.height)),
        [(r.source, (r.width, r.height)) for r in results])
    record = plan.bank_record(bank)
    if record is not None:
        meta["prototype_bank"] = record
    if store is not None:
        exports.write_job_documents(store, layout, reference, results, meta)
    return JobResult(reference, results, meta, output_dir)


@dataclass(frozen=True)
class KeptView:
    """A view's candidates kept for a growing bank: ``ViewCandidates.to_bytes`` (masks
    bit-packed, as a distributed job stores them), its size and best fixed score."""

    blob: bytes
    size: tuple[int, int]
    best_score: float


def _candidates(pipeline: ProductSegmentationPipeline, fixed: PrototypeBank,
                views: Sequence[tuple[str, str, Loader]], batch: Sequence[int]
                ) -> Iterator[tuple[int, ViewCandidates, np.ndarray | None]]:
    """``(index, candidates, pixels or None)`` of a batch of views, whose whole-image
    DINOv2 passes run together when the settings use them (full embedding mode, guided
    prompting) and the batch has several images."""
    loaded = [(k, *load_view(views[k][2], views[k][1])) for k in batch]
    tokens = iter(_batch_tokens(pipeline, [im for _, im, _ in loaded if im is not None]))
    for index, image, error in loaded:
        image_id, source, _ = views[index]
        grid = next(tokens) if image is not None else None
        yield index, view_candidates(pipeline, fixed, image_id, source, image, error,
                                     grid), image


def _batch_tokens(pipeline: ProductSegmentationPipeline,
                  images: list[np.ndarray]) -> list[np.ndarray | None]:
    """Whole-image patch grids computed as one batch, or None each (computed later)."""
    if len(images) < 2 or not pipeline.uses_image_tokens:
        return [None] * len(images)
    embedder = pipeline.embedder
    try:
        return list(embedder.image_tokens_batch(images))
    except Exception:  # e.g. out of memory: each image then tries on its own
        log.exception("batched DINOv2 pass failed; embedding images one at a time")
        return [None] * len(images)
