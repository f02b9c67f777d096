"""boto3's failures in prodseg's two kinds: permanent input errors, transient ones.

An endpoint that does not answer, a timeout, a 5xx or throttling is a ``TransientError``
(the distributed mode retries it); a missing bucket or refused credentials is an
``InputError`` (retrying cannot help); a missing object is ``ObjectNotFound``.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from prodseg.errors import BucketMissingError, InputError, TransientError
from prodseg.storage.base import ObjectNotFound

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_NO_BUCKET = frozenset({"NoSuchBucket"})
_DENIED = frozenset(  # refused credentials or permissions: permanent
    {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId",
     "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired"}
)
_TRANSIENT = frozenset(  # throttling, timeouts, server trouble (any 5xx status counts too)
    {"SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
     "RequestLimitExceeded", "TooManyRequestsException", "RequestTimeout",
     "RequestTimeoutException", "InternalError", "ServiceUnavailable"}
)


def map_s3_error(
    error: Exception,
    *,
    operation: str,
    bucket: str,
    endpoint: str,
    key: str | None = None,
    location: str | None = None,
) -> Exception:
    """Translate a boto3 failure into prodseg's error kinds.

    Messages name the operation, the object and the endpoint, never credentials: the
    service's own message is left out of credential errors.

    Args:
        error: what boto3 raised.
        operation: the S3 operation (``"PutObject"``), for the message.
        bucket: the bucket, for the message.
        endpoint: the endpoint, for the message (without user info).
        key: the store key asked for, if any (becomes ``ObjectNotFound.key``).
        location: the ``s3://`` URL of the object or prefix, for the message.

    Returns:
        ``ObjectNotFound`` for a missing object; ``InputError`` for a missing bucket,
        refused credentials and other permanent 4xx answers; ``TransientError`` for
        connection failures, timeouts, throttling and 5xx answers; ``error`` itself for
        anything else (e.g. a botocore bug report such as ``ParamValidationError``).
    """
    where = location or f"s3://{bucket}/"
    if isinstance(error, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return InputError(
            f"S3 {operation} of {where} at {endpoint}: no usable AWS credentials found; set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile / role)"
        )
    if isinstance(error, (BotoConnectionError, HTTPClientError, IncompleteReadError)):
        return TransientError(
            f"S3 {operation} of {where} failed: endpoint {endpoint} did not answer "
            f"({type(error).__name__})"
        )
    if not isinstance(error, ClientError):
        return error
    code = error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if code in _NOT_FOUND:
        return ObjectNotFound(key or "", where)
    if code in _NO_BUCKET:
        return missing_bucket(bucket, endpoint)
    if code in _DENIED or status == 403:
        return InputError(
            f"access denied: S3 {operation} of {where} at {endpoint} was refused ({code}); "
            "check AWS credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and the "
            "bucket's permissions"
        )
    detail = error.response.get("Error", {}).get("Message") or ""
    reason = f"{code}: {detail}" if detail else code
    if code in _TRANSIENT or status >= 500 or status == 429:
        return TransientError(f"S3 {operation} of {where} at {endpoint} failed: {reason}")
    return InputError(f"S3 {operation} of {where} at {endpoint} failed: {reason}")


def missing_bucket(bucket: str, endpoint: str) -> BucketMissingError:
    """The error for a bucket that does not exist at ``endpoint``."""
    return BucketMissingError(f"bucket {bucket!r} does not exist at endpoint {endpoint}")


def is_missing_bucket_answer(error: ClientError) -> bool:
    """Whether a HeadBucket failure says the bucket does not exist (HEAD answers carry no
    body, so the code is the bare status)."""
    return error_code(error) in ("404", "NoSuchBucket", "NotFound")


def error_code(error: ClientError) -> str:
    """The error code of a boto3 ``ClientError`` (``"NoSuchKey"``, ``"404"``, ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))
