"""A distributed job's inputs as its steps read them: decoded from the job's store or
their own ``s3://`` URL, sized from their headers, and the capture mode decided from
them once, by the reference step, and stored with its record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.settings import Settings
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.factory import bucket_store
from prodseg.storage.manifest import InputImage, JobManifest, decode_input
from prodseg.workers.plan.job_plan import JobPlan
from prodseg.workers.plan.views import view_size


def read_input(store: ObjectStore, image: InputImage, settings: Settings) -> np.ndarray:
    """Decode an input image from the job store or from its own ``s3://`` URL (a frame
    of a video capture: from its video).

    Raises:
        ImageReadError: the bytes are not a usable image (names the source).
        ObjectNotFound: the key does not exist.
    """
    holder, key = _input_object(store, image, settings)
    return decode_input(holder.get(key), image, settings.max_image_pixels)


def _input_object(store: ObjectStore, image: InputImage,
                  settings: Settings) -> tuple[ObjectStore, str]:
    """The store and key of an input: the job's, or its own ``s3://`` URL's bucket."""
    if image.location.startswith("s3://"):
        from prodseg.storage.urls import parse_s3_url

        bucket, key = parse_s3_url(image.location)
        return bucket_store(bucket, settings), key
    return store, image.location


def decide_capture(store: ObjectStore, manifest: JobManifest, settings: Settings,
                   reference: tuple[int, int]) -> str:
    """The job's capture mode (``JobPlan.capture_of``), from the file names and, for
    ``auto``, the sizes in the targets' headers (one ranged read each).

    Args:
        settings: the job's settings.
        reference: the reference's decoded ``(width, height)``.
    """
    def sizes() -> list[tuple[int, int]]:
        by_location: dict[str, tuple[int, int]] = {}  # a video's frames: one object
        for target in manifest.images:
            if target.location not in by_location:
                holder, key = _input_object(store, target, settings)
                by_location[target.location] = view_size(
                    functools.partial(holder.get_head, key),
                    input_loader(store, target, settings))
        return [by_location[t.location] for t in manifest.images]

    return JobPlan.of(settings).capture_of((manifest.reference.source, reference),
                                           [t.source for t in manifest.images], sizes)


def stored_capture(reference_record: Mapping[str, Any], plan: JobPlan) -> str:
    """The capture mode the reference step stored (a record written before it was
    stored there: the setting, or ``unordered`` for ``auto``)."""
    found = reference_record.get("capture")
    if isinstance(found, str):
        return found
    return plan.capture if plan.capture != "auto" else "unordered"


def input_loader(store: ObjectStore, target: InputImage,
                 settings: Settings) -> Callable[[], np.ndarray]:
    """Decodes ``target`` when called (``read_input``); a missing object is an
    ``InputError`` naming the image."""

    def load() -> np.ndarray:
        try:
            return read_input(store, target, settings)
        except ObjectNotFound as exc:
            raise InputError(f"{target.source}: image not found in storage ({exc})") from None

    return load
