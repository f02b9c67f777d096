"""Which image formats prodseg opens, and what brings a HEIC or AVIF decoder.

Only formats whose decoders run in-process are opened (EPS, for instance, would start
Ghostscript). HEIC/HEIF photos (iPhones') need pillow-heif, the [heic] extra, registered
on first use; AVIF is Pillow's own, in wheels built with it. An ISO-BMFF file's ``ftyp``
brands say which of the two a file is before Pillow is asked.
"""

from __future__ import annotations

import functools
import struct
import zlib

from PIL import Image, features

from prodseg.errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic",
                  ".heif", ".avif")
"""File name endings taken as photos, in a folder or under an ``s3://`` prefix (lower case)."""

# Formats whose decoders run in-process without external programs (EPS, for instance,
# would start Ghostscript). "JPEG" also opens multi-picture camera JPEGs (MPO). HEIF
# (iPhones' HEIC) is pillow-heif's, the [heic] extra; AVIF is Pillow's own (>= 11.3 wheels).
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF", "AVIF")
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1",
                          b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIC_EXTRA_REASON = ("is a HEIC/HEIF photo; reading it needs the [heic] extra: "
                     "pip install 'prodseg[heic]'")

# What Pillow's decoders raise on bad data (it has no single exception type for that).
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
)


def open_formats() -> tuple[str, ...]:
    """The allowed formats this Pillow can open now: HEIF only once pillow-heif registered
    its opener, AVIF only where Pillow was built with it (``Image.open`` refuses a format
    it does not know)."""
    Image.init()  # loads Pillow's plugins once; afterwards it returns at once
    return tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)


def _brands(data: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO-BMFF file's ``ftyp`` box (HEIF, AVIF)."""
    if data[4:8] != b"ftyp":
        return set()
    size = min(int.from_bytes(data[:4], "big"), len(data), 4096)
    return {data[8:12]} | {data[i:i + 4] for i in range(16, size - 3, 4)}


def enable_decoder(data: bytes, source: str) -> None:
    """Make sure the decoder of a HEIC or AVIF photo is there, or say what brings it."""
    brands = _brands(data)
    if brands & _AVIF_BRANDS:
        if not features.check("avif"):
            raise ImageReadError(source, "is an AVIF photo; this Pillow was built without "
                                 "AVIF (Pillow >= 11.3 wheels have it): pip install -U pillow")
    elif brands & _HEIF_BRANDS:
        _register_heif(source)


@functools.cache
def _heif_registered() -> bool:
    from prodseg.extras import installed

    if not installed("pillow_heif"):
        return False
    import pillow_heif

    # pillow-heif applies the photo's rotation itself and leaves EXIF orientation 1.
    pillow_heif.register_heif_opener()
    return True


def _register_heif(source: str) -> None:
    if not _heif_registered():
        raise ImageReadError(source, HEIC_EXTRA_REASON)


def unrecognised_reason(data: bytes) -> str:
    """The reason text for bytes that are no supported image format."""
    if _brands(data) & (_HEIF_BRANDS | _AVIF_BRANDS):
        return "not a readable HEIC/HEIF/AVIF photo"
    return ("not a recognised image format (supported: JPEG, PNG, WebP, TIFF, BMP, GIF, "
            "HEIC with the [heic] extra, AVIF)")
