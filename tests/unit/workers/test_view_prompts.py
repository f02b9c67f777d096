"""Several references in one job, in ``prodseg run``: a clicked view is a reference (its own
mask, a fixed bank member), a view marked not here has no match; views are named by path,
file name or id, and a wrong name is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from prodseg.errors import PromptError
from prodseg.job_spec import ViewPrompts, resolve_views
from prodseg.prompts import Prompt

SOURCES = ["/a/view_000.jpg", "/a/view_001.jpg", "/b/view_001.jpg", "/a/shelf.jpg"]
IDS = ["view_000", "view_001", "view_001-2", "shelf"]


def test_views_are_named_by_id_path_or_file_name() -> None:
    views = ViewPrompts({"view_001-2": Prompt.from_point(1, 2), "/a/view_001.jpg":
                         Prompt.from_point(3, 4)}, frozenset({"shelf.jpg"}),
                        {"shelf": ((5.0, 6.0),)})
    resolved = resolve_views(views, SOURCES, IDS, os.path.normpath)
    assert set(resolved.references) == {"view_001", "view_001-2"}
    assert resolved.no_match == {"shelf"} and resolved.lookalikes == {"shelf": ((5.0, 6.0),)}
    assert ViewPrompts.from_json(json.loads(json.dumps(resolved.to_json()))) == resolved


@pytest.mark.parametrize("views, message", [
    (ViewPrompts({"nope.jpg": Prompt.from_point(1, 1)}), "'nope.jpg' is not one of"),
    (ViewPrompts({"view_001.jpg": Prompt.from_point(1, 1)}), "names 2 images"),
    (ViewPrompts({"view_000": Prompt.from_point(1, 1)}), "is the reference image"),
    (ViewPrompts({"shelf": Prompt.from_point(1, 1)}, frozenset({"shelf"})), "one or the other"),
])
def test_a_wrong_view_is_one_line(views: ViewPrompts, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        resolve_views(views, SOURCES, IDS, os.path.normpath)


def test_run_with_a_second_reference_and_a_view_not_here(tmp_path) -> None:
    from prodseg.producer.samples.scene import render_spin_set

    spin = render_spin_set(n_views=8, height=240, width=320, n_distractor_only=0, seed=0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, view in enumerate(spin.views):
        Image.fromarray(view.image).save(folder / f"view_{i:03d}.png")
    back = spin.views[4].mask
    ys, xs = np.nonzero(back)
    y = int(np.median(ys))
    x = int(np.median(xs[ys == y]))
    rx, ry = spin.reference_point
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "prodseg", "run", "--images", str(folder), "--reference",
         str(folder / "view_000.png"), "--ref-point", f"{rx},{ry}", "--ref",
         f"view_004.png:{x},{y}", "--not-here", "view_001", "--backend", "classic",
         "--output", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "results.json").read_text())
    entries = {e["image"]: e for e in doc["images"]}
    assert entries["view_001"]["found_by"] == "not here" and entries["view_001"]["matches"] == []
    four = entries["view_004"]
    assert four["found_by"] == "reference" and four["matches"][0]["score"] == 1.0
    mask = np.asarray(Image.open(out / four["matches"][0]["mask"])) > 0
    assert (mask & back).sum() / (mask | back).sum() >= 0.9
    assert doc["prototype_bank"]["prototypes"] == ["reference", "view_004"]

    wrong = subprocess.run(
        [sys.executable, "-m", "prodseg", "run", "--images", str(folder), "--reference",
         str(folder / "view_000.png"), "--ref-point", f"{rx},{ry}", "--ref", "other.png:1,1",
         "--backend", "classic", "--output", str(tmp_path / "o2"), "--no-progress"],
        capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1].endswith(
        "view 'other.png' is not one of the images; name it by its path, file name or image id")
    assert not (tmp_path / "o2" / "results.json").exists()
