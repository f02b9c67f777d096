"""Which frames of a video a job takes: evenly spaced, a blurred one swapped for a sharp
neighbour. Pure functions of the frames' sharpness.

Sharpness is the variance of the Laplacian of a frame's grey levels (Pech-Pacheco et al.,
2000): motion blur and defocus remove the fine detail the Laplacian responds to. Its
scale depends on what the frame shows, so a frame is called blurred only against its
neighbours: when its sharpness is under ``BLUR_RATIO`` of the upper quartile of the
frames around it (``sample_indices``). The upper quartile, not the median: a hand that
shakes blurs several frames in a row, and they must not set the bar themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLUR_RATIO = 0.6
"""A frame whose sharpness is under this share of its neighbourhood's upper quartile is
blurred."""

SHARPNESS_SIDE = 320
"""Sharpness is measured on the frame shrunk (by striding) to about this long side."""


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a grey image.

    Args:
        gray: ``(H, W)`` grey levels, any real dtype; ``H, W >= 3``.

    Returns:
        The variance over the interior pixels (0 for a flat image).
    """
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2 or min(g.shape) < 3:
        raise ValueError(f"need a 2-D image of at least 3 x 3 pixels, got shape {g.shape}")
    lap = (g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1])
    return float(lap.var())


def frame_sharpness(rgb: np.ndarray) -> float:
    """``laplacian_variance`` of an RGB frame's grey levels, shrunk by striding to about
    ``SHARPNESS_SIDE`` pixels on its long side (blur that matters survives it).

    Args:
        rgb: ``(H, W, 3)`` uint8.
    """
    step = max(1, max(rgb.shape[:2]) // SHARPNESS_SIDE)
    small = rgb[::step, ::step].astype(np.float32)
    gray = small @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return laplacian_variance(gray)


def even_positions(total: int, frames: int = 0, every: int = 0) -> list[int]:
    """Frame indices spaced evenly over ``total`` frames.

    Args:
        total: how many frames the video has.
        frames: take this many, ``total / frames`` apart from frame 0 (all of them when
            ``frames >= total``).
        every: or take every ``every``-th frame from frame 0 (wins over ``frames``).

    Returns:
        Increasing, distinct indices.
    """
    if total <= 0:
        return []
    if every > 0:
        return list(range(0, total, every))
    if frames <= 0 or frames >= total:
        return list(range(total))
    return sorted({int(np.floor(k * total / frames)) for k in range(frames)})


def sample_indices(sharpness: Sequence[float], frames: int = 0, every: int = 0,
                   ratio: float = BLUR_RATIO) -> list[int]:
    """The frames to take: ``even_positions``, each blurred one replaced by the sharpest
    frame of its neighbourhood.

    A position is blurred when its sharpness is under ``ratio`` of the upper quartile of
    the frames around it (half the spacing either way, at least 3 frames; as many at
    the video's ends, the window shifted inward). It is then replaced by the
    sharpest frame at most a quarter of the spacing away (so the angles stay even;
    never one taken before), the nearest of equals.

    Args:
        sharpness: each frame's sharpness, in order (``frame_sharpness``).
        frames: how many frames to take evenly (see ``even_positions``).
        every: or every ``every``-th frame.
        ratio: the blur ratio (``BLUR_RATIO``).

    Returns:
        Increasing, distinct frame indices, one per position.
    """
    values = np.asarray(sharpness, dtype=np.float64)
    positions = even_positions(len(values), frames, every)
    if len(positions) < 2:
        return positions
    spacing = len(values) / len(positions)
    reach = int(spacing // 4)
    context = max(3, int(spacing // 2))
    chosen: list[int] = []
    for k, centre in enumerate(positions):
        lo = max(0, centre - reach, chosen[-1] + 1 if chosen else 0)
        hi = min(len(values) - 1, centre + reach)
        if k + 1 < len(positions):
            hi = min(hi, positions[k + 1] - 1)
        window = np.arange(lo, hi + 1)
        first = max(0, min(centre - context, len(values) - 2 * context - 1))
        around = values[first:first + 2 * context + 1]
        best = centre
        if window.size > 1 and values[centre] < ratio * float(np.percentile(around, 75)):
            order = sorted(window, key=lambda i: (-values[i], abs(int(i) - centre)))
            best = int(order[0])
        chosen.append(best)
    return chosen
