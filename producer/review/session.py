"""What the review page shows and changes, apart from HTTP: one catalog's products, their
views, the reviewers' decisions, mask previews and re-runs.

Every method is blocking (storage, Redis, a preview on a worker); the server runs them
off its event loop. Finished jobs never change, so their documents and images are kept
in small caches.
"""

from __future__ import annotations

import base64
import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.report import report_rows
from prodseg.producer.catalog.reviews import MAX_CLICKS, Change, ProductReview, ReviewBook
from prodseg.producer.inputs import is_s3, read_input_bytes
from prodseg.prompts import Prompt
from prodseg.settings import Settings, load_settings
from prodseg.storage.base import ObjectNotFound
from prodseg.storage.exports.catalog_report import ProductRow, ReviewRules
from prodseg.storage.exports.palette import REFERENCE, match_colour
from prodseg.storage.image_encoding import encode_jpeg, encode_png
from prodseg.storage.images import read_mask_png
from prodseg.storage.manifest import (
    InputImage,
    JobManifest,
    decode_input,
    get_json,
    job_layout,
)

Preview = Callable[[InputImage, np.ndarray, Prompt, Settings],
                   tuple[np.ndarray, float, float]]
"""``preview(image, pixels, prompt, job settings) -> (mask (H, W) bool, score, seconds)``."""
Rerun = Callable[[str, ProductReview, str], str]
"""``rerun(product, review, by) -> job``: submit the product again with its corrections."""

_TINT = 110  # alpha of a mask overlay, of 255


@dataclass(frozen=True)
class Viewed:
    """One view as the page draws it: what it is and where its image is."""

    image: InputImage
    entry: dict[str, Any]
    is_reference: bool


class ReviewSession:
    """One reviewer's page on one catalog.

    Args:
        client: the catalog client (store, broker, settings).
        catalog: the catalog id.
        reviewer: the name decisions are stored under.
        preview: computes a mask for a prompt (locally or on a worker).
        rerun: submits a product again with its corrections.
        rules: when the report flags a product.
    """

    def __init__(self, client: CatalogClient, catalog: str, reviewer: str, preview: Preview,
                 rerun: Rerun, rules: ReviewRules | None = None, lock: Any = None) -> None:
        from prodseg.producer.catalog.reviews import no_lock

        self.client = client
        self.catalog = catalog
        self.reviewer = reviewer
        self.book = ReviewBook(client.store, catalog, lock or no_lock)
        self.preview_fn = preview
        self.rerun_fn = rerun
        self.rules = rules or ReviewRules()
        self._pixels: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        client.products(catalog)  # an unknown catalog is said before the page opens

    # -- reading ----------------------------------------------------------------------------

    def products(self) -> list[dict[str, Any]]:
        """Every product, flagged ones first (catalog order within), with their reasons."""
        rows, _ = report_rows(self.client, self.catalog, self.rules, thumbnails_too=False)
        ordered = sorted(enumerate(rows), key=lambda kr: (not kr[1].review, kr[0]))
        return [_row_json(r) for _, r in ordered]

    def product(self, product: str) -> dict[str, Any]:
        """One product: its current job, every view with its matches and the decisions."""
        current = self.client.current_jobs(self.catalog)
        if product not in current:
            raise InputError(f"no product {product!r} in catalog {self.catalog}")
        job = current[product]
        review = self.book.get(product)
        status = self.client.jobs.status(job)
        out: dict[str, Any] = {"product": product, "job": job, "state": status.state,
                               "finished": status.finished, "total": status.total,
                               "message": status.message, "review": review.to_json(),
                               "runs": len(review.runs), "views": []}
        if status.state != "done":
            return out
        doc = _results(self.client, job)
        bank = set(doc.get("prototype_bank", {}).get("prototypes", []))
        ref = doc["reference"]
        out["views"].append({"image": ref["image"], "width": ref["width"],
                             "height": ref["height"], "status": "ok", "reference": True,
                             "bank": True, "found_by": "reference", "prompt": ref["prompt"],
                             "matches": [{"bbox": ref["bbox"], "score": ref["score"]}]})
        for entry in doc["images"]:
            out["views"].append({
                "image": entry["image"], "width": entry["width"], "height": entry["height"],
                "status": entry["status"], "error": entry.get("error"),
                "reference": entry.get("found_by") == "reference",
                "bank": entry["image"] in bank, "found_by": entry.get("found_by"),
                "matches": [{"bbox": m["bbox"], "score": m["score"]}
                            for m in entry.get("matches") or []]})
        return out

    def image_jpeg(self, product: str, view: str) -> bytes:
        """The view's photo as displayed (EXIF rotation applied), full size."""
        return encode_jpeg(self._view_pixels(product, view), quality=90)

    def overlay_png(self, product: str, view: str) -> bytes:
        """A transparent PNG the size of the photo with the view's masks tinted."""
        job, viewed = self._view(product, view)
        layout = job_layout(job)
        entry = viewed.entry
        if viewed.is_reference:
            keys = [(entry["mask"], REFERENCE)]
        else:
            keys = [(m["mask"], match_colour(k)) for k, m in enumerate(entry.get("matches") or [])]
        rgba = np.zeros((int(entry["height"]), int(entry["width"]), 4), dtype=np.uint8)
        for key, colour in reversed(keys):
            mask = read_mask_png(self.client.store.get(layout.key(key))) > 0
            rgba[mask] = (*colour, _TINT)
        return encode_png(rgba)

    # -- changing ---------------------------------------------------------------------------

    def change(self, product: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Store one decision or click; returns the product's review."""
        job = self.client.current_jobs(self.catalog).get(product)
        if job is None:
            raise InputError(f"no product {product!r} in catalog {self.catalog}")
        if doc.get("job") != job:
            raise InputError(f"{product} was re-run since this page showed it (job "
                             f"{doc.get('job')!r}, now {job}); reload it")
        change = Change(str(doc.get("view")), str(doc.get("action")), job, _num(doc.get("x")),
                        _num(doc.get("y")), str(doc.get("kind") or "point"))
        change.check()
        check_on_results(change, _results(self.client, job))
        return self.book.change(product, change, self.reviewer).to_json()

    def preview(self, product: str, doc: dict[str, Any]) -> dict[str, Any]:
        """The segmenter's mask for the clicks on one view, as a PNG data URL overlay."""
        view = str(doc.get("view"))
        points = clicks_of(doc.get("points"))
        if not points:
            raise InputError("a preview needs at least one click on the product")
        job, viewed = self._view(product, view)
        pixels = self._view_pixels(product, view)
        prompt = Prompt(tuple(points), (1,) * len(points))
        prompt.validate(pixels.shape[1], pixels.shape[0], view)
        settings = job_settings(self.client, job)
        mask, score, seconds = self.preview_fn(viewed.image, pixels, prompt, settings)
        rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
        rgba[mask] = (255, 0, 200, 140)
        uri = "data:image/png;base64," + base64.b64encode(encode_png(rgba)).decode("ascii")
        return {"view": view, "job": job, "mask": uri, "score": round(score, 4),
                "seconds": round(seconds, 3), "area": int(mask.sum())}

    def rerun(self, product: str) -> dict[str, Any]:
        """Submit the product again with every correction made on its current job."""
        review = self.book.get(product)
        job = self.rerun_fn(product, review, self.reviewer)
        return {"product": product, "job": job}

    # -- helpers ----------------------------------------------------------------------------

    def _view(self, product: str, view: str) -> tuple[str, Viewed]:
        job = self.client.current_jobs(self.catalog).get(product)
        if job is None:
            raise InputError(f"no product {product!r} in catalog {self.catalog}")
        return job, _viewed(self.client, job, view)

    def _view_pixels(self, product: str, view: str) -> np.ndarray:
        job, viewed = self._view(product, view)
        with self._lock:
            cached = self._pixels.get((job, view))
        if cached is not None:
            return cached
        location = viewed.image.location
        settings = self.client.jobs.settings
        data = (read_input_bytes(location, settings) if is_s3(location)
                else self.client.store.get(location))
        pixels = decode_input(data, viewed.image, settings.max_image_pixels)
        with self._lock:
            self._pixels[(job, view)] = pixels
            while len(self._pixels) > 16:
                self._pixels.popitem(last=False)
        return pixels


@functools.lru_cache(maxsize=64)
def _results_cached(client: CatalogClient, job: str) -> dict[str, Any]:
    doc: dict[str, Any] = get_json(client.store, job_layout(job).results)
    return doc


def _results(client: CatalogClient, job: str) -> dict[str, Any]:
    """A finished job's ``results.json`` (it never changes once written)."""
    try:
        return _results_cached(client, job)
    except ObjectNotFound:
        raise InputError(f"job {job} has no results") from None


@functools.lru_cache(maxsize=64)
def _manifest(client: CatalogClient, job: str) -> JobManifest:
    return JobManifest.load(client.store, job)


def job_settings(client: CatalogClient, job: str) -> Settings:
    """The settings a job ran with, over the client's (connection, machine)."""
    recorded = _manifest(client, job).settings
    return load_settings(**{**client.jobs.settings.model_dump(), **recorded})


def _viewed(client: CatalogClient, job: str, view: str) -> Viewed:
    doc = _results(client, job)
    manifest = _manifest(client, job)
    if doc["reference"]["image"] == view:
        return Viewed(manifest.reference, doc["reference"], True)
    for entry in doc["images"]:
        if entry["image"] == view and entry["status"] == "ok":
            return Viewed(manifest.target(view), entry, False)
    raise InputError(f"job {job} has no readable view {view!r}")


def check_on_results(change: Change, doc: dict[str, Any]) -> None:
    """Refuse what the page cannot do, so nothing stored can block a re-run (pure).

    Clearing (``undecide``, ``clear``, ``undo``) is always allowed. Anything else needs
    a readable view of the job, not its reference (the product, by the reviewer's own
    click); a click must fall inside the photo.

    Args:
        change: the change, already ``check``-ed.
        doc: the job's ``results.json``.

    Raises:
        InputError: naming the view and what is wrong.
    """
    if change.action in ("undecide", "clear", "undo"):
        return
    ref = doc["reference"]
    sizes = {ref["image"]: (ref["width"], ref["height"])}
    sizes.update({e["image"]: (e.get("width"), e.get("height")) for e in doc["images"]
                  if e.get("status") == "ok"})
    if change.view not in sizes:
        raise InputError(f"the job has no readable view {change.view!r}")
    if change.view == ref["image"]:
        raise InputError(f"{change.view} is the reference, the product itself: it takes no "
                         f"{change.action}")
    if change.action in ("point", "lookalike"):
        width, height = sizes[change.view]
        x, y = change.x or 0.0, change.y or 0.0
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"the click ({x:g}, {y:g}) is outside {change.view}, "
                             f"{width}x{height}")


def clicks_of(value: Any) -> list[tuple[float, float]]:
    """A request's ``points``: ``[[x, y], ...]`` of finite numbers, at most ``MAX_CLICKS``.

    Raises:
        InputError: anything else (then the page's request is a 400, never a 500).
    """
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    if value is None:
        return []
    if not (isinstance(value, list) and len(value) <= MAX_CLICKS and all(
            isinstance(p, list) and len(p) == 2 and number(p[0]) and number(p[1])
            for p in value)):
        raise InputError(f"points must be a list of at most {MAX_CLICKS} [x, y] pairs of "
                         "numbers")
    return [(float(x), float(y)) for x, y in value]


def _row_json(r: ProductRow) -> dict[str, Any]:
    return {"product": r.product, "job": r.job, "state": r.state, "views": r.views,
            "matched": r.matched, "failed": r.failed, "flagged": r.review,
            "reasons": list(r.reasons), "reviewed_by": r.reviewed_by,
            "reviewed_at": r.reviewed_at, "runs": r.runs,
            "lowest": None if r.lowest_score != r.lowest_score else round(r.lowest_score, 4)}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
