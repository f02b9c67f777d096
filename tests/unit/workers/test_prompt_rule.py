"""The proposal rule: which object of a capture is the product, and how sure that is."""

from __future__ import annotations

import numpy as np
import pytest

from prodseg.errors import InputError
from prodseg.producer.samples.scene import render_spin_set
from prodseg.producer.samples.twins import standing_beside
from prodseg.settings import load_settings
from prodseg.workers.capture.prompt_rule import change_map, choose_prompt, view_objects
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.plan.propose import propose_prompt

H, W = 60, 80


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_change_map_marks_what_moves_and_needs_aligned_views() -> None:
    rng = np.random.default_rng(0)
    still = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    views = []
    for k in range(5):
        view = still.copy()
        view[20:40, 30:50] = (50 * k, 255 - 40 * k, 30 * k)  # the turning product
        views.append(np.clip(view + rng.normal(0, 2, view.shape), 0, 255).astype(np.uint8))
    changed = change_map(views)
    assert changed is not None and changed.shape == (120, 160)  # 160 on the long side
    assert changed[45:75, 65:95].mean() > 0.9
    outside = changed.copy()
    outside[36:84, 56:104] = False
    assert outside.mean() < 0.01
    assert change_map(views[:2]) is None
    assert change_map([*views, np.zeros((H + 1, W, 3), np.uint8)]) is None


def test_the_turning_object_wins_over_a_still_one_nearer_the_centre() -> None:
    product, neighbour = rect(50, 20, 70, 45), rect(30, 15, 48, 45)
    changed = product.copy()
    looks = [unit(1, 0.2 * k, 0) for k in range(4)]  # the product's sides, alike in turn
    views = [view_objects(f"v{k}", np.stack([neighbour, product]),
                          np.stack([unit(0, 0, 1), looks[k]]), changed) for k in range(4)]
    proposed = choose_prompt(views, similarity_threshold=0.65)
    assert proposed is not None
    x, y = proposed.point or (0, 0)
    assert product[int(y), int(x)] and proposed.box == (50, 20, 70, 45)
    assert not proposed.flagged and proposed.why.startswith("high:")
    still = [view_objects(v.view, np.stack([neighbour, product]),
                          np.stack([unit(0, 0, 1), unit(1, 0, 0)]), None) for v in views]
    proposed = choose_prompt(still, similarity_threshold=0.65)  # nothing moves: the centre
    assert proposed is not None and proposed.box == (30, 15, 48, 45)
    assert not proposed.flagged
    mirrored = rect(10, 20, 30, 45)  # as far off the centre as the product, on the left
    twins = [view_objects(v.view, np.stack([mirrored, product]),
                          np.stack([unit(0, 0, 1), unit(1, 0, 0)]), None) for v in views]
    proposed = choose_prompt(twins, similarity_threshold=0.65)
    assert proposed is not None and proposed.flagged
    assert proposed.why.startswith("low: another object is almost as likely")


def test_an_object_missing_from_views_is_flagged_and_the_reference_can_be_fixed() -> None:
    product = rect(30, 15, 50, 45)
    looks = [unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)]  # three objects, two views each
    views = [view_objects(f"v{k}", product[None], looks[k // 2][None], None)
             for k in range(6)]
    proposed = choose_prompt(views, 0.65)
    assert proposed is not None and proposed.flagged
    assert proposed.why == "low: not in every view (in 1 of 5 others)"
    assert choose_prompt(views, 0.65, reference="v3").reference == "v3"  # type: ignore[union-attr]
    empty = view_objects("e", np.zeros((0, H, W), bool), np.zeros((0, 3), np.float32), None)
    assert choose_prompt([empty, empty], 0.65) is None


def test_an_object_across_the_frame_is_never_proposed() -> None:
    shelf, product = rect(0, 40, W, 50), rect(30, 10, 45, 38)
    views = [view_objects(f"v{k}", np.stack([shelf, product]),
                          np.stack([unit(0, 1, 0), unit(1, 0, 0)]), None) for k in range(3)]
    assert choose_prompt(views, 0.65).box == (30, 10, 45, 38)  # type: ignore[union-attr]


@pytest.mark.parametrize(("seed", "offset", "lookalike"),
                         [(3, (0.18, -0.1), False), (4, (-0.15, 0.12), True)])
def test_classic_backend_proposes_on_the_product(seed: int, offset: tuple[float, float],
                                                 lookalike: bool) -> None:
    spin = render_spin_set(6, 192, 256, 0, seed, offset)
    images, masks = [v.image for v in spin.views], [v.mask for v in spin.views]
    if lookalike:
        images, masks = standing_beside(images, masks)
    models = ProductSegmentationPipeline(load_settings(backend="classic"))
    proposed = propose_prompt([(f"view_{k}", im) for k, im in enumerate(images)], models)
    k = int(proposed.reference.removeprefix("view_"))
    x, y = proposed.point or (-1, -1)
    assert masks[k][int(y), int(x)], proposed
    with pytest.raises(InputError, match="not one of the views"):
        propose_prompt([("a", images[0])], models, reference="b")
