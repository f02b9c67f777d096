"""The steps of a distributed job on the shared object store: reference, candidates (one
per view, resolved at once unless the bank grows) and results.

These execute the job plan (``plan.job_plan``) with the same step functions as ``prodseg
run`` (``plan.views``); the steps that run once per job in capture order, track and
resolve, are in ``plan.ordered_steps``. Each reads what it needs from storage and writes
its outputs before its bookkeeping record, so a step that runs twice writes the same bytes
and a record's presence means its outputs are complete. The Celery tasks in ``tasks/``
are thin wrappers around these.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.job_spec import ViewPrompts
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, ReferenceResult, results_meta
from prodseg.settings import Settings
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.exports.coco import assemble_coco, reference_coco, target_coco
from prodseg.storage.exports.documents import (
    assemble_results_document,
    image_entry,
    reference_entry,
    write_documents,
    write_reference_outputs,
)
from prodseg.storage.images import read_mask_png
from prodseg.storage.job_state import (
    BANK,
    NEGATIVES,
    NEIGHBOURS,
    PROTOTYPES,
    REFERENCE,
    decode_array,
)
from prodseg.storage.layout import JobLayout
from prodseg.storage.manifest import InputImage, JobManifest
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import ViewCandidates, select_view
from prodseg.workers.match.instances import MaskShape, mask_shape
from prodseg.workers.plan.job_inputs import decide_capture, input_loader, read_input, stored_capture
from prodseg.workers.plan.job_plan import JobPlan
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.plan.propose import segment_reference
from prodseg.workers.plan.view_prompts import prompted_view, prompted_views
from prodseg.workers.plan.views import (
    cutout_alpha,
    load_view,
    view_candidates,
    write_view_outputs,
)

log = logging.getLogger(__name__)


def worker_name() -> str:
    """``host:pid`` of this process, recorded with each target it processed."""
    return f"{socket.gethostname()}:{os.getpid()}"


def reference_step(
    store: ObjectStore, manifest: JobManifest, pipeline: ProductSegmentationPipeline
) -> ReferenceResult:
    """Segment and embed the reference and the views the job prompts; write
    ``reference/``, each prompted view's outputs and record, then the reference's record.

    A view prompted as a reference, or as not the product, is finished here: its models
    run once, and its view step finds it done.

    Raises:
        InputError: the reference image is unreadable or the prompt is unusable; the job
            cannot go on.
    """
    layout = manifest.layout
    state = manifest.state(store)
    ref = manifest.reference
    try:
        image = read_input(store, ref, pipeline.settings)
    except ObjectNotFound as exc:
        raise InputError(f"{ref.source}: reference image not found in storage ({exc})") from None
    prompt = None if manifest.prompt is None else Prompt.from_json(manifest.prompt)
    targets = [(t.image_id, input_loader(store, t, pipeline.settings))
               for t in manifest.images]
    reference = segment_reference(pipeline, image, prompt, ref.image_id, ref.source, targets)
    points = [(x, y) for x, y in manifest.distractors]
    negatives = pipeline.embed_distractors(image, points, ref.source)
    neighbours = pipeline.reference_neighbours(image, reference)
    if neighbours is not None:
        state.put_array(NEIGHBOURS, neighbours)
    write_reference_outputs(store, layout, image, reference, cutout_alpha(manifest.settings))
    meta = pipeline.describe()
    fixed, more = _prompted_views(store, manifest, pipeline)
    stacked = [n for n in (negatives, *more) if n is not None]
    if stacked:
        state.put_array(NEGATIVES, np.concatenate(stacked))
    if fixed:
        state.put_array(PROTOTYPES, np.stack([e for _, e in fixed]))
    coco_image, coco_annotations = reference_coco(reference)
    capture = decide_capture(store, manifest, pipeline.settings,
                             (image.shape[1], image.shape[0]))
    state.put_json(REFERENCE, {
        "entry": reference_entry(reference, layout),
        "coco_image": coco_image,
        "coco_annotations": coco_annotations,
        "meta": meta,
        "capture": capture,
    })
    return reference


def load_fixed_bank(store: ObjectStore, manifest: JobManifest, plan: JobPlan) -> PrototypeBank:
    """The job's fixed bank (``JobPlan.fixed_bank``) as the reference step stored it: the
    reference embedding, the reference views', the lookalikes' as negatives and the
    reference photo's neighbours."""
    embedding = load_reference_embedding(store, manifest)
    state = manifest.state(store)
    views = ViewPrompts.from_json(manifest.views)
    negatives = None
    if manifest.distractors or views.lookalikes:
        negatives = state.get_array(NEGATIVES)
    ids = [t.image_id for t in manifest.images if t.image_id in views.references]
    prototypes = list(state.get_array(PROTOTYPES)) if ids else []
    # absent for a job stored before them
    neighbours = (state.get_array(NEIGHBOURS) if plan.neighbours and state.has(NEIGHBOURS)
                  else None)
    return plan.fixed_bank(embedding, [negatives], list(zip(ids, prototypes, strict=True)),
                           neighbours)


def _prompted_views(
    store: ObjectStore, manifest: JobManifest, pipeline: ProductSegmentationPipeline
) -> tuple[list[tuple[str, np.ndarray]], list[np.ndarray]]:
    """The reference views' embeddings (in target order) and the views' lookalikes
    (``view_prompts.prompted_views``, as ``plan.local_run`` computes them); each view
    prompted as a reference or as not the product is stored as finished."""
    targets = [(t.image_id, t.source, input_loader(store, t, pipeline.settings))
               for t in manifest.images]

    def finish(index: int, result: ImageResult, pixels: np.ndarray) -> None:
        store_result(store, manifest, index, result, pixels)

    return prompted_views(pipeline, ViewPrompts.from_json(manifest.views), targets, finish)


def load_reference_embedding(store: ObjectStore, manifest: JobManifest) -> np.ndarray:
    """The reference's FFA embedding, ``(D,)`` float32, as the reference step stored it."""
    return decode_array(store.get(manifest.layout.reference_embedding))


def load_reference_shape(store: ObjectStore, manifest: JobManifest) -> MaskShape:
    """The shape of the reference mask the reference step stored (``mask_shape``): of
    proposals nested in one another, matching keeps the one closest to it, as in
    ``prodseg run``."""
    return mask_shape(read_mask_png(store.get(manifest.layout.reference_mask)))


def match_step(
    store: ObjectStore,
    manifest: JobManifest,
    index: int,
    pipeline: ProductSegmentationPipeline,
    fixed: PrototypeBank,
    shape: MaskShape,
) -> dict[str, Any]:
    """One view's candidates step, then, unless the bank grows, its resolution.

    Without a growing bank the view is matched against the fixed bank at once and its
    masks, cutouts, thumbnail and record written; with one its candidates are stored for
    the resolve step (``plan.ordered_steps``). A bad image is recorded as an error (the job
    goes on); storage faults propagate (``TransientError``) so the task can retry.

    Args:
        store: the shared store.
        manifest: the job.
        index: position of the target in ``manifest.images``.
        pipeline: the worker's pipeline for the job's settings.
        fixed: the job's fixed bank (``load_fixed_bank``).
        shape: the reference mask's shape (``load_reference_shape``).

    Returns:
        The record written: ``_state/images/<id>.json``, or with a growing bank
        ``_state/candidates/<id>.json``; ``record["status"]`` says how it went.
    """
    target = manifest.images[index]
    plan = JobPlan.of(pipeline.settings)
    views = ViewPrompts.from_json(manifest.views)
    if target.image_id in views.references or target.image_id in views.no_match:
        # The reference step finished it; a redelivered message finds its record.
        record = manifest.state(store).image_record(target.image_id)
        if record is not None:
            return record
        done = prompted_view(pipeline, views, target.image_id, target.source,
                             input_loader(store, target, pipeline.settings))
        assert done is not None and done[0] is not None
        return store_result(store, manifest, index, done[0], done[1])
    image, error = load_view(lambda: read_input(store, target, pipeline.settings),
                             target.source)
    candidates = view_candidates(pipeline, fixed, target.image_id, target.source, image,
                                 error)
    if plan.grows_bank:
        best = candidates.best_score(fixed, plan.select)
        return store_candidates(store, manifest, candidates, best)
    result = select_view(candidates, fixed, plan.select, shape)
    return store_result(store, manifest, index, result, image)


def store_candidates(store: ObjectStore, manifest: JobManifest, candidates: ViewCandidates,
                     best_score: float) -> dict[str, Any]:
    """Write a view's candidates, then their record (its presence means both are whole).

    Args:
        best_score: the view's best candidate against the fixed bank (orders an unordered
            capture); -inf without candidates.
    """
    record = {"status": "error" if candidates.error else "ok", "size": list(candidates.size),
              "best_score": best_score if np.isfinite(best_score) else None,
              "worker": worker_name()}
    manifest.state(store).put_candidates(candidates.image_id, candidates.to_bytes(), record)
    return record


def store_result(store: ObjectStore, manifest: JobManifest, index: int, result: ImageResult,
                 image: np.ndarray | None) -> dict[str, Any]:
    """Write a view's outputs, then its record (``JobState.image_record``)."""
    result = write_view_outputs(store, manifest.layout, manifest.settings, result, image)
    record = result_record(index, result, manifest.layout)
    manifest.state(store).put_image_record(result.image_id, record)
    return record


def result_record(index: int, result: ImageResult, layout: JobLayout) -> dict[str, Any]:
    """A view's record: its ``results.json`` entry and COCO parts, and who made it."""
    coco_image, coco_annotations = target_coco(index, result)
    return {
        "entry": image_entry(result, layout),
        "coco_image": coco_image,
        "coco_annotations": coco_annotations,
        "status": result.status,
        "worker": worker_name(),
    }


def record_failure(store: ObjectStore, manifest: JobManifest, index: int, message: str,
                   settings: Settings) -> dict[str, Any]:
    """Store a view that could not be processed as its step would have: a failed result,
    or, with a growing bank, failed candidates.

    Args:
        manifest: the job.
        index: position of the target in ``manifest.images``.
        message: why, naming the image.
        settings: the job's settings (its plan).
    """
    target = manifest.images[index]
    if JobPlan.of(settings).grows_bank:
        failed = ViewCandidates.failed(target.image_id, target.source, message)
        return store_candidates(store, manifest, failed, float("-inf"))
    return store_result(store, manifest, index, failed_result(target, message), None)


def failed_result(target: InputImage, message: str) -> ImageResult:
    """The result of a view that could not be processed (``message`` names it)."""
    return ImageResult(image_id=target.image_id, source=target.source, status="error",
                       error=message)


def unstored_reason(target: InputImage, why: str) -> str:
    """Why a view has no stored result (``why`` says what can be done about it)."""
    return f"{target.source}: {why}"


def finalize_step(store: ObjectStore, manifest: JobManifest, settings: Settings,
                  unstored: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Assemble ``coco.json``, the gallery and, last, ``results.json`` from the records.

    Args:
        store: the shared store.
        manifest: the job.
        settings: the job's settings (its plan: the capture mode and the bank's record).
        unstored: image id -> why, for targets whose task gave up before it could store
            a record (storage unreachable past the retry budget). Such a target is an
            error in the results, and ``prodseg resume`` runs it again later.

    Returns:
        The ``results.json`` document.
    """
    plan = JobPlan.of(settings)
    state = manifest.state(store)
    ref = state.get_json(REFERENCE)
    records = []
    for index, target in enumerate(manifest.images):
        record = state.image_record(target.image_id)
        if record is not None:
            records.append(record)
        else:
            why = (unstored or {}).get(target.image_id, "no result was stored")
            records.append(result_record(index, failed_result(
                target, unstored_reason(target, why)), manifest.layout))
    entries = [r["entry"] for r in records]
    bank = state.find_json(BANK)  # a grown bank; else the fixed bank's record
    if bank is None:
        bank = plan.bank_record(load_fixed_bank(store, manifest, plan))
    meta = {"job": manifest.job, **results_meta(ref["meta"], stored_capture(ref, plan),
                                                 manifest.video, bank)}
    document = assemble_results_document(ref["entry"], entries, meta)
    coco_images = [ref["coco_image"]] + [r["coco_image"] for r in records if r["coco_image"]]
    annotations = list(ref["coco_annotations"])
    for r in records:
        annotations += r["coco_annotations"]
    write_documents(store, manifest.layout, document, assemble_coco(coco_images, annotations))
    return document
