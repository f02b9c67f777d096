"""Exports of one job: mask PNGs, cutouts, thumbnails, results.json, COCO and the gallery."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

import prodseg
from prodseg.jsonio import dump_bytes
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, Match, ReferenceResult
from prodseg.storage.base import ObjectStore
from prodseg.storage.exports.coco import coco_annotations_for, coco_document
from prodseg.storage.exports.documents import (
    results_document,
    write_image_outputs,
    write_job_documents,
    write_reference_outputs,
)
from prodseg.storage.exports.gallery import contact_sheet, gallery_html
from prodseg.storage.exports.thumbnails import overlay_thumbnail
from prodseg.storage.image_encoding import cutout_png
from prodseg.storage.images import mask_png, read_mask_png
from prodseg.storage.layout import JobLayout
from prodseg.storage.local import LocalStore

H, W = 60, 80


def _disc(cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def _match(mask: np.ndarray, score: float) -> Match:
    return Match(mask=mask, bbox=_bbox(mask), score=score)


@dataclass
class Job:
    image: np.ndarray
    reference: ReferenceResult
    results: list[ImageResult] = field(default_factory=list)


def _job() -> Job:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    ref_mask = _disc(25, 35, 12)
    reference = ReferenceResult(
        image_id="ref",
        source="photos/ref.jpg",
        width=W,
        height=H,
        mask=ref_mask,
        bbox=_bbox(ref_mask),
        score=0.951234567,
        embedding=np.linspace(-1, 1, 16, dtype=np.float32),
        prompt=Prompt.from_point(35, 25).to_json(),
    )
    found = ImageResult(
        image_id="spin_02",
        source="photos/spin 02.jpg",
        width=W,
        height=H,
        matches=[_match(_disc(30, 50, 9), 0.87654321), _match(_disc(10, 10, 5), 0.5)],
        num_proposals=12,
    )
    nothing = ImageResult(
        image_id="spin_03", source="photos/spin_03.jpg", width=W, height=H, num_proposals=4
    )
    broken = ImageResult(
        image_id="spin_04",
        source="photos/<b>spin_04</b>.jpg",
        status="error",
        error="photos/spin_04.jpg: file is empty (0 bytes)",
    )
    return Job(image, reference, [found, nothing, broken])


# --- masks and cutouts --------------------------------------------------------------


def test_mask_png_round_trip() -> None:
    mask = np.random.default_rng(0).random((H, W)) > 0.6
    data = mask_png(mask)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.mode == "L"
        assert image.size == (W, H)
        assert set(np.unique(np.asarray(image)).tolist()) == {0, 255}
    decoded = read_mask_png(data)
    assert decoded.dtype == np.bool_
    np.testing.assert_array_equal(decoded, mask)


def test_mask_png_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        mask_png(np.zeros((4, 4, 1), dtype=bool))


def test_cutout_alpha_is_the_mask_within_the_box() -> None:
    job = _job()
    match = job.results[0].matches[0]
    x0, y0, x1, y1 = match.bbox
    with Image.open(io.BytesIO(cutout_png(job.image, match.mask, match.bbox))) as image:
        assert image.mode == "RGBA"
        rgba = np.asarray(image)
    assert rgba.shape == (y1 - y0, x1 - x0, 4)
    inside = match.mask[y0:y1, x0:x1]
    np.testing.assert_array_equal(rgba[..., 3], np.where(inside, 255, 0))
    np.testing.assert_array_equal(rgba[inside][:, :3], job.image[y0:y1, x0:x1][inside])
    assert (rgba[~inside][:, :3] == 0).all()
    assert (~inside).any()  # a disc leaves the box corners transparent


@pytest.mark.parametrize("bbox", [(0, 0, 0, 5), (10, 10, 5, 20), (-1, 0, 5, 5), (0, 0, W + 1, H)])
def test_cutout_rejects_bad_boxes(bbox: tuple[int, int, int, int]) -> None:
    job = _job()
    with pytest.raises(ValueError, match="box"):
        cutout_png(job.image, job.reference.mask, bbox)


def test_cutout_rejects_mismatched_mask() -> None:
    job = _job()
    with pytest.raises(ValueError, match="does not match"):
        cutout_png(job.image, np.ones((H, W + 1), dtype=bool), (0, 0, 5, 5))


# --- thumbnails ---------------------------------------------------------------------


def test_overlay_thumbnail_downscales_and_tints_matches() -> None:
    image = np.full((400, 600, 3), 120, dtype=np.uint8)
    mask = np.zeros((400, 600), dtype=bool)
    mask[100:300, 300:500] = True
    data = overlay_thumbnail(image, [_match(mask, 0.9)], max_side=320)
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (320, 213)
        pixels = np.asarray(thumb.convert("RGB")).astype(int)
    inside = pixels[106, 213]  # centre of the mask, scaled by 320 / 600
    outside = pixels[40, 40]
    assert inside[1] - inside[0] > 40  # green tint on the best match
    assert np.abs(outside - 120).max() <= 6

    ref = overlay_thumbnail(image, [_match(mask, 0.9)], max_side=320, is_reference=True)
    with Image.open(io.BytesIO(ref)) as thumb:
        centre = np.asarray(thumb.convert("RGB")).astype(int)[106, 213]
    assert centre[2] - centre[0] > 40  # blue on the reference


def test_overlay_thumbnail_never_upscales() -> None:
    data = overlay_thumbnail(np.zeros((30, 40, 3), dtype=np.uint8), [], max_side=320)
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.size == (40, 30)


# --- COCO ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_coco_document_loads_in_pycocotools(tmp_path: Path) -> None:
    job = _job()
    document = coco_document(job.reference, job.results)
    path = tmp_path / "coco.json"
    path.write_bytes(dump_bytes(document))
    coco = COCO(str(path))

    assert coco.loadCats(coco.getCatIds()) == [{"id": 1, "name": "product"}]
    # The errored image is left out; the unmatched one is listed without annotations.
    assert sorted(coco.getImgIds()) == [1, 2, 3]
    assert coco.loadImgs(1)[0]["file_name"] == "photos/ref.jpg"
    assert coco.loadImgs(2)[0]["prodseg_image"] == "spin_02"
    assert coco.getAnnIds(imgIds=[3]) == []

    (ref_ann,) = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert ref_ann["score"] == 1.0
    np.testing.assert_array_equal(coco.annToMask(ref_ann).astype(bool), job.reference.mask)

    anns = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert [a["score"] for a in anns] == [0.876543, 0.5]
    for ann, match in zip(anns, job.results[0].matches, strict=True):
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), match.mask)
        x0, y0, x1, y1 = match.bbox
        assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        assert ann["area"] == int(match.mask.sum())
        assert ann["iscrowd"] == 0
        assert isinstance(ann["segmentation"]["counts"], str)
    assert sorted(a["id"] for a in coco.dataset["annotations"]) == [1, 2, 3]


def test_coco_annotations_reject_empty_masks_and_bad_scores() -> None:
    with pytest.raises(ValueError, match="empty"):
        coco_annotations_for(2, [np.zeros((4, 4), dtype=bool)], [0.5])
    with pytest.raises(ValueError, match="score"):
        coco_annotations_for(2, [np.ones((4, 4), dtype=bool)], [float("nan")])
    with pytest.raises(ValueError, match="1 masks but 2 scores"):
        coco_annotations_for(2, [np.ones((4, 4), dtype=bool)], [0.5, 0.4])


# --- results.json -------------------------------------------------------------------


def test_results_document_shape() -> None:
    job = _job()
    meta = {"job": "j1", "weights": "random", "warning": "RANDOM WEIGHTS"}
    document = results_document(job.reference, job.results, JobLayout("jobs/j1/"), meta)

    assert list(document) == [
        "prodseg_version",
        "job",
        "weights",
        "warning",
        "reference",
        "images",
        "summary",
    ]
    assert document["prodseg_version"] == prodseg.__version__
    assert document["reference"] == {
        "image": "ref",
        "source": "photos/ref.jpg",
        "width": W,
        "height": H,
        "prompt": {"points": [[35.0, 25.0]], "labels": [1], "box": None},
        "prompt_source": "clicked",
        "bbox": list(job.reference.bbox),
        "score": 0.951235,
        "area": int(job.reference.mask.sum()),
        "candidates": [],  # the segmenter did not say
        "candidate": None,
        "mask": "reference/mask.png",
        "cutout": "reference/cutout.png",
        "embedding": "reference/embedding.npy",
        "thumbnail": "thumbs/ref.jpg",
    }
    found, nothing, broken = document["images"]
    assert [e["image"] for e in document["images"]] == ["spin_02", "spin_03", "spin_04"]
    assert found["status"] == "ok" and found["error"] is None
    assert found["num_proposals"] == 12
    assert found["thumbnail"] == "thumbs/spin_02.jpg"
    assert found["matches"][0] == {
        "bbox": list(job.results[0].matches[0].bbox),
        "score": 0.876543,
        "absorbed": 0,
        "mask": "masks/spin_02_0.png",
        "cutout": "cutouts/spin_02_0.png",
    }
    assert found["matches"][1]["mask"] == "masks/spin_02_1.png"
    assert nothing["matches"] == [] and nothing["status"] == "ok"
    assert broken["status"] == "error"
    assert broken["error"] == "photos/spin_04.jpg: file is empty (0 bytes)"
    assert broken["thumbnail"] is None and broken["matches"] == []
    assert document["summary"] == {"images": 3, "ok": 2, "error": 1, "matched": 1, "unmatched": 1}
    assert "jobs/" not in json.dumps(document)

    encoded = dump_bytes(document)
    assert encoded == dump_bytes(
        results_document(job.reference, job.results, JobLayout("jobs/j1/"), meta)
    )
    assert json.loads(encoded) == document


def test_meta_cannot_replace_reserved_keys() -> None:
    job = _job()
    with pytest.raises(ValueError, match="reserved"):
        results_document(job.reference, job.results, JobLayout(), {"images": []})


# --- writers ------------------------------------------------------------------------


class RecordingStore(LocalStore):
    """A LocalStore that remembers the order of its puts."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        super().put(key, data, content_type)
        self.puts.append(key)


def _write_job(store: ObjectStore, layout: JobLayout, job: Job) -> dict[str, Any]:
    write_reference_outputs(store, layout, job.image, job.reference)
    for result in job.results:
        image = job.image if result.status == "ok" else None
        write_image_outputs(store, layout, image, result)
    return write_job_documents(store, layout, job.reference, job.results, {"job": "j1"})


def test_writers_put_every_named_output_and_results_last(tmp_path: Path) -> None:
    job = _job()
    store = RecordingStore(tmp_path)
    layout = JobLayout("jobs/j1/")
    document = _write_job(store, layout, job)

    assert store.puts[-1] == "jobs/j1/results.json"
    assert store.puts[-4:-1] == ["jobs/j1/coco.json", "jobs/j1/gallery.png", "jobs/j1/gallery.html"]
    assert json.loads(store.get(layout.results)) == document

    named = [document["reference"][k] for k in ("mask", "cutout", "embedding", "thumbnail")]
    for entry in document["images"]:
        named += [entry["thumbnail"]] if entry["thumbnail"] else []
        named += [m[k] for m in entry["matches"] for k in ("mask", "cutout")]
    for relative in named:
        assert store.exists(layout.key(relative)), relative
    assert not any("spin_03_" in key or "spin_04" in key for key in store.list("jobs/j1/masks/"))
    assert not store.exists(layout.thumbnail("spin_04"))

    np.testing.assert_array_equal(
        read_mask_png(store.get(layout.mask("spin_02", 1))), job.results[0].matches[1].mask
    )
    embedding = np.load(io.BytesIO(store.get(layout.reference_embedding)))
    assert embedding.dtype == np.float32
    np.testing.assert_array_equal(embedding, job.reference.embedding)
    coco = json.loads(store.get(layout.coco))
    assert len(coco["annotations"]) == 3


def test_write_image_outputs_needs_pixels_for_ok_images(tmp_path: Path) -> None:
    job = _job()
    with pytest.raises(ValueError, match="needs its pixels"):
        write_image_outputs(LocalStore(tmp_path), JobLayout(), None, job.results[0])


# --- gallery ------------------------------------------------------------------------


def _gallery_inputs(job: Job) -> tuple[dict[str, Any], dict[str, bytes]]:
    meta = {"job": "j1", "warning": "Random weights <b>not</b> for real use"}
    document = results_document(job.reference, job.results, JobLayout(), meta)
    thumbnails = {
        "thumbs/ref.jpg": overlay_thumbnail(
            job.image,
            [Match(job.reference.mask, job.reference.bbox, job.reference.score)],
            is_reference=True,
        ),
        "thumbs/spin_02.jpg": overlay_thumbnail(job.image, job.results[0].matches),
    }
    return document, thumbnails


def test_gallery_html_shows_every_image_self_contained() -> None:
    document, thumbnails = _gallery_inputs(_job())
    page = gallery_html(document, thumbnails)

    for image_id in ("ref", "spin_02", "spin_03", "spin_04"):
        assert f'<div class="name">{image_id}</div>' in page
    assert page.index('<div class="name">ref</div>') < page.index('<div class="name">spin_02')
    assert "REFERENCE" in page
    assert "photos/spin_04.jpg: file is empty (0 bytes)" in page
    assert "score 0.877" in page
    assert "&lt;b&gt;spin_04&lt;/b&gt;" in page and "<b>spin_04</b>" not in page
    assert 'role="alert">Random weights &lt;b&gt;not&lt;/b&gt; for real use' in page
    assert page.count("data:image/jpeg;base64,") == 2
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert page.count('class="card ') == 4


def test_gallery_html_without_warning_has_no_banner() -> None:
    job = _job()
    document = results_document(job.reference, job.results, JobLayout(), {})
    assert 'role="alert"' not in gallery_html(document, {})


def test_contact_sheet_decodes_as_a_grid() -> None:
    document, thumbnails = _gallery_inputs(_job())
    data = contact_sheet(document, thumbnails)
    with Image.open(io.BytesIO(data)) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == (2 * 256, 2 * (256 + 36))  # 4 cells in a 2 x 2 grid
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    assert pixels[3, 100].tolist() == [0, 110, 230]  # the reference's blue frame
    assert pixels[256 + 36 + 3, 256 + 100].tolist() == [210, 40, 40]  # the errored image
