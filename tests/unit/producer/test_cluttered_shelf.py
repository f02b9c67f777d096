"""The rendered cluttered shelf: deterministic, packed with products of different sizes,
each with its own silhouette."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.producer.samples.clutter import render_cluttered_shelf


def test_same_seed_gives_the_same_bytes_and_another_seed_another_shelf() -> None:
    a = render_cluttered_shelf(height=120, width=160, shelves=2, seed=3)
    b = render_cluttered_shelf(height=120, width=160, shelves=2, seed=3)
    c = render_cluttered_shelf(height=120, width=160, shelves=2, seed=4)
    assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.labels, b.labels)
    assert a.kinds == b.kinds
    assert not np.array_equal(a.image, c.image)


def test_a_shelf_holds_dozens_of_products_of_different_sizes() -> None:
    shelf = render_cluttered_shelf(height=768, width=1024, shelves=3, seed=0)
    assert shelf.image.shape == (768, 1024, 3) and shelf.image.dtype == np.uint8
    masks = shelf.masks
    assert masks.shape == (len(shelf.kinds), 768, 1024) and masks.dtype == bool
    assert len(shelf.kinds) >= 30 and len(set(shelf.kinds)) >= 4
    heights = np.array([np.ptp(np.flatnonzero(m.any(axis=1))) + 1 for m in masks])
    assert heights.max() >= 2.5 * heights.min()  # big boxes beside small cans
    assert bool(masks.any(axis=(1, 2)).all())  # every product is visible
    assert not bool((masks.sum(axis=0) > 1).any())  # silhouettes do not overlap


def test_products_stand_out_from_the_wall() -> None:
    shelf = render_cluttered_shelf(height=384, width=512, shelves=3, seed=1)
    on = shelf.image[shelf.labels > 0].astype(float).mean(axis=0)
    wall = shelf.image[shelf.labels == 0].astype(float)
    assert float(np.abs(on - wall.mean(axis=0)).max()) > 30


@pytest.mark.parametrize(("height", "width", "shelves"), [(64, 64, 3), (120, 160, 0)])
def test_too_small_or_no_shelves_is_refused(height: int, width: int, shelves: int) -> None:
    with pytest.raises(ValueError, match="shelves"):
        render_cluttered_shelf(height=height, width=width, shelves=shelves)
