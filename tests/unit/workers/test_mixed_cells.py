"""Tight area bounds from the mixed cells hold the brute-force area (``F.interpolate``)
and are far tighter than whole-cell bounds near a level many logits sit close to."""

from __future__ import annotations

import pytest
import torch

from prodseg.workers.segment.sam2_lowres import area_bounds, bilinear_taps, exact_areas
from prodseg.workers.segment.sam2_mixed_cells import cell_lines, tight_area_bounds
from tests.unit.workers.test_lowres_masks import SIZES, logit_sets


@pytest.mark.parametrize(("h", "w", "height", "width"), SIZES)
def test_tight_bounds_hold_the_exact_area(h: int, w: int, height: int, width: int) -> None:
    rows, cols = bilinear_taps(h, height), bilinear_taps(w, width)
    for levels in ((-1.0, 0.0, 1.0), (0.26, 0.24)):
        for logits in logit_sets(h, w, 6):
            lower, upper = tight_area_bounds(logits, levels, rows, cols)
            exact = exact_areas(logits, levels, (height, width))
            assert bool((lower <= exact).all() and (exact <= upper).all())


def test_tight_bounds_are_tight_where_cell_bounds_are_not() -> None:
    """Noisy logits: whole cells leave a fifth of the image open, pixels a few dozen."""
    logits = logit_sets(256, 256, 7)[1] * 0.1
    rows, cols = bilinear_taps(256, 768), bilinear_taps(256, 1024)
    levels = (0.01, -0.01)
    lo, hi = area_bounds(logits, levels, rows, cols)
    tight_lo, tight_hi = tight_area_bounds(logits, levels, rows, cols)
    assert float((hi - lo).float().mean()) > 0.2 * 768 * 1024
    assert int((tight_hi - tight_lo).max()) < 200
    assert bool((tight_lo >= lo).all() and (tight_hi <= hi).all())


def test_cell_lines_group_each_output_line_once() -> None:
    for n_in, n_out in ((256, 768), (256, 1000), (64, 37), (16, 16)):
        taps = bilinear_taps(n_in, n_out)
        lines = cell_lines(taps)
        assert int(lines.valid.sum()) == n_out
        assert torch.equal(lines.valid.sum(0), taps.count)
        assert torch.equal(lines.frac.T[lines.valid.T], taps.frac)  # in output order
        # only the edge cells may have more lines than the regular width
        assert int(lines.valid[lines.regular:, 1:-1].sum()) == 0
        assert torch.equal(lines.wide, taps.count > lines.regular)


def test_no_masks_no_levels() -> None:
    taps = bilinear_taps(8, 16)
    lower, upper = tight_area_bounds(torch.zeros(0, 8, 8), (0.0,), taps, taps)
    assert lower.shape == upper.shape == (1, 0)
