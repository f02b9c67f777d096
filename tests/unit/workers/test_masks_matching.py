"""Mask math and matching: pure functions, no models."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.workers.match.scoring import MatchParams, cosine_similarity, select_matches
from prodseg.workers.ops.masks import (
    area_filter,
    mask_iou,
    mask_iou_matrix,
    mask_nms,
    mask_to_box,
    masks_to_boxes,
)


def rect(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_mask_to_box_is_tight_with_exclusive_edges() -> None:
    m = rect(20, 30, 3, 4, 10, 15)
    assert mask_to_box(m) == (3, 4, 10, 15)
    assert mask_to_box(np.zeros((5, 5), bool)) == (0, 0, 0, 0)
    boxes = masks_to_boxes(np.stack([m, rect(20, 30, 0, 0, 1, 1)]))
    assert boxes.tolist() == [[3, 4, 10, 15], [0, 0, 1, 1]]


def test_iou_values() -> None:
    a = rect(10, 10, 0, 0, 4, 10)  # 40 px
    b = rect(10, 10, 2, 0, 6, 10)  # 40 px, overlap 20
    assert mask_iou(a, b) == pytest.approx(20 / 60)
    mat = mask_iou_matrix(np.stack([a, b]), np.stack([b, np.zeros_like(a)]))
    assert mat[0, 0] == pytest.approx(20 / 60)
    assert mat[1, 0] == pytest.approx(1.0)
    assert mat[0, 1] == 0.0


def test_area_filter_bounds() -> None:
    masks = np.stack([rect(10, 10, 0, 0, 1, 1), rect(10, 10, 0, 0, 5, 10),
                      rect(10, 10, 0, 0, 10, 10), np.zeros((10, 10), bool)])
    keep = area_filter(masks, min_ratio=0.02, max_ratio=0.5)
    assert keep.tolist() == [False, True, False, False]


def test_nms_drops_duplicates_and_orders_by_score() -> None:
    a = rect(20, 20, 0, 0, 10, 10)
    a2 = rect(20, 20, 0, 0, 10, 9)  # IoU 0.9 with a
    b = rect(20, 20, 10, 10, 20, 20)
    kept = mask_nms(np.stack([a, a2, b]), np.array([0.5, 0.9, 0.7]), iou_threshold=0.5)
    assert kept.tolist() == [1, 2]


def test_cosine_similarity() -> None:
    ref = np.array([1.0, 0.0, 0.0])
    q = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert cosine_similarity(q, ref).tolist() == pytest.approx([1.0, 0.0, -1.0, 0.0])


def test_select_matches_threshold_nms_topk() -> None:
    masks = np.stack([rect(20, 20, 0, 0, 10, 10), rect(20, 20, 0, 0, 10, 9),
                      rect(20, 20, 10, 10, 20, 20), rect(20, 20, 0, 10, 10, 20),
                      rect(20, 20, 10, 0, 20, 10)])
    sims = np.array([0.80, 0.90, 0.70, 0.60, 0.95])
    params = MatchParams(threshold=0.65, nms_iou=0.5, top_k=2)
    found = select_matches(masks, sims, params)
    assert [f.kept for f in found] == [4, 1]
    assert [f.absorbed for f in found] == [0, 1]  # 0 lies inside 1: the same instance
    params = MatchParams(threshold=0.65, nms_iou=0.5, top_k=10)
    assert [f.kept for f in select_matches(masks, sims, params)] == [4, 1, 2]
    params = MatchParams(threshold=0.99, nms_iou=0.5, top_k=10)
    assert select_matches(masks, sims, params) == []
