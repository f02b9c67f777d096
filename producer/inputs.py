"""The images of a job as the user names them: local files or ``s3://`` URLs and prefixes.

A prefix stands for every image under it; a local image is uploaded into the job's
store, an ``s3://`` image is read where it is. A video is one input: the client takes
its frames (to check the click on them) but uploads the video once, and the workers
decode their frames from it. Torch-free: a laptop submits with it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prodseg.errors import InputError
from prodseg.settings import Settings
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.factory import bucket_store
from prodseg.storage.image_formats import IMAGE_SUFFIXES
from prodseg.storage.images import read_file_bytes
from prodseg.storage.manifest import InputImage, input_key
from prodseg.storage.urls import parse_s3_url
from prodseg.storage.video import VideoCapture, is_video

if TYPE_CHECKING:
    from prodseg.workers.capture.video_frames import VideoInputs


def is_s3(location: str) -> bool:
    """Whether ``location`` is an ``s3://`` URL."""
    return location.startswith("s3://")


def input_identity(source: str) -> str:
    """What makes two sources the same image: the URL, or the local file's real path."""
    return source if is_s3(source) else os.path.realpath(source)


def expand_inputs(images: Sequence[str | os.PathLike[str]], settings: Settings) -> list[str]:
    """``images`` with each ``s3://`` prefix replaced by the images under it, in order.

    Raises:
        InputError: a prefix holds no image.
    """
    out: list[str] = []
    for item in map(str, images):
        if is_s3(item) and not item.lower().endswith(IMAGE_SUFFIXES) and not is_video(item):
            bucket, prefix = parse_s3_url(item)
            listed = bucket_store(bucket, settings).list(prefix)
            keys = [k for k in listed if k.lower().endswith(IMAGE_SUFFIXES)]
            if not keys:
                raise InputError(f"{item}: no images under this prefix")
            out.extend(f"s3://{bucket}/{k}" for k in keys)
        else:
            out.append(item)
    return out


def read_input_bytes(source: str, settings: Settings) -> bytes:
    """The bytes of a local image file or an ``s3://`` object (named in errors)."""
    if is_s3(source):
        bucket, key = parse_s3_url(source)
        try:
            return bucket_store(bucket, settings).get(key)
        except ObjectNotFound:
            raise InputError(f"{source}: no such object") from None
    return read_file_bytes(Path(source), settings.max_image_bytes)


def place_input(store: ObjectStore, job: str, image_id: str, source: str,
                settings: Settings) -> InputImage:
    """Upload a local image into the job's store; leave an ``s3://`` image where it is."""
    if is_s3(source):
        return InputImage(image_id, source, source)
    key = input_key(job, image_id, Path(source).suffix)
    store.put(key, read_file_bytes(Path(source), settings.max_image_bytes))
    return InputImage(image_id, key, source)


def video_job_inputs(sources: Sequence[str], reference: str, job_settings: Settings,
                     settings: Settings) -> VideoInputs | None:
    """The frames of the video among ``sources`` (``workers.capture.video_frames``), or
    None when they are stills.

    Args:
        sources: the job's inputs, expanded.
        reference: the reference frame, as the user named it.
        job_settings: the job's settings (how frames are taken).
        settings: the client's (where an ``s3://`` video is read from).

    Raises:
        InputError: as ``video_inputs``; a missing local video.
    """
    if not any(is_video(s) for s in sources):
        return None
    from prodseg.workers.capture.video_frames import video_inputs

    return video_inputs(sources, reference, job_settings,
                        lambda source: read_input_bytes(source, settings))


def place_video(store: ObjectStore, job: str, capture: VideoCapture,
                named: Sequence[tuple[str, str]], settings: Settings) -> list[InputImage]:
    """Upload a local video into the job's store once (an ``s3://`` one stays where it
    is); one entry per frame, which its worker decodes from the video.

    Args:
        named: ``(image id, frame source)`` of each frame, the reference's first.

    Returns:
        The entries, in the order of ``named``.
    """
    source = capture.source
    location = source
    if not is_s3(source):
        location = input_key(job, "video", Path(source).suffix)
        store.put(location, read_file_bytes(Path(source), settings.max_image_bytes))
    entries = []
    for image_id, frame_source in named:
        frame = capture.frame_of(frame_source)
        assert frame is not None, frame_source
        entries.append(InputImage(image_id, location, frame_source, frame))
    return entries
