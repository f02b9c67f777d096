"""Cutout edges: the hard, feathered and matted alpha of a mask, and the cutout they make."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from prodseg.storage.image_encoding import cutout_png
from prodseg.workers.ops.edges import (
    FEATHER_WIDTH,
    edge_alpha,
    edges_for,
    feather_alpha,
    hard_alpha,
    matte_alpha,
    signed_distance,
)


def _soft_edge_scene(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A red square over a textured blue background, its edge 4 px soft: image and alpha."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    centre, half = size / 2, size / 4
    distance = np.maximum(np.abs(xx + 0.5 - centre), np.abs(yy + 0.5 - centre)) - half
    alpha = np.clip(0.5 - distance / 4, 0.0, 1.0)
    rng = np.random.default_rng(0)
    background = np.stack([rng.uniform(0, 40, (size, size)), rng.uniform(0, 40, (size, size)),
                           np.full((size, size), 200.0)], axis=-1)
    foreground = np.array([220.0, 30.0, 20.0])
    image = alpha[..., None] * foreground + (1 - alpha[..., None]) * background
    return np.rint(image).astype(np.uint8), alpha


def test_the_edge_lies_halfway_between_pixels_on_and_off_the_mask() -> None:
    mask = np.zeros((5, 8), bool)
    mask[:, :4] = True
    distance = signed_distance(mask)
    assert distance[2].tolist() == pytest.approx([3.5, 2.5, 1.5, 0.5, -0.5, -1.5, -2.5, -3.5])


def test_hard_and_feather_alphas() -> None:
    mask = np.zeros((5, 8), bool)
    mask[:, :4] = True
    image = np.zeros((5, 8, 3), np.uint8)
    assert hard_alpha(image, mask).tolist() == mask.astype(np.float32).tolist()
    ramp = feather_alpha(image, mask)[2]
    step = 0.5 / FEATHER_WIDTH
    assert ramp.tolist() == pytest.approx([1, 1, 1, 0.5 + step, 0.5 - step, 0, 0, 0])
    assert np.all(np.diff(ramp) <= 0)  # falls across the edge, never rises


def test_matte_finds_a_soft_edge_the_mask_cannot_show() -> None:
    image, truth = _soft_edge_scene()
    mask = truth >= 0.5
    hard_error = np.abs(hard_alpha(image, mask) - truth).sum()
    matte = matte_alpha(image, mask)
    assert matte.dtype == np.float32 and matte.min() >= 0 and matte.max() <= 1
    assert np.abs(matte - truth).sum() < 0.5 * hard_error
    far = np.abs(signed_distance(mask)) >= 3  # outside the band: as the mask says
    assert np.array_equal(matte[far], mask[far].astype(np.float32))


def test_edge_alpha_is_the_box_s_and_makes_the_cutout() -> None:
    image, truth = _soft_edge_scene()
    mask = truth >= 0.5
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    for mode in ("hard", "feather", "matte"):
        alpha = edge_alpha(mode, image, mask, box)
        assert alpha.shape == (box[3] - box[1], box[2] - box[0]) and alpha.dtype == np.uint8
    assert edges_for("hard") is None  # the cutout writer's own alpha: bytes as before
    soft = edges_for("feather")
    assert soft is not None
    with Image.open(io.BytesIO(cutout_png(image, mask, box, soft(image, mask, box)))) as png:
        rgba = np.asarray(png.convert("RGBA"))
    assert (rgba[..., 3] % 255 != 0).sum() > 0  # partial alpha along the edge
    assert (rgba[..., :3][rgba[..., 3] == 0] == 0).all()
    with pytest.raises(ValueError, match="unknown edge mode"):
        edges_for("blurry")
