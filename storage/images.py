"""Photos read: a file's bytes within limits, its size from its header, its pixels
decoded into RGB arrays; and a mask's PNG, written and read.

``decode_image`` is the one door through which photos enter prodseg. It returns the image
as displayed (EXIF orientation applied), as ``(H, W, 3)`` uint8 RGB, whatever the stored
mode, and turns every way a file can be wrong into ``ImageReadError`` with a reason a
user understands. The pixel count is checked from the header before any pixel is
decoded, so a small file that declares a huge image (a decompression bomb) costs nothing.
Which formats are opened is ``storage.image_formats``'s; encoding is
``storage.image_encoding``'s.

Transparency is composited onto white: a product photo with a transparent background
looks, to the models, the way it looks in a viewer on a white page (dropping the alpha
channel instead would expose whatever colour the transparent pixels happen to store).
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from prodseg.errors import ImageReadError
from prodseg.storage.image_encoding import encode_png
from prodseg.storage.image_formats import (
    DECODE_ERRORS,
    enable_decoder,
    open_formats,
    unrecognised_reason,
)

DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 200_000_000  # the default of setting max_image_bytes

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def decode_image(data: bytes, source: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into the RGB image as displayed.

    Supports JPEG (camera MPO included), PNG, WebP, TIFF, BMP and GIF (first frame of
    animations and multi-page files). Modes: 1-bit, grayscale, palette, RGB, CMYK and
    YCbCr are converted to RGB; 16-bit grayscale is scaled to 8 bits (65535 -> 255, by
    rounding ``v * 255 / 65535``, not clipping); 32-bit float grayscale is read as 0..1
    when no value exceeds 1 and as 0..255 otherwise; transparency is composited onto white.
    EXIF orientation is applied, so pixel coordinates are those of the displayed image;
    unreadable EXIF data leaves the image as stored.

    Args:
        data: the encoded file.
        source: path or key of the file, used in error messages.
        max_pixels: largest accepted width x height (setting ``max_image_pixels``).

    Returns:
        ``(H, W, 3)`` uint8 RGB, C-contiguous.

    Raises:
        ImageReadError: empty, not an image, truncated or corrupt, too many pixels, or
            an unsupported mode; the reason says which.
    """
    if len(data) == 0:
        raise ImageReadError(source, "file is empty (0 bytes)")
    enable_decoder(data, source)
    with warnings.catch_warnings():
        # Our own limit replaces Pillow's bomb warning; its other warnings (e.g. corrupt
        # EXIF, which only costs the orientation) would be noise in a batch log.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
        try:
            image = Image.open(io.BytesIO(data), formats=open_formats())
        except UnidentifiedImageError as error:
            raise ImageReadError(source, unrecognised_reason(data)) from error
        except Image.DecompressionBombError as error:
            raise ImageReadError(source, _pil_bomb_reason(error, max_pixels)) from error
        except DECODE_ERRORS as error:
            raise ImageReadError(source, _corrupt_reason(error)) from error
        with image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ImageReadError(source, f"image has no pixels ({width} x {height})")
            if width * height > max_pixels:
                raise ImageReadError(source, _too_many_pixels(width, height, max_pixels))
            try:
                image.load()
            except Image.DecompressionBombError as error:
                raise ImageReadError(source, _pil_bomb_reason(error, max_pixels)) from error
            except DECODE_ERRORS as error:
                raise ImageReadError(source, _corrupt_reason(error)) from error
            displayed = _apply_orientation(image)
            return _to_rgb(displayed, source)


HEADER_BYTES = 256 * 1024
"""How much of a file ``header_size`` is given: room for large EXIF blocks before a
JPEG's frame header."""


def header_size(head: bytes) -> tuple[int, int] | None:
    """An image's displayed ``(width, height)`` from the first bytes of its file, without
    decoding its pixels (EXIF orientation applied, as ``decode_image`` applies it).

    Args:
        head: the file's first bytes (``HEADER_BYTES`` of them, or the whole file).

    Returns:
        The size, or None when those bytes do not say it (a format Pillow cannot size
        from a prefix, a header past them, or not an image): then decode the whole file.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(head), formats=open_formats()) as image:
                width, height = image.size
                try:
                    turned = image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
                except Exception:  # broken EXIF: decode_image keeps the image as stored
                    turned = False
        except (UnidentifiedImageError, *DECODE_ERRORS):
            return None
    if width <= 0 or height <= 0:
        return None
    return (height, width) if turned else (width, height)


def read_image_file(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read and decode a local image file (see ``decode_image``).

    Args:
        path: the file.
        max_pixels: largest accepted width x height.
        max_bytes: largest accepted file size (checked before reading).

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        ImageReadError: the file is missing, not a regular file, too large, unreadable,
            or not a valid image.
    """
    return decode_image(read_file_bytes(path, max_bytes), str(path), max_pixels)


def read_file_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                    head: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, checked before reading.

    A FIFO would block a reader forever and a device such as ``/dev/zero`` never ends, so
    only regular files are read, and only when ``stat`` says they fit the limit.

    Args:
        path: the file.
        max_bytes: the largest file read whole (setting ``max_image_bytes``).
        head: read only the file's first ``head`` bytes (a header), whatever its size.

    Raises:
        ImageReadError: the file is missing, a directory or special file, too large, or
            unreadable (the message names it).
    """
    source = str(path)
    try:
        # Opened without blocking (a FIFO would wait for a writer), then checked on the
        # open descriptor, so the file cannot be swapped between the check and the read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise ImageReadError(source, "is a directory, not an image file")
            if not stat.S_ISREG(info.st_mode):
                raise ImageReadError(source, "is not a regular file (a pipe, device or "
                                     "socket); only image files are read")
            if head is not None:
                return handle.read(max(0, head))
            if info.st_size > max_bytes:
                raise ImageReadError(source, f"{info.st_size} bytes exceeds the limit of "
                                     f"{max_bytes} (setting max_image_bytes)")
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ImageReadError(source, f"grew past the limit of {max_bytes} bytes while "
                                 "being read (setting max_image_bytes)")
        return data
    except FileNotFoundError as error:
        raise ImageReadError(source, "file not found") from error
    except IsADirectoryError as error:
        raise ImageReadError(source, "is a directory, not an image file") from error
    except PermissionError as error:
        raise ImageReadError(source, "permission denied (cannot read the file)") from error
    except OSError as error:
        raise ImageReadError(source, f"cannot read the file: {error.strerror or error}") from error



def _apply_orientation(image: Image.Image) -> Image.Image:
    """The image rotated/flipped as its EXIF orientation says; as stored if unreadable."""
    try:
        if image.getexif().get(ExifTags.Base.Orientation, 1) not in range(2, 9):
            return image  # nothing to do; exif_transpose would copy the whole image
        transposed = ImageOps.exif_transpose(image)
    except Exception:  # broken EXIF must not reject good pixels
        return image
    return transposed if transposed is not None else image


def _to_rgb(image: Image.Image, source: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a loaded image in any supported mode."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return np.array(image, dtype=np.uint8)
    if mode in _SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        gray = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    try:
        if mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.array(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
        return np.array(image.convert("RGB"), dtype=np.uint8)
    except DECODE_ERRORS as error:
        raise ImageReadError(
            source, f"unsupported image mode {mode!r} (cannot convert to RGB: {error})"
        ) from error


def _too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    """The reason text for an image over the pixel limit."""
    return (
        f"{width} x {height} = {width * height} pixels exceeds the limit of {max_pixels} "
        "(setting max_image_pixels)"
    )


def _pil_bomb_reason(error: Exception, max_pixels: int) -> str:
    """The reason text when Pillow's own decompression-bomb guard refused the image.

    Pillow refuses images over twice ``PIL.Image.MAX_IMAGE_PIXELS`` before prodseg sees
    their size; its message gives the pixel count and its limit, not the dimensions.
    """
    numbers = [int(n) for n in re.findall(r"\d+", str(error))]
    if len(numbers) < 2:
        return f"image exceeds the pixel limit (setting max_image_pixels): {error}"
    pixels, pillow_limit = numbers[0], numbers[1]
    if pixels > max_pixels:
        return f"{pixels} pixels exceeds the limit of {max_pixels} (setting max_image_pixels)"
    return (
        f"{pixels} pixels exceeds the limit of {pillow_limit} (Pillow's decompression-bomb "
        "limit PIL.Image.MAX_IMAGE_PIXELS, which is below setting max_image_pixels)"
    )


def _corrupt_reason(error: Exception) -> str:
    """The reason text for a file that is an image but cannot be decoded."""
    detail = str(error) or type(error).__name__
    return f"image data is truncated or corrupt: {detail}"




def mask_png(mask: np.ndarray) -> bytes:
    """A mask as an 8-bit single-channel PNG, 255 on the product and 0 elsewhere.

    Args:
        mask: ``(H, W)`` bool.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    return encode_png(np.where(mask.astype(bool), 255, 0).astype(np.uint8))


def read_mask_png(data: bytes) -> np.ndarray:
    """The ``(H, W)`` bool mask of a PNG written by ``mask_png`` (pixels > 127 are True)."""
    with Image.open(io.BytesIO(data)) as image:
        gray = np.asarray(image.convert("L"))
    return gray > 127

