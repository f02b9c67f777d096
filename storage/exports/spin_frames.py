"""Storefront spin frames: one square crop for a whole spin, and each view's cutout in it.

A turntable (or a walk around a product that stays put) shows the product turning about
a vertical axis. One crop for the whole spin keeps the product from jumping between
frames: it is centred horizontally on the rotation axis, estimated as the median of the
masks' centroids (over a full turn the centroid swings to both sides of the axis alike),
and vertically on the middle of the height every view's box spans. Its side is chosen
so that the product fills ``fill`` of the frame in the median view (a view's fill: its
box's longer side over the frame's side), which splits the spread between the views
around the target, unless that would take the product's largest extent over the spin,
measured from that centre, past ``MAX_FILL`` of the frame: nothing is ever cut off.

Coordinates are source-image pixels with edges at integers (a box ``[x0, y0, x1, y1]``
covers columns ``x0 .. x1 - 1``), as in ``results.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

DEFAULT_FILL = 0.85
DEFAULT_SIZE = 2000
MAX_FILL = 0.98
"""The most of the frame's side the product's extent over the whole spin may take."""


@dataclass(frozen=True)
class SpinView:
    """One view's product, as a spin frame needs it.

    Attributes:
        box: ``(x0, y0, x1, y1)`` of the cutout in its source image, ``x1`` exclusive.
        centroid: ``(x, y)`` of the mask's pixel centres (area-weighted by alpha).
    """

    box: tuple[int, int, int, int]
    centroid: tuple[float, float]


@dataclass(frozen=True)
class SpinCrop:
    """The one square crop of a spin, in source-image pixels.

    Attributes:
        centre: ``(x, y)``: the rotation axis' x and the middle of the product's height.
        side: the crop's side.
    """

    centre: tuple[float, float]
    side: float

    @property
    def origin(self) -> tuple[float, float]:
        """The crop's top-left corner."""
        return self.centre[0] - self.side / 2, self.centre[1] - self.side / 2


def alpha_centroid(alpha: np.ndarray) -> tuple[float, float]:
    """The alpha-weighted centre of a cutout's pixels, relative to its top-left corner.

    Args:
        alpha: ``(H, W)`` uint8 alpha.

    Returns:
        ``(x, y)`` with pixel centres at ``k + 0.5``; the cutout's middle when alpha is 0.
    """
    weights = alpha.astype(np.float64)
    total = weights.sum()
    h, w = alpha.shape
    if total <= 0:
        return w / 2, h / 2
    ys, xs = np.arange(h) + 0.5, np.arange(w) + 0.5
    return float(weights.sum(axis=0) @ xs / total), float(weights.sum(axis=1) @ ys / total)


def spin_crop(views: Sequence[SpinView], fill: float = DEFAULT_FILL) -> SpinCrop:
    """The square crop for every frame of a spin (see the module's rule).

    Args:
        views: the spin's views with a product, at least one.
        fill: the share of the frame's side the product takes in the median view, in (0, 1].

    Raises:
        ValueError: no views, or ``fill`` out of (0, 1].
    """
    if not views:
        raise ValueError("a spin crop needs at least one view with the product")
    if not 0 < fill <= 1:
        raise ValueError(f"fill must be in (0, 1], got {fill}")
    boxes = np.array([v.box for v in views], dtype=np.float64)
    axis_x = float(np.median([v.centroid[0] for v in views]))
    top, bottom = float(boxes[:, 1].min()), float(boxes[:, 3].max())
    half_width = float(np.max(np.maximum(axis_x - boxes[:, 0], boxes[:, 2] - axis_x)))
    extent = max(2 * half_width, bottom - top, 1.0)
    typical = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    side = max(typical / fill, extent / max(fill, MAX_FILL))
    return SpinCrop(centre=(axis_x, (top + bottom) / 2), side=side)


def frame_fill(box: tuple[int, int, int, int], crop: SpinCrop) -> float:
    """The share of the frame's side the product's box takes: its longer side over the crop's."""
    return max(box[2] - box[0], box[3] - box[1]) / crop.side


def frame_centre(centroid: tuple[float, float], crop: SpinCrop) -> tuple[float, float]:
    """Where a product's centroid lands in the frame, as fractions of its side (0..1)."""
    x0, y0 = crop.origin
    return (centroid[0] - x0) / crop.side, (centroid[1] - y0) / crop.side


def render_frame(cutout: Image.Image, box: tuple[int, int, int, int], crop: SpinCrop,
                 size: int) -> Image.Image:
    """A view's cutout placed in the spin's crop and scaled to ``size`` x ``size``.

    Resampled once, with premultiplied alpha (no dark fringe), at sub-pixel accuracy:
    the crop's corner need not fall on a pixel.

    Args:
        cutout: the view's RGBA cutout, cropped to ``box``.
        box: where the cutout lies in its source image.
        crop: the spin's crop.
        size: the frame's side in pixels.

    Returns:
        An RGBA ``size`` x ``size`` image, transparent around the product.
    """
    x0, y0 = crop.origin
    left, top = int(np.floor(x0)), int(np.floor(y0))
    span = int(np.ceil(crop.side)) + 2
    canvas = Image.new("RGBA", (span, span), (0, 0, 0, 0))
    canvas.paste(cutout.convert("RGBA"), (box[0] - left, box[1] - top))
    region = (x0 - left, y0 - top, x0 - left + crop.side, y0 - top + crop.side)
    scaled = canvas.convert("RGBa").resize((size, size), Image.Resampling.LANCZOS, box=region)
    return scaled.convert("RGBA")


def flatten(frame: Image.Image, background: tuple[int, int, int] | None) -> Image.Image:
    """An RGBA frame over a solid background (RGB), or kept transparent when ``None``."""
    if background is None:
        return frame
    base = Image.new("RGBA", frame.size, (*background, 255))
    return Image.alpha_composite(base, frame).convert("RGB")
