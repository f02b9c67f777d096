"""The three steps of a distributed job, on the shared object store.

Each step reads what it needs from storage, calls the same pipeline methods and export
functions as ``prodseg run``, and writes its outputs before its bookkeeping record, so a
step that runs twice writes the same bytes and a record's presence means its outputs
are complete. The Celery tasks in ``tasks/`` are thin wrappers around these.
"""

from __future__ import annotations

import io
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

import numpy as np

from prodseg.errors import InputError, TransientError
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
from prodseg.storage.manifest import (
    InputImage,
    JobManifest,
    get_json,
    image_state_key,
    put_json,
    state_key,
)
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.instances import MaskShape, mask_shape
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.plan.view_prompts import (
    ViewPrompts,
    fixed_bank,
    not_here_result,
    reference_view_result,
    view_negatives,
)

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
    write_reference_outputs(store, layout, image, reference)
    meta = pipeline.describe()
    fixed, more = _prompted_view_embeddings(store, manifest, pipeline)
    stacked = [n for n in (negatives, *more) if n is not None]
    if stacked:
        _put_array(store, state_key(manifest.job, "negatives.npy"), np.concatenate(stacked))
    if fixed:
        _put_array(store, state_key(manifest.job, "prototypes.npy"),
                   np.stack([e for _, e in fixed]))
    if stacked or fixed:
        meta["prototype_bank"] = {"prototypes": ["reference", *(i for i, _ in fixed)],
                                  "distractors": sum(len(n) for n in stacked)}
    coco_image, coco_annotations = reference_coco(reference)
    put_json(store, state_key(manifest.job, "reference.json"), {
        "entry": reference_entry(reference, layout),
        "coco_image": coco_image,
        "coco_annotations": coco_annotations,
        "meta": meta,
    })
    return reference


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
    ``plan.local_run`` computes them before matching."""
    views = ViewPrompts.from_json(manifest.views)
    fixed: list[tuple[str, np.ndarray]] = []
    negatives: list[np.ndarray] = []
    for target in manifest.images:
        image_id = target.image_id
        if image_id not in views.references and image_id not in views.lookalikes:
            continue
        try:
            image = read_input(store, target, pipeline.settings)
        except KeyError as exc:
            raise InputError(f"{target.source}: image not found in storage ({exc})") from None
        views.validate(image_id, image.shape[1], image.shape[0], target.source)
        found = view_negatives(pipeline, image, views.lookalikes.get(image_id, ()),
                               target.source)
        if found is not None:
            negatives.append(found)
        if image_id in views.references:
            result = reference_view_result(pipeline, image, views.references[image_id],
                                           image_id, target.source)
            embedding = result.matches[0].embedding
            assert embedding is not None
            fixed.append((image_id, embedding))
    return fixed, negatives


def load_reference_embedding(store: ObjectStore, manifest: JobManifest) -> np.ndarray:
    """The reference's FFA embedding, ``(D,)`` float32, as the reference step stored it."""
    data = store.get(manifest.layout.reference_embedding)
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False), dtype=np.float32)


def load_matching_reference(store: ObjectStore, manifest: JobManifest,
                            settings: Settings) -> np.ndarray | PrototypeBank:
    """What a target is scored against: the reference embedding ``(D,)``, or, when the job
    marked lookalikes, a bank of that one reference with their embeddings as negatives
    (views do not depend on each other then, so they are matched in parallel)."""
    embedding = load_reference_embedding(store, manifest)
    views = ViewPrompts.from_json(manifest.views)
    if not manifest.distractors and not views.references and not views.lookalikes:
        return embedding
    negatives = (_get_array(store, state_key(manifest.job, "negatives.npy"))
                 if manifest.distractors or views.lookalikes else None)
    ids = [i.image_id for i in manifest.images if i.image_id in views.references]
    prototypes = (_get_array(store, state_key(manifest.job, "prototypes.npy"))
                  if ids else np.zeros((0, embedding.shape[0]), np.float32))
    # Views are matched in parallel: the bank does not grow (bank size 1, as submit says).
    fixed = settings.model_copy(update={"bank_size": 1})
    return fixed_bank(embedding, fixed, list(zip(ids, prototypes, strict=True)), [negatives])


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
    embedding: np.ndarray | PrototypeBank,
    shape: MaskShape,
) -> dict[str, Any]:
    """Match one target image; write its masks, cutouts, thumbnail, then its record.

    A bad image is recorded as an error (the job goes on); storage faults propagate
    (``TransientError``) so the task can retry.

    Args:
        store: the shared store.
        manifest: the job.
        index: position of the target in ``manifest.images``.
        pipeline: the worker's pipeline for the job's settings.
        embedding: ``(D,)`` the reference embedding, or a bank with the job's lookalikes
            (``load_matching_reference``).
        shape: the reference mask's shape (``load_reference_shape``).

    Returns:
        The record written to ``_state/images/<id>.json``.
    """
    target = manifest.images[index]
    views = ViewPrompts.from_json(manifest.views)
    image: np.ndarray | None = None
    try:
        image = read_input(store, target, pipeline.settings)
        if target.image_id in views.references:
            result = reference_view_result(pipeline, image, views.references[target.image_id],
                                           target.image_id, target.source)
        elif target.image_id in views.no_match:
            result = not_here_result(target.image_id, target.source, image.shape[1],
                                     image.shape[0])
        else:
            result = pipeline.match_image(image, embedding, target.image_id, target.source,
                                          shape=shape)
    except TransientError:
        raise  # storage trouble: the task retries
    except (InputError, KeyError) as exc:
        image = None
        message = str(exc) if isinstance(exc, InputError) else f"{target.source}: not found"
        result = _failed(target, message)
    except Exception as exc:  # a model failure on one image must not end the job
        log.exception("matching %s failed", target.source)
        image = None
        result = _failed(target, f"{target.source}: {type(exc).__name__}: {exc}")
    write_image_outputs(store, manifest.layout, image, result)
    coco_image, coco_annotations = target_coco(index, result)
    record = {
        "entry": image_entry(result, manifest.layout),
        "coco_image": coco_image,
        "coco_annotations": coco_annotations,
        "worker": worker_name(),
    }
    put_json(store, image_state_key(manifest.job, target.image_id), record)
    return record


def failure_record(manifest: JobManifest, index: int, message: str) -> dict[str, Any]:
    """The record of a target that could not be processed, shaped like ``match_step``'s.

    Args:
        manifest: the job.
        index: position of the target in ``manifest.images``.
        message: why, naming the image.
    """
    result = _failed(manifest.images[index], message)
    coco_image, coco_annotations = target_coco(index, result)
    return {
        "entry": image_entry(result, manifest.layout),
        "coco_image": coco_image,
        "coco_annotations": coco_annotations,
        "worker": worker_name(),
    }


def _failed(target: InputImage, message: str) -> ImageResult:
    return ImageResult(image_id=target.image_id, source=target.source, status="error",
                       error=message)


def finalize_step(store: ObjectStore, manifest: JobManifest,
                  unstored: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Assemble ``coco.json``, the gallery and, last, ``results.json`` from the records.

    Args:
        store: the shared store.
        manifest: the job.
        unstored: image id -> why, for targets whose task gave up before it could store
            a record (storage unreachable past the retry budget). Such a target is an
            error in the results, and ``prodseg resume`` runs it again later.

    Returns:
        The ``results.json`` document.
    """
    ref = get_json(store, state_key(manifest.job, "reference.json"))
    records = []
    for index, target in enumerate(manifest.images):
        try:
            records.append(get_json(store, image_state_key(manifest.job, target.image_id)))
        except ObjectNotFound:
            why = (unstored or {}).get(target.image_id, "no result was stored")
            records.append(failure_record(
                manifest, index, f"{target.source}: {why}; run `prodseg resume "
                f"{manifest.job}` to process it again"))
    document = assemble_results_document(
        ref["entry"], [r["entry"] for r in records], {"job": manifest.job, **ref["meta"]}
    )
    coco_images = [ref["coco_image"]] + [r["coco_image"] for r in records if r["coco_image"]]
    annotations = list(ref["coco_annotations"])
    for r in records:
        annotations += r["coco_annotations"]
    write_documents(store, manifest.layout, document, assemble_coco(coco_images, annotations))
    return document
