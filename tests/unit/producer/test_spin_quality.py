"""Storefront flags of a spin: a clean rendered turntable spin has none; a wrong match, a
part, and a view out of scale are named, and their neighbours are not."""

from __future__ import annotations

from typing import Any

import pytest

from prodseg.producer.samples.scene import render_spin_set
from prodseg.producer.spin_quality import spin_reasons
from prodseg.workers.ops.masks import mask_to_box


def _doc(views: int, seed: int) -> dict[str, Any]:
    """``results.json``'s boxes of a rendered spin, every view matched as the truth says."""
    spin = render_spin_set(n_views=views, height=120, width=160, n_distractor_only=1,
                           seed=seed)
    entries = []
    for k, view in enumerate(spin.views):
        matched = view.yaw_deg is not None
        box = [int(v) for v in mask_to_box(view.mask)] if matched else None
        entries.append({"image": f"view_{k:03d}" if matched else "shelf_000", "status": "ok",
                        "matches": [{"bbox": box, "score": 0.9}] if box else []})
    first = entries.pop(0)
    return {"capture": "spin", "images": entries,
            "reference": {"image": first["image"], "bbox": first["matches"][0]["bbox"]}}


@pytest.mark.parametrize(("views", "seed"), [(8, 0), (12, 1), (24, 2)])
def test_a_clean_spin_has_no_flags(views: int, seed: int) -> None:
    assert spin_reasons(_doc(views, seed)) == ()


def test_a_wrong_match_and_a_part_are_named() -> None:
    doc = _doc(12, 0)
    by_id = {e["image"]: e for e in doc["images"]}
    by_id["view_004"]["matches"][0]["bbox"] = [2, 2, 20, 30]  # another product, elsewhere
    reasons = spin_reasons(doc)
    assert reasons == ("spin views that jump against their neighbours: view_004",
                       "spin views filling the frame outside 10% of 85%: view_004")
    x0, y0, x1, y1 = by_id["view_008"]["matches"][0]["bbox"]
    by_id["view_008"]["matches"][0]["bbox"] = [x0, (y0 + y1) // 2, x1, y1]  # the bottom half
    reasons = spin_reasons(doc)
    assert reasons[0] == ("spin views that jump against their neighbours: view_004, "
                          "view_008")
    assert reasons[1].endswith(": view_004, view_008")


def test_only_spins_with_enough_views_are_judged() -> None:
    doc = _doc(12, 0)
    doc["images"][3]["matches"][0]["bbox"] = [2, 2, 20, 30]
    assert spin_reasons({**doc, "capture": "unordered"}) == ()
    few = {**doc, "images": doc["images"][:6]}  # 7 views with the reference: too sparse
    assert spin_reasons(few) == ()
