"""The images of a job as the user names them: local files or ``s3://`` URLs and prefixes.

A prefix stands for every image under it; a local image is uploaded into the job's
store, an ``s3://`` image is read where it is. Torch-free: a laptop submits with it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from prodseg.errors import InputError
from prodseg.settings import Settings
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.factory import bucket_store
from prodseg.storage.images import IMAGE_SUFFIXES, read_file_bytes
from prodseg.storage.manifest import InputImage, input_key
from prodseg.storage.urls import parse_s3_url


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
        if is_s3(item) and not item.lower().endswith(IMAGE_SUFFIXES):
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
