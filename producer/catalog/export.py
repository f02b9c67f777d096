"""``prodseg catalog export``: the accepted results of a catalog as one training dataset.

Which masks go in (``accepted_views``), per product, from its current job (the newest
re-run after review, else its own):

- a view a reviewer rejected on that job never does;
- a view a reviewer accepted on that job does, as a background image when it has no
  match (the reviewer agreed the product is not there);
- an accept made on an earlier run of the product stands for the newest run where that
  view's result is unchanged (the same boxes), so a re-run does not undo it;
- a view nobody decided on does only while nobody has decided anything on that job and
  the review report does not flag the product (a product nobody needed to look at is
  taken as it is), unless ``only_reviewed``;
- the reference's own mask goes in with the first view of the product that does.

A product keeps its class across exports (``producer.catalog.classes``), and the images
are the product's photos as stored with its job (``storage.exports.dataset`` says how).
An export with nothing in it is refused and writes nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.jsonio import dump_bytes
from prodseg.producer.catalog.classes import store_classes, stored_classes, with_new_classes
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.report import report_rows
from prodseg.producer.catalog.reviews import ACCEPT, ProductReview, ReviewBook
from prodseg.producer.inputs import is_s3, read_input_bytes
from prodseg.storage.base import ObjectStore
from prodseg.storage.exports.catalog_report import ReviewRules
from prodseg.storage.exports.dataset import (
    FORMATS,
    DatasetImage,
    coco_dataset,
    coco_part,
    dataset_image_file,
    yolo_data_yaml,
    yolo_label,
)
from prodseg.storage.images import read_mask_png
from prodseg.storage.local import LocalStore
from prodseg.storage.manifest import (
    InputImage,
    JobManifest,
    decode_input,
    get_json,
    job_layout,
)
from prodseg.storage.output_dir import require_empty_folder


@dataclass
class ExportSummary:
    """What an export wrote.

    Attributes:
        classes: the catalog's classes, in class order: every product ever exported.
        products: the products this export holds.
        images: images written.
        masks: masks (COCO annotations; YOLO lines may be more: one per polygon).
        left_out: products with nothing accepted, and why.
        files: the dataset's index files (``annotations.json`` or ``data.yaml``).
    """

    classes: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    images: int = 0
    masks: int = 0
    left_out: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def accepted_views(doc: Mapping[str, Any], review: ProductReview | None, job: str,
                   flagged: bool, only_reviewed: bool = False,
                   carried: frozenset[str] = frozenset()) -> list[str]:
    """The image ids exported, reference first (see the module's rules).

    Args:
        doc: the job's ``results.json`` document.
        review: the product's review, if any.
        job: the job ``doc`` belongs to.
        flagged: whether the review report flags this result.
        only_reviewed: take only what a reviewer accepted.
        carried: views accepted on an earlier run whose result ``job`` did not change
            (``carried_accepts``).
    """
    decided = {view: r.decision for view, r in (review.views if review else {}).items()
               if r.job == job and r.decision}
    decided.update({view: ACCEPT for view in carried if view not in decided})
    implicit = not only_reviewed and not flagged and not decided
    views = [e["image"] for e in doc.get("images", [])
             if e.get("status") == "ok"
             and (decided.get(e["image"]) == ACCEPT
                  or (implicit and e.get("matches") and e["image"] not in decided))]
    return [doc["reference"]["image"], *views] if views else []


def carried_accepts(review: ProductReview | None, job: str, doc: Mapping[str, Any],
                    earlier: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """Views accepted on an earlier run of the product whose result ``job`` kept (pure).

    Args:
        review: the product's review, if any.
        job: the product's current job; ``doc`` its ``results.json``.
        doc: the current job's results.
        earlier: ``results.json`` of the earlier jobs the accepts were made on, by job.

    Returns:
        The views whose status and match boxes are the same in both jobs.
    """
    now = {e["image"]: e for e in doc.get("images", [])}
    kept = set()
    for view, decision in (review.views if review else {}).items():
        if decision.decision != ACCEPT or decision.job == job or decision.job not in earlier:
            continue
        before = {e["image"]: e for e in earlier[decision.job].get("images", [])}
        if view in now and view in before and _same_result(before[view], now[view]):
            kept.add(view)
    return frozenset(kept)


def _same_result(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """One view's result entries say the same: status and the boxes of the matches."""
    return (a.get("status") == b.get("status")
            and [m["bbox"] for m in a.get("matches") or []]
            == [m["bbox"] for m in b.get("matches") or []])


def export_catalog(client: CatalogClient, catalog: str, fmt: str, output: Path,
                   rules: ReviewRules, only_reviewed: bool = False) -> ExportSummary:
    """Write the dataset into ``output`` (a new or empty folder).

    Raises:
        InputError: an unknown format, ``output`` is a file or a non-empty folder, or no
            product has anything to export (then nothing is written).
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    require_empty_folder(output)
    rows, _ = report_rows(client, catalog, rules, thumbnails_too=False)
    reviews = ReviewBook(client.store, catalog).all()
    summary = ExportSummary()
    chosen: list[tuple[str, str, dict[str, Any], list[str]]] = []
    for row in rows:
        if row.state != "done":
            summary.left_out[row.product] = f"job {row.state}"
            continue
        doc = get_json(client.store, job_layout(row.job).results)
        review = reviews.get(row.product)
        views = product_views(client.store, doc, review, row.job, row.review, only_reviewed)
        if not views:
            summary.left_out[row.product] = ("flagged for review and nothing accepted"
                                             if row.review else "nothing accepted")
            continue
        chosen.append((row.product, row.job, doc, views))
    if not chosen:
        raise InputError(f"catalog {catalog}: nothing to export (no product has a finished "
                         "job with accepted results); nothing written")
    summary.classes = with_new_classes(stored_classes(client.store, catalog),
                                       [product for product, *_ in chosen])
    out = LocalStore(output)
    entries: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for product, job, doc, views in chosen:
        summary.products.append(product)
        label = summary.classes.index(product)
        manifest = JobManifest.load(client.store, job)
        for view in views:
            image = dataset_image(client, manifest, doc, product, view, label, out)
            summary.images += 1
            summary.masks += len(image.masks)
            if fmt == "coco":
                entry, found = coco_part(summary.images, image)
                entries.append(entry)
                annotations.extend(found)
            else:
                stem = image.name.rsplit(".", 1)[0]
                out.put(f"labels/{stem}.txt", yolo_label(image).encode("utf-8"))
    store_classes(client.store, catalog, summary.classes)
    if fmt == "coco":
        prompts = {r.product: {"prompt_source": r.prompt_source,  # clicked: as before
                               "prompt_confidence": None if math.isnan(r.prompt_confidence)
                               else r.prompt_confidence}
                   for r in rows if r.prompt_source != "clicked"}
        out.put("annotations.json", dump_bytes(coco_dataset(summary.classes, entries,
                                                            annotations, prompts),
                                               indent=None))
        summary.files.append(str(output / "annotations.json"))
    else:
        out.put("data.yaml", yolo_data_yaml(summary.classes).encode("utf-8"))
        summary.files.append(str(output / "data.yaml"))
    return summary


def product_views(store: ObjectStore, doc: Mapping[str, Any], review: ProductReview | None,
                  job: str, flagged: bool, only_reviewed: bool) -> list[str]:
    """``accepted_views`` of a product's current job, with the accepts its earlier runs
    carry read from ``store``: what every catalog export takes."""
    return accepted_views(doc, review, job, flagged, only_reviewed,
                          _carried(store, review, job, doc))


def _carried(store: ObjectStore, review: ProductReview | None, job: str,
             doc: Mapping[str, Any]) -> frozenset[str]:
    """``carried_accepts``, reading the results of the earlier jobs accepts were made on."""
    jobs = {r.job for r in (review.views.values() if review else ())
            if r.decision == ACCEPT and r.job != job}
    earlier = {j: get_json(store, job_layout(j).results) for j in sorted(jobs)
               if store.exists(job_layout(j).results)}
    return carried_accepts(review, job, doc, earlier)


def dataset_image(client: CatalogClient, manifest: JobManifest, doc: Mapping[str, Any],
                   product: str, view: str, label: int, out: ObjectStore) -> DatasetImage:
    """Read one view and its masks, store the image file, and describe it."""
    layout = job_layout(manifest.job)
    if view == doc["reference"]["image"]:
        source: InputImage = manifest.reference
        keys, scores = [doc["reference"]["mask"]], [1.0]
    else:
        source = manifest.target(view)
        entry = next(e for e in doc["images"] if e["image"] == view)
        keys = [m["mask"] for m in entry["matches"]]
        scores = [float(m["score"]) for m in entry["matches"]]
    settings = client.jobs.settings
    data = (read_input_bytes(source.location, settings) if is_s3(source.location)
            else client.store.get(source.location))
    pixels = decode_input(data, source, settings.max_image_pixels)
    masks = tuple(read_mask_png(client.store.get(layout.key(k))) > 0 for k in keys)
    file_data, suffix = dataset_image_file(data, pixels)
    name = f"{product}/{view}{suffix}"
    out.put(f"images/{name}", file_data)
    return DatasetImage(name, pixels.shape[1], pixels.shape[0], label, masks, tuple(scores))


def describe(summary: ExportSummary, output: Path, fmt: str) -> str:
    """One line saying what was exported."""
    where = os.fspath(output)
    return (f"{fmt}: {len(summary.products)} products, {summary.images} images, "
            f"{summary.masks} masks in {where}; {len(summary.left_out)} products left out; "
            f"{len(summary.classes)} classes")
