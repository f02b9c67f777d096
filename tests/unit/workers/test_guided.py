"""Where similarity-guided prompting puts its points."""

from __future__ import annotations

import numpy as np

from prodseg.workers.segment.guided import (
    cells_to_pixels,
    guided_prompts,
    local_peaks,
    similarity_map,
)


def test_similarity_map_is_cosine_per_patch() -> None:
    tokens = np.array([[[2.0, 0.0], [0.0, 3.0]], [[1.0, 1.0], [0.0, 0.0]]], np.float32)
    ref = np.array([1.0, 0.0], np.float32)
    np.testing.assert_allclose(similarity_map(tokens, ref),
                               [[1.0, 0.0], [np.sqrt(0.5), 0.0]], atol=1e-6)


def test_peaks_are_local_maxima_highest_first_and_plateaus_count_once() -> None:
    values = np.zeros((7, 9), np.float32)
    values[1, 1] = 0.9
    values[1, 2] = 0.8  # a slope next to the first peak, not a peak
    values[5, 6] = 0.7
    values[5, 7] = 0.7  # a plateau: one peak
    values[3, 4] = 0.5
    peaks = local_peaks(values, count=10)
    assert peaks[:3].tolist() == [[1, 1], [5, 6], [3, 4]]
    assert [1, 2] not in peaks.tolist() and [5, 7] not in peaks.tolist()
    assert len(local_peaks(values, count=2)) == 2


def test_cells_map_to_patch_centres() -> None:
    pts = cells_to_pixels(np.array([[0, 0], [2, 3]]), (3, 4), (300, 400))
    np.testing.assert_allclose(pts, [[50.0, 50.0], [350.0, 250.0]])


def test_prompts_at_the_product_and_negatives_away_from_it() -> None:
    sim = np.full((10, 10), 0.1, np.float32)
    sim[2:4, 6:8] = [[0.8, 0.9], [0.85, 0.8]]
    sim[8, 1] = -0.5
    pos, neg = guided_prompts(sim, (100, 100), positives=1, negatives=1)
    np.testing.assert_allclose(pos, [[75.0, 25.0]])
    np.testing.assert_allclose(neg, [[15.0, 85.0]])
    assert guided_prompts(sim, (100, 100), 3, 0)[1].shape == (0, 2)
