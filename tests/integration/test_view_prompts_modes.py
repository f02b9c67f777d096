"""Several references in one job act alike in both modes: ``prodseg run`` and ``submit ->
watch -> fetch`` (real Valkey, SeaweedFS, a real worker) write the same
outputs for a second reference, a view marked not here and a lookalike on a view, with a
bank of one and with a growing bank."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.cluster import Cluster
from tests.support.lookalike import write_lookalike_views
from tests.support.modes import assert_same_outputs, submit_watch_fetch

pytestmark = pytest.mark.integration


def _inside(mask: np.ndarray) -> str:
    ys, xs = np.nonzero(mask)
    y = int(np.median(ys))
    return f"{int(np.median(xs[ys == y]))},{y}"


@pytest.mark.parametrize("bank", [[], ["--bank-size", "4", "--bank-add-threshold", "0.75",
                                       "--bank-margin", "0.05"]])
def test_prompted_views_act_alike(cluster: Cluster, bank: list[str]) -> None:
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    spin, images, copies = write_lookalike_views(cluster.tmp / "spin", tuple(range(8)))
    x, y = spin.reference_point
    flags = ["--backend", "classic", "--ref", f"view_004.png:{_inside(spin.views[4].mask)}",
             "--not-here", "view_002", "--distractor-point",
             f"view_001:{_inside(copies['view_001'])}", *bank]
    local = cluster.tmp / "run"
    done = cluster.cli("run", "--images", str(images[0].parent / "*.png"), "--reference",
                       str(images[0]), "--ref-point", f"{x},{y}", "--output", str(local),
                       "--no-progress", *flags)
    assert done.returncode == 0, done.stderr
    fetched = submit_watch_fetch(cluster, images[0].parent / "*.png", images[0], f"{x},{y}",
                                 *flags, output=cluster.tmp / "fetched")
    assert_same_outputs(local, fetched)
    import json

    doc = json.loads((fetched / "results.json").read_text())
    by = {e["image"]: e for e in doc["images"]}
    assert by["view_004"]["found_by"] == "reference"
    assert by["view_002"]["found_by"] == "not here" and by["view_002"]["matches"] == []
    assert doc["prototype_bank"]["prototypes"][:2] == ["reference", "view_004"]
    assert doc["prototype_bank"]["distractors"] == 1
