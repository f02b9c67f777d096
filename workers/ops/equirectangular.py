"""What an equirectangular panorama is, by its size: the one rule.

The capture mode (``capture.order``), the tiled segmenter (``segment.panorama``) and the
seam (``ops.seam``) all ask ``is_panorama_size``, so an image is tiled exactly when it is
recorded as a panorama. NumPy- and OpenCV-free: the client reads it too.
"""

from __future__ import annotations

PANORAMA_RATIO = (1.98, 2.02)
"""The width/height ratios of an equirectangular panorama: 2:1, give or take a pixel row
or two that a camera or an editor added or cropped."""


def is_panorama_size(width: int, height: int) -> bool:
    """Whether a ``width`` x ``height`` image is an equirectangular panorama: its width
    over its height lies in ``PANORAMA_RATIO``."""
    return height > 0 and PANORAMA_RATIO[0] <= width / height <= PANORAMA_RATIO[1]
