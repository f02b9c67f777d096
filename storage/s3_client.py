"""One boto3 S3 client per process, configured for S3 and S3-compatible servers.

Path-style addressing, ``standard`` retries, checksums only where the operation requires
them (S3-compatible servers reject the newer default checksums) and bounded timeouts.
The client is built on first use and built again in a forked child (the process id is
remembered), because Celery prefork workers must not share one client; boto3 sessions
are not fork-safe either, so each client gets its own.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from prodseg.storage.urls import without_userinfo


class S3Client:
    """This process's boto3 S3 client, for ``S3Store``: call it to get the client.

    Args:
        endpoint_url: an S3-compatible endpoint (``http://localhost:9000``); None: AWS.
        region: the signing region.
        client: a ready boto3 S3 client to use instead of building one; the caller then
            owns it (it is never rebuilt, not even after a fork).
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for data on an open connection.
        max_retries: retries after a failed first attempt (``standard`` mode, which
            retries transient errors with backoff). This is botocore's
            ``retries["max_attempts"]``, which, despite its name, counts retries only.
    """

    def __init__(self, endpoint_url: str | None, region: str, client: Any = None, *,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0,
                 max_retries: int = 5) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._config = Config(
            region_name=region,
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": max_retries},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._injected = client is not None
        self._client: Any = client
        self._client_pid: int | None = os.getpid() if client is not None else None

    def __call__(self) -> Any:
        """This process's client: built on first use and again after a fork."""
        pid = os.getpid()
        if self._client is None or (self._client_pid != pid and not self._injected):
            session = boto3.session.Session()  # one per client: sessions are not fork-safe
            self._client = session.client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=self._config,
            )
            self._client_pid = pid
        return self._client

    @property
    def endpoint(self) -> str:
        """The endpoint, for messages: the URL without any user info, or AWS's region."""
        url = self.endpoint_url
        if url is None and self._injected:
            url = getattr(getattr(self._client, "meta", None), "endpoint_url", None)
        return f"AWS S3 ({self.region})" if url is None else without_userinfo(url)
