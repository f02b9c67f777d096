"""``catalog export --format label-studio|cvat``: every result, for review in those tools.

Unlike a training dataset (``producer.catalog.export``), a review export holds every
readable view of each finished product's current job, decided or not: the reference
(marked ``reference``) and every target view with its matches as predictions (Label
Studio) or ``auto`` shapes (CVAT), the score with each. ``flagged`` marks the products the
review report flags. The photos are written under ``images/<product>/<view><suffix>``
beside the index file (``tasks.json`` and ``labeling-config.xml``, or
``annotations.xml``); ``producer.review.tool_import`` reads what the reviewer did back.

Label Studio reads a task's image from ``image_url + "images/<product>/<view><suffix>"``:
by default ``/data/local-files/?d=<folder>/``, served by Label Studio's local storage with
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` set to the export folder's parent; or an
``s3://bucket/prefix/`` where the ``images/`` folder was copied. ``image_url="stored"``
names each photo where its job stored it (``s3://<catalog bucket>/jobs/...``, the URL a
re-run reads), for a Label Studio S3 source on the catalog's bucket: nothing is copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.jsonio import dump_bytes
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.export import ExportSummary, dataset_image
from prodseg.producer.catalog.report import report_rows
from prodseg.producer.review.rerun import stored_location
from prodseg.storage.exports.catalog_report import ReviewRules
from prodseg.storage.exports.cvat import CvatImage, cvat_document
from prodseg.storage.exports.dataset import DatasetImage
from prodseg.storage.exports.label_studio import labeling_config, match_regions, review_task
from prodseg.storage.exports.outline import mask_outline
from prodseg.storage.local import LocalStore
from prodseg.storage.manifest import JobManifest, get_json, job_layout
from prodseg.storage.output_dir import require_empty_folder

TOOL_FORMATS = ("label-studio", "cvat")
STORED = "stored"


def model_version(doc: dict[str, Any]) -> str:
    """``prodseg <version> <backend and models>`` of a ``results.json`` document (pure)."""
    settings = doc.get("settings") or {}
    parts = [f"prodseg {doc.get('prodseg_version', '?')}"]
    for key in ("backend", "sam2_model", "dino_model"):
        value = settings.get(key) or doc.get(key)
        if value:
            parts.append(str(value))
    return " ".join(parts)


def export_for_review(client: CatalogClient, catalog: str, fmt: str, output: Path,
                      rules: ReviewRules, image_url: str | None = None,
                      polygons: bool = False) -> ExportSummary:
    """Write the review export into ``output`` (a new or empty folder).

    Args:
        client: the catalog's client.
        catalog: the catalog id.
        fmt: ``label-studio`` or ``cvat``.
        output: the folder.
        rules: which products the report flags.
        image_url: Label Studio's prefix for ``images/...``, or ``"stored"`` (see the
            module).
        polygons: CVAT: outlines instead of masks.

    Raises:
        InputError: an unknown format, ``output`` is not a new or empty folder, or no
            product has a finished job (then nothing is written).
    """
    if fmt not in TOOL_FORMATS:
        raise InputError(f"unknown review format {fmt!r}; one of {', '.join(TOOL_FORMATS)}")
    require_empty_folder(output)
    rows, _ = report_rows(client, catalog, rules, thumbnails_too=False)
    done = [row for row in rows if row.state == "done"]
    summary = ExportSummary(left_out={r.product: f"job {r.state}" for r in rows
                                      if r.state != "done"})
    if not done:
        raise InputError(f"catalog {catalog}: no product has a finished job; nothing written")
    prefix = image_url if image_url is not None else f"/data/local-files/?d={output.name}/"
    out = LocalStore(output)
    tasks: list[dict[str, object]] = []
    shapes: list[CvatImage] = []
    for row in done:
        doc = get_json(client.store, job_layout(row.job).results)
        manifest = JobManifest.load(client.store, row.job)
        summary.products.append(row.product)
        reference = doc["reference"]["image"]
        views = [reference, *(e["image"] for e in doc["images"] if e.get("status") == "ok")]
        for view in views:
            image = dataset_image(client, manifest, doc, row.product, view, 0, out)
            summary.images += 1
            summary.masks += len(image.masks)
            if fmt == "cvat":
                shapes.append(CvatImage(image.name, image.width, image.height, row.product,
                                        image.masks, image.scores))
                continue
            data = {"catalog": catalog, "product": row.product, "view": view,
                    "job": row.job, "reference": view == reference, "flagged": row.review,
                    "matches": len(image.masks)}
            url = (stored_location(client, manifest.reference if view == reference
                                          else manifest.target(view))
                   if image_url == STORED else f"{prefix}images/{image.name}")
            tasks.append(review_task(url, data,
                                     _regions(image, row.product),
                                     max(image.scores, default=None), model_version(doc)))
    summary.classes = list(summary.products)
    if fmt == "cvat":
        out.put("annotations.xml", cvat_document(summary.classes, shapes, catalog, polygons))
        summary.files.append(str(output / "annotations.xml"))
    else:
        out.put("tasks.json", dump_bytes(tasks, indent=None))
        out.put("labeling-config.xml", labeling_config(summary.classes).encode("utf-8"))
        summary.files += [str(output / "tasks.json"), str(output / "labeling-config.xml")]
    return summary


def _regions(image: DatasetImage, label: str) -> list[dict[str, object]]:
    """Every match of a view as Label Studio prediction regions."""
    regions: list[dict[str, object]] = []
    for number, (mask, score) in enumerate(zip(image.masks, image.scores, strict=True)):
        regions += match_regions(number, mask, mask_outline(mask), label, score)
    return regions
