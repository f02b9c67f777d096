"""``s3://`` URLs and credentials in URLs, without boto3.

``parse_s3_url`` splits and checks an ``s3://bucket/prefix``; ``without_userinfo`` drops a
``user:password@`` from any URL, so that it can be shown or recorded.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from prodseg.errors import InputError
from prodseg.storage.base import validate_key

# 3-63 characters: lowercase letters, digits, dots and hyphens, alphanumeric at both ends.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/some/prefix`` into ``("bucket", "some/prefix")``.

    The prefix comes back without leading or trailing ``/``; ``s3://bucket`` gives ``""``.

    Args:
        url: an ``s3://`` URL.

    Raises:
        InputError: not an ``s3://`` URL, an invalid bucket name, or a prefix that is not
            a valid key (empty segments, ``.`` or ``..``, backslashes, control characters).
    """
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InputError(f"{url!r} is not an S3 URL; expected s3://bucket/prefix")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise InputError(
            f"{url!r}: {bucket!r} is not a valid bucket name (3-63 characters: lowercase "
            "letters, digits, '.' and '-'); expected s3://bucket/prefix"
        )
    prefix = prefix.removesuffix("/")
    if prefix:
        try:
            validate_key(prefix)
        except ValueError as error:
            raise InputError(f"{url!r}: bad key prefix: {error}") from None
    return bucket, prefix


def without_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
