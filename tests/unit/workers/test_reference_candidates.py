"""The reference click's candidate masks: reported, and chosen by area.

On seed 0's view 003 the carton stands sideways and the click of view 000 lands on a
slice of its front: the contour segmenter, like SAM2, offers that panel, a larger part
and the whole carton, and takes the panel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prodseg.errors import PromptError
from prodseg.producer.samples.scene import render_spin_set, write_sample_set
from prodseg.prompts import Prompt
from prodseg.workers.ops.masks import mask_iou
from prodseg.workers.segment.protocol import from_candidates
from tests.support.classic import classic_pipeline


def test_from_candidates_orders_by_area_and_picks_the_best_or_the_one_asked() -> None:
    masks = np.zeros((3, 4, 4), dtype=bool)
    masks[0, :2, :2] = True   # 4 px
    masks[1] = True           # 16 px
    masks[2, :1, :1] = True   # 1 px
    scores = np.array([0.9, 0.7, 0.8])
    best = from_candidates(masks, scores, None)
    assert best.candidate_areas == (1, 4, 16) and best.candidate_scores == (0.8, 0.9, 0.7)
    assert best.candidate == 1 and best.mask.sum() == 4 and best.score == 0.9
    whole = from_candidates(masks, scores, 2)
    assert whole.candidate == 2 and whole.mask.all() and whole.score == 0.7
    assert from_candidates(masks[:1], scores[:1], 2).candidate == 0  # past the last


def test_prompt_carries_the_candidate_only_when_chosen() -> None:
    plain = Prompt.from_point(3, 4)
    assert "candidate" not in plain.to_json()
    chosen = Prompt(((3.0, 4.0),), (1,), candidate=2)
    assert Prompt.from_json(chosen.to_json()) == chosen
    with pytest.raises(PromptError, match="candidate 3"):
        Prompt(((3.0, 4.0),), (1,), candidate=3).validate(10, 10)


@pytest.fixture(scope="module")
def sideways(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, tuple[int, int]]:
    spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0, seed=0)
    root = tmp_path_factory.mktemp("candidates")
    write_sample_set(root, spin)
    return root, spin.views[3].mask, spin.reference_point


def test_a_click_on_a_panel_says_so_and_the_whole_can_be_chosen(
        sideways: tuple[Path, np.ndarray, tuple[int, int]], tmp_path: Path) -> None:
    root, truth, (x, y) = sideways
    images = [root / "images" / "view_003.jpg", root / "images" / "view_001.jpg"]

    def reference(candidate: int | None, out: Path) -> dict[str, object]:
        prompt = Prompt(((float(x), float(y)),), (1,), candidate=candidate)
        result = classic_pipeline().run(images, images[0], prompt=prompt, output_dir=out)
        doc: dict[str, object] = json.loads((out / "results.json").read_text())["reference"]
        assert doc["area"] == int(result.reference.mask.sum())
        doc["iou"] = mask_iou(result.reference.mask, truth)
        return doc

    panel = reference(None, tmp_path / "panel")
    areas = [c["area"] for c in panel["candidates"]]  # type: ignore[attr-defined]
    assert len(areas) == 3 and areas == sorted(areas)
    assert panel["candidate"] == 0 and panel["area"] == areas[0]
    assert float(panel["iou"]) < 0.5  # type: ignore[arg-type]
    whole = reference(2, tmp_path / "whole")
    assert whole["candidate"] == 2 and whole["area"] == areas[2]
    assert float(whole["iou"]) >= 0.9  # type: ignore[arg-type]
    assert whole["prompt"] == {"points": [[float(x), float(y)]], "labels": [1], "box": None,
                               "candidate": 2}


def test_the_worker_preview_reports_the_candidates(
        sideways: tuple[Path, np.ndarray, tuple[int, int]], tmp_path: Path) -> None:
    from prodseg.storage.images import read_mask_png
    from prodseg.storage.local import LocalStore
    from prodseg.workers.classic.segmenter import ContourSegmenter
    from prodseg.workers.plan.preview import preview_step

    root, truth, (x, y) = sideways
    store = LocalStore(tmp_path)
    store.put("previews/s/inputs/0.jpg", (root / "images" / "view_003.jpg").read_bytes())
    prompt = Prompt(((float(x), float(y)),), (1,), candidate=2).to_json()
    reply = preview_step(store, ContourSegmenter(), "previews/s/inputs/0.jpg", prompt,
                         "previews/s/masks/1.png", 10**8)
    assert reply["candidate"] == 2 and len(reply["candidate_areas"]) == 3
    mask = read_mask_png(store.get("previews/s/masks/1.png"))
    assert reply["area"] == reply["candidate_areas"][2] == int(mask.sum())
    assert mask_iou(mask, truth) >= 0.9
