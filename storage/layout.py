"""The output keys of one job, and the file-name-safe image ids they are built from.

Every key is derived from the job prefix and an image id, so a task that runs twice
writes the same objects::

    results.json  coco.json  gallery.html  gallery.png
    reference/mask.png  reference/cutout.png  reference/embedding.npy
    masks/<image-id>_<k>.png  cutouts/<image-id>_<k>.png  thumbs/<image-id>.jpg

``k`` counts the matches of one image, best first, from 0. ``thumbs/`` holds a small
overlay per image (the reference's included) so that the gallery can be assembled later
without reading the full images again.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prodseg.storage.base import validate_key

RESULTS = "results.json"
COCO = "coco.json"
GALLERY_HTML = "gallery.html"
GALLERY_PNG = "gallery.png"
REFERENCE_MASK = "reference/mask.png"
REFERENCE_CUTOUT = "reference/cutout.png"
REFERENCE_EMBEDDING = "reference/embedding.npy"
OUTPUT_FOLDERS = ("reference", "masks", "cutouts", "thumbs")
"""The folders of a job's output layout."""

_MAX_ID_BYTES = 120  # leaves room for "_<k>.png" and "-<n>" within a 255-byte file name
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)]
)


@dataclass(frozen=True)
class JobLayout:
    """The keys of one job's outputs under ``prefix``.

    Args:
        prefix: ``""`` for a local output directory, or e.g. ``"jobs/<job>/"`` in S3.
            Normalised to end with ``/`` when not empty.

    Raises:
        ValueError: the prefix is not a valid key prefix.
    """

    prefix: str = ""

    def __post_init__(self) -> None:
        if self.prefix:
            stripped = self.prefix.rstrip("/")
            validate_key(stripped)
            object.__setattr__(self, "prefix", stripped + "/")

    def key(self, relative: str) -> str:
        """The full key of ``relative`` (a key relative to the job root)."""
        return validate_key(self.prefix + validate_key(relative))

    def relative(self, key: str) -> str:
        """``key`` without the job prefix; raises ValueError for a key outside the job."""
        if not key.startswith(self.prefix) or key == self.prefix:
            raise ValueError(f"key {key!r} is not under the job prefix {self.prefix!r}")
        return key[len(self.prefix) :]

    @property
    def results(self) -> str:
        """``results.json``: written last, so its presence means the job is complete."""
        return self.key(RESULTS)

    @property
    def coco(self) -> str:
        """``coco.json``: COCO instance segmentation of every mask."""
        return self.key(COCO)

    @property
    def gallery_html(self) -> str:
        """``gallery.html``: a self-contained page with every image's overlay."""
        return self.key(GALLERY_HTML)

    @property
    def gallery_png(self) -> str:
        """``gallery.png``: a contact sheet of every image's overlay."""
        return self.key(GALLERY_PNG)

    @property
    def reference_mask(self) -> str:
        """``reference/mask.png``: the clicked product's mask on the reference image."""
        return self.key(REFERENCE_MASK)

    @property
    def reference_cutout(self) -> str:
        """``reference/cutout.png``: the clicked product, cut out."""
        return self.key(REFERENCE_CUTOUT)

    @property
    def reference_embedding(self) -> str:
        """``reference/embedding.npy``: the reference embedding, ``(D,)`` float32."""
        return self.key(REFERENCE_EMBEDDING)

    def mask(self, image_id: str, k: int) -> str:
        """``masks/<image-id>_<k>.png``: the k-th match (best first, from 0) of an image."""
        return self.key(f"masks/{_checked_id(image_id)}_{_checked_index(k)}.png")

    def cutout(self, image_id: str, k: int) -> str:
        """``cutouts/<image-id>_<k>.png``: the k-th match of an image, cut out."""
        return self.key(f"cutouts/{_checked_id(image_id)}_{_checked_index(k)}.png")

    def thumbnail(self, image_id: str) -> str:
        """``thumbs/<image-id>.jpg``: a small overlay of an image and its matches."""
        return self.key(f"thumbs/{_checked_id(image_id)}.jpg")


log = logging.getLogger(__name__)
T = TypeVar("T")


def once_each(items: Sequence[T], identity: Callable[[T], str]) -> list[T]:
    """``items`` without repeats of the same identity (the first kept), each repeat logged.

    Args:
        items: image sources, in input order.
        identity: what makes two items the same image (a real path, an ``s3://`` URL).
    """
    seen: set[str] = set()
    kept = []
    for item in items:
        key = identity(item)
        if key in seen:
            log.warning("%s was given more than once; it is processed once", item)
            continue
        seen.add(key)
        kept.append(item)
    return kept


def make_image_ids(sources: Sequence[str]) -> list[str]:
    """A unique, file-name-safe id for each source, in order.

    The id is the file stem (last path or key segment, without its extension), Unicode
    NFC-normalised. Letters, digits and combining marks of any script, ``-`` and ``_`` are
    kept; every run of other characters (spaces, dots, slashes, control characters, ...)
    becomes one ``_``. An id
    is never empty (``"image"``), never starts with ``.``, is at most 120 UTF-8 bytes and
    is never a Windows device name. Ids that equal an earlier one (ignoring case, for
    case-insensitive file systems) get ``-2``, ``-3``, ... in input order.

    Args:
        sources: local paths or object keys (``s3://`` URLs included).

    Returns:
        One id per source, same order.
    """
    ids: list[str] = []
    taken: set[str] = set()
    for source in sources:
        base = _safe_stem(source)
        candidate, n = base, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate.casefold())
        ids.append(candidate)
    return ids


def is_safe_image_id(image_id: str) -> bool:
    """Whether ``image_id`` could have come from ``make_image_ids``."""
    return (
        isinstance(image_id, str)
        and 0 < len(image_id.encode("utf-8")) <= _MAX_ID_BYTES + 12
        and all(_is_safe_char(ch) for ch in image_id)
        and image_id.upper() not in _WINDOWS_RESERVED
    )


def _safe_stem(source: str) -> str:
    """The sanitised file stem of one source."""
    name = re.split(r"[/\\]", source.rstrip("/\\"))[-1]
    stem, dot, _extension = name.rpartition(".")
    if not dot or not stem.strip("."):
        stem = name
    pieces: list[str] = []
    in_unsafe_run = False
    for ch in unicodedata.normalize("NFC", stem):
        if _is_safe_char(ch):
            pieces.append(ch)
            in_unsafe_run = False
        elif not in_unsafe_run:
            pieces.append("_")
            in_unsafe_run = True
    safe = _truncate_utf8("".join(pieces), _MAX_ID_BYTES)
    if not safe.strip("_"):
        safe = "image"
    if safe.upper() in _WINDOWS_RESERVED:
        safe += "_"
    return safe


def _is_safe_char(ch: str) -> bool:
    """Letters, digits and marks of any script, ``-`` and ``_``."""
    return ch in "-_" or unicodedata.category(ch)[0] in "LNM"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes on a character boundary."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def _checked_id(image_id: str) -> str:
    """``image_id`` if it is a safe id; ValueError otherwise (it could leave the prefix)."""
    if not is_safe_image_id(image_id):
        raise ValueError(
            f"unsafe image id {image_id!r}: ids must come from make_image_ids "
            "(letters, digits, '-' and '_' only)"
        )
    return image_id


def _checked_index(k: int) -> int:
    """``k`` if it is a match index (an int >= 0); ValueError otherwise."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"match index must be an int >= 0, got {k!r}")
    return k
