"""A spin set with a lookalike: the carton and, beside it, a copy in a slightly greener tint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from prodseg.producer.samples.scene import SpinSet, render_spin_set

SHIFT = 110
"""How far right of the carton its copy stands, in pixels."""


def write_lookalike_views(folder: Path, views: tuple[int, ...] = (0, 1, 11)
                          ) -> tuple[SpinSet, list[Path], dict[str, np.ndarray]]:
    """``views`` of a 12-view spin at 320x240, each with the tinted copy pasted ``SHIFT``
    pixels to the right, saved as ``view_NNN.png`` in ``folder``.

    Returns:
        The spin set, the image paths (the reference first) and each view's ``(H, W)``
        bool mask of the copy, by image id.
    """
    spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0, seed=1)
    folder.mkdir(parents=True, exist_ok=True)
    copies: dict[str, np.ndarray] = {}
    for i in views:
        view = spin.views[i]
        ys, xs = np.nonzero(view.mask)
        keep = xs + SHIFT < view.image.shape[1]
        image = view.image.copy()
        tinted = view.image.astype(np.float32)
        tinted[..., 1] *= 0.85
        image[ys[keep], xs[keep] + SHIFT] = tinted[ys[keep], xs[keep]].astype(np.uint8)
        copy = np.zeros_like(view.mask)
        copy[ys[keep], xs[keep] + SHIFT] = True
        Image.fromarray(image).save(folder / f"view_{i:03d}.png")
        copies[f"view_{i:03d}"] = copy
    return spin, sorted(folder.glob("*.png")), copies
