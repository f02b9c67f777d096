"""``open_store``: the ``ObjectStore`` a location string names (``s3://`` URL or path);
``bucket_store``: a whole bucket, where input images are read from by their URLs."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from prodseg.errors import InputError
from prodseg.storage.base import ObjectStore
from prodseg.storage.local import LocalStore

if TYPE_CHECKING:
    from prodseg.settings import Settings

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def open_store(location: str, settings: Settings) -> ObjectStore:
    """The store at ``location``.

    ``s3://bucket/prefix`` opens an ``S3Store`` at ``settings.s3_endpoint_url`` in
    ``settings.s3_region``; any other location is a local directory. boto3 is only
    imported for ``s3://`` locations.

    Args:
        location: ``s3://bucket/prefix`` or a directory path.
        settings: prodseg's settings (``s3_endpoint_url``, ``s3_region``).

    Raises:
        InputError: a malformed ``s3://`` URL, or another URL scheme (``gs://``,
            ``http://``): those would otherwise silently become a local directory.
    """
    if location.startswith("s3://"):
        from prodseg.storage.s3 import S3Store
        from prodseg.storage.urls import parse_s3_url

        bucket, prefix = parse_s3_url(location)
        return S3Store(bucket, prefix, settings.s3_endpoint_url, settings.s3_region)
    if _URL_SCHEME.match(location):
        raise InputError(
            f"unsupported storage location {location!r}: use s3://bucket/prefix or a local "
            "directory path"
        )
    return LocalStore(Path(location))


def bucket_store(bucket: str, settings: Settings) -> ObjectStore:
    """The whole of ``bucket`` at the settings' endpoint and region (input images given as
    ``s3://`` URLs live there); one per bucket and process, since a boto3 client takes a
    fifth of a second to make."""
    return _bucket_store(bucket, settings.s3_endpoint_url, settings.s3_region)


@functools.lru_cache(maxsize=16)
def _bucket_store(bucket: str, endpoint_url: str | None, region: str) -> ObjectStore:
    from prodseg.storage.s3 import S3Store

    return S3Store(bucket, endpoint_url=endpoint_url, region=region)
