"""FFA embeddings of masked regions on top of any patch backbone, in two modes.

``full`` (the default) runs the backbone once per image, resized so its long side is
``input_size`` pixels, and pools every mask from that one patch grid: the cost is one
forward pass per image however many proposals there are (SAM2 gives tens to hundreds),
and the reference is embedded the same way, so both sides see products at the scale
they have in the photo. ``crop`` cuts a square around each mask's box (plus context),
resizes it to ``input_size`` and embeds it alone: more patches on small products and
scale-normalised features, at one forward pass per proposal. Choose ``crop`` when the
product is small in the frame (panoramas, wide shelf shots).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from prodseg.workers.embed.protocol import PatchBackbone
from prodseg.workers.ops.ffa import foreground_average, grid_for_image, patch_coverage
from prodseg.workers.ops.masks import masks_to_boxes

EmbeddingMode = Literal["full", "crop"]


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 to ``(height, width, 3)``: area averaging when shrinking."""
    shrink = height * width < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interp)


def square_crop_window(
    box: np.ndarray, context: float, min_side: int = 1
) -> tuple[int, int, int]:
    """A square window around a box, with a margin.

    Args:
        box: ``(4,)`` ``(x0, y0, x1, y1)``.
        context: margin on each side as a fraction of the box's longer side.
        min_side: smallest window side in pixels.

    Returns:
        ``(x0, y0, side)`` of the window; it may extend past the image.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0)
    side = max(float(min_side), side * (1.0 + 2.0 * context))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    s = int(np.ceil(side))
    return int(np.floor(cx - s / 2.0)), int(np.floor(cy - s / 2.0)), s


def cut_window(array: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The ``side x side`` window at ``(x0, y0)``; zero-padded where it leaves the array."""
    h, w = array.shape[:2]
    out = np.zeros((side, side, *array.shape[2:]), dtype=array.dtype)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out


class FFAEmbedder:
    """Masked regions of an image in, unit FFA embeddings out.

    Args:
        backbone: the patch feature extractor (DINOv2 in production).
        mode: ``"full"`` or ``"crop"`` (see the module docstring).
        input_size: long side (full) or crop side (crop) fed to the backbone, in pixels;
            rounded down to a multiple of the patch size.
        crop_context: crop mode margin, a fraction of the box's longer side.
        batch_size: crops per backbone call in crop mode.
    """

    def __init__(
        self,
        backbone: PatchBackbone,
        mode: EmbeddingMode = "full",
        input_size: int = 518,
        crop_context: float = 0.15,
        batch_size: int = 16,
    ) -> None:
        self.backbone = backbone
        self.mode = mode
        self.patches = max(1, input_size // backbone.patch_size)
        self.crop_context = crop_context
        self.batch_size = batch_size

    def image_tokens(self, image: np.ndarray) -> np.ndarray:
        """The backbone's patch grid over the whole image (one forward pass).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``(gh, gw, D)`` float32; the long side has ``input_size // patch_size`` patches.
        """
        return self.image_tokens_batch([image])[0]

    def image_tokens_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """``image_tokens`` of several images, one backbone call per distinct grid shape.

        Args:
            images: ``(H_i, W_i, 3)`` uint8 RGB each.

        Returns:
            One ``(gh_i, gw_i, D)`` float32 grid per image, in order.
        """
        p = self.backbone.patch_size
        grids = [grid_for_image(im.shape[0], im.shape[1], self.patches) for im in images]
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(images)
        for grid in dict.fromkeys(grids):
            members = [i for i, g in enumerate(grids) if g == grid]
            batch = np.stack([resize_image(images[i], grid[0] * p, grid[1] * p)
                              for i in members])
            for i, tokens in zip(members, self.backbone.patch_tokens(batch), strict=True):
                out[i] = tokens
        return out

    def embed(self, image: np.ndarray, masks: np.ndarray,
              tokens: np.ndarray | None = None) -> np.ndarray:
        """FFA embedding of each mask.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            masks: ``(N, H, W)`` bool.
            tokens: ``image_tokens(image)`` if already computed (reused in ``full`` mode).

        Returns:
            ``(N, D)`` float32 unit vectors (zero for an empty mask).
        """
        if self.mode == "crop":
            return self._embed_crops(image, masks)
        grid = tokens if tokens is not None else self.image_tokens(image)
        return foreground_average(grid, patch_coverage(masks, (grid.shape[0], grid.shape[1])))

    def _embed_crops(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        p = self.backbone.patch_size
        side_px = self.patches * p
        boxes = masks_to_boxes(masks)
        crops, weights = [], []
        for mask, box in zip(masks, boxes, strict=True):
            x0, y0, side = square_crop_window(box, self.crop_context, min_side=p)
            crops.append(resize_image(cut_window(image, x0, y0, side), side_px, side_px))
            crop_mask = cut_window(mask, x0, y0, side)
            weights.append(patch_coverage(crop_mask[None], (self.patches, self.patches))[0])
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = np.stack(crops[start : start + self.batch_size])
            tokens = self.backbone.patch_tokens(batch)
            for j, tok in enumerate(tokens):
                out.append(foreground_average(tok, weights[start + j][None])[0])
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(out).astype(np.float32)
