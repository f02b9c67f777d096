"""A reviewer's work in Label Studio or CVAT as the review page's changes (pure rules)."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.errors import InputError
from prodseg.producer.review.tool_import import (
    ReviewedView,
    innermost_pixel,
    label_studio_views,
    view_changes,
)
from prodseg.storage.exports.label_studio import brush_rle

JOB = "cat-milk"


def _region(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((20, 30), dtype=bool)
    mask[rows, cols] = True
    return mask


def test_kept_deleted_and_drawn_map_to_accept_reject_and_a_click() -> None:
    assert [(c.action, c.view) for c in view_changes(
        ReviewedView("milk", "a", JOB, 2, frozenset({0, 1})), False)[0]] == [("accept", "a")]
    assert [c.action for c in view_changes(ReviewedView("milk", "a", JOB, 1), False)[0]] \
        == ["reject"]
    drawn = ReviewedView("milk", "b", JOB, 0, drawn=(_region(slice(2, 9), slice(4, 15)),))
    (click,), problem = view_changes(drawn, False)
    assert problem is None and click.action == "point" and (click.x, click.y) == (9.5, 5.5)
    assert view_changes(ReviewedView("milk", "c", JOB, 0), False) == ([], None)


@pytest.mark.parametrize("view, says", [
    (ReviewedView("milk", "a", JOB, 2, frozenset({0})), "1 of 2 matches kept"),
    (ReviewedView("milk", "a", JOB, 1, frozenset({0}), (_region(slice(0, 3), slice(0, 3)),)),
     "beside a kept match"),
])
def test_what_cannot_be_mapped_is_said(view: ReviewedView, says: str) -> None:
    changes, problem = view_changes(view, False)
    assert changes == [] and problem is not None and says in problem


def test_a_changed_reference_is_not_mapped() -> None:
    changes, problem = view_changes(ReviewedView("milk", "r", JOB, 1), True)
    assert changes == [] and problem is not None and "reference" in problem
    assert view_changes(ReviewedView("milk", "r", JOB, 1, frozenset({0})), True) == ([], None)


def test_innermost_pixel_lies_inside_a_ring() -> None:
    ring = _region(slice(0, 20), slice(0, 30))
    ring[5:15, 5:25] = False
    x, y = innermost_pixel(ring)
    assert ring[int(y), int(x)]


def test_label_studio_regions_kept_only_with_their_outline() -> None:
    drawn = _region(slice(3, 8), slice(3, 9))
    tasks = [
        {"data": {"product": "milk", "view": "a", "job": JOB, "matches": 2},
         "annotations": [{"result": [{"id": "m0"}, {"id": "m0-outline"}, {"id": "m1"}]}]},
        {"data": {"product": "milk", "view": "b", "job": JOB, "matches": 0},
         "annotations": [{"result": [{"id": "x1", "type": "brushlabels",
                                      "original_width": 30, "original_height": 20,
                                      "value": {"rle": brush_rle(drawn)}}]}]},
        {"data": {"product": "milk", "view": "c", "job": JOB, "matches": 1}},
        {"id": 7, "data": {"image": "elsewhere.jpg"}},
    ]
    views, unmapped = label_studio_views(tasks)
    assert [(v.view, v.kept) for v in views] == [("a", frozenset({0})), ("b", frozenset())]
    assert np.array_equal(views[1].drawn[0], drawn)
    assert unmapped == ["task 7: not exported by prodseg"]
    with pytest.raises(InputError, match="JSON list"):
        label_studio_views({"tasks": []})
