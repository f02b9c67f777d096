"""``S3Store``: an ``ObjectStore`` over S3 or any S3-compatible server, through boto3.

Key ``a/b.png`` of a store with prefix ``jobs/j1`` is the object ``jobs/j1/a/b.png`` of
the bucket. Failures come out as prodseg's two kinds (``prodseg.errors``): an endpoint
that does not answer, a timeout, a 5xx or throttling is a ``TransientError`` (the
distributed mode retries it); a missing bucket or refused credentials is an
``InputError`` (retrying cannot help). Credentials come only from boto3's standard chain
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, instance roles) and never
appear in a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
)

from prodseg.errors import TransientError
from prodseg.outages import Backoff, ride_out
from prodseg.storage.base import ObjectNotFound, is_valid_key, validate_key
from prodseg.storage.s3_client import S3Client
from prodseg.storage.s3_errors import (
    error_code,
    is_missing_bucket_answer,
    map_s3_error,
    missing_bucket,
)

if TYPE_CHECKING:
    from prodseg.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class S3Store:
    """Objects in an S3 bucket, under an optional key prefix.

    ``put`` is one PutObject, so readers see the old object or the whole new one. The
    boto3 client is this process's (``storage.s3_client``): built on first use and built
    again in a forked child.

    Args:
        bucket: the bucket name.
        prefix: a key prefix all objects of this store live under (``"jobs/j1"``);
            ``""`` for the whole bucket. A trailing ``/`` is implied.
        endpoint_url: an S3-compatible endpoint (``http://localhost:9000``); None: AWS.
        region: the signing region.
        client: a ready boto3 S3 client to use instead of building one; the caller then
            owns it (it is never rebuilt, not even after a fork).
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for data on an open connection.
        max_retries: retries after a failed first attempt (``S3Client``).
        retry_budget_s: seconds over which an operation that still fails transiently
            after botocore's retries is tried again, backing off (``prodseg.outages``),
            so that a server restart of that length fails nothing; 0: not at all.

    Raises:
        ValueError: the prefix is not a valid key (see ``validate_key``).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        client: Any = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_retries: int = 5,
        retry_budget_s: float = 0.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = _normalise_prefix(prefix)
        self.endpoint_url = endpoint_url
        self.region = region
        self._s3 = S3Client(endpoint_url, region, client, connect_timeout=connect_timeout,
                            read_timeout=read_timeout, max_retries=max_retries)
        self._backoff = Backoff(retry_budget_s)

    @classmethod
    def from_settings(cls, settings: Settings, prefix: str = "") -> S3Store:
        """The store of ``settings.s3_bucket`` at ``settings.s3_endpoint_url``, riding out
        outages for ``settings.outage_budget_s``.

        Args:
            settings: prodseg's settings (``s3_bucket``, ``s3_endpoint_url``, ``s3_region``,
                ``outage_budget_s``).
            prefix: a key prefix inside the bucket.
        """
        return cls(settings.s3_bucket, prefix, settings.s3_endpoint_url, settings.s3_region,
                   retry_budget_s=settings.outage_budget_s)

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"

    @property
    def url(self) -> str:
        """The store's root as an ``s3://bucket/prefix/`` URL."""
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def endpoint(self) -> str:
        """The endpoint, for messages: the URL without any user info, or AWS's region."""
        return self._s3.endpoint

    # --- the ObjectStore interface ------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key`` with one PutObject.

        Args:
            key: a valid key.
            data: the whole object.
            content_type: the object's ``Content-Type``, when given.

        Raises:
            ValueError: the key is invalid.
            TransientError: the endpoint failed in a way that may recover.
            InputError: the bucket is missing or access is denied.
        """
        extra = {"ContentType": content_type} if content_type else {}
        name = self._object_name(key)

        def put_once() -> None:
            try:
                self._s3().put_object(Bucket=self.bucket, Key=name, Body=bytes(data), **extra)
            except (ClientError, BotoCoreError) as error:
                self._fail(error, "PutObject", key)

        self._ride_out(put_once)

    def get(self, key: str) -> bytes:
        """The whole object; raises ``ObjectNotFound`` when there is none.

        Raises:
            ValueError: the key is invalid.
            ObjectNotFound: no object under ``key``.
            TransientError: the endpoint failed in a way that may recover.
            InputError: the bucket is missing or access is denied.
        """
        name = self._object_name(key)

        def get_once() -> bytes:
            try:
                response = self._s3().get_object(Bucket=self.bucket, Key=name)
                body: bytes = response["Body"].read()
            except (ClientError, BotoCoreError) as error:
                self._fail(error, "GetObject", key)
            return body

        return self._ride_out(get_once)

    def get_head(self, key: str, size: int) -> bytes:
        """The object's first ``size`` bytes (one ranged GetObject), retried like ``get``.

        Raises:
            ValueError: the key is invalid.
            ObjectNotFound: no object under ``key``.
            TransientError: the endpoint failed in a way that may recover.
            InputError: the bucket is missing or access is denied.
        """
        name = self._object_name(key)
        if size <= 0:
            return b""

        def get_head_once() -> bytes:
            try:
                response = self._s3().get_object(Bucket=self.bucket, Key=name,
                                                 Range=f"bytes=0-{size - 1}")
                body: bytes = response["Body"].read()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # an empty object has no byte 0
                self._fail(error, "GetObject", key)
            except BotoCoreError as error:
                self._fail(error, "GetObject", key)
            return body[:size]

        return self._ride_out(get_head_once)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (one HeadObject).

        A HEAD answer has no body, so a missing bucket also reads as a missing object.
        """
        name = self._object_name(key)

        def exists_once() -> bool:
            try:
                self._s3().head_object(Bucket=self.bucket, Key=name)
            except (ClientError, BotoCoreError) as error:
                if isinstance(self._error(error, "HeadObject", key), ObjectNotFound):
                    return False
                self._fail(error, "HeadObject", key)
            return True

        return self._ride_out(exists_once)

    def delete(self, key: str) -> None:
        """Remove the object under ``key`` (one DeleteObject; S3 answers the same for a
        missing object).

        Raises:
            ValueError: the key is invalid.
            TransientError: the endpoint failed in a way that may recover.
            InputError: the bucket is missing or access is denied.
        """
        name = self._object_name(key)

        def delete_once() -> None:
            try:
                self._s3().delete_object(Bucket=self.bucket, Key=name)
            except (ClientError, BotoCoreError) as error:
                self._fail(error, "DeleteObject", key)

        self._ride_out(delete_once)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with ``prefix``, relative to the store's prefix, sorted.

        Pages through ListObjectsV2. Objects whose names are not valid keys (written by
        other tools) are skipped.

        Args:
            prefix: a plain string prefix (``"masks/"``, ``"masks/img"``, ``""`` for all).

        Raises:
            TransientError: the endpoint failed in a way that may recover.
            InputError: the bucket is missing or access is denied.
        """
        if prefix and not is_valid_key(prefix + "x"):
            return iter(())  # no valid key starts with this prefix

        def list_once() -> list[str]:
            keys: list[str] = []
            try:
                pages = self._s3().get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self.prefix + prefix
                )
                for page in pages:
                    for entry in page.get("Contents", []):
                        key = entry["Key"][len(self.prefix) :]
                        if is_valid_key(key):
                            keys.append(key)
            except (ClientError, BotoCoreError) as error:
                self._fail(error, "ListObjectsV2", prefix or None)
            return keys

        return iter(sorted(self._ride_out(list_once)))

    def describe(self, key: str) -> str:
        """The object's ``s3://bucket/prefix/key`` URL."""
        return f"s3://{self.bucket}/{self._object_name(key)}"

    # --- set-up -------------------------------------------------------------------------

    def check_bucket(self) -> None:
        """Raise unless the bucket exists and the credentials may use it (one HeadBucket).

        A client checks this before it uploads anything: SeaweedFS creates a missing
        bucket on the first PutObject where AWS answers ``NoSuchBucket``, so a misspelt
        bucket would otherwise take uploads that no worker reads.

        Raises:
            InputError: the bucket does not exist, or access is denied.
            TransientError: the endpoint failed in a way that may recover.
        """
        if not self._bucket_exists():
            raise missing_bucket(self.bucket, self.endpoint)

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists already (tests, compose set-up).

        Raises:
            TransientError: the endpoint failed in a way that may recover.
            InputError: access is denied, or the bucket name is taken by someone else.
        """
        if self._bucket_exists():
            return
        extra: dict[str, Any] = {}
        if self.region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._s3().create_bucket(Bucket=self.bucket, **extra)
        except ClientError as error:
            if error_code(error) != "BucketAlreadyOwnedByYou":
                self._fail(error, "CreateBucket", None)
        except BotoCoreError as error:
            self._fail(error, "CreateBucket", None)

    # --- internals ----------------------------------------------------------------------

    def _bucket_exists(self) -> bool:
        """One HeadBucket: whether the bucket exists; other failures are raised."""
        try:
            self._s3().head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if is_missing_bucket_answer(error):
                return False
            self._fail(error, "HeadBucket", None)
        except BotoCoreError as error:
            self._fail(error, "HeadBucket", None)
        return True

    def _ride_out(self, operation: Callable[[], T]) -> T:
        """``operation()``, tried again while it fails transiently, within the budget."""

        def waiting(error: BaseException, down_s: float, wait_s: float) -> None:
            log.warning("%s; retrying in %.1f s (storage down for %.0f s of the %g s "
                        "budget)", error, wait_s, down_s, self._backoff.budget_s)

        return ride_out(operation, self._backoff, (TransientError,), on_wait=waiting)

    def _object_name(self, key: str) -> str:
        """The bucket's object name of a valid key."""
        return self.prefix + validate_key(key)

    def _fail(self, error: Exception, operation: str, key: str | None) -> NoReturn:
        """Raise ``error`` translated by ``map_s3_error``, chained to the original."""
        mapped = self._error(error, operation, key)
        if mapped is error:
            raise error
        raise mapped from error

    def _error(self, error: Exception, operation: str, key: str | None) -> Exception:
        """``map_s3_error`` with this store's bucket, endpoint and prefix."""
        location = self.url + (key or "")
        return map_s3_error(
            error, operation=operation, bucket=self.bucket, endpoint=self.endpoint,
            key=key, location=location,
        )


def _normalise_prefix(prefix: str) -> str:
    """``""`` stays ``""``; anything else is checked and gets exactly one trailing ``/``."""
    prefix = prefix.removesuffix("/")
    return validate_key(prefix) + "/" if prefix else ""
