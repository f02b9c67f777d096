"""A prompt proposed when the job runs (``--ref-point auto``): ``prodseg run`` and
``submit -> watch -> fetch`` (real Valkey, SeaweedFS, a real worker) propose the same
click and write the same outputs, tracking included (its step reads the stored
proposal), and ``results.json`` says the prompt was proposed, with what confidence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from prodseg.producer.samples.scene import render_spin_set
from tests.support.cluster import Cluster
from tests.support.modes import assert_same_outputs, submit_watch_fetch

pytestmark = pytest.mark.integration

TRACK = ["--propagation", "track", "--propagation-step-threshold", "0.7"]


def test_a_proposed_prompt_is_the_same_in_both_modes(cluster: Cluster) -> None:
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    spin = render_spin_set(n_views=8, height=240, width=320, n_distractor_only=0, seed=3,
                           offset=(0.15, 0.05))
    folder = cluster.tmp / "spin"
    folder.mkdir()
    for k, view in enumerate(spin.views):
        Image.fromarray(view.image).save(folder / f"view_{k:03d}.png")
    flags = ["--backend", "classic", *TRACK]
    local = cluster.tmp / "run"
    done = cluster.cli("run", "--images", str(folder), "--ref-point", "auto", "--output",
                       str(local), "--no-progress", *flags)
    assert done.returncode == 0, done.stderr
    fetched = submit_watch_fetch(cluster, folder, folder / "view_000.png", "auto", *flags,
                                 output=cluster.tmp / "fetched")
    assert_same_outputs(local, fetched)
    for root in (local, fetched):
        reference = json.loads((root / "results.json").read_text())["reference"]
        assert reference["image"] == "view_000"
        assert reference["prompt_source"] == "proposed"
        proposal = reference["proposal"]
        assert 0 <= proposal["confidence"] <= 1 and proposal["why"]
        x, y = proposal["point"]
        assert reference["prompt"]["points"] == [[x, y]]
        assert spin.views[0].mask[int(y), int(x)], proposal  # on the carton
        assert np.isfinite(reference["score"])
    bad = cluster.cli("run", "--images", str(folder), "--ref-point", "auto", "--ref-point",
                      "3,4", "--output", str(cluster.tmp / "bad"), "--backend", "classic")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "prodseg: error: --ref-point auto proposes the whole prompt: give it alone, without "
        "other --ref-point, --ref-neg-point or --ref-bbox")
