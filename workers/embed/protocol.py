"""The ``PatchBackbone`` protocol: images in, a grid of patch features out.

DINOv2 fills it in production (``embed.dinov2``), ``classic.backbone`` in tests and fast
runs; ``embed.ffa_embedder`` pools its features under masks.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class PatchBackbone(Protocol):
    """Images in, a grid of patch features out.

    Attributes:
        patch_size: side of one square patch in input pixels.
        name: a short description shown in outputs.
    """

    patch_size: int
    name: str

    def patch_tokens(self, images: np.ndarray) -> np.ndarray:
        """Patch features of a batch of same-size images.

        Args:
            images: ``(B, h, w, 3)`` uint8 RGB with ``h`` and ``w`` multiples of
                ``patch_size``.

        Returns:
            ``(B, h // patch_size, w // patch_size, D)`` float32.
        """
        ...
