"""``prodseg export spin``: a finished job as storefront spin frames, a zip and a viewer.

From a job's ``results.json`` and cutouts (a ``prodseg run`` folder, or a distributed
job in the store; no photo is read again), into a new or empty folder:

- ``frames/frame_000.jpg`` ...: square, in rotation order (the views by file name, the
  reference among them), one crop for the whole spin (``storage.exports.spin_frames``);
  JPEG on white, or PNG / WebP, transparent unless a white background is asked for;
- ``spin.zip``: the frames;
- ``viewer.html``: a self-contained 360° viewer (``storage.exports.spin_viewer``);
- ``spin.json`` (last): each frame's view, score, product centre and fill share, the
  crop, and the views left out (no match, failed, or not accepted by a review) and why.

A view's best match is its product; a view's other matches are left out of its frame.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prodseg.errors import InputError
from prodseg.jsonio import dump_bytes
from prodseg.storage.base import ObjectStore
from prodseg.storage.exports.spin_frames import (
    DEFAULT_FILL,
    DEFAULT_SIZE,
    SpinCrop,
    SpinView,
    alpha_centroid,
    flatten,
    frame_centre,
    frame_fill,
    render_frame,
    spin_crop,
)
from prodseg.storage.exports.spin_viewer import viewer_html
from prodseg.storage.layout import JobLayout
from prodseg.storage.local import LocalStore
from prodseg.storage.output_dir import require_empty_folder
from prodseg.workers.capture.order import natural_key

FRAME_FORMATS = ("jpeg", "png", "webp")
SUFFIXES = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
WHITE = (255, 255, 255)
SPIN_DOCUMENT = "spin.json"
VIEWER = "viewer.html"


@dataclass(frozen=True)
class SpinOptions:
    """How the frames look.

    Attributes:
        size: the frames' side in pixels.
        fill: the share of the side the product's largest extent takes.
        image_format: ``jpeg``, ``png`` or ``webp``.
        transparent: a transparent background (PNG and WebP only); white otherwise.
    """

    size: int = DEFAULT_SIZE
    fill: float = DEFAULT_FILL
    image_format: str = "jpeg"
    transparent: bool = False

    def __post_init__(self) -> None:
        if self.image_format not in FRAME_FORMATS:
            raise InputError(f"unknown frame format {self.image_format!r}; one of "
                             + ", ".join(FRAME_FORMATS))
        if self.transparent and self.image_format == "jpeg":
            raise InputError("a JPEG frame cannot be transparent; use --format png or webp")
        if not 0.05 <= self.fill <= 1.0:
            raise InputError(f"--fill: expected a share between 0.05 and 1, got {self.fill}")
        if not 16 <= self.size <= 8192:
            raise InputError(f"--size: expected 16 to 8192 pixels, got {self.size}")


@dataclass(frozen=True)
class SpinFrame:
    """One frame written.

    Attributes:
        view: the image id it shows.
        file: its path in the output folder.
        score: the match's score (1.0 for the reference).
        centre: the product's centroid in the frame, as fractions of the side.
        fill: the product box's longer side over the frame's side.
    """

    view: str
    file: str
    score: float
    centre: tuple[float, float]
    fill: float


@dataclass
class SpinSummary:
    """What a spin export wrote.

    Attributes:
        frames: the frames, in rotation order.
        left_out: image id -> why it has no frame.
        crop: the spin's crop, in source pixels (None when no view had the product).
        files: the zip, the viewer and ``spin.json``.
    """

    frames: list[SpinFrame] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    crop: SpinCrop | None = None
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Found:
    view: str
    score: float
    box: tuple[int, int, int, int]
    cutout: Image.Image
    spin: SpinView


def rotation_order(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The reference's and the targets' entries of ``results.json``, by file name."""
    entries = [doc["reference"], *doc.get("images", [])]
    return sorted(entries, key=lambda e: natural_key(Path(str(e["image"]))))


def empty_output(output: Path) -> LocalStore:
    """A store on ``output``, which must be a new or empty folder.

    Raises:
        InputError: ``output`` is a file or a folder with something in it.
    """
    require_empty_folder(output)
    return LocalStore(output)


def export_spin(store: ObjectStore, layout: JobLayout, doc: Mapping[str, Any], out: LocalStore,
                title: str, options: SpinOptions,
                accepted: Collection[str] | None = None) -> SpinSummary:
    """Write one product's spin (see the module's list) into ``out``.

    Args:
        store: where the job's outputs are.
        layout: the job's keys in ``store``.
        doc: its ``results.json``.
        out: the output folder's store.
        title: the product's name, for the viewer.
        options: how the frames look.
        accepted: when given, only these image ids may have a frame (a review's choice).

    Raises:
        InputError: a panorama capture, or no view with the product.
    """
    if doc.get("capture") == "panorama":
        raise InputError(f"{title}: a panorama capture is not a spin")
    summary = SpinSummary()
    found: list[_Found] = []
    for entry in rotation_order(doc):
        view = str(entry["image"])
        why = _left_out_reason(entry, doc, accepted)
        if why:
            summary.left_out[view] = why
            continue
        found.append(_read(store, layout, entry, entry is doc["reference"]))
    if not found:
        raise InputError(f"{title}: no view has the product; nothing to export")
    crop = spin_crop([f.spin for f in found], options.fill)
    summary.crop = crop
    suffix = SUFFIXES[options.image_format]
    encoded: list[bytes] = []
    for k, item in enumerate(found):
        frame = render_frame(item.cutout, item.box, crop, options.size)
        data = _encode(flatten(frame, None if options.transparent else WHITE),
                       options.image_format)
        name = f"frames/frame_{k:03d}{suffix}"
        out.put(name, data)
        encoded.append(data)
        summary.frames.append(SpinFrame(item.view, name, item.score,
                                        frame_centre(item.spin.centroid, crop),
                                        frame_fill(item.box, crop)))
    out.put("spin.zip", _zip([f.file for f in summary.frames], encoded))
    out.put(VIEWER, viewer_html(title, encoded, options.image_format).encode("utf-8"))
    out.put(SPIN_DOCUMENT, dump_bytes(spin_document(title, summary, options)))
    summary.files = [str(out.root / n) for n in ("spin.zip", VIEWER, SPIN_DOCUMENT)]
    return summary


def spin_document(title: str, summary: SpinSummary, options: SpinOptions) -> dict[str, object]:
    """``spin.json``: what the export wrote and left out."""
    crop = summary.crop
    return {
        "product": title,
        "size": options.size, "fill_target": options.fill, "format": options.image_format,
        "background": "transparent" if options.transparent else "white",
        "crop": None if crop is None else {"centre": list(crop.centre), "side": crop.side},
        "frames": [{"view": f.view, "file": f.file, "score": f.score,
                    "centre": list(f.centre), "fill": f.fill} for f in summary.frames],
        "left_out": dict(summary.left_out),
    }


def _left_out_reason(entry: Mapping[str, Any], doc: Mapping[str, Any],
                     accepted: Collection[str] | None) -> str | None:
    view = entry["image"]
    if accepted is not None and view not in accepted:
        return "not accepted"
    if entry is doc["reference"]:
        return None
    if entry.get("status") != "ok":
        return f"failed: {entry.get('error') or 'no result'}"
    return None if entry.get("matches") else "no match"


def _read(store: ObjectStore, layout: JobLayout, entry: Mapping[str, Any],
          is_reference: bool) -> _Found:
    """A view's best match: its box, score and cutout."""
    best = entry if is_reference else entry["matches"][0]
    box = tuple(int(v) for v in best["bbox"])
    with Image.open(io.BytesIO(store.get(layout.key(best["cutout"])))) as image:
        cutout = image.convert("RGBA")
    cx, cy = alpha_centroid(np.asarray(cutout)[:, :, 3])
    score = 1.0 if is_reference else float(best["score"])
    spin = SpinView(box=(box[0], box[1], box[2], box[3]), centroid=(box[0] + cx, box[1] + cy))
    return _Found(str(entry["image"]), score, spin.box, cutout, spin)


def _encode(frame: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    if image_format == "jpeg":
        frame.save(buffer, format="JPEG", quality=92, optimize=True)
    elif image_format == "webp":
        frame.save(buffer, format="WEBP", quality=92, method=4)
    else:
        frame.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _zip(names: list[str], data: list[bytes]) -> bytes:
    """The frames as one archive, stored flat (JPEG and WebP do not compress further)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in zip(names, data, strict=True):
            info = zipfile.ZipInfo(name.rsplit("/", 1)[-1], date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, content)
    return buffer.getvalue()
