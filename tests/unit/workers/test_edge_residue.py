"""Background along a cutout's edge (``workers.ops.edge_residue``), on rendered spins with
their true masks and with masks grown into a halo, and its flag in the review report."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from prodseg.producer.samples.scene import render_spin_set
from prodseg.producer.spin_quality import RESIDUE_LIMIT, residue_views, storefront_reasons
from prodseg.workers.ops.edge_residue import edge_residue, residue_band


def _grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel, iterations=pixels).astype(bool)


@pytest.fixture(scope="module")
def views() -> list[tuple[np.ndarray, np.ndarray]]:
    spin = render_spin_set(n_views=6, height=240, width=320, n_distractor_only=0, seed=1)
    return [(v.image, v.mask) for v in spin.views]


def test_true_masks_leave_little_residue_and_a_halo_a_lot(views) -> None:
    assert residue_band(240, 320) == 2 and residue_band(1500, 2000) == 8
    for image, mask in views:
        clean = edge_residue(image, mask)
        one = edge_residue(image, _grown(mask, 1))
        three = edge_residue(image, _grown(mask, 3))
        assert clean is not None and one is not None and three is not None
        assert clean < RESIDUE_LIMIT < three, (clean, three)
        assert clean < one < three
        assert three > 0.8


def test_a_mask_too_small_is_no_halo(views) -> None:
    image, mask = views[0]
    shrunk = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8),
                       iterations=2).astype(bool)
    residue = edge_residue(image, shrunk)
    assert residue is not None and residue < RESIDUE_LIMIT


def test_nothing_to_tell_is_none() -> None:
    flat = np.full((40, 40, 3), 90, np.uint8)
    mask = np.zeros((40, 40), bool)
    assert edge_residue(flat, mask) is None                 # no mask
    assert edge_residue(flat, ~mask) is None                # no background
    mask[10:30, 10:30] = True
    assert edge_residue(flat, mask) is None                 # no contrast
    two = flat.copy()
    two[10:30, 10:30] = 200
    assert edge_residue(two, mask) == 0.0                   # exact
    assert edge_residue(two, _grown(mask, 2)) == 1.0        # the whole rim is background


def _doc(residues: list[float | None]) -> dict:
    images = [{"image": f"view_{k}", "status": "ok",
               "matches": [{"bbox": [0, 0, 10, 10],
                            **({"edge_residue": r} if r is not None else {})}]}
              for k, r in enumerate(residues)]
    images.append({"image": "gone", "status": "error", "matches": []})
    return {"capture": "unordered", "reference": {"image": "ref", "bbox": [0, 0, 10, 10]},
            "images": images}


def test_the_report_flags_views_with_background_along_the_edge() -> None:
    doc = _doc([0.05, 0.6, None, 0.7])
    assert residue_views(doc) == ["view_1", "view_3"]
    (reason,) = storefront_reasons(doc)
    assert "background along the cutout's edge" in reason and "view_1, view_3" in reason
    assert storefront_reasons(_doc([0.05, 0.4])) == ()
