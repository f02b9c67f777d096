"""The rendered spin set: deterministic, well-formed, with consistent ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodseg.producer.samples.scene import SIDE_NAMES, SpinSet, render_spin_set, write_sample_set


@pytest.fixture(scope="module")
def spin() -> SpinSet:
    return render_spin_set(n_views=12, height=240, width=320, n_distractor_only=2, seed=0)


def test_same_seed_gives_the_same_bytes() -> None:
    a = render_spin_set(n_views=3, height=120, width=160, n_distractor_only=1, seed=7)
    b = render_spin_set(n_views=3, height=120, width=160, n_distractor_only=1, seed=7)
    assert a.reference_point == b.reference_point
    for va, vb in zip(a.views, b.views, strict=True):
        assert va.image.tobytes() == vb.image.tobytes()
        assert np.array_equal(va.mask, vb.mask)
        assert va.visible_sides == vb.visible_sides


def test_other_seed_gives_another_scene() -> None:
    a = render_spin_set(n_views=1, height=120, width=160, n_distractor_only=0, seed=0)
    b = render_spin_set(n_views=1, height=120, width=160, n_distractor_only=0, seed=1)
    assert not np.array_equal(a.views[0].image, b.views[0].image)


def test_views_have_the_documented_shapes(spin: SpinSet) -> None:
    assert len(spin.views) == 12 + 2
    for view in spin.views:
        assert view.image.shape == (240, 320, 3) and view.image.dtype == np.uint8
        assert view.mask.shape == (240, 320) and view.mask.dtype == bool
    yaws = [view.yaw_deg for view in spin.views]
    assert yaws == [30.0 * k for k in range(12)] + [None, None]


def test_product_views_have_a_mask_and_shelf_views_none(spin: SpinSet) -> None:
    for view in spin.views:
        if view.yaw_deg is None:
            assert not view.mask.any() and view.visible_sides == {}
        else:
            assert 0.02 < view.mask.mean() < 0.3


def test_visible_sides_add_up_and_follow_the_turn(spin: SpinSet) -> None:
    for view in spin.views[:12]:
        assert set(view.visible_sides) == set(SIDE_NAMES)
        assert sum(view.visible_sides.values()) == pytest.approx(1.0, abs=1e-6)
    assert spin.views[0].visible_sides["front"] > 0.97
    for index, side in ((3, "right"), (6, "back"), (9, "left")):
        assert spin.views[index].visible_sides[side] > 0.95
    turned_right, turned_left = spin.views[1].visible_sides, spin.views[11].visible_sides
    assert turned_right["front"] > 0.5 and turned_right["right"] > 0.2
    assert turned_left["front"] > 0.5 and turned_left["left"] > 0.2


def test_reference_click_is_on_the_front_of_the_reference_view(spin: SpinSet) -> None:
    reference = spin.views[spin.reference_index]
    assert reference.yaw_deg == 0.0
    x, y = spin.reference_point
    assert reference.mask[y, x]
    ys, xs = np.nonzero(reference.mask)
    assert xs.min() + 5 < x < xs.max() - 5 and ys.min() + 5 < y < ys.max() - 5


def test_sizes_scale_with_the_image() -> None:
    small = render_spin_set(n_views=2, height=240, width=320, n_distractor_only=0, seed=3)
    large = render_spin_set(n_views=2, height=480, width=640, n_distractor_only=0, seed=3)
    for s, g in zip(small.views, large.views, strict=True):
        assert s.mask.mean() == pytest.approx(g.mask.mean(), rel=0.05)
    sx, sy = small.reference_point
    gx, gy = large.reference_point
    assert abs(2 * sx - gx) <= 2 and abs(2 * sy - gy) <= 2


def test_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError):
        render_spin_set(n_views=0)
    with pytest.raises(ValueError):
        render_spin_set(height=8)


def test_write_sample_set_round_trip(spin: SpinSet, tmp_path: Path) -> None:
    path = write_sample_set(tmp_path / "sample", spin)
    assert path == tmp_path / "sample" / "sample.json"
    index = json.loads(path.read_text())
    assert index["reference"] == "images/view_000.jpg"
    assert index["reference_point"] == list(spin.reference_point)
    assert len(index["views"]) == len(spin.views)
    assert index["views"][12]["image"] == "images/shelf_000.jpg"
    for entry, view in zip(index["views"], spin.views, strict=True):
        image = np.asarray(Image.open(path.parent / entry["image"]))
        assert image.shape == view.image.shape
        assert np.abs(image.astype(int) - view.image.astype(int)).mean() < 4  # JPEG, quality 92
        mask = np.asarray(Image.open(path.parent / entry["mask"]))
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask == 255, view.mask)
        assert entry["yaw_deg"] == view.yaw_deg
        assert entry["visible_sides"] == pytest.approx(view.visible_sides)
        assert Path(entry["mask"]).stem == Path(entry["image"]).stem


def test_a_rendered_catalog_puts_each_product_off_centre_in_its_own_folder(
        tmp_path: Path) -> None:
    from prodseg.producer.samples.catalog import write_sample_catalog

    truth = json.loads(write_sample_catalog(tmp_path, 2, views=3, size=(128, 96), seed=5,
                                            max_offset=0.2).read_text())["products"]
    assert sorted(truth) == ["sku-0000", "sku-0001"]
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == sorted(truth)
    assert truth["sku-0000"]["lookalike"] and not truth["sku-0001"]["lookalike"]
    for product in truth.values():
        assert all(abs(v) <= 0.2 for v in product["offset"])
        assert [v["image"] for v in product["views"]] == [
            f"{product['folder']}/view_{i:03d}.jpg" for i in range(3)]
        for view in product["views"]:
            mask = np.asarray(Image.open(tmp_path / view["mask"])) > 127
            xs = np.nonzero(mask)[1]
            dx = xs.mean() / 128 - 0.5
            assert abs(dx - product["offset"][0]) < 0.08  # the carton stands where asked
