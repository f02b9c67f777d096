"""The capture mode is decided once, by the reference step, from file names and the
sizes in the targets' headers: no target is decoded for it, and a set mode reads none."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from prodseg.settings import load_settings
from prodseg.storage.local import LocalStore
from prodseg.storage.manifest import InputImage, JobManifest
from prodseg.workers.plan.job_inputs import decide_capture, stored_capture
from prodseg.workers.plan.job_plan import JobPlan


class CountingStore(LocalStore):
    """A local store that counts whole reads and header reads."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.whole: list[str] = []
        self.heads: list[tuple[str, int]] = []

    def get(self, key: str) -> bytes:
        self.whole.append(key)
        return super().get(key)

    def get_head(self, key: str, size: int) -> bytes:
        self.heads.append((key, size))
        return super().get_head(key, size)


def _jpeg(width: int, height: int, seed: int) -> bytes:
    # Noise: each file is larger than a header read, so a whole read would show.
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _job(store: LocalStore, sizes: list[tuple[int, int]], names: list[str]) -> JobManifest:
    images = []
    for k, ((w, h), name) in enumerate(zip(sizes, names, strict=True)):
        store.put(f"inputs/{name}", _jpeg(w, h, k))
        images.append(InputImage(f"view_{k}", f"inputs/{name}", f"/captures/{name}"))
    return JobManifest("j1", images[0], {"points": [[1, 1]], "labels": [1]}, images[1:],
                       {})


def test_panoramas_a_row_off_two_to_one_are_a_panorama_capture_from_headers_alone(
        tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    manifest = _job(store, [(640, 480), (2000, 1001), (2000, 1001)],
                    ["ref.jpg", "pano_a.jpg", "pano_b.jpg"])
    settings = load_settings()
    assert decide_capture(store, manifest, settings, (640, 480)) == "panorama"
    assert store.whole == []
    assert sorted(key for key, _ in store.heads) == ["inputs/pano_a.jpg", "inputs/pano_b.jpg"]
    assert all(len(store.get(k)) > n for k, n in store.heads)  # ranged, not whole


def test_numbered_photos_in_one_folder_are_a_spin_and_a_set_mode_reads_nothing(
        tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    manifest = _job(store, [(64, 48)] * 4, [f"v_{k:02d}.jpg" for k in range(4)])
    assert decide_capture(store, manifest, load_settings(), (64, 48)) == "spin"
    store.heads.clear()
    assert decide_capture(store, manifest, load_settings(capture="unordered"),
                          (64, 48)) == "unordered"
    assert store.heads == [] and store.whole == []


def test_the_stored_mode_is_what_later_steps_read() -> None:
    plan = JobPlan.of(load_settings())
    assert stored_capture({"capture": "panorama"}, plan) == "panorama"
    # A record from before the mode was stored: the setting, else unordered.
    assert stored_capture({}, plan) == "unordered"
    assert stored_capture({}, JobPlan.of(load_settings(capture="spin"))) == "spin"


def test_a_pipe_among_the_photos_is_never_read_for_its_size(tmp_path: Path) -> None:
    import os

    from prodseg.workers.plan.views import file_head, view_size

    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)  # no writer: a plain read would wait forever

    def load() -> np.ndarray:
        raise OSError("not an image file")

    assert view_size(file_head(pipe), load) == (0, 0)
    photo = tmp_path / "a.jpg"
    photo.write_bytes(_jpeg(64, 48, 0))
    assert view_size(file_head(photo), load) == (64, 48)
