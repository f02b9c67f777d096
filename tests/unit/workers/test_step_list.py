"""The step list: its order, its done-tests on storage, and a job stopped at every step
boundary and resumed from what storage holds (on a local store, classic models)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prodseg.producer.samples.scene import render_spin_set, write_sample_set
from prodseg.prompts import Prompt
from prodseg.settings import load_settings, recorded
from prodseg.storage.local import LocalStore
from prodseg.storage.manifest import InputImage, JobManifest, input_key
from prodseg.tasks.names import DONE
from prodseg.workers.classic.segmenter import ContourSegmenter
from prodseg.workers.plan.job_plan import JobPlan
from prodseg.workers.plan.ordered_steps import resolve_step, track_step
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.plan.step_list import (
    STEP_NAMES,
    StoredJob,
    first_pending,
    next_step,
    steps_of,
)
from prodseg.workers.plan.steps import (
    finalize_step,
    load_fixed_bank,
    load_reference_shape,
    match_step,
    reference_step,
)
from tests.support.classic import classic_pipeline

VIEWS = ["view_000", "view_001", "view_002", "view_006", "view_011"]


class CountingSegmenter(ContourSegmenter):
    """Contour proposals that count every model call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def segment(self, image, prompt):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().segment(image, prompt)

    def propose(self, image):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().propose(image)

    def propose_at(self, image, positives, negatives):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().propose_at(image, positives, negatives)


def test_the_order_is_one_list_and_each_plan_takes_its_steps() -> None:
    assert STEP_NAMES == ("reference", "track", "view", "resolve", "finalize")
    plain = JobPlan.of(load_settings(backend="classic"))
    assert [s.name for s in steps_of(plain)] == ["reference", "view", "finalize"]
    both = JobPlan.of(load_settings(backend="classic", bank_size=3, propagation="track"))
    assert [s.name for s in steps_of(both)] == list(STEP_NAMES)
    assert next_step(plain, "reference").name == "view"  # type: ignore[union-attr]
    assert next_step(plain, "view").name == "finalize"  # type: ignore[union-attr]
    assert next_step(both, "view").name == "resolve"  # type: ignore[union-attr]
    assert next_step(plain, "finalize") is None


SPIN = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0, seed=0)


def _job(tmp_path: Path, prompted: bool, **settings: Any
         ) -> tuple[LocalStore, JobManifest, ProductSegmentationPipeline, CountingSegmenter]:
    spin = SPIN
    if not (tmp_path.parent / "sample").exists():
        write_sample_set(tmp_path.parent / "sample", spin)
    store = LocalStore(tmp_path / "bucket")
    inputs = []
    for name in VIEWS:
        key = input_key("j", name, ".jpg")
        store.put(key, (tmp_path.parent / "sample" / "images" / f"{name}.jpg").read_bytes())
        inputs.append(InputImage(name, key, f"spin/{name}.jpg"))
    segmenter = CountingSegmenter()
    pipe = classic_pipeline(segmenter, **settings)
    views: dict[str, Any] = {}
    if prompted:  # view_006 is a reference too, clicked on its product
        ys, xs = np.nonzero(spin.views[6].mask)
        y = int(np.median(ys))
        x = int(np.median(xs[ys == y]))
        views = {"references": {"view_006": Prompt.from_point(x, y).to_json()},
                 "no_match": [], "lookalikes": {}}
    manifest = JobManifest("j", inputs[0], Prompt.from_point(*spin.reference_point).to_json(),
                           inputs[1:], recorded(pipe.settings), "2026-01-01T00:00:00Z",
                           views=views)
    manifest.save(store)
    return store, manifest, pipe, segmenter


Unit = tuple[str, int]


def _runner(store: LocalStore, manifest: JobManifest, pipe: ProductSegmentationPipeline
            ) -> Callable[[Unit], None]:
    """Runs one unit of a step as its task does (the finalize task records the end)."""

    def run(unit: Unit) -> None:
        name, index = unit
        if name == "reference":
            reference_step(store, manifest, pipe)
        elif name == "track":
            track_step(store, manifest, pipe)
        elif name == "view":
            plan = JobPlan.of(pipe.settings)
            match_step(store, manifest, index, pipe, load_fixed_bank(store, manifest, plan),
                       load_reference_shape(store, manifest))
        elif name == "resolve":
            resolve_step(store, manifest, pipe)
        else:
            finalize_step(store, manifest, pipe.settings)
            manifest.state(store).put_end(DONE)

    return run


def _walk(store: LocalStore, manifest: JobManifest, run: Callable[[Unit], None],
          segmenter: CountingSegmenter, stop_after: int | None = None
          ) -> tuple[list[Unit], Counter[Unit]]:
    """Run the first step not done, unit by unit, until storage says every step is done
    (or ``stop_after`` units ran: the job is killed there). Returns the units run and
    the model calls of each."""
    ran: list[Unit] = []
    calls: Counter[Unit] = Counter()
    while (pending := first_pending(StoredJob.of(store, manifest))) is not None:
        step, views = pending
        for unit in [(step.name, k) for k in views] or [(step.name, -1)]:
            if stop_after is not None and len(ran) == stop_after:
                return ran, calls
            before = segmenter.calls
            run(unit)
            calls[unit] += segmenter.calls - before
            ran.append(unit)
    return ran, calls


def _objects(store: LocalStore) -> dict[str, bytes]:
    return {k: store.get(k) for k in store.list("jobs/j/")}


CONFIGS = {
    "fixed bank": {},
    "growing bank": {"bank_size": 4, "bank_add_threshold": 0.75, "bank_margin": 0.05},
    "tracking": {"propagation": "track", "similarity_threshold": 0.75},
    "growing bank, tracking": {"propagation": "track", "similarity_threshold": 0.75,
                               "bank_size": 4, "bank_add_threshold": 0.75},
}


@pytest.mark.parametrize("prompted", [False, True], ids=["", "prompted view"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_a_job_stopped_at_every_step_boundary_resumes_only_what_storage_lacks(
        tmp_path: Path, config: str, prompted: bool) -> None:
    """Uninterrupted, then stopped after each unit of work (the reference, the track,
    each view, the resolve, the finalize) and walked again from storage: the resumed
    walk runs exactly the units not run before, with their model calls, and the job's
    objects equal the uninterrupted run's byte for byte. A finished job has nothing
    pending."""
    store, manifest, pipe, segmenter = _job(tmp_path / "whole", prompted, **CONFIGS[config])
    units, calls = _walk(store, manifest, _runner(store, manifest, pipe), segmenter)
    whole = _objects(store)
    assert units[0] == ("reference", -1) and units[-1] == ("finalize", -1)
    assert len(set(units)) == len(units)  # no unit ran twice
    if prompted:  # the prompted view is finished by the reference step, its models once
        assert ("view", VIEWS.index("view_006") - 1) not in units
        assert calls[("reference", -1)] >= 2
    assert first_pending(StoredJob.of(store, manifest)) is None
    for stop in range(len(units)):
        folder = tmp_path / f"stop{stop}"
        store, manifest, pipe, segmenter = _job(folder, prompted, **CONFIGS[config])
        run = _runner(store, manifest, pipe)
        before, _ = _walk(store, manifest, run, segmenter, stop_after=stop)
        after, resumed_calls = _walk(store, manifest, run, segmenter)
        assert before + after == units, f"stopped after {before[-1:]}"
        assert resumed_calls == Counter({u: calls[u] for u in after if calls[u]})
        assert _objects(store) == whole, f"stopped after {before[-1:]}"
