"""FFA math: area-weighted patch coverage and the masked mean."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.workers.ops.ffa import foreground_average, grid_for_image, l2_normalize, patch_coverage


def test_coverage_counts_fractions_not_nearest_neighbour() -> None:
    # 4x4 image, 2x2 grid: each patch is 2x2 pixels.
    mask = np.zeros((1, 4, 4), dtype=bool)
    mask[0, 0, 0] = True  # a quarter of patch (0, 0)
    mask[0, 2:4, 2:4] = True  # all of patch (1, 1)
    mask[0, 2, 0:2] = True  # half of patch (1, 0)
    cov = patch_coverage(mask, (2, 2))[0]
    np.testing.assert_allclose(cov, [[0.25, 0.0], [0.5, 1.0]], atol=1e-6)


def test_coverage_with_non_integer_cells() -> None:
    # 3 pixels over 2 cells: the middle pixel is split between both cells.
    mask = np.zeros((1, 1, 3), dtype=bool)
    mask[0, 0, 1] = True
    cov = patch_coverage(mask, (1, 2))[0]
    np.testing.assert_allclose(cov, [[1 / 3, 1 / 3]], atol=1e-6)
    # Total covered area is preserved: sum(cov * cell_area) == mask pixels.
    rng = np.random.default_rng(0)
    masks = rng.random((3, 37, 53)) > 0.6
    cov = patch_coverage(masks, (5, 7))
    cell_area = (37 / 5) * (53 / 7)
    assert (cov.sum(axis=(1, 2)) * cell_area) == pytest.approx(masks.sum(axis=(1, 2)), rel=1e-4)


def test_full_mask_covers_everything_and_empty_nothing() -> None:
    masks = np.stack([np.ones((30, 40), bool), np.zeros((30, 40), bool)])
    cov = patch_coverage(masks, (3, 4))
    assert np.allclose(cov[0], 1.0)
    assert np.allclose(cov[1], 0.0)


def test_foreground_average_is_weighted_mean_normalised() -> None:
    tokens = np.zeros((2, 2, 3), dtype=np.float32)
    tokens[0, 0] = [1, 0, 0]
    tokens[1, 1] = [0, 1, 0]
    weights = np.array([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 3.0]], np.zeros((2, 2))])
    emb = foreground_average(tokens, weights)
    assert emb[0].tolist() == pytest.approx([1, 0, 0])
    expected = np.array([1.0, 3.0, 0.0]) / np.linalg.norm([1.0, 3.0, 0.0])
    assert emb[1].tolist() == pytest.approx(expected.tolist())
    assert emb[2].tolist() == [0, 0, 0]
    assert np.linalg.norm(emb[:2], axis=1) == pytest.approx([1, 1])


def test_grid_keeps_aspect() -> None:
    assert grid_for_image(768, 1024, 37) == (28, 37)
    assert grid_for_image(1024, 768, 37) == (37, 28)
    assert grid_for_image(10, 5000, 37) == (1, 37)


def test_l2_normalize_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)
