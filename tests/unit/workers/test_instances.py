"""One mask per instance: nested proposals merged, pure functions on drawn masks."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.workers.match.instances import (
    Instance,
    MaskShape,
    alike_instances,
    containment_row,
    interior_point,
    mask_shape,
    nested_instances,
    shape_distance,
    suppress_duplicates,
    whole_of,
)
from prodseg.workers.match.scoring import MatchParams, select_matches

H, W = 60, 80


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


# A carton 20x40 at x 10..30 with its top flap and its lower panel.
WHOLE, FLAP, PANEL = rect(10, 10, 30, 50), rect(10, 10, 30, 16), rect(12, 36, 28, 48)
CARTON = mask_shape(WHOLE)


def areas(masks: np.ndarray) -> np.ndarray:
    return masks.reshape(len(masks), -1).sum(axis=1)


def test_containment_is_intersection_over_the_smaller_area() -> None:
    masks = np.stack([WHOLE, FLAP, rect(25, 10, 45, 50), np.zeros((H, W), bool)])
    row = containment_row(masks, areas(masks), 0)
    assert row.tolist() == pytest.approx([1.0, 1.0, 0.25, 0.0])
    assert containment_row(masks, areas(masks), 3).tolist() == [0.0] * 4


def test_shape_is_relative_to_the_image_and_wraps_across_a_panorama_seam() -> None:
    assert mask_shape(WHOLE) == MaskShape(800 / (H * W), 0.5)
    pano = np.zeros((40, 80), dtype=bool)
    pano[10:30, 75:] = pano[10:30, :5] = True  # 10 px wide once the seam is closed
    assert mask_shape(pano).aspect == pytest.approx(0.5)
    twice = MaskShape(2 * CARTON.area, CARTON.aspect)
    half = MaskShape(CARTON.area / 2, CARTON.aspect)
    d = shape_distance([CARTON, twice, half], CARTON)
    assert d[0] == 0.0 and d[1] == pytest.approx(d[2]) == pytest.approx(np.log(2))


def test_parts_above_the_whole_give_one_match_the_whole() -> None:
    """The issue's view 001: the flap 0.849, a lower part 0.828, the whole 0.719."""
    masks = np.stack([FLAP, PANEL, WHOLE])
    params = MatchParams(0.65, 0.5, 3, 0.8, CARTON)
    (found,) = select_matches(masks, np.array([0.849, 0.828, 0.719]), params)
    assert found == Instance(kept=2, best=0, absorbed=2)


def test_a_matching_part_brings_in_the_whole_that_does_not_match_on_its_own() -> None:
    """The side of a carton looks nothing like its clicked front; the front panel seen
    beside it does, and the whole carton holds it."""
    masks = np.stack([FLAP, WHOLE])
    (found,) = select_matches(masks, np.array([0.9, 0.4]), MatchParams(0.65, 0.5, 3, 0.8,
                                                                       CARTON))
    assert (found.kept, found.best, found.absorbed) == (1, 0, 1)


def test_the_whole_alone_stays_and_parts_below_the_threshold_are_not_counted() -> None:
    masks = np.stack([WHOLE, FLAP, PANEL])
    (found,) = select_matches(masks, np.array([0.9, 0.5, 0.3]), MatchParams(0.65, 0.5, 3,
                                                                            0.8, CARTON))
    assert found == Instance(kept=0, best=0, absorbed=0)


def test_a_clicked_panel_keeps_panels() -> None:
    """The reference is the mask the person confirmed: when it is a panel, so are the
    matches (``prodseg select`` lets them choose the whole instead)."""
    masks = np.stack([FLAP, PANEL, WHOLE])
    params = MatchParams(0.65, 0.5, 3, 0.8, mask_shape(rect(0, 0, 16, 12)))
    found = select_matches(masks, np.array([0.7, 0.9, 0.8]), params)
    assert found[0] == Instance(kept=1, best=1, absorbed=1)  # the whole is absorbed
    assert 2 not in [f.kept for f in found]


def test_without_a_reference_shape_the_best_scoring_proposal_is_kept() -> None:
    masks = np.stack([FLAP, WHOLE])
    (found,) = select_matches(masks, np.array([0.9, 0.7]), MatchParams(0.65, 0.5, 3))
    assert found == Instance(kept=0, best=0, absorbed=1)


def test_two_cartons_side_by_side_are_two_matches_even_inside_one_larger_mask() -> None:
    """SAM2 may also propose the pair as one mask; each carton is closer to the
    reference's size and shape than the pair is."""
    twin = rect(40, 10, 60, 50)
    pair = rect(10, 10, 60, 50)
    masks = np.stack([pair, WHOLE, twin, FLAP, rect(40, 10, 60, 16)])
    sims = np.array([0.9, 0.85, 0.84, 0.88, 0.87])
    found = select_matches(masks, sims, MatchParams(0.65, 0.5, 3, 0.8, CARTON))
    assert [f.kept for f in found] == [1, 2]
    assert sum(f.absorbed for f in found) == 3  # the pair and both flaps


def test_a_lookalike_next_to_the_product_is_its_own_instance() -> None:
    lookalike = rect(31, 10, 51, 50)  # touching the carton, not inside it
    masks = np.stack([WHOLE, lookalike, FLAP])
    found = select_matches(masks, np.array([0.8, 0.82, 0.9]), MatchParams(0.65, 0.5, 3, 0.8,
                                                                          CARTON))
    assert [(f.kept, f.best) for f in found] == [(0, 2), (1, 1)]
    # Marked as a lookalike (ranked -inf below the margin), it is not matched at all.
    ranked = np.array([0.3, -np.inf, 0.35])
    (only,) = select_matches(masks, ranked, MatchParams(0.05, 0.5, 3, 0.8, CARTON))
    assert only.kept == 0


def test_a_large_region_holding_the_product_is_not_kept() -> None:
    shelf = rect(0, 0, 80, 55)  # a shelf bay around the carton
    masks = np.stack([FLAP, shelf, WHOLE])
    (found,) = select_matches(masks, np.array([0.9, 0.5, 0.6]), MatchParams(0.65, 0.5, 3,
                                                                            0.8, CARTON))
    assert found.kept == 2


def test_containment_setting_decides_what_nests() -> None:
    half_out = rect(20, 10, 40, 50)  # half inside the carton
    masks = np.stack([WHOLE, half_out])
    sims = np.array([0.9, 0.8])
    assert len(nested_instances(masks, sims, 0.65, 0.8, CARTON)) == 2
    assert len(nested_instances(masks, sims, 0.65, 0.5, CARTON)) == 1


def test_duplicates_join_the_better_instance_with_what_they_absorbed() -> None:
    masks = np.stack([WHOLE, rect(10, 10, 30, 49), rect(50, 10, 70, 50)])
    found = suppress_duplicates(masks, [Instance(0, 0, 1), Instance(1, 1, 2),
                                        Instance(2, 2, 0)], 0.5)
    assert found == [Instance(0, 0, 4), Instance(2, 2, 0)]
    assert suppress_duplicates(masks, [], 0.5) == []


def test_a_mask_from_elsewhere_takes_the_whole_holding_it() -> None:
    """A tracked flap: of the segmenter's masks at a point inside it, the whole."""
    shelf = rect(0, 0, 80, 55)
    assert whole_of(FLAP, np.stack([PANEL, shelf, WHOLE]), 0.8, CARTON) == 3
    assert whole_of(WHOLE, np.stack([FLAP, shelf]), 0.8, CARTON) == 0
    assert whole_of(FLAP, np.zeros((0, H, W), bool), 0.8, CARTON) == 0


def test_the_interior_point_lies_inside_a_mask_whose_centroid_does_not() -> None:
    ring = rect(10, 10, 50, 50) & ~rect(16, 16, 44, 44)
    ys, xs = np.nonzero(ring)
    assert not ring[round(ys.mean()), round(xs.mean())]
    x, y = interior_point(ring)
    assert ring[int(y), int(x)]


def test_further_instances_are_kept_only_when_they_look_like_the_best_one() -> None:
    """A copy of the carton looks like it; another product that passes against one of a
    bank's prototypes does not, and is dropped before top-K (so it takes no copy's place)."""
    product, copy, other = rect(10, 10, 30, 50), rect(40, 10, 60, 50), rect(62, 10, 78, 50)
    masks = np.stack([product, other, copy])
    embeddings = np.array([[1.0, 0.0, 0.0], [0.1, 1.0, 0.0], [0.95, 0.05, 0.1]])
    scores = np.array([0.9, 0.85, 0.7])
    every = MatchParams(0.65, 0.5, 2, 0.8, CARTON)
    assert [f.kept for f in select_matches(masks, scores, every, embeddings)] == [0, 1]
    alike = MatchParams(0.65, 0.5, 2, 0.8, CARTON, instance_similarity=0.65)
    assert [f.kept for f in select_matches(masks, scores, alike, embeddings)] == [0, 2]
    assert [f.kept for f in select_matches(masks, scores, alike)] == [0, 1]  # no embeddings


def test_likeness_is_to_the_best_instance_kept_mask_and_scale_free() -> None:
    instances = [Instance(2, 0, 1), Instance(1, 1, 0), Instance(3, 3, 0)]
    embeddings = np.array([[0.0, 1.0], [5.0, 0.2], [2.0, 0.0], [0.0, 3.0]])
    assert alike_instances(embeddings, instances, 0.9) == instances[:2]
    assert alike_instances(embeddings, instances, -1.0) == instances
    assert alike_instances(embeddings, instances[:1], 1.0) == instances[:1]
