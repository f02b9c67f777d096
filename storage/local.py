"""``LocalStore``: an ``ObjectStore`` that keeps each object as a file under a directory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from prodseg.storage.base import ObjectNotFound, is_valid_key, validate_key

_TEMP_PREFIX = ".prodseg-"
_TEMP_SUFFIX = ".tmp"


class LocalStore:
    """Objects as files: key ``a/b.png`` is the file ``<root>/a/b.png``.

    ``put`` writes a temporary file in the target's directory and renames it over the
    target (``os.replace``), so a reader never sees a half-written object. Keys are
    checked with ``validate_key``, and the resolved path must stay under the root, so no
    key (nor a symbolic link inside the root) can read or write outside it.

    Args:
        root: the directory that holds the objects; created on the first ``put``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write ``data`` to the key's file atomically, creating parent directories.

        Args:
            key: a valid key.
            data: the whole object.
            content_type: ignored; files carry no MIME type.

        Raises:
            ValueError: the key is invalid.
            OSError: the file could not be written (e.g. a file is in the way of a
                directory the key needs).
        """
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}"
        # os.open honours the umask (NamedTemporaryFile would leave the object 0600).
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(bytes(data))
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        """The file's bytes; raises ``ObjectNotFound`` when there is no such file."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise ObjectNotFound(key, str(path)) from error

    def get_head(self, key: str, size: int) -> bytes:
        """The file's first ``size`` bytes; raises ``ObjectNotFound`` when there is none."""
        path = self._path(key)
        try:
            with path.open("rb") as file:
                return file.read(max(0, size))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise ObjectNotFound(key, str(path)) from error

    def exists(self, key: str) -> bool:
        """Whether the key's file exists (a directory is not an object)."""
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys of all files whose key starts with ``prefix``, sorted.

        Temporary files of writes in progress are never listed.

        Args:
            prefix: a plain string prefix (``"masks/"``, ``"masks/img"``, ``""`` for all).
        """
        directory, _, _ = prefix.rpartition("/")
        start = self.root
        if directory:
            segments = directory.split("/")
            if any(s in ("", ".", "..") or "\\" in s or "\x00" in s for s in segments):
                return iter(())
            start = self.root.joinpath(*segments)
        if not start.is_dir():
            return iter(())
        return iter(sorted(self._walk(start, prefix)))

    def delete(self, key: str) -> None:
        """Remove the key's file; nothing happens when there is none."""
        path = self._path(key)
        if path.is_file():
            path.unlink(missing_ok=True)

    def describe(self, key: str) -> str:
        """The absolute file path of the key."""
        return str(self._path(key))

    def _walk(self, start: Path, prefix: str) -> Iterator[str]:
        """Keys of the object files under ``start`` that begin with ``prefix``."""
        for dirpath, _dirnames, filenames in os.walk(start):
            relative_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX):
                    continue
                key = name if relative_dir == "." else f"{relative_dir}/{name}"
                if key.startswith(prefix) and is_valid_key(key):
                    yield key

    def _path(self, key: str) -> Path:
        """The file path of a valid key, guaranteed to lie under the root."""
        path = self.root.joinpath(*validate_key(key).split("/"))
        if not path.resolve().is_relative_to(self.root):
            raise ValueError(
                f"invalid object key {key!r}: it resolves outside the store root {self.root} "
                "(through a symbolic link)"
            )
        return path
