"""How ``prodseg run`` executes a job in one process: the views in capture order.

The reference first (its mask, embedding and lookalikes), then the targets: the spin's
tracked views when tracking is on, then every other view, in visit order when a
prototype bank grows (each match may add a prototype for the next view), else in batches
whose whole-image DINOv2 passes run together. Outputs go to the store as each view is
done and ``results.json`` last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prodseg.errors import InputError
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, JobResult
from prodseg.storage.base import ObjectStore
from prodseg.storage.images import read_image_file
from prodseg.storage.layout import JobLayout
from prodseg.workers.capture.order import resolve_capture, visit_order
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.instances import MaskShape, mask_shape
from prodseg.workers.plan.view_prompts import (
    ViewPrompts,
    fixed_bank,
    not_here_result,
    reference_view_result,
    view_negatives,
)
from prodseg.workers.segment.guided import similarity_map

if TYPE_CHECKING:
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

log = logging.getLogger(__name__)


def execute_run(pipeline: ProductSegmentationPipeline, prompt: Prompt, ref_path: Path,
                ref_image: np.ndarray, targets: list[Path], ids: list[str],
                store: ObjectStore | None, layout: JobLayout,
                on_image: Callable[[ImageResult], None] | None,
                distractor_points: Sequence[tuple[float, float]],
                output_dir: Path | None, views: ViewPrompts | None = None) -> JobResult:
    """``ProductSegmentationPipeline.run`` once its inputs are checked and its output
    directory is held: the reference and the reference views, then every other target
    in capture order."""
    from prodseg.storage.exports import documents as exports

    s = pipeline.settings
    views = views or ViewPrompts()
    reference = pipeline.segment_reference(ref_image, prompt, ids[0], str(ref_path))
    negatives = pipeline.embed_distractors(ref_image, distractor_points, str(ref_path))
    shape = mask_shape(reference.mask)
    if store is not None:
        exports.write_reference_outputs(store, layout, ref_image, reference)
    del ref_image

    capture = resolve_capture(s.capture, ref_path, targets)
    pairs = list(zip(ids[1:], targets, strict=True))
    found, fixed, more_negatives = _prompted_views(pipeline, views, pairs, store, layout)
    for result in found.values():
        if on_image is not None:
            on_image(result)
    bank = None
    order, step = [i for i in range(len(targets)) if i not in found], s.image_batch_size
    if s.bank_size > 1 or negatives is not None or fixed or more_negatives:
        bank = fixed_bank(reference.embedding, s, fixed, [negatives, *more_negatives])
        ordered = visit_order(capture, ref_path, targets,
                              lambda p: _peak_similarity(pipeline, p, reference.embedding))
        order = [i for i in ordered if i not in found]
        step = 1  # each view may add a prototype for the next
    if s.propagation == "track" and capture == "spin":
        tracked = _tracked(pipeline, ref_path, prompt, reference.embedding, bank,
                           [pairs[i] for i in order], shape)
        tracked = {order[k]: r for k, r in tracked.items()}
        found.update(tracked)
        order = [i for i in order if i not in found]
        for result in tracked.values():
            if store is not None:
                pixels = read_image_file(Path(result.source), s.max_image_pixels,
                                         s.max_image_bytes)
                exports.write_image_outputs(store, layout, pixels, result)
            if on_image is not None:
                on_image(result)
    for start in range(0, len(order), step):
        chunk = order[start : start + step]
        batch = [pairs[i] for i in chunk]
        for k, (result, image) in zip(chunk, _process_targets(pipeline,
                batch, bank if bank is not None else reference.embedding, shape),
                strict=True):
            if store is not None and image is not None:
                exports.write_image_outputs(store, layout, image, result)
            found[k] = result
            if bank is not None and result.matches:
                best = result.matches[0]
                if best.embedding is not None:
                    bank.consider(best.embedding, best.score, result.runner_up_score,
                                  result.image_id)
            if on_image is not None:
                on_image(result)
    results = [found[i] for i in range(len(pairs))]
    meta = pipeline.describe()
    meta["capture"] = capture
    if bank is not None:
        meta["prototype_bank"] = {"prototypes": bank.sources,
                                  "distractors": len(distractor_points)}
    if store is not None:
        exports.write_job_documents(store, layout, reference, results, meta)
    return JobResult(reference, results, meta, output_dir)


def _prompted_views(
    pipeline: ProductSegmentationPipeline, views: ViewPrompts, pairs: list[tuple[str, Path]],
    store: ObjectStore | None, layout: JobLayout,
) -> tuple[dict[int, ImageResult], list[tuple[str, np.ndarray]], list[np.ndarray]]:
    """The views the job prompts: reference views and views forced to no match, done
    (their outputs written); the reference views' embeddings; the views' lookalikes."""
    from prodseg.storage.exports import documents as exports

    s = pipeline.settings
    done: dict[int, ImageResult] = {}
    fixed: list[tuple[str, np.ndarray]] = []
    negatives: list[np.ndarray] = []
    for index, (image_id, path) in enumerate(pairs):
        named = image_id in views.references or image_id in views.no_match
        if not named and image_id not in views.lookalikes:
            continue
        pixels = read_image_file(path, s.max_image_pixels, s.max_image_bytes)
        views.validate(image_id, pixels.shape[1], pixels.shape[0], str(path))
        found = view_negatives(pipeline, pixels, views.lookalikes.get(image_id, ()), str(path))
        if found is not None:
            negatives.append(found)
        if image_id in views.references:
            result = reference_view_result(pipeline, pixels, views.references[image_id],
                                           image_id, str(path))
            embedding = result.matches[0].embedding
            assert embedding is not None
            fixed.append((image_id, embedding))
        elif image_id in views.no_match:
            result = not_here_result(image_id, str(path), pixels.shape[1], pixels.shape[0])
        else:
            continue
        done[index] = result
        if store is not None:
            exports.write_image_outputs(store, layout, pixels, result)
    return done, fixed, negatives


def _tracked(pipeline: ProductSegmentationPipeline, reference: Path, prompt: Prompt,
             embedding: np.ndarray, bank: PrototypeBank | None,
             pairs: list[tuple[str, Path]], shape: MaskShape) -> dict[int, ImageResult]:
    """The spin's views whose tracked mask was accepted (``prodseg.workers.capture.spin``)."""
    from prodseg.workers.capture.spin import build_tracker, tracked_results

    vectors = np.stack(bank.prototypes) if bank is not None else embedding[None]
    return tracked_results(pipeline.settings, pipeline.embedder,
                           build_tracker(pipeline.settings), reference, prompt, vectors,
                           pairs, pipeline.segmenter, shape)


def _peak_similarity(pipeline: ProductSegmentationPipeline, path: Path,
                     embedding: np.ndarray) -> float:
    """How much a target looks like the reference: its best patch similarity."""
    try:
        image = read_image_file(path, pipeline.settings.max_image_pixels,
                                pipeline.settings.max_image_bytes)
    except InputError:
        return -np.inf  # reported when it is processed
    return float(similarity_map(pipeline.embedder.image_tokens(image), embedding).max())


def _process_targets(
    pipeline: ProductSegmentationPipeline, batch: list[tuple[str, Path]],
    embedding: np.ndarray | PrototypeBank, shape: MaskShape,
) -> Iterator[tuple[ImageResult, np.ndarray | None]]:
    """Targets' results and pixels, failures recorded instead of raised.

    The whole-image DINOv2 passes of the batch run together when the settings use
    them (full embedding mode, guided prompting) and the batch has several images.
    """
    loaded: list[tuple[str, Path, np.ndarray | None, str | None]] = []
    for image_id, path in batch:
        try:
            image = read_image_file(path, pipeline.settings.max_image_pixels,
                                    pipeline.settings.max_image_bytes)
            loaded.append((image_id, path, image, None))
        except InputError as exc:
            loaded.append((image_id, path, None, str(exc)))
    tokens = iter(_batch_tokens(pipeline, [im for _, _, im, _ in loaded if im is not None]))
    for image_id, path, pixels, error in loaded:
        if pixels is not None:
            try:
                found = pipeline.match_image(pixels, embedding, image_id, str(path),
                                             next(tokens), shape=shape)
            except Exception as exc:  # a model failure on one image must not end the job
                log.exception("processing %s failed", path)
                error = f"{path}: {type(exc).__name__}: {exc}"
            else:
                yield found, pixels
                continue
        yield ImageResult(image_id=image_id, source=str(path), status="error",
                          error=error), None


def _batch_tokens(pipeline: ProductSegmentationPipeline,
                  images: list[np.ndarray]) -> list[np.ndarray | None]:
    """Whole-image patch grids computed as one batch, or None each (computed later)."""
    s = pipeline.settings
    uses_tokens = s.embedding_mode == "full" or s.proposals == "guided"
    if len(images) < 2 or not uses_tokens:
        return [None] * len(images)
    embedder = pipeline.embedder
    try:
        return list(embedder.image_tokens_batch(images))
    except Exception:  # e.g. out of memory: each image then tries on its own
        log.exception("batched DINOv2 pass failed; embedding images one at a time")
        return [None] * len(images)
