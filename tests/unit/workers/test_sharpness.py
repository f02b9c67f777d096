"""Which frames of a video a job takes: even spacing, and a blurred frame swapped for the
sharpest of its neighbours (``workers.ops.sharpness``)."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.workers.ops.sharpness import (
    even_positions,
    frame_sharpness,
    laplacian_variance,
    sample_indices,
)


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)


def _box_blur(image: np.ndarray, k: int) -> np.ndarray:
    out = image.astype(np.float32)
    for axis in (0, 1):
        out = sum(np.roll(out, s, axis=axis) for s in range(-k, k + 1)) / (2 * k + 1)
    return out.astype(np.uint8)


def test_a_flat_image_has_no_sharpness_and_blur_lowers_it() -> None:
    assert laplacian_variance(np.full((10, 10), 7.0)) == 0.0
    sharp = frame_sharpness(_texture())
    assert frame_sharpness(_box_blur(_texture(), 1)) < 0.3 * sharp
    assert frame_sharpness(_box_blur(_texture(), 3)) < frame_sharpness(_box_blur(_texture(), 1))
    with pytest.raises(ValueError, match="at least 3 x 3"):
        laplacian_variance(np.zeros((2, 5)))


def test_positions_are_even_or_every_kth() -> None:
    assert even_positions(12, frames=4) == [0, 3, 6, 9]
    assert even_positions(10, frames=4) == [0, 2, 5, 7]
    assert even_positions(5, frames=36) == [0, 1, 2, 3, 4]
    assert even_positions(10, every=3) == [0, 3, 6, 9]
    assert even_positions(10, frames=2, every=4) == [0, 4, 8]  # every wins
    assert even_positions(0, frames=4) == []


def test_a_blurred_frame_is_swapped_for_its_sharpest_neighbour() -> None:
    values = [10.0] * 40
    values[10] = 2.0                 # position 10 blurred
    values[12] = 11.0                # its sharpest neighbour, 2 frames on
    values[20] = 9.0                 # a little softer than its neighbours: kept
    chosen = sample_indices(values, frames=4)
    assert chosen == [0, 12, 20, 30]


def test_a_swap_stays_within_a_quarter_of_the_spacing_and_in_order() -> None:
    values = [10.0] * 16
    values[4] = 1.0
    values[7] = 50.0                 # sharper, but 3 frames away: a quarter of 4 is 1
    chosen = sample_indices(values, frames=4)
    assert chosen[1] in (3, 5) and chosen == sorted(set(chosen))
    # all frames taken: no room to swap, every frame kept
    assert sample_indices([1.0, 9.0, 1.0], frames=3) == [0, 1, 2]


def test_a_run_of_blurred_frames_does_not_hide_one() -> None:
    values = [10.0] * 40
    values[0] = values[1] = 3.0      # the first two frames blurred: one-sided neighbours
    assert sample_indices(values, frames=4)[0] == 2
    values[3] = values[5] = 3.0      # most of its neighbours blurred: the median is too
    assert sample_indices(values, frames=4)[0] == 2


def test_ties_go_to_the_frame_nearest_the_even_position() -> None:
    values = [10.0] * 40
    values[10], values[9], values[12] = 1.0, 12.0, 12.0
    assert sample_indices(values, frames=4)[1] == 9
