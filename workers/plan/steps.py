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

import io
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, ReferenceResult
from prodseg.settings import Settings
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.exports.coco import assemble_coco, reference_coco, target_coco
from prodseg.storage.exports.documents import (
    assemble_results_document,
    image_entry,
    reference_entry,
    write_documents,
    write_image_outputs,
    write_reference_outputs,
)
from prodseg.storage.factory import bucket_store
from prodseg.storage.images import decode_image, read_mask_png
from prodseg.storage.layout import JobLayout
from prodseg.storage.manifest import (
    InputImage,
    JobManifest,
    candidates_key,
    get_json,
    image_state_key,
    put_json,
    state_key,
)
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import ViewCandidates, select_view
from prodseg.workers.match.instances import MaskShape, mask_shape
from prodseg.workers.plan.job_plan import JobPlan
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.plan.view_prompts import ViewPrompts, prompted_view
from prodseg.workers.plan.views import cutout_alpha, load_view, view_candidates

log = logging.getLogger(__name__)


def worker_name() -> str:
    """``host:pid`` of this process, recorded with each target it processed."""
    return f"{socket.gethostname()}:{os.getpid()}"


def read_input(store: ObjectStore, image: InputImage, settings: Settings) -> np.ndarray:
    """Decode an input image from the job store or from its own ``s3://`` URL.

    Raises:
        ImageReadError: the bytes are not a usable image (names the source).
        ObjectNotFound: the key does not exist.
    """
    if image.location.startswith("s3://"):
        from prodseg.storage.urls import parse_s3_url

        bucket, key = parse_s3_url(image.location)
        data = bucket_store(bucket, settings).get(key)
    else:
        data = store.get(image.location)
    return decode_image(data, image.source, settings.max_image_pixels)


def reference_step(
    store: ObjectStore, manifest: JobManifest, pipeline: ProductSegmentationPipeline
) -> ReferenceResult:
    """Segment and embed the reference; write ``reference/`` and its record.

    Raises:
        InputError: the reference image is unreadable or the prompt is unusable; the job
            cannot go on.
    """
    layout = manifest.layout
    ref = manifest.reference
    try:
        image = read_input(store, ref, pipeline.settings)
    except KeyError as exc:
        raise InputError(f"{ref.source}: reference image not found in storage ({exc})") from None
    reference = pipeline.segment_reference(image, Prompt.from_json(manifest.prompt),
                                           ref.image_id, ref.source)
    points = [(x, y) for x, y in manifest.distractors]
    negatives = pipeline.embed_distractors(image, points, ref.source)
    neighbours = pipeline.reference_neighbours(image, reference)
    if neighbours is not None:
        _put_array(store, state_key(manifest.job, "neighbours.npy"), neighbours)
    write_reference_outputs(store, layout, image, reference, cutout_alpha(manifest.settings))
    meta = pipeline.describe()
    fixed, more = _prompted_view_embeddings(store, manifest, pipeline)
    stacked = [n for n in (negatives, *more) if n is not None]
    if stacked:
        _put_array(store, state_key(manifest.job, "negatives.npy"), np.concatenate(stacked))
    if fixed:
        _put_array(store, state_key(manifest.job, "prototypes.npy"),
                   np.stack([e for _, e in fixed]))
    coco_image, coco_annotations = reference_coco(reference)
    put_json(store, state_key(manifest.job, "reference.json"), {
        "entry": reference_entry(reference, layout),
        "coco_image": coco_image,
        "coco_annotations": coco_annotations,
        "meta": meta,
    })
    return reference


def load_fixed_bank(store: ObjectStore, manifest: JobManifest, plan: JobPlan) -> PrototypeBank:
    """The job's fixed bank (``JobPlan.fixed_bank``) as the reference step stored it: the
    reference embedding, the reference views', the lookalikes' as negatives and the
    reference photo's neighbours."""
    embedding = load_reference_embedding(store, manifest)
    views = ViewPrompts.from_json(manifest.views)
    negatives = None
    if manifest.distractors or views.lookalikes:
        negatives = _get_array(store, state_key(manifest.job, "negatives.npy"))
    ids = [t.image_id for t in manifest.images if t.image_id in views.references]
    prototypes = (list(_get_array(store, state_key(manifest.job, "prototypes.npy")))
                  if ids else [])
    stored = state_key(manifest.job, "neighbours.npy")  # absent for a job stored before them
    neighbours = (_get_array(store, stored) if plan.neighbours and store.exists(stored)
                  else None)
    return plan.fixed_bank(embedding, [negatives], list(zip(ids, prototypes, strict=True)),
                           neighbours)


def _put_array(store: ObjectStore, key: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32), allow_pickle=False)
    store.put(key, buffer.getvalue())


def _get_array(store: ObjectStore, key: str) -> np.ndarray:
    return np.asarray(np.load(io.BytesIO(store.get(key)), allow_pickle=False),
                      dtype=np.float32)


def _prompted_view_embeddings(
    store: ObjectStore, manifest: JobManifest, pipeline: ProductSegmentationPipeline
) -> tuple[list[tuple[str, np.ndarray]], list[np.ndarray]]:
    """The reference views' embeddings (in target order) and the views' lookalikes, as
    ``plan.local_run`` computes them before any view is matched."""
    views = ViewPrompts.from_json(manifest.views)
    fixed: list[tuple[str, np.ndarray]] = []
    negatives: list[np.ndarray] = []
    for target in manifest.images:
        if target.image_id not in views.references and target.image_id not in views.lookalikes:
            continue
        done = prompted_view(pipeline, views, target.image_id, target.source,
                             _input_loader(store, target, pipeline.settings))
        assert done is not None
        _, _, embedding, lookalikes = done
        if embedding is not None:
            fixed.append((target.image_id, embedding))
        if lookalikes is not None:
            negatives.append(lookalikes)
    return fixed, negatives


def _input_loader(store: ObjectStore, target: InputImage,
                  settings: Settings) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            return read_input(store, target, settings)
        except KeyError as exc:
            raise InputError(f"{target.source}: image not found in storage ({exc})") from None

    return load


def load_reference_embedding(store: ObjectStore, manifest: JobManifest) -> np.ndarray:
    """The reference's FFA embedding, ``(D,)`` float32, as the reference step stored it."""
    data = store.get(manifest.layout.reference_embedding)
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False), dtype=np.float32)


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
        # A view the job prompts is done here, with or without a growing bank.
        done = prompted_view(pipeline, views, target.image_id, target.source,
                             _input_loader(store, target, pipeline.settings))
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
    store.put(candidates_key(manifest.job, candidates.image_id, "bin"), candidates.to_bytes())
    record = {"status": "error" if candidates.error else "ok", "size": list(candidates.size),
              "best_score": best_score if np.isfinite(best_score) else None,
              "worker": worker_name()}
    put_json(store, candidates_key(manifest.job, candidates.image_id, "json"), record)
    return record


def store_result(store: ObjectStore, manifest: JobManifest, index: int, result: ImageResult,
                 image: np.ndarray | None) -> dict[str, Any]:
    """Write a view's outputs, then its record ``_state/images/<id>.json``."""
    write_image_outputs(store, manifest.layout, image if result.status == "ok" else None,
                        result, cutout_alpha(manifest.settings))
    record = result_record(index, result, manifest.layout)
    put_json(store, image_state_key(manifest.job, result.image_id), record)
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


def resume_hint(manifest: JobManifest, target: InputImage, why: str) -> str:
    """Why a view has no stored result, and how to process it again."""
    return (f"{target.source}: {why}; run `prodseg resume {manifest.job}` to process it "
            "again")


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
    ref = get_json(store, state_key(manifest.job, "reference.json"))
    records = []
    for index, target in enumerate(manifest.images):
        try:
            records.append(get_json(store, image_state_key(manifest.job, target.image_id)))
        except ObjectNotFound:
            why = (unstored or {}).get(target.image_id, "no result was stored")
            records.append(result_record(index, failed_result(
                target, resume_hint(manifest, target, why)), manifest.layout))
    entries = [r["entry"] for r in records]
    meta = {"job": manifest.job, **ref["meta"]}
    meta["capture"] = plan.capture_of(
        (ref["entry"]["source"], (ref["entry"]["width"], ref["entry"]["height"])),
        [(e["source"], (e["width"], e["height"])) for e in entries])
    try:
        meta["prototype_bank"] = get_json(store, state_key(manifest.job, "bank.json"))
    except ObjectNotFound:
        fixed = load_fixed_bank(store, manifest, plan)
        bank = plan.bank_record(fixed)
        if bank is not None:
            meta["prototype_bank"] = bank
    document = assemble_results_document(ref["entry"], entries, meta)
    coco_images = [ref["coco_image"]] + [r["coco_image"] for r in records if r["coco_image"]]
    annotations = list(ref["coco_annotations"])
    for r in records:
        annotations += r["coco_annotations"]
    write_documents(store, manifest.layout, document, assemble_coco(coco_images, annotations))
    return document
