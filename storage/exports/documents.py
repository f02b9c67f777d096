"""What a job writes: its per-image outputs and the results documents.

The ``*_document`` / ``*_entry`` functions are pure (records in, JSON-ready dicts out).
The ``write_*`` functions put their output (mask PNGs from ``storage.images``, cutouts
from ``storage.image_encoding``, thumbnails from ``exports.thumbnails``) into an
``ObjectStore`` under a ``JobLayout``; ``write_job_documents`` writes ``results.json``
last, so its presence means the job is complete.

Keys inside ``results.json`` are relative to the job root (no prefix), so a job fetched
from S3 into a local directory reads the same.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np

import prodseg
from prodseg.jsonio import dump_bytes
from prodseg.results import ImageResult, Match, ReferenceResult
from prodseg.storage.base import ObjectStore
from prodseg.storage.exports.coco import coco_document, relative_file_names
from prodseg.storage.exports.gallery import contact_sheet, gallery_html
from prodseg.storage.exports.thumbnails import load_thumbnails, overlay_thumbnail
from prodseg.storage.image_encoding import check_image_and_mask, cutout_png
from prodseg.storage.images import mask_png
from prodseg.storage.layout import JobLayout
from prodseg.storage.local import LocalStore

EdgeAlpha = Callable[[np.ndarray, np.ndarray, tuple[int, int, int, int]], np.ndarray]
"""A cutout's alpha from ``(image, mask, box)``: ``(y1 - y0, x1 - x0)`` uint8 (soft edges)."""

RESERVED_RESULT_KEYS = frozenset({"prodseg_version", "reference", "images", "summary"})

def reference_entry(reference: ReferenceResult, layout: JobLayout) -> dict[str, Any]:
    """The ``"reference"`` part of ``results.json`` (keys relative to the job root)."""
    return {
        "image": reference.image_id,
        "source": reference.source,
        "width": int(reference.width),
        "height": int(reference.height),
        "prompt": reference.prompt,
        "prompt_source": reference.prompt_source,
        **({"proposal": reference.proposal} if reference.proposal is not None else {}),
        "bbox": [int(v) for v in reference.bbox],
        "score": _score(reference.score),
        "area": int(reference.mask.sum()),
        "candidates": [{"area": int(a), "score": _score(s)} for a, s in
                       zip(reference.candidate_areas, reference.candidate_scores, strict=True)],
        "candidate": reference.candidate,
        "mask": layout.relative(layout.reference_mask),
        "cutout": layout.relative(layout.reference_cutout),
        "embedding": layout.relative(layout.reference_embedding),
        "thumbnail": layout.relative(layout.thumbnail(reference.image_id)),
    }


def image_entry(result: ImageResult, layout: JobLayout) -> dict[str, Any]:
    """One element of ``results.json``'s ``"images"`` (keys relative to the job root).

    A distributed matching task can store this as its per-image result, and the
    finaliser can pass the stored entries to ``assemble_results_document``.
    """
    ok = result.status == "ok"
    return {
        "image": result.image_id,
        "source": result.source,
        "width": int(result.width),
        "height": int(result.height),
        "status": result.status,
        "error": result.error,
        "num_proposals": int(result.num_proposals),
        "found_by": result.found_by,
        "thumbnail": layout.relative(layout.thumbnail(result.image_id)) if ok else None,
        "matches": [
            {
                "bbox": [int(v) for v in match.bbox],
                "score": _score(match.score),
                "absorbed": int(match.absorbed),
                "mask": layout.relative(layout.mask(result.image_id, k)),
                "cutout": layout.relative(layout.cutout(result.image_id, k)),
                **({"wrapped_bbox": [int(v) for v in match.wrapped_bbox]}
                   if match.wrapped_bbox is not None else {}),
                **({"edge_residue": round(float(match.edge_residue), 4)}
                   if match.edge_residue is not None else {}),
            }
            for k, match in enumerate(result.matches)
        ],
    }


def assemble_results_document(
    reference: Mapping[str, Any], images: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """``results.json`` from its entries: version, ``meta``, reference, images, summary.

    Args:
        reference: from ``reference_entry``.
        images: from ``image_entry``, in input order (kept).
        meta: job-level facts (e.g. ``job``, ``weights``, ``warning``, ``models``,
            ``settings``), placed after ``prodseg_version``; JSON-ready.

    Raises:
        ValueError: ``meta`` uses a key the document reserves.
    """
    clash = RESERVED_RESULT_KEYS.intersection(meta)
    if clash:
        raise ValueError(f"meta may not set the reserved results keys {sorted(clash)}")
    ok = [entry for entry in images if entry["status"] == "ok"]
    matched = sum(1 for entry in ok if entry["matches"])
    return {
        "prodseg_version": prodseg.__version__,
        **meta,
        "reference": dict(reference),
        "images": [dict(entry) for entry in images],
        "summary": {
            "images": len(images),
            "ok": len(ok),
            "error": len(images) - len(ok),
            "matched": matched,
            "unmatched": len(ok) - matched,
        },
    }


def results_document(
    reference: ReferenceResult,
    images: Sequence[ImageResult],
    layout: JobLayout,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``results.json`` document of a job (see ``assemble_results_document``).

    Args:
        reference: the reference result.
        images: target results in input order.
        layout: the job's key layout; keys in the document are relative to its prefix.
        meta: job-level facts placed after ``prodseg_version``.
    """
    return assemble_results_document(
        reference_entry(reference, layout), [image_entry(r, layout) for r in images], meta
    )


def write_reference_outputs(
    store: ObjectStore, layout: JobLayout, image: np.ndarray, reference: ReferenceResult,
    edges: EdgeAlpha | None = None,
) -> list[str]:
    """Write the reference's mask, cutout, embedding and thumbnail.

    Args:
        store: where to write.
        layout: the job's keys.
        image: the reference image, ``(H, W, 3)`` uint8 RGB.
        reference: its result.
        edges: the cutout's alpha (default: the mask's, hard edges).

    Returns:
        The keys written.
    """
    check_image_and_mask(image, reference.mask)
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(reference.embedding, dtype=np.float32), allow_pickle=False)
    as_match = Match(mask=reference.mask, bbox=reference.bbox, score=reference.score)
    outputs = [
        (layout.reference_mask, mask_png(reference.mask), "image/png"),
        (layout.reference_cutout, _cutout(image, reference.mask, reference.bbox, edges),
         "image/png"),
        (layout.reference_embedding, buffer.getvalue(), "application/octet-stream"),
        (
            layout.thumbnail(reference.image_id),
            overlay_thumbnail(image, [as_match], is_reference=True),
            "image/jpeg",
        ),
    ]
    return _put_all(store, outputs)


def write_image_outputs(
    store: ObjectStore, layout: JobLayout, image: np.ndarray | None, result: ImageResult,
    edges: EdgeAlpha | None = None,
) -> list[str]:
    """Write one target image's masks and cutouts (k = 0.., best first) and thumbnail.

    Args:
        store: where to write.
        layout: the job's keys.
        image: the image, ``(H, W, 3)`` uint8 RGB; may be None when ``result`` is an
            error, for which nothing is written.
        result: its result.
        edges: the cutouts' alpha (default: the masks', hard edges).

    Returns:
        The keys written.
    """
    if result.status != "ok":
        return []
    if image is None:
        raise ValueError(f"{result.source}: an image with status 'ok' needs its pixels")
    outputs = []
    for k, match in enumerate(result.matches):
        outputs.append((layout.mask(result.image_id, k), mask_png(match.mask), "image/png"))
        outputs.append(
            (
                layout.cutout(result.image_id, k),
                _cutout(image, match.mask, match.bbox, edges),
                "image/png",
            )
        )
    thumbnail = overlay_thumbnail(image, result.matches)
    outputs.append((layout.thumbnail(result.image_id), thumbnail, "image/jpeg"))
    return _put_all(store, outputs)


def _cutout(image: np.ndarray, mask: np.ndarray, bbox: Sequence[int],
            edges: EdgeAlpha | None) -> bytes:
    if edges is None:
        return cutout_png(image, mask, bbox)
    box = (int(bbox[0]), int(bbox[1]), int(bbox[2]), int(bbox[3]))
    return cutout_png(image, mask, bbox, edges(image, mask, box))


def write_job_documents(
    store: ObjectStore,
    layout: JobLayout,
    reference: ReferenceResult,
    results: Sequence[ImageResult],
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``coco.json``, ``gallery.png``, ``gallery.html`` and, last, ``results.json``.

    The gallery is built from the thumbnails already in the store (missing ones show a
    placeholder), so call this after the ``write_*_outputs`` functions.

    Args:
        store: where to write.
        layout: the job's keys.
        reference: the reference result (masks in memory).
        results: target results in input order (masks in memory).
        meta: job-level facts for ``results.json``.

    Returns:
        The ``results.json`` document written.
    """
    document = results_document(reference, results, layout, meta)
    coco = coco_document(reference, results)
    if isinstance(store, LocalStore):  # the photos' paths, relative to coco.json
        coco = relative_file_names(coco, store.root / PurePath(layout.coco).parent)
    write_documents(store, layout, document, coco)
    return document


def write_documents(
    store: ObjectStore,
    layout: JobLayout,
    document: Mapping[str, Any],
    coco: Mapping[str, Any],
) -> None:
    """Write ``coco.json``, ``gallery.png``, ``gallery.html`` and, last, ``results.json``.

    The step both modes share once the documents exist: ``write_job_documents`` builds
    them from results in memory, the distributed finaliser from the stored entries.
    """
    thumbnails = load_thumbnails(store, layout, document)
    if document.get("warning"):  # e.g. random weights: every document says so
        coco = {**coco, "info": {**coco.get("info", {}), "warning": document["warning"]}}
    store.put(layout.coco, dump_bytes(coco, indent=None), "application/json")
    store.put(layout.gallery_png, contact_sheet(document, thumbnails), "image/png")
    html_text = gallery_html(document, thumbnails).encode("utf-8")
    store.put(layout.gallery_html, html_text, "text/html; charset=utf-8")
    store.put(layout.results, dump_bytes(document), "application/json")


def link_spin_viewer(store: ObjectStore, layout: JobLayout, viewer: str) -> None:
    """Write ``gallery.html`` again, linking the spin exported from the job.

    Args:
        store: the job's store (its ``results.json`` and thumbnails are read).
        layout: the job's keys.
        viewer: the exported ``viewer.html``'s address relative to the gallery.
    """
    document = json.loads(store.get(layout.results))
    thumbnails = load_thumbnails(store, layout, document)
    html_text = gallery_html(document, thumbnails, spin_viewer=viewer).encode("utf-8")
    store.put(layout.gallery_html, html_text, "text/html; charset=utf-8")


def _put_all(store: ObjectStore, outputs: Sequence[tuple[str, bytes, str]]) -> list[str]:
    """Put each ``(key, data, content_type)``; return the keys."""
    for key, data, content_type in outputs:
        store.put(key, data, content_type)
    return [key for key, _, _ in outputs]





def _score(value: float) -> float:
    """A score for JSON: finite, rounded to 6 decimals."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"score must be a finite number, got {value}")
    return round(value, 6)
