"""The distributed job's steps on a local store, without broker or worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prodseg.errors import TransientError
from prodseg.producer.samples.scene import render_spin_set, write_sample_set
from prodseg.prompts import Prompt
from prodseg.settings import load_settings, recorded
from prodseg.storage.local import LocalStore
from prodseg.storage.manifest import InputImage, JobManifest, image_state_key, input_key
from prodseg.workers.classic.segmenter import ContourSegmenter
from prodseg.workers.plan.job_plan import JobPlan
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from prodseg.workers.plan.steps import (
    finalize_step,
    load_fixed_bank,
    load_reference_embedding,
    load_reference_shape,
    match_step,
    reference_step,
)
from tests.support.classic import classic_pipeline


class FlakySegmenter(ContourSegmenter):
    """Proposals fail with a chosen exception on images wider than 350 px."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def propose(self, image):  # type: ignore[no-untyped-def]
        if image.shape[1] > 350:
            raise self.error
        return super().propose(image)


@pytest.fixture()
def job(tmp_path: Path) -> tuple[LocalStore, JobManifest, tuple[int, int]]:
    spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0, seed=0)
    write_sample_set(tmp_path / "sample", spin)
    store = LocalStore(tmp_path / "bucket")
    images = []
    for i, name in enumerate(["view_000", "view_001", "view_002"]):
        key = input_key("j1", name, ".jpg")
        data = (tmp_path / "sample" / "images" / f"{name}.jpg").read_bytes()
        if i == 2:  # a wider copy of the same photo: the flaky segmenter fails on it
            from PIL import Image

            img = Image.open(tmp_path / "sample" / "images" / f"{name}.jpg")
            img.resize((400, 240)).save(tmp_path / "wide.jpg")
            data = (tmp_path / "wide.jpg").read_bytes()
        store.put(key, data)
        images.append(InputImage(name, key, f"{name}.jpg"))
    manifest = JobManifest("j1", images[0], Prompt.from_point(*spin.reference_point).to_json(),
                           images[1:], recorded(load_settings(backend="classic")))
    manifest.save(store)
    return store, manifest, spin.reference_point


def pipeline(segmenter: ContourSegmenter) -> ProductSegmentationPipeline:
    return classic_pipeline(segmenter)


def test_steps_write_records_and_documents(job) -> None:  # type: ignore[no-untyped-def]
    store, manifest, _ = job
    pipe = pipeline(FlakySegmenter(RuntimeError("model exploded")))
    reference_step(store, manifest, pipe)
    embedding = load_reference_embedding(store, manifest)
    assert embedding.shape == (104,) and abs(float(np.linalg.norm(embedding)) - 1) < 1e-5
    shape = load_reference_shape(store, manifest)
    fixed = load_fixed_bank(store, manifest, JobPlan.of(pipe.settings))
    ok = match_step(store, manifest, 0, pipe, fixed, shape)
    failed = match_step(store, manifest, 1, pipe, fixed, shape)
    assert ok["entry"]["status"] == "ok" and ok["entry"]["matches"]
    # A model failure on one image is recorded, not raised: the job goes on.
    assert failed["entry"]["status"] == "error"
    assert "view_002.jpg: RuntimeError: model exploded" in failed["entry"]["error"]
    stored = json.loads(store.get(image_state_key("j1", "view_002")))
    assert stored["entry"] == failed["entry"]
    doc = finalize_step(store, manifest, pipe.settings)
    assert doc["job"] == "j1" and doc["summary"] == {
        "images": 2, "ok": 1, "error": 1, "matched": 1, "unmatched": 0}
    assert store.exists("jobs/j1/results.json") and store.exists("jobs/j1/coco.json")


def test_storage_faults_propagate_for_retry(job) -> None:  # type: ignore[no-untyped-def]
    store, manifest, _ = job
    pipe = pipeline(FlakySegmenter(TransientError("s3 down")))
    reference_step(store, manifest, pipe)
    fixed = load_fixed_bank(store, manifest, JobPlan.of(pipe.settings))
    with pytest.raises(TransientError):
        match_step(store, manifest, 1, pipe, fixed, load_reference_shape(store, manifest))
    assert not store.exists(image_state_key("j1", "view_002"))
