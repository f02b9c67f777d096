"""Review decisions (pure changes and their storage), what a re-run corrects, which views an
export takes, and the dataset files (COCO loaded by pycocotools, YOLO polygons)."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

from prodseg.errors import InputError
from prodseg.producer.catalog.export import accepted_views, carried_accepts
from prodseg.producer.catalog.products import catalog_key
from prodseg.producer.catalog.reviews import (
    Change,
    ProductReview,
    ReviewBook,
    apply,
    review_key,
    with_run,
)
from prodseg.producer.review.rerun import corrections, rerun_job_id
from prodseg.storage.exports.dataset import (
    DatasetImage,
    coco_dataset,
    coco_part,
    dataset_image_file,
    yolo_data_yaml,
    yolo_label,
)
from prodseg.storage.image_encoding import encode_jpeg, encode_png
from prodseg.storage.local import LocalStore

JOB = "cat-0123456789ab-milk"


def _do(review: ProductReview, view: str, action: str, job: str = JOB, **kw: object
        ) -> ProductReview:
    return apply(review, Change(view, action, job, **kw), "ana", "2026-01-01T00:00:00Z")


def test_decisions_clicks_undo_and_clear() -> None:
    r = ProductReview("milk")
    r = _do(r, "view_001", "reject")
    r = _do(r, "view_002", "point", x=10, y=20)
    r = _do(r, "view_002", "point", x=12, y=22)
    r = _do(r, "view_003", "lookalike", x=5, y=6)
    assert r.views["view_001"].decision == "reject"
    assert r.views["view_002"].points == ((10.0, 20.0), (12.0, 22.0))
    assert r.views["view_003"].lookalikes == ((5.0, 6.0),)
    r = _do(r, "view_002", "undo", kind="point")
    assert r.views["view_002"].points == ((10.0, 20.0),)
    # A click on the product drops a rejection: the product is there after all.
    r = _do(r, "view_001", "point", x=1, y=1)
    assert r.views["view_001"].decision is None
    r = _do(r, "view_003", "clear")
    assert "view_003" not in r.views
    assert r.reviewers == ["ana"]
    assert ProductReview.from_json(r.to_json()) == r


def test_a_change_on_a_newer_job_starts_the_view_afresh() -> None:
    r = _do(ProductReview("milk"), "view_001", "reject")
    r = _do(r, "view_001", "lookalike", job=JOB + "-r1", x=3, y=4)
    assert r.views["view_001"].decision is None
    assert r.views["view_001"].job == JOB + "-r1"


@pytest.mark.parametrize("change, message", [
    (Change("../x", "accept", JOB), "invalid view"),
    (Change("view_001", "explode", JOB), "unknown action"),
    (Change("view_001", "point", JOB), "needs x and y"),
    (Change("view_001", "point", JOB, x=-1, y=3), "needs x and y"),
    (Change("view_001", "undo", JOB, kind="box"), "undo of 'box'"),
    (Change("view_001", "accept", "../etc"), "invalid job id"),
])
def test_malformed_changes_are_refused_with_a_reason(change: Change, message: str) -> None:
    with pytest.raises(InputError, match=message):
        apply(ProductReview("milk"), change, "ana", "now")


def test_reviews_are_stored_with_the_catalog_and_shared(tmp_path) -> None:
    store = LocalStore(tmp_path)
    ana, ben = ReviewBook(store, "cat-1"), ReviewBook(store, "cat-1")
    ana.change("milk", Change("view_001", "reject", JOB), "ana")
    ben.change("milk", Change("view_002", "accept", JOB), "ben")
    assert review_key("cat-1", "milk") == catalog_key("cat-1", "reviews/milk.json")
    seen = ana.get("milk")
    assert {k: v.decision for k, v in seen.views.items()} == {"view_001": "reject",
                                                              "view_002": "accept"}
    assert seen.reviewers == ["ana", "ben"] and seen.by == "ben"
    assert set(ben.all()) == {"milk"}
    assert ReviewBook(store, "cat-1").get("tea").views == {}


def test_concurrent_changes_under_a_lock_lose_nothing(tmp_path) -> None:
    """Forty reviewers' threads each add one click: every click is kept."""
    import contextlib

    mutex = threading.Lock()

    @contextlib.contextmanager
    def lock(name: str):
        with mutex:
            yield

    book = ReviewBook(LocalStore(tmp_path), "cat-1", lock)
    threads = [threading.Thread(target=book.change, args=(
        "milk", Change(f"view_{k % 4:03d}", "lookalike", JOB, x=k, y=k), f"r{k}"))
        for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clicks = sum(len(v.lookalikes) for v in book.get("milk").views.values())
    assert clicks == 40


def test_corrections_are_those_made_on_the_job_being_rerun() -> None:
    r = ProductReview("milk")
    r = _do(r, "view_001", "reject")
    r = _do(r, "view_002", "point", x=10, y=20)
    r = _do(r, "view_003", "accept")
    r = _do(r, "view_004", "lookalike", x=7, y=8)
    r = _do(r, "view_005", "reject", job="cat-0123456789ab-old")
    fixes = corrections(r, JOB)
    assert [(v, p.points, p.labels) for v, p in fixes.references] == [
        ("view_002", ((10.0, 20.0),), (1,))]
    assert fixes.no_match == ("view_001",)
    assert fixes.lookalikes == (("view_004", ((7.0, 8.0),)),)
    assert corrections(ProductReview("milk"), JOB).empty
    assert rerun_job_id("cat-0123456789ab", "milk", r) == JOB + "-r1"
    again = with_run(r, JOB + "-r1", "ana", "now")
    assert again.current_job(JOB) == JOB + "-r1"
    assert rerun_job_id("cat-0123456789ab", "milk", again) == JOB + "-r2"


def _doc() -> dict[str, object]:
    match = [{"bbox": [0, 0, 2, 2], "score": 0.9, "mask": "m"}]
    return {"reference": {"image": "ref"},
            "images": [{"image": f"v{k}", "status": "ok", "matches": match} for k in range(3)]
            + [{"image": "v3", "status": "ok", "matches": []},
               {"image": "v4", "status": "error", "matches": []}]}


def test_which_views_an_export_takes() -> None:
    doc = _doc()
    assert accepted_views(doc, None, JOB, flagged=False) == ["ref", "v0", "v1", "v2"]
    assert accepted_views(doc, None, JOB, flagged=True) == []
    assert accepted_views(doc, None, JOB, flagged=False, only_reviewed=True) == []
    r = _do(ProductReview("milk"), "v1", "reject")
    r = _do(r, "v2", "accept")
    # Once someone decided on the job, only what they accepted goes in.
    assert accepted_views(doc, r, JOB, flagged=True) == ["ref", "v2"]
    assert accepted_views(doc, r, JOB, flagged=False) == ["ref", "v2"]
    # Decisions on an earlier job do not speak for this one.
    assert accepted_views(doc, r, JOB + "-r1", flagged=False) == ["ref", "v0", "v1", "v2"]


def test_accepted_no_match_views_go_in_and_accepts_outlive_a_rerun_that_kept_them() -> None:
    doc = _doc()
    r = _do(ProductReview("milk"), "v3", "accept")  # no match, and rightly so
    assert accepted_views(doc, r, JOB, flagged=True) == ["ref", "v3"]
    r = _do(r, "v1", "accept")
    r = _do(r, "v2", "accept")
    rerun = copy.deepcopy(doc)
    rerun["images"][2]["matches"] = [{"bbox": [1, 1, 3, 3], "score": 0.8, "mask": "m"}]
    carried = carried_accepts(r, JOB + "-r1", rerun, {JOB: doc})
    assert carried == {"v1", "v3"}  # v2 changed: its accept does not speak for it
    assert accepted_views(rerun, r, JOB + "-r1", flagged=True, carried=carried) == [
        "ref", "v1", "v3"]
    assert accepted_views(rerun, r, JOB + "-r1", flagged=True) == []


def _square(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def test_coco_dataset_has_one_category_per_product_and_loads_in_pycocotools(tmp_path) -> None:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    from prodseg.jsonio import dump_bytes

    images = [DatasetImage("milk/ref.jpg", 40, 30, 0, (_square(30, 40, (5, 5, 15, 20)),),
                           (1.0,)),
              DatasetImage("tea/v1.jpg", 40, 30, 1, (_square(30, 40, (20, 2, 30, 12)),
                                                     _square(30, 40, (0, 20, 4, 30))),
                           (0.8, 0.7))]
    entries, annotations = [], []
    for n, image in enumerate(images, start=1):
        entry, found = coco_part(n, image)
        entries.append(entry)
        annotations.extend(found)
    doc = coco_dataset(["milk", "tea"], entries, annotations)
    path = tmp_path / "annotations.json"
    path.write_bytes(dump_bytes(doc))
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["milk", "tea"]
    assert coco.getImgIds(catIds=[2]) == [2]
    (tea,) = coco.loadImgs([2])
    assert tea["file_name"] == "images/tea/v1.jpg"
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert [a["category_id"] for a in anns] == [2, 2] and [a["id"] for a in anns] == [2, 3]
    assert anns[0]["bbox"] == [20, 2, 10, 10]
    assert mask_utils.decode(anns[0]["segmentation"]).sum() == 100


def test_yolo_labels_are_normalised_polygons_of_the_product_class() -> None:
    image = DatasetImage("tea/v1.jpg", 40, 20, 3, (_square(20, 40, (10, 5, 30, 15)),), (0.9,))
    (line,) = yolo_label(image).splitlines()
    numbers = line.split()
    assert numbers[0] == "3"
    xy = np.array([float(v) for v in numbers[1:]]).reshape(-1, 2)
    # Pixel corners: the box x 10..30, y 5..15 (its pixels 10..29 and 5..14).
    assert xy[:, 0].min() == pytest.approx(10 / 40) and xy[:, 0].max() == pytest.approx(30 / 40)
    assert xy[:, 1].min() == pytest.approx(5 / 20) and xy[:, 1].max() == pytest.approx(15 / 20)
    two = _square(20, 40, (0, 0, 5, 5)) | _square(20, 40, (20, 10, 30, 20))
    speck = _square(20, 40, (0, 0, 1, 1))
    both = DatasetImage("tea/v2.jpg", 40, 20, 0, (two, speck), (0.9, 0.8))
    assert len(yolo_label(both).splitlines()) == 2  # one line per mask, a speck too
    yaml = yolo_data_yaml(["milk", 'odd "name"'])
    assert "nc: 2" in yaml and '  1: "odd \\"name\\""' in yaml


def test_dataset_images_are_kept_as_stored_unless_turned_by_exif() -> None:
    pixels = np.full((20, 30, 3), 120, np.uint8)
    jpeg, png = encode_jpeg(pixels), encode_png(pixels)
    assert dataset_image_file(jpeg, pixels) == (jpeg, ".jpg")
    assert dataset_image_file(png, pixels) == (png, ".png")
    import io

    from PIL import Image

    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30x20, shown 20x30
    Image.fromarray(pixels).save(out, "JPEG", exif=exif)
    turned = np.full((30, 20, 3), 120, np.uint8)
    data, suffix = dataset_image_file(out.getvalue(), turned)
    assert suffix == ".jpg" and data != out.getvalue()
    assert Image.open(io.BytesIO(data)).size == (20, 30)


def test_the_api_takes_only_what_the_page_can_do() -> None:
    """A decision on the reference, on a view the job lacks or a click outside the photo
    would be stored and then block the re-run: each is refused with its reason."""
    from prodseg.producer.catalog.reviews import Change
    from prodseg.producer.review.session import check_on_results

    doc = {"reference": {"image": "ref", "width": 40, "height": 30},
           "images": [{"image": "v0", "status": "ok", "width": 40, "height": 30},
                      {"image": "v1", "status": "error"}]}
    refused = [(Change("ref", "reject", JOB), "is the reference"),
               (Change("ref", "accept", JOB), "is the reference"),
               (Change("ref", "lookalike", JOB, 1, 1), "is the reference"),
               (Change("v9", "accept", JOB), "no readable view 'v9'"),
               (Change("v1", "reject", JOB), "no readable view 'v1'"),
               (Change("v0", "point", JOB, 40, 5), "outside v0, 40x30"),
               (Change("v0", "lookalike", JOB, 3, 30.5), "outside v0, 40x30")]
    for change, reason in refused:
        with pytest.raises(InputError, match=reason):
            check_on_results(change, doc)
    for change in (Change("v0", "accept", JOB), Change("v0", "point", JOB, 39.5, 29),
                   Change("ref", "clear", JOB), Change("ref", "undecide", JOB),
                   Change("v9", "undo", JOB)):
        check_on_results(change, doc)
