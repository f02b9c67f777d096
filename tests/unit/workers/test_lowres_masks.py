"""Areas, stability and boxes read off low-resolution logits equal those of the upsampled
masks (brute force with ``F.interpolate``), on smooth, noisy and nearly empty logits and on
output sizes that are larger, smaller and not multiples of the input."""

from __future__ import annotations

import pytest
import torch
from sam2.utils.amg import batched_mask_to_box

from prodseg.workers.segment.sam2_boxes import exact_boxes, mask_boxes
from prodseg.workers.segment.sam2_candidates import ProposalParams, stability_keep
from prodseg.workers.segment.sam2_lowres import (
    area_bounds,
    bilinear_taps,
    exact_areas,
    upsample,
)

SIZES = [(256, 256, 768, 1024), (256, 256, 480, 640), (64, 64, 100, 37), (32, 48, 1000, 300),
         (16, 16, 8, 12)]


def logit_sets(h: int, w: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(12, 1, max(1, h // 16), max(1, w // 16), generator=g) * 8
    smooth = torch.nn.functional.interpolate(coarse, (h, w), mode="bicubic",
                                             align_corners=False)[:, 0]
    smooth = smooth + torch.randn(12, h, w, generator=g) * 0.3
    noisy = torch.randn(12, h, w, generator=g)
    sparse = torch.randn(12, h, w, generator=g) - 3.2  # a few pixels, some masks empty
    return [smooth, noisy, sparse]


def reference_boxes(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """SAM2's own box routine on the upsampled masks."""
    return batched_mask_to_box(upsample(logits, size) > 0.0).long()


@pytest.mark.parametrize(("h", "w", "height", "width"), SIZES)
def test_taps_reproduce_interpolate(h: int, w: int, height: int, width: int) -> None:
    logits = logit_sets(h, w, 0)[1]
    rows, cols = bilinear_taps(h, height), bilinear_taps(w, width)
    f = rows.frac[:, None]
    by_rows = logits[:, rows.lo] * (1 - f) + logits[:, rows.hi] * f
    mine = by_rows[:, :, cols.lo] * (1 - cols.frac) + by_rows[:, :, cols.hi] * cols.frac
    # Same taps; the kernels round their weights a little differently (~1e-5).
    assert torch.allclose(mine, upsample(logits, (height, width)), atol=1e-4)
    assert int(rows.count.sum()) == height and int(cols.count.sum()) == width


@pytest.mark.parametrize(("h", "w", "height", "width"), SIZES)
def test_boxes_equal_sam2_boxes_of_upsampled_masks(h: int, w: int, height: int,
                                                   width: int) -> None:
    for logits in logit_sets(h, w, 1):
        expected = reference_boxes(logits, (height, width))
        assert torch.equal(exact_boxes(logits, 0.0, (height, width)), expected)
        # A wide first band takes fewer rounds and more lines: same answer.
        assert torch.equal(exact_boxes(logits, 0.0, (height, width), band=16), expected)
        # Near a nonzero threshold too, where the line bound rules out most lines.
        assert torch.equal(exact_boxes(logits, 0.25, (height, width)),
                           batched_mask_to_box(upsample(logits, (height, width)) > 0.25).long())


def test_mask_boxes_match_sam2() -> None:
    masks = upsample(logit_sets(32, 32, 2)[2], (50, 70)) > 0
    assert torch.equal(mask_boxes(masks), reference_boxes(logit_sets(32, 32, 2)[2], (50, 70)))


@pytest.mark.parametrize(("h", "w", "height", "width"), SIZES)
def test_area_bounds_hold_the_exact_area(h: int, w: int, height: int, width: int) -> None:
    rows, cols = bilinear_taps(h, height), bilinear_taps(w, width)
    levels = (-1.0, 0.0, 1.0)
    for logits in logit_sets(h, w, 3):
        lower, upper = area_bounds(logits, levels, rows, cols)
        exact = exact_areas(logits, levels, (height, width))
        assert bool((lower <= exact).all() and (exact <= upper).all())
        for k, t in enumerate(levels):
            brute = (upsample(logits, (height, width)) > t).flatten(1).sum(1)
            assert torch.equal(exact[k], brute)


def test_bounds_are_tight_on_smooth_logits() -> None:
    """The bounds only differ along the mask's outline: a few percent of the image."""
    logits = logit_sets(256, 256, 4)[0]
    lower, upper = area_bounds(logits, (0.0,), bilinear_taps(256, 768), bilinear_taps(256, 1024))
    assert float((upper - lower).float().mean()) < 0.15 * 768 * 1024


@pytest.mark.parametrize("thresh", [0.0, 0.3, 0.6, 0.9, 0.97])
def test_stability_filter_equals_sam2_score(thresh: float) -> None:
    from sam2.utils.amg import calculate_stability_score

    params = ProposalParams(stability_score_thresh=thresh)
    for logits in logit_sets(64, 64, 5):
        full = upsample(logits, (90, 120))
        expected = calculate_stability_score(full, 0.0, 1.0) >= thresh
        assert torch.equal(stability_keep(logits, params, (90, 120)), expected)


def test_take_across_keeps_the_order_asked_for() -> None:
    from prodseg.workers.segment.sam2_candidates import Candidates, take_across

    g = torch.Generator().manual_seed(5)
    parts = [Candidates(torch.randn(n, 4, 4, generator=g), torch.rand(n, generator=g))
             for n in (3, 0, 5, 2)]
    whole = Candidates.cat(parts, torch.device("cpu"))
    index = torch.tensor([9, 0, 4, 2, 7, 3])
    taken = take_across(parts, index, torch.device("cpu"))
    assert torch.equal(taken.logits, whole.logits[index])
    assert torch.equal(taken.scores, whole.scores[index])
    none = take_across(parts, torch.zeros(0, dtype=torch.long), torch.device("cpu"))
    assert len(none.scores) == 0
