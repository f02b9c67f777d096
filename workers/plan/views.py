"""The per-view steps of the job plan, shared by both executors: a view loaded or its
failure recorded, its candidates computed, and the spin tracked.

Each takes a ``load`` function, so the same step reads a local file (``prodseg run``)
or an object in the job's store (a worker). A view that cannot be read or processed
becomes a failed ``ViewCandidates`` naming it; the job goes on. Storage and device
trouble (``TransientError``, ``DeviceError``) is raised, for the task to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from prodseg.errors import InputError, TransientError, as_device_error
from prodseg.prompts import Prompt
from prodseg.results import ImageResult
from prodseg.settings import Settings
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.exports.documents import EdgeAlpha, write_image_outputs
from prodseg.storage.images import HEADER_BYTES, header_size, read_file_bytes, read_image_file
from prodseg.storage.layout import JobLayout
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import ViewCandidates
from prodseg.workers.match.instances import MaskShape
from prodseg.workers.ops.edge_residue import edge_residue
from prodseg.workers.ops.edges import edges_for
from prodseg.workers.plan.job_models import JobModels

log = logging.getLogger(__name__)

Loader = Callable[[], np.ndarray]
"""Reads and decodes one view: ``(H, W, 3)`` uint8 RGB; raises ``InputError`` (or
``ObjectNotFound`` for a missing object) naming it."""


def load_view(load: Loader, source: str) -> tuple[np.ndarray | None, str | None]:
    """The view's pixels, or None and why (naming ``source``)."""
    try:
        return load(), None
    except TransientError:
        raise
    except InputError as exc:
        return None, str(exc)
    except ObjectNotFound:
        return None, f"{source}: not found"


def read_for_cutouts(result: ImageResult, load: Loader
                     ) -> tuple[ImageResult, np.ndarray | None]:
    """A view resolved after its candidates were stored, read again for its cutouts (a
    matched view only). A view that can no longer be read becomes a failure naming why,
    and the job goes on.

    Returns:
        The result, and the view's ``(H, W, 3)`` uint8 RGB pixels or None.
    """
    if result.status != "ok":
        return result, None
    image, why = load_view(load, result.source)
    if image is None:
        return replace(result, status="error", matches=[],
                       error=f"{why} (read again for its cutouts)"), None
    return result, image


def view_candidates(pipeline: JobModels, fixed: PrototypeBank,
                    image_id: str, source: str, image: np.ndarray | None,
                    error: str | None, tokens: np.ndarray | None = None) -> ViewCandidates:
    """The view's candidates (``JobModels.view_candidates``), or a
    failed view: unreadable (``error``), or a model failure, which must not end the job.
    A failure of the device (``prodseg.errors.as_device_error``) is no failure of the
    view: it is raised as a ``DeviceError``, for the task to retry.

    Args:
        tokens: the image's whole-image patch grid when computed in a batch.
    """
    if image is None:
        return ViewCandidates.failed(image_id, source, error or f"{source}: unreadable")
    try:
        return pipeline.view_candidates(image, fixed, image_id, source, tokens)
    except TransientError:
        raise
    except Exception as exc:
        device = as_device_error(exc)
        if device is not None:
            raise device from exc
        log.exception("processing %s failed", source)
        return ViewCandidates.failed(image_id, source, f"{source}: {type(exc).__name__}: {exc}")


def batch_candidates(pipeline: JobModels, fixed: PrototypeBank,
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


def _batch_tokens(pipeline: JobModels,
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


@dataclass
class Tracked:
    """What the track step found.

    Attributes:
        results: target index -> result, for the views whose tracked mask was accepted.
        images: target index -> its pixels, for writing those results' outputs.
    """

    results: dict[int, ImageResult] = field(default_factory=dict)
    images: dict[int, np.ndarray] = field(default_factory=dict)


def view_size(head: Callable[[int], bytes], load: Loader) -> tuple[int, int]:
    """A view's displayed ``(width, height)``, for deciding the capture: from its file's
    first bytes (``storage.images.header_size``), else by decoding it; ``(0, 0)`` when it
    cannot be read (its view step reports why).

    Args:
        head: returns the file's first ``n`` bytes.
        load: decodes the whole file to ``(H, W, 3)`` pixels.
    """
    def decoded() -> tuple[int, int]:
        pixels = load()
        return (pixels.shape[1], pixels.shape[0])

    for read in (lambda: header_size(head(HEADER_BYTES)), decoded):
        try:
            size = read()
        except Exception as exc:
            if as_device_error(exc) is not None or isinstance(exc, TransientError):
                raise
            continue
        if size is not None:
            return size
    return (0, 0)


def file_head(path: Path) -> Callable[[int], bytes]:
    """``head`` for ``view_size`` of a local file: a regular file's first bytes, never a
    pipe's or a device's (``storage.images.read_file_bytes``)."""
    return lambda size: read_file_bytes(path, head=size)


def track_spin(pipeline: JobModels, capture: str, prompt: Prompt,
               fixed: PrototypeBank, shape: MaskShape,
               reference: tuple[str, np.ndarray],
               targets: Sequence[tuple[str, str, Loader]]) -> Tracked:
    """The track step: the product followed around the spin from the click.

    Args:
        pipeline: the job's models.
        capture: the job's capture mode, as its reference step decided it.
        prompt: the click, in the reference's pixels.
        fixed: the references; tracked masks are verified against its prototypes.
        shape: the reference mask's shape.
        reference: its source and pixels.
        targets: ``(image id, source, load)`` of each target.

    Returns:
        Nothing tracked unless the capture is a spin; unreadable views are left to the
        candidates step, which reports them.
    """
    from prodseg.workers.capture.spin import (
        Frame,
        build_tracker,
        spin_sequence,
        tracked_results,
    )

    ref_source, ref_image = reference
    if capture != "spin":
        return Tracked()
    frames = []
    for index in spin_sequence(ref_source, [s for _, s, _ in targets]):
        if index < 0:
            frames.append(Frame(-1, "", ref_source, ref_image))
            continue
        image_id, source, load = targets[index]
        image, _ = load_view(load, source)
        if image is not None:
            frames.append(Frame(index, image_id, source, image))
    by_index = {f.index: f.image for f in frames}
    s = pipeline.settings
    results = tracked_results(s, pipeline.embedder, build_tracker(s), prompt,
                              np.stack(fixed.prototypes), frames, pipeline.segmenter, shape)
    return Tracked(results, {k: by_index[k] for k in results})


def file_loader(path: Path, settings: Settings,
                read: Callable[[str], np.ndarray] | None = None) -> Loader:
    """A local view's loader: the file decoded within the settings' limits, or ``read``
    (a video's frames, decoded once) when given."""
    if read is not None:
        return lambda: read(str(path))
    return lambda: read_image_file(path, settings.max_image_pixels, settings.max_image_bytes)


def write_view_outputs(store: ObjectStore | None, layout: JobLayout,
                       job_settings: Settings | Mapping[str, Any], result: ImageResult,
                       image: np.ndarray | None) -> ImageResult:
    """A finished view, as both executors end one: its edge residue measured, then its
    masks, cutouts and thumbnail written (``write_image_outputs``; nothing unless matched).

    Args:
        store: where the outputs go; None writes nothing.
        layout: the job's keys.
        job_settings: the job's settings (``cutout_alpha``).
        result: the view's result.
        image: its ``(H, W, 3)`` uint8 RGB pixels; None when it was not read.

    Returns:
        ``result`` with its matches' edge residue.
    """
    result = with_edge_residue(result, image)
    if store is not None:
        write_image_outputs(store, layout, image, result, cutout_alpha(job_settings))
    return result


def with_edge_residue(result: ImageResult, image: np.ndarray | None) -> ImageResult:
    """``result`` with each match's edge residue (``ops.edge_residue``) measured on the
    view's pixels, as both executors write it; as it is without pixels or matches."""
    if image is None or result.status != "ok" or not result.matches:
        return result
    return replace(result, matches=[replace(m, edge_residue=edge_residue(image, m.mask))
                                    for m in result.matches])


def cutout_alpha(job_settings: Settings | Mapping[str, Any]) -> EdgeAlpha | None:
    """The cutouts' alpha as the job's ``cutout_edges`` says, in either executor.

    Args:
        job_settings: the job's settings, or a manifest's job settings (an older
            manifest without the field gets the default).

    Returns:
        What ``write_*_outputs`` take as ``edges``: None for hard edges.
    """
    if isinstance(job_settings, Settings):
        return edges_for(job_settings.cutout_edges)
    default = Settings.model_fields["cutout_edges"].default
    return edges_for(str(job_settings.get("cutout_edges", default)))
