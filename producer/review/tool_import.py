"""``prodseg catalog import-review FILE``: a Label Studio or CVAT review back as decisions.

The file is a Label Studio JSON export of the tasks ``catalog export --format
label-studio`` wrote, or a CVAT for images 1.1 XML export of ``--format cvat``'s task.
Per view, what the reviewer left becomes the review page's own changes
(``producer.catalog.reviews.Change``), checked as the page checks them:

- every prediction kept: ``accept``;
- every prediction deleted, nothing drawn: ``reject`` (not the product here);
- a region drawn on a view without a match (or whose matches were all deleted): a
  ``point`` at the region's innermost pixel, so the view becomes a reference;
- a view left as exported with no match, or a Label Studio task nobody annotated:
  nothing.

What cannot be mapped is said, one line each, and left out: some of a view's matches
kept and some deleted (the page decides per view), a region drawn beside a kept match,
a changed reference, a task exported from a job the product has since re-run. A Label
Studio match counts as kept while its brush region and its outline both are (region ids
``m<k>`` and ``m<k>-outline``); a CVAT shape counts as a kept match when it covers the
match's pixels (IoU at least ``SAME_IOU``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.reviews import Change, ReviewBook
from prodseg.producer.review.session import check_on_results
from prodseg.storage.exports.cvat import cvat_shapes
from prodseg.storage.exports.label_studio import decode_brush_rle
from prodseg.storage.exports.outline import polygon_covers
from prodseg.storage.images import read_mask_png
from prodseg.storage.manifest import get_json, job_layout

SAME_IOU = 0.99


@dataclass(frozen=True)
class ReviewedView:
    """What a reviewer left on one view.

    Attributes:
        product: the product id.
        view: the view's image id.
        job: the job the view was exported from ("" when the file does not say).
        exported: how many matches it was exported with.
        kept: the indices of the matches kept.
        drawn: ``(H, W)`` bool regions the reviewer drew.
    """

    product: str
    view: str
    job: str
    exported: int
    kept: frozenset[int] = frozenset()
    drawn: tuple[np.ndarray, ...] = ()


@dataclass
class ImportSummary:
    """What an import did: changes stored per product, and what could not be mapped."""

    changes: dict[str, list[Change]] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)


def innermost_pixel(region: np.ndarray) -> tuple[float, float]:
    """The ``(x, y)`` centre of the pixel deepest inside a region (pure; ties: first).

    Args:
        region: ``(H, W)`` bool, not empty.
    """
    core = np.asarray(region, dtype=bool)
    while True:
        inner = core.copy()
        inner[1:, :] &= core[:-1, :]
        inner[:-1, :] &= core[1:, :]
        inner[:, 1:] &= core[:, :-1]
        inner[:, :-1] &= core[:, 1:]
        inner[0, :] = inner[-1, :] = False
        inner[:, 0] = inner[:, -1] = False
        if not inner.any():
            break
        core = inner
    ys, xs = np.nonzero(core)
    centre = np.array([ys.mean(), xs.mean()])
    k = int(((np.stack([ys, xs], axis=1) - centre) ** 2).sum(axis=1).argmin())
    return float(xs[k]) + 0.5, float(ys[k]) + 0.5


def view_changes(view: ReviewedView, reference: bool) -> tuple[list[Change], str | None]:
    """The review page's changes for one reviewed view, or why it cannot be mapped (pure)."""
    where = f"{view.product}/{view.view}"
    deleted = view.exported - len(view.kept)
    if reference:
        if deleted or view.drawn:
            return [], f"{where}: the reference view was changed; it is the product itself"
        return [], None
    if view.drawn and view.kept:
        return [], (f"{where}: a region drawn beside a kept match; delete the match to "
                    "click the product there instead")
    if view.drawn:
        return [Change(view.view, "point", view.job, *innermost_pixel(region))
                for region in view.drawn], None
    if view.exported == 0:
        return [], None
    if deleted == 0:
        return [Change(view.view, "accept", view.job)], None
    if deleted == view.exported:
        return [Change(view.view, "reject", view.job)], None
    return [], (f"{where}: {len(view.kept)} of {view.exported} matches kept; the review "
                "decides a whole view (keep all or delete all)")


def label_studio_views(tasks: Any) -> tuple[list[ReviewedView], list[str]]:
    """The views of a Label Studio JSON export that someone annotated (pure)."""
    if not isinstance(tasks, list):
        raise InputError("a Label Studio export is a JSON list of tasks")
    views, unmapped = [], []
    for task in tasks:
        data = task.get("data") or {}
        if not {"product", "view", "matches"} <= set(data):
            unmapped.append(f"task {task.get('id', '?')}: not exported by prodseg")
            continue
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            continue
        kept: set[int] = set()
        outlines: set[int] = set()
        drawn = []
        for region in annotations[-1].get("result") or []:
            rid = str(region.get("id", ""))
            number = rid[1:].removesuffix("-outline")
            if rid.startswith("m") and number.isdigit() and int(number) < data["matches"]:
                (outlines if rid.endswith("-outline") else kept).add(int(number))
            elif region.get("type") in ("brushlabels", "polygonlabels"):
                drawn.append(_ls_region(region))
        views.append(ReviewedView(str(data["product"]), str(data["view"]),
                                  str(data.get("job") or ""), int(data["matches"]),
                                  frozenset(kept & outlines), tuple(drawn)))
    return views, unmapped


def _ls_region(region: dict[str, Any]) -> np.ndarray:
    """A drawn brush or polygon region as a mask."""
    height, width = int(region["original_height"]), int(region["original_width"])
    value = region["value"]
    if region["type"] == "brushlabels":
        return decode_brush_rle(value["rle"], height, width)
    points = np.array(value["points"], dtype=np.float64) / 100.0 * [width, height]
    return polygon_covers(points, height, width)


def import_review(client: CatalogClient, catalog: str, path: Path,
                  reviewer: str) -> ImportSummary:
    """Store the decisions a Label Studio or CVAT export holds.

    Raises:
        InputError: the file cannot be read as either export.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from e
    current = client.current_jobs(catalog)
    summary = ImportSummary()
    try:
        if text.lstrip().startswith("<"):
            views, unmapped = _cvat_views(client, current, ET.fromstring(text))
        else:
            views, unmapped = label_studio_views(json.loads(text))
    except (ValueError, KeyError, TypeError, ET.ParseError) as e:
        raise InputError(f"{path}: not a Label Studio JSON or CVAT 1.1 XML export: {e}") from e
    summary.unmapped += unmapped
    book = ReviewBook(client.store, catalog)
    docs: dict[str, dict[str, Any]] = {}
    for view in views:
        job = current.get(view.product)
        if job is None:
            summary.unmapped.append(f"{view.product}: no such product in {catalog}")
            continue
        if view.job and view.job != job:
            summary.unmapped.append(f"{view.product}/{view.view}: exported from job "
                                    f"{view.job}, the product is now at {job}; export again")
            continue
        doc = docs.setdefault(job, get_json(client.store, job_layout(job).results))
        changes, problem = view_changes(_with_job(view, job),
                                        view.view == doc["reference"]["image"])
        if problem:
            summary.unmapped.append(problem)
        for change in changes:
            try:
                change.check()
                check_on_results(change, doc)
            except InputError as e:
                summary.unmapped.append(f"{view.product}/{view.view}: {e}")
                continue
            book.change(view.product, change, reviewer)
            summary.changes.setdefault(view.product, []).append(change)
    return summary


def _with_job(view: ReviewedView, job: str) -> ReviewedView:
    return view if view.job else ReviewedView(view.product, view.view, job, view.exported,
                                              view.kept, view.drawn)


def _cvat_views(client: CatalogClient, current: dict[str, str],
                root: ET.Element) -> tuple[list[ReviewedView], list[str]]:
    """The views of a CVAT export, each shape compared with the job's matches."""
    views, unmapped = [], []
    for name, shapes in cvat_shapes(root).items():
        product, _, file = name.rpartition("/")
        view = file.rsplit(".", 1)[0]
        if product not in current:
            unmapped.append(f"{name}: no such product in the catalog")
            continue
        matches = _match_masks(client, current[product], view)
        kept, drawn = set(), []
        for _, mask in shapes:
            same = [k for k, m in enumerate(matches) if _iou(m, mask) >= SAME_IOU]
            if same:
                kept.add(same[0])
            elif mask.any():
                drawn.append(mask)
        views.append(ReviewedView(product, view, current[product], len(matches),
                                  frozenset(kept), tuple(drawn)))
    return views, unmapped


def _match_masks(client: CatalogClient, job: str, view: str) -> list[np.ndarray]:
    """The masks of a view's matches (the reference's own mask on the reference)."""
    layout = job_layout(job)
    doc = get_json(client.store, layout.results)
    if view == doc["reference"]["image"]:
        keys = [doc["reference"]["mask"]]
    else:
        entry: dict[str, Any] = next((e for e in doc["images"] if e["image"] == view), {})
        keys = [m["mask"] for m in entry.get("matches") or []]
    return [read_mask_png(client.store.get(layout.key(k))) > 0 for k in keys]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 0.0
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
