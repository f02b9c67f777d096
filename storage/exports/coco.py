"""COCO instance segmentation of a job's masks (``coco.json``).

One category, ``{"id": 1, "name": "product"}``. Masks are run-length encoded with
``pycocotools.mask.encode``. The reference image's own mask is included, with score 1.0,
so the document holds every mask of the product the job knows about.

Two layers, so that both modes build the same document:

- ``coco_annotations_for(coco_image_id, masks, scores)`` turns one image's masks into
  annotations. The in-process pipeline calls it (through ``coco_document``) with the
  masks it holds; a distributed matching task can call it while its masks are in memory
  and store the JSON-ready result, so the finaliser never has to load masks again.
- ``assemble_coco(images, annotations)`` numbers the annotations and wraps them.

``file_name`` is where the image is, relative to the folder the COCO file is in
(``relative_file_names``), so the document loads from any working directory: ``prodseg
run`` writes it so, and ``prodseg fetch`` rewrites the stored document (which names the
photos as the submitter gave them) for the folder it fetches into. ``s3://`` sources stay
URLs.

COCO image ids are positions in the job, from 1: the reference is 1, the i-th target
image (0-based, input order) is ``i + 2`` (see ``coco_image_id``). Target images whose
status is ``"error"`` are left out (they have no pixels to annotate).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np

import prodseg
from prodseg.jsonio import dump_bytes
from prodseg.results import ImageResult, ReferenceResult

CATEGORY = {"id": 1, "name": "product"}
REFERENCE_COCO_ID = 1


def coco_image_id(target_index: int | None) -> int:
    """The COCO image id of the reference (``None``) or of the i-th target image."""
    return REFERENCE_COCO_ID if target_index is None else target_index + 2


def coco_image_entry(
    coco_id: int, image_id: str, source: str, width: int, height: int
) -> dict[str, Any]:
    """One entry of the document's ``images`` list.

    Args:
        coco_id: the COCO image id (``coco_image_id``).
        image_id: prodseg's id of the image (links to ``results.json``).
        source: where the image came from; used as ``file_name``.
        width: image width in pixels.
        height: image height in pixels.
    """
    return {
        "id": coco_id,
        "file_name": source,
        "width": int(width),
        "height": int(height),
        "prodseg_image": image_id,
    }


def coco_annotations_for(
    coco_id: int, masks: Sequence[np.ndarray], scores: Sequence[float]
) -> list[dict[str, Any]]:
    """COCO annotations (without ``id``; ``assemble_coco`` numbers them) for one image.

    Args:
        coco_id: the COCO image id the masks belong to.
        masks: ``(H, W)`` bool masks, each non-empty.
        scores: one score per mask.

    Returns:
        JSON-ready annotations: ``image_id``, ``category_id`` 1, ``segmentation``
        (compressed RLE, ``counts`` as str), ``area`` (pixels), ``bbox`` ``[x, y, w, h]``
        (tight box of the mask), ``iscrowd`` 0 and ``score`` (rounded to 6 decimals).

    Raises:
        ValueError: a mask is not 2-D or is empty, a score is not finite, or masks and
            scores differ in number.
    """
    from pycocotools import mask as mask_utils  # on use: fetch needs none of it

    if len(masks) != len(scores):
        raise ValueError(f"{len(masks)} masks but {len(scores)} scores")
    annotations = []
    for mask, score in zip(masks, scores, strict=True):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
        if not math.isfinite(score):
            raise ValueError(f"score of a mask of COCO image {coco_id} is {score}")
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        area = int(mask_utils.area(rle))
        if area == 0:
            raise ValueError(f"mask of COCO image {coco_id} is empty")
        annotations.append(
            {
                "image_id": coco_id,
                "category_id": CATEGORY["id"],
                "segmentation": {
                    "size": [int(mask.shape[0]), int(mask.shape[1])],
                    "counts": rle["counts"].decode("ascii"),
                },
                "area": area,
                "bbox": [int(v) for v in mask_utils.toBbox(rle)],  # [x, y, w, h]
                "iscrowd": 0,
                "score": round(float(score), 6),
            }
        )
    return annotations


def assemble_coco(
    images: Sequence[dict[str, Any]], annotations: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The COCO document: ``annotations`` numbered from 1 in the order given.

    Args:
        images: entries from ``coco_image_entry``.
        annotations: from ``coco_annotations_for``, in image order.
    """
    numbered = [{"id": n, **annotation} for n, annotation in enumerate(annotations, start=1)]
    return {
        "info": {"description": "prodseg product masks", "version": prodseg.__version__},
        "images": list(images),
        "annotations": numbered,
        "categories": [dict(CATEGORY)],
    }


def reference_coco(reference: ReferenceResult) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The reference image's COCO entry and its annotation (its mask, score 1.0)."""
    entry = coco_image_entry(
        REFERENCE_COCO_ID, reference.image_id, reference.source, reference.width,
        reference.height,
    )
    return entry, coco_annotations_for(REFERENCE_COCO_ID, [reference.mask], [1.0])


def target_coco(
    index: int, result: ImageResult
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The i-th target's COCO entry and annotations; ``(None, [])`` for a failed image.

    A distributed matching task stores this while the masks are in memory, so the
    finaliser only concatenates.
    """
    if result.status != "ok":
        return None, []
    coco_id = coco_image_id(index)
    entry = coco_image_entry(coco_id, result.image_id, result.source, result.width,
                             result.height)
    masks = [m.mask for m in result.matches]
    return entry, coco_annotations_for(coco_id, masks, [m.score for m in result.matches])


def coco_document(reference: ReferenceResult, images: Sequence[ImageResult]) -> dict[str, Any]:
    """The COCO document of a job whose masks are in memory.

    Args:
        reference: the reference result; its mask is annotated with score 1.0.
        images: target results in input order; errored ones are left out.

    Returns:
        A JSON-ready dict that ``pycocotools.coco.COCO`` loads.
    """
    ref_entry, annotations = reference_coco(reference)
    entries = [ref_entry]
    for index, result in enumerate(images):
        entry, found = target_coco(index, result)
        if entry is not None:
            entries.append(entry)
            annotations += found
    return assemble_coco(entries, annotations)


def coco_file_name(source: str, folder: str | os.PathLike[str]) -> str:
    """An image's ``file_name`` in a COCO file in ``folder``: the path relative to it.

    Args:
        source: the image as the user named it (relative to the working directory, or
            absolute), or a URL, which is kept as it is.
        folder: the folder holding the COCO file.
    """
    if "://" in source:
        return source
    relative = os.path.relpath(os.path.abspath(source), os.path.abspath(folder))
    return PurePath(relative).as_posix()


def relative_file_names(doc: Mapping[str, Any],
                        folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``doc`` with every image's ``file_name`` relative to ``folder`` (``coco_file_name``)."""
    images = [{**e, "file_name": coco_file_name(str(e["file_name"]), folder)}
              for e in doc.get("images", [])]
    return {**doc, "images": images}


def relocated_coco(data: bytes, folder: str | os.PathLike[str]) -> bytes:
    """A stored ``coco.json`` rewritten for a copy of it in ``folder`` (``prodseg fetch``)."""
    return dump_bytes(relative_file_names(json.loads(data), folder), indent=None)
