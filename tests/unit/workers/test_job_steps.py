"""The distributed job's steps on a local store, without broker or worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prodseg.errors import TransientError
from prodseg.producer.samples.scene import render_spin_set, write_sample_set
from prodseg.prompts import Prompt
from prodseg.settings import load_settings, recorded
from prodseg.storage.local import LocalStore
from prodseg.storage.manifest import InputImage, JobManifest, input_key
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
    stored = manifest.state(store).image_record("view_002")
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
    assert manifest.state(store).image_record("view_002") is None


def _spin_job(tmp_path: Path, views: list[str], **settings: object
              ) -> tuple[LocalStore, JobManifest, ProductSegmentationPipeline]:
    spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0, seed=0)
    write_sample_set(tmp_path / "sample", spin)
    store = LocalStore(tmp_path / "bucket")
    inputs = []
    for name in views:
        key = input_key("j2", name, ".jpg")
        store.put(key, (tmp_path / "sample" / "images" / f"{name}.jpg").read_bytes())
        inputs.append(InputImage(name, key, f"spin/{name}.jpg"))
    pipe = classic_pipeline(**settings)
    manifest = JobManifest("j2", inputs[0], Prompt.from_point(*spin.reference_point).to_json(),
                           inputs[1:], recorded(pipe.settings))
    manifest.save(store)
    return store, manifest, pipe


def _outputs(store: LocalStore) -> dict[str, bytes]:
    return {k: store.get(k) for k in store.list("jobs/j2/") if "/_state/end" not in k}


def test_a_growing_bank_stores_candidates_then_resolves_them_in_capture_order(
        tmp_path: Path) -> None:
    """The match steps store each view's candidates only; the resolve step grows the bank
    over them outward from the reference and writes every view, the same bytes when it
    runs again (a redelivered task)."""
    from prodseg.workers.plan.ordered_steps import resolve_step

    views = ["view_000", "view_001", "view_002", "view_010", "view_011"]
    store, manifest, pipe = _spin_job(tmp_path, views, bank_size=4, bank_add_threshold=0.75,
                                      bank_margin=0.05)
    reference_step(store, manifest, pipe)
    plan = JobPlan.of(pipe.settings)
    fixed = load_fixed_bank(store, manifest, plan)
    shape = load_reference_shape(store, manifest)
    for index in range(len(manifest.images)):
        record = match_step(store, manifest, index, pipe, fixed, shape)
        assert record["status"] == "ok" and record["size"] == [320, 240]
    assert not list(store.list("jobs/j2/_state/images/"))  # nothing resolved yet
    assert manifest.state(store).candidates("view_001") is not None
    members = resolve_step(store, manifest, pipe)
    assert members[0] == "reference" and len(members) > 1
    first = _outputs(store)
    assert resolve_step(store, manifest, pipe) == members
    assert _outputs(store) == first
    doc = finalize_step(store, manifest, pipe.settings)
    assert doc["capture"] == "spin"
    assert doc["prototype_bank"]["prototypes"] == members
    assert doc["prototype_bank"]["distractors"] == 0
    local = pipe.run([tmp_path / "sample" / "images" / f"{v}.jpg" for v in views],
                     tmp_path / "sample" / "images" / "view_000.jpg",
                     prompt=Prompt.from_json(manifest.prompt))
    assert local.meta["prototype_bank"] == doc["prototype_bank"]
    for entry, result in zip(doc["images"], local.images, strict=True):
        assert [m["bbox"] for m in entry["matches"]] == [list(m.bbox) for m in result.matches]


def test_the_track_step_records_the_tracked_views_and_leaves_the_rest(tmp_path: Path) -> None:
    from prodseg.workers.plan.ordered_steps import track_step

    views = ["view_000", "view_001", "view_002", "view_006", "view_011"]
    store, manifest, pipe = _spin_job(tmp_path, views, propagation="track",
                                      similarity_threshold=0.75)
    reference_step(store, manifest, pipe)
    assert manifest.state(store).tracked() is None
    tracked = track_step(store, manifest, pipe)
    assert {"view_001", "view_011"} <= set(tracked) and "view_006" not in tracked
    assert manifest.state(store).tracked() == set(tracked)
    for image_id in tracked:
        record = manifest.state(store).image_record(image_id)
        assert record is not None
        assert record["entry"]["found_by"] == "tracked" and record["status"] == "ok"


def test_errors_are_told_apart_by_kind(job) -> None:  # type: ignore[no-untyped-def]
    """Only ``ObjectNotFound`` means "not stored" (a lookup bug's ``KeyError`` is raised);
    a device failure is a ``DeviceError`` for the task to retry, never the view's
    failure; any other model failure is the view's."""
    from prodseg.errors import DeviceError, as_device_error
    from prodseg.storage.base import ObjectNotFound
    from prodseg.workers.plan.views import load_view, view_candidates

    def raises(exc: Exception):  # type: ignore[no-untyped-def]
        def load():  # type: ignore[no-untyped-def]
            raise exc
        return load

    assert load_view(raises(ObjectNotFound("k")), "a.jpg") == (None, "a.jpg: not found")
    with pytest.raises(KeyError):
        load_view(raises(KeyError("image_id")), "a.jpg")

    class OutOfMemoryError(RuntimeError):  # torch.cuda's, by name
        pass

    assert as_device_error(OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert as_device_error(RuntimeError("CUDA error: an illegal memory access was "
                                        "encountered"))
    assert as_device_error(RuntimeError("shape '[2, 3]' is invalid")) is None
    assert as_device_error(ValueError("out of memory")) is None

    store, manifest, _ = job
    image = np.zeros((240, 400, 3), np.uint8)
    pipe = pipeline(FlakySegmenter(OutOfMemoryError("CUDA out of memory")))
    reference_step(store, manifest, pipe)
    fixed = load_fixed_bank(store, manifest, JobPlan.of(pipe.settings))
    with pytest.raises(DeviceError, match="OutOfMemoryError: CUDA out of memory"):
        view_candidates(pipe, fixed, "view_002", "view_002.jpg", image, None)
    broken = pipeline(FlakySegmenter(RuntimeError("proposals exploded")))
    failed = view_candidates(broken, fixed, "view_002", "view_002.jpg", image, None)
    assert failed.error == "view_002.jpg: RuntimeError: proposals exploded"


def test_a_view_gone_before_its_cutouts_is_a_failure_naming_it() -> None:
    from prodseg.errors import ImageReadError
    from prodseg.results import ImageResult, Match
    from prodseg.workers.plan.views import read_for_cutouts

    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:4] = True
    matched = ImageResult("v1", "shoot/v1.jpg", 6, 4, matches=[Match(mask, (2, 1, 4, 3), 0.9)])
    pixels = np.full((4, 6, 3), 7, np.uint8)
    kept, image = read_for_cutouts(matched, lambda: pixels)
    assert kept is matched and image is pixels

    def gone() -> np.ndarray:
        raise ImageReadError("shoot/v1.jpg", "file not found")

    failed, image = read_for_cutouts(matched, gone)
    assert image is None and failed.status == "error" and failed.matches == []
    assert failed.error == "shoot/v1.jpg: file not found (read again for its cutouts)"
    unmatched = ImageResult("v2", "shoot/v2.jpg", 6, 4, status="error", error="no match")
    kept, image = read_for_cutouts(unmatched, gone)  # not read at all
    assert kept is unmatched and image is None
