"""The YOLO rule: one polygon per mask, covering exactly its pixels (parts, holes, slivers)."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.storage.exports.dataset import DatasetImage, yolo_data_yaml, yolo_label
from prodseg.storage.exports.outline import mask_outline, polygon_covers


def _awkward(h: int = 40, w: int = 60) -> np.ndarray:
    """Two parts, one with a hole, and a sliver 1 pixel wide and 50 long."""
    mask = np.zeros((h, w), bool)
    mask[2:20, 2:20] = True
    mask[8:12, 8:12] = False  # a hole
    mask[25:35, 30:45] = True  # a second part
    mask[38, 5:55] = True  # a 50-pixel sliver
    return mask


def _line_polygons(text: str, h: int, w: int) -> list[np.ndarray]:
    out = []
    for line in text.splitlines():
        values = np.array([float(v) for v in line.split()[1:]]).reshape(-1, 2)
        out.append(values * [w, h])
    return out


def test_one_line_per_mask_covering_exactly_its_pixels() -> None:
    mask = _awkward()
    other = np.zeros_like(mask)
    other[30, 58] = True  # a single pixel is an instance too
    text = yolo_label(DatasetImage("p/v.jpg", 60, 40, 2, (mask, other), (0.9, 0.8)))
    assert [line.split()[0] for line in text.splitlines()] == ["2", "2"]
    first, second = _line_polygons(text, 40, 60)
    assert (polygon_covers(first, 40, 60) == mask).all()
    assert (polygon_covers(second, 40, 60) == other).all()


@pytest.mark.parametrize("seed", range(40))
def test_any_mask_round_trips_through_its_outline(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 40, 2))
    mask = rng.random((h, w)) < rng.random()
    polygon = mask_outline(mask)
    if not mask.any():
        assert polygon is None
        return
    assert polygon is not None and polygon.min() >= 0
    assert polygon[:, 0].max() <= w and polygon[:, 1].max() <= h
    assert (polygon_covers(polygon, h, w) == mask).all()


def test_data_yaml_names_no_path_and_refuses_no_classes() -> None:
    text = yolo_data_yaml(["milk", "tea"])
    assert "path:" not in text and "train: images" in text and "nc: 2" in text
    with pytest.raises(ValueError, match="at least one class"):
        yolo_data_yaml([])
