"""A distributed job as stored: its manifest and the keys of its bookkeeping.

Storage is the source of truth for a job. Under ``jobs/<job>/`` it holds:

- ``job.json``: the manifest, written once by ``prodseg submit`` (what to do);
- ``inputs/``: the uploaded images (inputs given as ``s3://`` URLs stay where they are);
- the job's bookkeeping, what the workers did (``storage.job_state`` names it);
- everything else: exactly the output layout of ``prodseg run``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.jsonio import dump_bytes
from prodseg.storage.base import ObjectStore, validate_key
from prodseg.storage.images import decode_image
from prodseg.storage.job_state import STATE, JobState
from prodseg.storage.layout import JobLayout
from prodseg.storage.video import VideoFrame, read_video_frame

JOBS_PREFIX = "jobs/"
MANIFEST = "job.json"
INPUTS = "inputs/"
PRIVATE_PREFIXES = (MANIFEST, INPUTS, STATE)


def new_job_id() -> str:
    """A sortable, unique job id: ``YYYYmmdd-HHMMSS-<8 hex>``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def validate_job_id(job: str) -> str:
    """Reject job ids that could leave ``jobs/`` (they become a key segment).

    Raises:
        InputError: the id is empty, has a ``/``, ``\\`` or ``:`` (a job's Redis keys are
            ``prodseg:job:<id>:...``), starts with ``.`` or is not printable.
    """
    if (not job or any(c in job for c in "/\\:") or job.startswith(".")
            or not job.isprintable()):
        raise InputError(f"invalid job id {job!r}: give the id that prodseg submit printed")
    try:
        validate_key(job)
    except ValueError as error:
        raise InputError(f"invalid job id {job!r}: {error}") from None
    return job


def job_layout(job: str) -> JobLayout:
    """The output layout of a job in the shared store."""
    return JobLayout(prefix=JOBS_PREFIX + validate_job_id(job) + "/")


def is_output_key(relative: str) -> bool:
    """Whether a key (relative to the job root) is part of the ``prodseg run`` layout."""
    return not relative.startswith(PRIVATE_PREFIXES)


@dataclass(frozen=True)
class InputImage:
    """One image of a job.

    Attributes:
        image_id: unique, file-name-safe id within the job (as ``prodseg run`` makes it).
        location: a key in the job's store, or an ``s3://bucket/key`` URL.
        source: what the user named (a local path or URL), for messages and results.
        frame: for a frame of a video capture, which frame of the video at
            ``location`` (``storage.video``); None for a still.
    """

    image_id: str
    location: str
    source: str
    frame: VideoFrame | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> InputImage:
        """The inverse of ``dataclasses.asdict``."""
        frame = doc.get("frame")
        return cls(doc["image_id"], doc["location"], doc["source"],
                   VideoFrame(**frame) if frame else None)


@dataclass
class JobManifest:
    """What a job is: its images, its reference prompt, its settings.

    Attributes:
        job: the job id.
        reference: the image the prompt refers to.
        prompt: the prompt in ``Prompt.to_json`` form; None when the reference step is to
            propose it (``workers.plan.propose``).
        images: the target images, in order (the reference is not among them).
        settings: the job's settings (``Settings.model_dump(mode="json")``, without the
            machine-local ones).
        created: ISO-8601 UTC time of submission.
        distractors: ``[x, y]`` clicks on lookalikes on the reference image ("not this").
        views: prompts on target views, by image id (``workers.plan.view_prompts``
            ``ViewPrompts.to_json``): more references, views that are not the product,
            lookalikes on views.
        video: for a video capture, the video and the frames taken
            (``storage.video.VideoCapture.to_json``); empty for stills.
    """

    job: str
    reference: InputImage
    prompt: dict[str, Any] | None
    images: list[InputImage]
    settings: dict[str, Any]
    created: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    distractors: list[list[float]] = field(default_factory=list)
    views: dict[str, Any] = field(default_factory=dict)
    video: dict[str, Any] = field(default_factory=dict)

    @property
    def layout(self) -> JobLayout:
        """The job's output layout."""
        return job_layout(self.job)

    def state(self, store: ObjectStore) -> JobState:
        """The job's bookkeeping in ``store``."""
        return JobState(store, self.layout)

    def target(self, image_id: str) -> InputImage:
        """The target image with this id; KeyError naming it otherwise."""
        for image in self.images:
            if image.image_id == image_id:
                return image
        raise KeyError(f"job {self.job} has no image {image_id!r}")

    def to_bytes(self) -> bytes:
        """The manifest as JSON."""
        return dump_bytes(asdict(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> JobManifest:
        """Parse a manifest written by ``to_bytes``."""
        doc = json.loads(data)
        return cls(
            job=doc["job"],
            reference=InputImage.from_json(doc["reference"]),
            prompt=doc["prompt"],
            images=[InputImage.from_json(i) for i in doc["images"]],
            settings=doc["settings"],
            created=doc["created"],
            distractors=[[float(x), float(y)] for x, y in doc.get("distractors") or []],
            views=dict(doc.get("views") or {}),
            video=dict(doc.get("video") or {}),
        )

    def save(self, store: ObjectStore) -> None:
        """Write ``job.json``."""
        store.put(self.layout.key(MANIFEST), self.to_bytes(), "application/json")

    @classmethod
    def load(cls, store: ObjectStore, job: str) -> JobManifest:
        """Read ``job.json`` (``ObjectNotFound`` if there is no such job)."""
        return cls.from_bytes(store.get(job_layout(job).key(MANIFEST)))


def job_state(store: ObjectStore, job: str) -> JobState:
    """The bookkeeping of a job in the shared store."""
    return JobState(store, job_layout(job))


def input_key(job: str, image_id: str, suffix: str) -> str:
    """Key of an uploaded input image: the image id and, when it is a plain one (``.jpg``),
    the file's suffix; images are decoded by their content, so an odd suffix (with a
    newline, say) is simply left out."""
    suffix = suffix.lower()
    plain = re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) is not None
    return job_layout(job).key(f"{INPUTS}{image_id}{suffix if plain else ''}")


def decode_input(data: bytes, image: InputImage, max_pixels: int) -> np.ndarray:
    """An input's pixels from its stored bytes: the image, or its frame of the video.

    Args:
        data: the object at ``image.location``.
        image: the input.
        max_pixels: largest accepted width x height (setting ``max_image_pixels``).

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        ImageReadError: the bytes are no usable image or video (naming the source).
    """
    if image.frame is not None:
        return read_video_frame(data, image.source, image.frame, max_pixels)
    return decode_image(data, image.source, max_pixels)


def put_json(store: ObjectStore, key: str, doc: Any) -> None:
    """Write a JSON document as one whole object."""
    store.put(key, dump_bytes(doc), "application/json")


def get_json(store: ObjectStore, key: str) -> Any:
    """Read a JSON document (``ObjectNotFound`` if it is missing)."""
    return json.loads(store.get(key))
