"""The object-store interface every storage backend implements, and the rules for keys.

A store holds whole objects (bytes) under ``/``-separated relative keys, like S3. The
interface is deliberately small so that a local directory, S3 and test doubles all fit:
``put``, ``get``, ``exists``, ``list`` and ``describe``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable


class ObjectNotFound(KeyError):
    """No object is stored under the key.

    Args:
        key: the key that was asked for.
        location: where the store looked (a path or ``s3://`` URL), for the message.
    """

    def __init__(self, key: str, location: str | None = None) -> None:
        where = f" ({location})" if location and location != key else ""
        super().__init__(f"no object stored under key {key!r}{where}")
        self.key = key
        self.location = location

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument; show the sentence.
        return str(self.args[0])


@runtime_checkable
class ObjectStore(Protocol):
    """Whole objects under ``/``-separated relative keys (see ``validate_key``)."""

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``, replacing any object there.

        Readers see either the old object or the whole new one, never a partial write.

        Args:
            key: a valid key.
            data: the whole object.
            content_type: MIME type, for stores that keep one (e.g. ``"image/png"``).
        """
        ...

    def get(self, key: str) -> bytes:
        """The whole object under ``key``; raises ``ObjectNotFound`` when there is none."""
        ...

    def get_head(self, key: str, size: int) -> bytes:
        """The object's first ``size`` bytes (all of it when shorter); raises
        ``ObjectNotFound`` when there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with ``prefix`` (a plain string prefix, as in S3), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; nothing happens when there is none."""
        ...

    def describe(self, key: str) -> str:
        """Where the object lives, for people: a file path or an ``s3://`` URL."""
        ...


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe relative object key and return it unchanged.

    A key is a ``/``-separated relative path. Rejected: empty keys, absolute keys (leading
    ``/``), empty segments (``a//b``, trailing ``/``), ``.`` and ``..`` segments,
    backslashes, and control characters (NUL included). Keys that pass cannot leave the
    root of a local store.

    Args:
        key: the key to check.

    Returns:
        ``key`` itself.

    Raises:
        ValueError: naming the key and what is wrong with it.
    """
    if not isinstance(key, str):
        raise ValueError(f"object key must be a string, got {type(key).__name__}: {key!r}")
    reason = _key_problem(key)
    if reason is not None:
        raise ValueError(f"invalid object key {key!r}: {reason}")
    return key


def _key_problem(key: str) -> str | None:
    """What is wrong with ``key``, or None when it is a valid key."""
    if not key:
        return "it is empty"
    if key.startswith("/"):
        return "it is absolute (starts with '/'); keys are relative"
    if "\\" in key:
        return "it contains a backslash; separate segments with '/'"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        return "it contains a control character (e.g. NUL or newline)"
    for segment in key.split("/"):
        if segment == "":
            return "it has an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
    return None


def is_valid_key(key: str) -> bool:
    """Whether ``validate_key`` accepts ``key``."""
    try:
        validate_key(key)
    except ValueError:
        return False
    return True
