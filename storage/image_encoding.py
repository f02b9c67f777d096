"""Image arrays encoded: PNG and JPEG, and a product's cutout as an RGBA PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image


def encode_png(array: np.ndarray) -> bytes:
    """Encode an image array as PNG.

    Args:
        array: ``(H, W)`` uint8 or bool (grayscale), ``(H, W, 3)`` uint8 RGB or
            ``(H, W, 4)`` uint8 RGBA.

    Returns:
        PNG bytes (deterministic for equal input).
    """
    buffer = io.BytesIO()
    _to_pil(array).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    """Encode an image array as JPEG.

    Args:
        array: ``(H, W)`` uint8 grayscale or ``(H, W, 3)`` uint8 RGB.
        quality: JPEG quality, 1 to 95.

    Returns:
        JPEG bytes.
    """
    image = _to_pil(array)
    if image.mode not in ("L", "RGB"):
        raise ValueError(f"JPEG needs a grayscale or RGB image, got mode {image.mode}")
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be in 1..95, got {quality}")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _to_pil(array: np.ndarray) -> Image.Image:
    """A PIL image of a uint8 (or bool, 2-D) array with 1, 3 or 4 channels."""
    array = np.asarray(array)
    if array.ndim == 2 and array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise ValueError(f"image array must be uint8, got {array.dtype}")
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        mode = "RGB" if array.shape[2] == 3 else "RGBA"
        return Image.fromarray(np.ascontiguousarray(array), mode=mode)
    raise ValueError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")


def cutout_png(image: np.ndarray, mask: np.ndarray, bbox: Sequence[int],
               alpha: np.ndarray | None = None) -> bytes:
    """The product cut out: RGBA PNG cropped to ``bbox``, transparent off the mask.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool.
        bbox: ``(x0, y0, x1, y1)`` with exclusive upper edges, inside the image.
        alpha: ``(y1 - y0, x1 - x0)`` uint8, the alpha to use instead of the mask's
            (soft edges: ``workers.ops.edges``).

    Returns:
        PNG of ``(y1 - y0, x1 - x0, 4)`` uint8: alpha ``alpha``, or 255 on the mask and
        0 elsewhere, RGB zeroed where alpha is 0.
    """
    check_image_and_mask(image, mask)
    height, width = mask.shape
    x0, y0, x1, y1 = (int(v) for v in bbox)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"box {[x0, y0, x1, y1]} is empty or outside the {width}x{height} image")
    if alpha is None:
        alpha = np.where(np.asarray(mask[y0:y1, x0:x1], dtype=bool), 255, 0).astype(np.uint8)
    elif alpha.shape != (y1 - y0, x1 - x0) or alpha.dtype != np.uint8:
        raise ValueError(f"alpha must be {(y1 - y0, x1 - x0)} uint8, got {alpha.shape} "
                         f"{alpha.dtype}")
    rgba = np.zeros((y1 - y0, x1 - x0, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(alpha[..., None] > 0, image[y0:y1, x0:x1], 0)
    rgba[..., 3] = alpha
    return encode_png(rgba)


def check_image_and_mask(image: np.ndarray, mask: np.ndarray) -> None:
    """ValueError unless ``image`` is ``(H, W, 3)`` uint8 and ``mask`` is ``(H, W)``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if np.shape(mask) != image.shape[:2]:
        raise ValueError(f"mask shape {np.shape(mask)} does not match image {image.shape[:2]}")
