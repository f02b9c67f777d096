"""What the prepare page shows and changes, apart from HTTP: one product at a time.

Nothing is read before it is asked for: opening a catalog of 5,000 products reads its file
and no image. A product's views are listed when it is shown (a folder or an ``s3://``
prefix listed once, a few products kept), and photos are decoded when the page asks for
them, a few kept; so memory stays flat however far the operator goes.

Every method is blocking (files, storage, a preview on a worker); the server runs them off
its event loop.
"""

from __future__ import annotations

import base64
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.producer.catalog.fields import image_list, reference_location
from prodseg.producer.inputs import expand_inputs, is_s3, read_input_bytes
from prodseg.producer.prepare_page.decisions import (
    Decision,
    PreparedFile,
    decision_of,
    first_open,
    progress,
)
from prodseg.producer.review.session import Preview, clicks_of
from prodseg.prompts import Prompt
from prodseg.settings import Settings
from prodseg.storage.image_encoding import encode_jpeg, encode_png
from prodseg.storage.image_formats import IMAGE_SUFFIXES
from prodseg.storage.images import decode_image
from prodseg.storage.manifest import InputImage

THUMB_PX = 160  # the longer side of a thumbnail
KEPT_PRODUCTS = 8  # products whose view lists are kept
KEPT_PHOTOS = 6  # decoded photos kept

Accepted = Callable[[str], None]
"""``accepted(product)``: called after a product's confirmation is in the file."""


class PrepareSession:
    """The operator's page on one prepared catalog file.

    Args:
        prepared: the catalog file, its decisions written at once.
        settings: how images are read (``s3://`` access, size limits) and segmented.
        preview: computes a mask for a prompt (locally or on a worker).
        accepted: called with each product confirmed (``--submit`` submits it).
    """

    def __init__(self, prepared: PreparedFile, settings: Settings, preview: Preview,
                 accepted: Accepted | None = None) -> None:
        self.prepared = prepared
        self.settings = settings
        self.preview_fn = preview
        self.accepted = accepted
        self.base = Path(os.path.abspath(prepared.path)).parent
        self._views: OrderedDict[int, list[str]] = OrderedDict()
        self._photos: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def catalog(self) -> str:
        """The catalog id the file declares."""
        return self.prepared.catalog

    # -- reading ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The progress count and the product to show first (the first undecided one)."""
        rows = self.prepared.rows
        return {"catalog": self.catalog, "file": self.prepared.path.name,
                "progress": progress(rows), "open": first_open(rows)}

    def product(self, index: int) -> dict[str, Any]:
        """One product: its views, its reference and prompt, the proposal's confidence."""
        row = self._row(index)
        views = self.views(index)
        ref = self.reference_index(index)
        pixels = self.photo(views[ref])
        return {"index": index, "product": str(row.get("product_id")),
                "views": [_view_name(v) for v in views], "reference": ref,
                "width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
                "points": _pairs(row.get("point")), "neg_points": _pairs(row.get("neg_point")),
                "box": _box(row.get("box")), "source": _cell(row.get("prompt_source")),
                "confidence": _confidence(row.get("prompt_confidence")),
                "decision": decision_of(row), "progress": progress(self.prepared.rows)}

    def views(self, index: int) -> list[str]:
        """The product's images (local paths or ``s3://`` URLs), its reference among them."""
        with self._lock:
            cached = self._views.get(index)
        if cached is not None:
            return cached
        row = self._row(index)
        try:
            listed = expand_inputs(image_list(row.get("images"), self.base), self.settings)
            reference = reference_location(_cell(row.get("reference")), self.base)
        except ValueError as exc:
            raise InputError(f"{self.prepared.path}: {row.get('product_id')}: {exc}") from None
        views: list[str] = []
        for item in listed:
            path = Path(item)
            if not is_s3(item) and path.is_dir():
                views.extend(str(p) for p in sorted(path.iterdir())
                             if p.suffix.lower() in IMAGE_SUFFIXES)
            else:
                views.append(item)
        if reference not in views:
            views.insert(0, reference)
        with self._lock:
            self._views[index] = views
            while len(self._views) > KEPT_PRODUCTS:
                self._views.popitem(last=False)
        return views

    def reference_index(self, index: int) -> int:
        """Which of the product's views is its reference now."""
        reference = reference_location(_cell(self._row(index).get("reference")), self.base)
        return self.views(index).index(reference)

    def photo(self, location: str) -> np.ndarray:
        """A view decoded as displayed (EXIF rotation applied): ``(H, W, 3)`` uint8."""
        with self._lock:
            cached = self._photos.get(location)
            if cached is not None:
                self._photos.move_to_end(location)
                return cached
        data = read_input_bytes(location, self.settings)
        pixels = decode_image(data, location, self.settings.max_image_pixels)
        with self._lock:
            self._photos[location] = pixels
            while len(self._photos) > KEPT_PHOTOS:
                self._photos.popitem(last=False)
        return pixels

    def image_jpeg(self, index: int, view: int, thumb: bool) -> bytes:
        """A view as JPEG: full size, or a thumbnail ``THUMB_PX`` on its longer side."""
        views = self.views(index)
        if not 0 <= view < len(views):
            raise InputError(f"product {index} has no view {view}")
        pixels = self.photo(views[view])
        if thumb:
            from PIL import Image

            small = Image.fromarray(pixels)
            small.thumbnail((THUMB_PX, THUMB_PX))
            pixels = np.asarray(small)
        return encode_jpeg(pixels, quality=85)

    # -- changing ---------------------------------------------------------------------------

    def preview(self, index: int, doc: dict[str, Any]) -> dict[str, Any]:
        """The segmenter's mask for a prompt on one view, as a PNG data URL overlay."""
        location, prompt = self._prompt(index, doc)
        pixels = self.photo(location)
        prompt.validate(pixels.shape[1], pixels.shape[0], _view_name(location))
        image = InputImage(_view_name(location), location, location)
        mask, score, seconds = self.preview_fn(image, pixels, prompt, self.settings)
        rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
        rgba[mask] = (255, 0, 200, 140)
        uri = "data:image/png;base64," + base64.b64encode(encode_png(rgba)).decode("ascii")
        return {"index": index, "view": doc.get("view"), "mask": uri,
                "score": round(float(score), 4), "seconds": round(float(seconds), 3),
                "area": int(mask.sum())}

    def decide(self, index: int, doc: dict[str, Any]) -> dict[str, Any]:
        """Write one decision (``accept`` with the prompt shown, or ``skip``) to the file;
        returns the progress and the next product without a decision."""
        row = self._row(index)
        product = str(row.get("product_id"))
        action = str(doc.get("action"))
        if action == "accept":
            location, prompt = self._prompt(index, doc)
            pixels = self.photo(location)
            prompt.validate(pixels.shape[1], pixels.shape[0], _view_name(location))
            positive = tuple(p for p, k in zip(prompt.points, prompt.labels, strict=True) if k)
            negative = tuple(p for p, k in zip(prompt.points, prompt.labels, strict=True)
                             if not k)
            decision = Decision("accept", self._written(row, location), positive, negative,
                                prompt.box)
        else:
            decision = Decision(action)
        written = self.prepared.record(product, decision)
        if action == "accept" and self.accepted is not None:
            self.accepted(product)
        rows = self.prepared.rows
        return {"index": index, "product": product, "decision": decision_of(written),
                "progress": progress(rows), "next": first_open(rows, index + 1)}

    # -- helpers ----------------------------------------------------------------------------

    def _row(self, index: int) -> dict[str, Any]:
        rows = self.prepared.rows
        if not 0 <= index < len(rows):
            raise InputError(f"no product {index}: the catalog has {len(rows)}")
        return rows[index]

    def _prompt(self, index: int, doc: dict[str, Any]) -> tuple[str, Prompt]:
        views = self.views(index)
        view = doc.get("view")
        if not isinstance(view, int) or isinstance(view, bool) or not 0 <= view < len(views):
            raise InputError(f"product {index} has no view {view!r}")
        positive, negative = clicks_of(doc.get("points")), clicks_of(doc.get("neg_points"))
        box = doc.get("box")
        if box is not None:
            (x0, y0), (x1, y1) = clicks_of([box[:2], box[2:]] if isinstance(box, list)
                                           else None) or [(0.0, 0.0), (0.0, 0.0)]
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if not positive and box is None:
            raise InputError("a prompt needs a click on the product or a box")
        prompt = Prompt(tuple(positive + negative), (1,) * len(positive) + (0,) * len(negative),
                        box)
        return views[view], prompt

    def _written(self, row: dict[str, Any], location: str) -> str:
        """``location`` as the file writes a reference: as it was when unchanged, relative
        to the file when the file's reference was relative."""
        given = _cell(row.get("reference"))
        if reference_location(given, self.base) == location:
            return given
        if is_s3(location) or os.path.isabs(given):
            return location
        return os.path.relpath(location, self.base)


def _view_name(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(",".join(map(str, v)) if isinstance(v, list) else str(v) for v in value)
    return "" if value is None else str(value).strip()


def _pairs(value: Any) -> list[list[float]]:
    out = []
    for item in _cell(value).split(";"):
        parts = [p for p in item.split(",") if p.strip()]
        if len(parts) == 2:
            out.append([float(parts[0]), float(parts[1])])
    return out


def _box(value: Any) -> list[float] | None:
    parts = [p for p in _cell(value).split(",") if p.strip()]
    return [float(p) for p in parts] if len(parts) == 4 else None


def _confidence(value: Any) -> float | None:
    try:
        return round(float(_cell(value)), 3)
    except ValueError:
        return None
