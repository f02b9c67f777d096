"""A deterministic stand-in for DINOv2: hand-made colour and edge-direction patch features."""

from __future__ import annotations

import cv2
import numpy as np


class ColourTextureBackbone:
    """Hand-made patch features (an ``embed.protocol.PatchBackbone``).

    Each patch gets a soft-binned joint hue-saturation-value colour histogram and a
    magnitude-weighted histogram of edge directions, concatenated. Hue and saturation do
    not change when a surface is lit more or less brightly, and value gets only two bins,
    so shading matters little. The colour part holds square roots of bin fractions, so
    that one-colour patches do not outweigh many-coloured ones in an average; a fixed
    constant is subtracted from both parts so that regions with unrelated colours have
    cosine similarity near zero.
    ``D = hue_bins * saturation_bins * value_bins + orientation_bins``.

    Args:
        hue_bins: bins around the hue circle.
        saturation_bins: bins from grey to fully saturated.
        value_bins: bins from black to bright (at least 2).
        orientation_bins: bins of edge direction over 180 degrees.
        texture_weight: how much the edge-direction part counts next to colour.
    """

    patch_size: int = 14
    name: str = "colour-texture"

    def __init__(
        self,
        hue_bins: int = 12,
        saturation_bins: int = 4,
        value_bins: int = 2,
        orientation_bins: int = 8,
        texture_weight: float = 0.5,
    ) -> None:
        if min(saturation_bins, value_bins) < 2 or min(hue_bins, orientation_bins) < 1:
            raise ValueError("need at least 2 saturation and value bins, 1 hue and direction bin")
        self.hue_bins = hue_bins
        self.saturation_bins = saturation_bins
        self.value_bins = value_bins
        self.orientation_bins = orientation_bins
        self.texture_weight = texture_weight

    @property
    def dim(self) -> int:
        """Feature length D."""
        return self.hue_bins * self.saturation_bins * self.value_bins + self.orientation_bins

    def patch_tokens(self, images: np.ndarray) -> np.ndarray:
        """Patch features of a batch of same-size images.

        Args:
            images: ``(B, h, w, 3)`` uint8 RGB with ``h`` and ``w`` multiples of 14.

        Returns:
            ``(B, h // 14, w // 14, D)`` float32.
        """
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected (B, h, w, 3) images, got shape {images.shape}")
        _, h, w, _ = images.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"image size {w}x{h} is not a multiple of the patch size {p}")
        rows, cols = np.divmod(np.arange(h * w), w)
        patch_of_pixel = (rows // p) * (w // p) + cols // p
        return np.stack([self._features(img, patch_of_pixel) for img in images])

    def _features(self, image: np.ndarray, patch_of_pixel: np.ndarray) -> np.ndarray:
        """``(h, w, 3)`` uint8 -> ``(h // 14, w // 14, D)`` float32."""
        h, w, _ = image.shape
        p = self.patch_size
        n_patches = (h // p) * (w // p)
        colour = self._colour(image, patch_of_pixel, n_patches)
        texture = self._texture(image, patch_of_pixel, n_patches)
        features = np.concatenate([colour, self.texture_weight * texture], axis=1)
        return features.reshape(h // p, w // p, -1).astype(np.float32)

    def _colour(self, image: np.ndarray, patch_of_pixel: np.ndarray, n_patches: int) -> np.ndarray:
        """Centred square-root colour histograms, ``(n_patches, hue * sat * value bins)``."""
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.float32)
        sizes = (self.hue_bins, self.saturation_bins, self.value_bins)
        coords = (
            hsv[:, 0] / 256.0 * sizes[0],  # hue wraps round: bin centres at 0, 1, ... n - 1
            hsv[:, 1] / 255.0 * (sizes[1] - 1),
            hsv[:, 2] / 255.0 * (sizes[2] - 1),
        )
        lows, highs, fracs = [], [], []
        for axis, (coord, size) in enumerate(zip(coords, sizes, strict=True)):
            low = np.floor(coord) if axis == 0 else np.minimum(np.floor(coord), size - 2)
            fracs.append(coord - low)
            lows.append(low.astype(np.int64) % size)
            highs.append((lows[-1] + 1) % size)
        n_bins = int(np.prod(sizes))
        counts = np.zeros(n_patches * n_bins, np.float64)
        for corner in range(8):  # soft binning: share each pixel among 8 neighbouring bins
            index = patch_of_pixel.astype(np.int64)
            weight = np.ones(len(index), np.float32)
            for axis, size in enumerate(sizes):
                upper = (corner >> axis) & 1
                index = index * size + (highs[axis] if upper else lows[axis])
                weight = weight * (fracs[axis] if upper else 1 - fracs[axis])
            counts += np.bincount(index, weight, minlength=len(counts))
        fractions = counts.reshape(n_patches, n_bins) / (self.patch_size**2)
        # Square roots (Hellinger) keep one-colour patches from outweighing many-coloured
        # ones. The constant, a third of the root each bin would hold if colours were spread
        # evenly, centres them.
        return np.sqrt(fractions) - 1.0 / (3 * np.sqrt(n_bins))

    def _texture(self, image: np.ndarray, patch_of_pixel: np.ndarray, n_patches: int) -> np.ndarray:
        """Centred edge-direction histograms, ``(n_patches, orientation_bins)``."""
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3).reshape(-1)
        gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3).reshape(-1)
        magnitude = np.hypot(gx, gy)
        n = self.orientation_bins
        position = (np.arctan2(gy, gx) % np.pi) / np.pi * n - 0.5
        low = np.floor(position)
        frac = position - low
        sums = np.zeros(n_patches * n, np.float64)
        for shift, share in ((0, 1.0 - frac), (1, frac)):
            index = patch_of_pixel * n + ((low + shift) % n).astype(np.int64)
            sums += np.bincount(index, magnitude * share, minlength=len(sums))
        per_patch = sums.reshape(n_patches, n)
        total = per_patch.sum(axis=1, keepdims=True)
        centred = per_patch / np.maximum(total, 1e-6) - 1.0 / n
        return centred * (total > 1e-3 * self.patch_size**2)  # flat patches carry no direction
