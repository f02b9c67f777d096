"""The reference photo's other objects: which proposals they are, and what they veto."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prodseg.producer.samples.scene import render_spin_set, write_sample_set
from prodseg.workers.match.bank import BankParams, PrototypeBank, score_proposals
from prodseg.workers.match.neighbours import reference_neighbours
from prodseg.workers.ops.masks import mask_iou
from tests.support.classic import classic_pipeline

H, W = 40, 60


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_neighbours_leave_out_the_product_its_parts_and_wholes_and_its_copies() -> None:
    product = rect(10, 5, 20, 35)
    masks = np.stack([product, rect(10, 5, 20, 12), rect(5, 0, 45, 40),  # itself, part, whole
                      rect(30, 5, 40, 35), rect(42, 5, 52, 35),  # a copy, a neighbour
                      rect(15, 5, 30, 35)])  # half on the product, half on the shelf
    embeddings = np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(1, 1, 0), unit(1, 0, 0.1),
                           unit(0, 1, 0), unit(0.3, 0, 1)])
    found = reference_neighbours(masks, embeddings, product, unit(1, 0, 0), 0.65)
    np.testing.assert_allclose(found, unit(0, 1, 0)[None], atol=1e-6)
    assert reference_neighbours(masks[:0], embeddings[:0], product, unit(1, 0, 0),
                                0.65).shape == (0, 3)


def test_a_proposal_more_like_a_neighbour_than_like_the_bank_is_no_match() -> None:
    """Its score stays what it was (nothing else changes); only what selection ranks by
    is -inf. With lookalikes marked as well, the veto holds on the margin too."""
    proposals = np.stack([unit(1, 0.2, 0), unit(0.7, 0.7, 0), unit(0.2, 1, 0)])
    plain = PrototypeBank(unit(1, 0, 0), BankParams())
    bank = PrototypeBank(unit(1, 0, 0), BankParams(), neighbours=unit(0, 1, 0)[None])
    scores, ranked, threshold = score_proposals(proposals, bank, 0.65, 0.05)
    base, _, _ = score_proposals(proposals, plain, 0.65, 0.05)
    np.testing.assert_array_equal(scores, base)
    assert threshold == 0.65 and ranked[0] == scores[0]
    assert ranked[1] == ranked[2] == -np.inf  # 0.707 alike both: the neighbour wins ties
    marked = PrototypeBank(unit(1, 0, 0), BankParams(), unit(0, 0, 1)[None],
                           neighbours=unit(0, 1, 0)[None])
    _, ranked, threshold = score_proposals(proposals, marked, 0.65, 0.05)
    assert threshold == 0.05 and np.isfinite(ranked[0]) and np.isinf(ranked[1:]).all()


@pytest.mark.parametrize("seed, wrong_views", [(4, ["view_006", "view_007", "view_008",
                                                    "view_009"])])
def test_the_shelf_on_the_reference_photo_keeps_a_bank_from_matching_it(
        tmp_path: Path, seed: int, wrong_views: list[str]) -> None:
    """Seed 4's back views, whose sides the bank lacks: a shelf neighbour passes against
    a side the bank gained (0.66-0.68) and is taken for the carton. It stands beside the
    carton on the reference photo too, so with the neighbours those views have no match,
    and every view matched is the carton."""
    scene = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=2,
                            seed=seed)
    write_sample_set(tmp_path, scene)
    images = sorted((tmp_path / "images").glob("*.jpg"))
    bank = {"capture": "spin", "bank_size": 8, "bank_add_threshold": 0.75,
            "bank_margin": 0.05}

    def wrong(**settings: object) -> list[str]:
        result = classic_pipeline(**bank, **settings).run(
            images, tmp_path / "images" / "view_000.jpg", reference_point=scene.reference_point)
        views = {f"view_{i:03d}": v.mask for i, v in enumerate(scene.views)}
        return [r.image_id for r in result if r.matches and (
            r.image_id not in views or mask_iou(r.matches[0].mask, views[r.image_id]) < 0.5)]

    assert wrong(reference_neighbours=False) == wrong_views
    assert wrong() == []
