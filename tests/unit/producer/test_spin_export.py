"""``export_spin`` on a rendered turntable spin: frames steady, filled as asked, complete.

The job folder is built from the renderer's ground-truth masks (cutouts written by the
real ``cutout_png``), so the exported frames can be held to the geometry of the scene:
the carton turns on the spot, so one crop must keep it centred in every frame. A view of
the shelf without the carton has no match and must be left out and listed.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodseg.errors import InputError
from prodseg.producer.samples.scene import render_spin_set
from prodseg.producer.spin_export import (
    SpinOptions,
    empty_output,
    export_spin,
    rotation_order,
)
from prodseg.storage.image_encoding import cutout_png
from prodseg.storage.layout import JobLayout
from prodseg.storage.local import LocalStore
from prodseg.workers.ops.masks import mask_to_box

VIEWS = 8


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, dict[str, object]]:
    """A job folder: 8 turntable views at 160x120 (view_000 the reference) and one shelf view."""
    root = tmp_path_factory.mktemp("spin-job")
    store = LocalStore(root)
    spin = render_spin_set(n_views=VIEWS, height=120, width=160, n_distractor_only=1, seed=3)
    entries = []
    for k, view in enumerate(spin.views):
        name = f"view_{k:03d}" if view.yaw_deg is not None else "shelf_000"
        matches = []
        if view.mask.any():
            box = [int(v) for v in mask_to_box(view.mask)]
            store.put(f"cutouts/{name}_0.png", cutout_png(view.image, view.mask, box))
            matches.append({"bbox": box, "score": 0.9, "cutout": f"cutouts/{name}_0.png"})
        entries.append({"image": name, "status": "ok", "error": None, "matches": matches})
    reference = entries.pop(0)
    doc = {"capture": "spin", "images": entries[::-1],  # any order: the export sorts
           "reference": {"image": "view_000", **reference["matches"][0]}}  # type: ignore[index]
    return store, doc


def test_rotation_order_is_by_file_name_with_the_reference_in_its_place(
        job: tuple[LocalStore, dict[str, object]]) -> None:
    _, doc = job
    names = [e["image"] for e in rotation_order(doc)]
    assert names == ["shelf_000", *(f"view_{k:03d}" for k in range(VIEWS))]


def test_frames_are_steady_filled_as_asked_and_listed(
        job: tuple[LocalStore, dict[str, object]], tmp_path: Path) -> None:
    store, doc = job
    out = empty_output(tmp_path / "spin")
    summary = export_spin(store, JobLayout(), doc, out, "carton", SpinOptions(size=200))
    assert [f.view for f in summary.frames] == [f"view_{k:03d}" for k in range(VIEWS)]
    assert summary.left_out == {"shelf_000": "no match"}
    centres = np.array([f.centre for f in summary.frames])
    steps = np.abs(np.diff(np.vstack([centres, centres[:1]]), axis=0)).max()
    assert steps <= 0.02, f"the product's centre moved {steps:.3f} of the frame"
    fills = np.array([f.fill for f in summary.frames])
    assert np.abs(fills / 0.85 - 1).max() <= 0.05, fills
    for frame in summary.frames:
        with Image.open(out.root / frame.file) as image:
            assert (image.format, image.size, image.mode) == ("JPEG", (200, 200), "RGB")
            pixels = np.asarray(image)
        assert (pixels[:4, :4] >= 250).all()  # white background
        # The product is where spin.json says: its darkest pixels' centre near "centre".
        product = pixels.min(axis=2) < 200
        ys, xs = np.nonzero(product)
        assert abs(xs.mean() / 200 - frame.centre[0]) < 0.05
        assert abs(ys.mean() / 200 - frame.centre[1]) < 0.05
    with zipfile.ZipFile(out.root / "spin.zip") as archive:
        assert archive.namelist() == [f"frame_{k:03d}.jpg" for k in range(VIEWS)]
        assert archive.read("frame_003.jpg") == (out.root / "frames/frame_003.jpg").read_bytes()
    written = json.loads((out.root / "spin.json").read_text())
    assert [f["view"] for f in written["frames"]] == [f.view for f in summary.frames]
    assert written["left_out"] == {"shelf_000": "no match"}
    page = (out.root / "viewer.html").read_text()
    assert page.count("data:image/jpeg;base64,") == VIEWS
    assert "http://" not in page and "https://" not in page


def test_transparent_frames_and_a_review_choice(
        job: tuple[LocalStore, dict[str, object]], tmp_path: Path) -> None:
    store, doc = job
    out = empty_output(tmp_path / "spin")
    accepted = {"view_000", "view_002", "view_004"}
    summary = export_spin(store, JobLayout(), doc, out, "carton",
                          SpinOptions(size=64, image_format="png", transparent=True), accepted)
    assert [f.view for f in summary.frames] == sorted(accepted)
    assert summary.left_out["view_001"] == "not accepted"
    with Image.open(io.BytesIO((out.root / summary.frames[0].file).read_bytes())) as image:
        assert image.mode == "RGBA"
        alpha = np.asarray(image)[:, :, 3]
    assert alpha[0, 0] == 0 and alpha[32, 32] == 255


def test_bad_requests_are_refused(job: tuple[LocalStore, dict[str, object]],
                                  tmp_path: Path) -> None:
    store, doc = job
    with pytest.raises(InputError, match="JPEG frame cannot be transparent"):
        SpinOptions(transparent=True)
    with pytest.raises(InputError, match="--fill"):
        SpinOptions(fill=1.5)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(InputError, match="not an empty folder"):
        empty_output(tmp_path / "full")
    with pytest.raises(InputError, match="panorama capture is not a spin"):
        export_spin(store, JobLayout(), {**doc, "capture": "panorama"},
                    empty_output(tmp_path / "a"), "carton", SpinOptions(size=32))
    with pytest.raises(InputError, match="no view has the product"):
        export_spin(store, JobLayout(), doc, empty_output(tmp_path / "b"), "carton",
                    SpinOptions(size=32), accepted=set())
