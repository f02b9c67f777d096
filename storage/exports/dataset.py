"""A training dataset of many products: COCO or YOLO segmentation, one class per product.

Pure functions from images and their masks to the files of a dataset:

- COCO: ``annotations.json``, one category per product (ids from 1 in the order given),
  masks as compressed RLE, boxes ``[x, y, w, h]``;
- YOLO segmentation (Ultralytics' format): ``labels/<name>.txt`` with one line per mask,
  ``<class> x1 y1 x2 y2 ...`` normalised to 0..1 (the mask's parts and holes in one
  polygon, ``storage.exports.outline``), and ``data.yaml`` naming the classes. So both
  formats hold the same instances: one per mask. An image with no mask is a background
  image (an empty label file; a COCO image without annotations).

Class ``k`` (COCO category ``k + 1``) is ``classes[k]``, the catalog's stored class map.
Image paths are relative to the index file, so a dataset loads from wherever it is.

``producer.catalog.export`` decides which results go in and writes the files.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

import prodseg
from prodseg.jsonio import dumps
from prodseg.storage.exports.coco import coco_annotations_for, coco_image_entry
from prodseg.storage.exports.outline import mask_outline
from prodseg.storage.image_encoding import encode_jpeg

FORMATS = ("coco", "yolo-seg")
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class DatasetImage:
    """One image of the dataset and the masks of one product on it.

    Attributes:
        name: the file's path in the dataset, under ``images/`` (``<product>/<id>.jpg``).
        width: image width in pixels.
        height: image height in pixels.
        label: the product's class, an index into the dataset's classes.
        masks: ``(H, W)`` bool masks of the product, each non-empty; none for a view a
            reviewer accepted as not showing the product.
        scores: one score per mask (1.0 for a reference's own mask).
    """

    name: str
    width: int
    height: int
    label: int
    masks: tuple[np.ndarray, ...]
    scores: tuple[float, ...]


def coco_part(number: int,
              image: DatasetImage) -> tuple[dict[str, object], list[dict[str, object]]]:
    """One image's COCO entry and annotations (not yet numbered; see ``coco_dataset``).

    Args:
        number: the image's COCO id, from 1.
        image: the image and its masks; its class ``label`` becomes category ``label + 1``.
    """
    stem = image.name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    entry = coco_image_entry(number, stem, f"images/{image.name}", image.width, image.height)
    found = coco_annotations_for(number, list(image.masks), list(image.scores))
    return entry, [{**a, "category_id": image.label + 1} for a in found]


def coco_dataset(classes: Sequence[str], entries: Sequence[dict[str, object]],
                 annotations: Sequence[dict[str, object]],
                 prompts: Mapping[str, Mapping[str, object]] | None = None
                 ) -> dict[str, object]:
    """The COCO document: category ``k + 1`` is ``classes[k]``, annotations numbered from 1.

    Args:
        classes: the product ids, one class each.
        entries: image entries from ``coco_part``.
        annotations: their annotations, in image order.
        prompts: per exported product, where its reference prompt came from
            (``prompt_source`` and ``prompt_confidence``), added to its category.
    """
    return {
        "info": {"description": "prodseg catalog dataset", "version": prodseg.__version__},
        "images": list(entries),
        "annotations": [{"id": n, **a} for n, a in enumerate(annotations, start=1)],
        "categories": [{"id": k + 1, "name": name, **(prompts or {}).get(name, {})}
                       for k, name in enumerate(classes)],
    }


def yolo_label(image: DatasetImage) -> str:
    """The image's YOLO segmentation label file: one line per mask (empty: background)."""
    lines = []
    for mask in image.masks:
        polygon = mask_outline(mask)
        if polygon is None:
            raise ValueError(f"{image.name}: an empty mask")
        xy = polygon / np.array([image.width, image.height], dtype=np.float64)
        coords = " ".join(f"{v:.6f}" for v in xy.ravel())
        lines.append(f"{image.label} {coords}")
    return "".join(line + "\n" for line in lines)


def yolo_data_yaml(classes: Sequence[str]) -> str:
    """``data.yaml``: the images and the class names (quoted, in class order).

    It names no ``path``: readers then take the images relative to the file itself, so the
    dataset loads from any working directory (Ultralytics reads ``path: .`` as the
    working directory).

    Raises:
        ValueError: no classes (Ultralytics refuses ``nc: 0``).
    """
    if not classes:
        raise ValueError("a dataset needs at least one class")
    names = "".join(f"  {k}: {dumps(name)}\n" for k, name in enumerate(classes))
    return f"train: images\nval: images\nnc: {len(classes)}\nnames:\n{names}"


def dataset_image_file(data: bytes, pixels: np.ndarray) -> tuple[bytes, str]:
    """The bytes to store for an image and their suffix.

    A JPEG or PNG shown as stored (no EXIF rotation) is kept byte for byte; any other
    image is written as displayed (``pixels``, EXIF rotation applied, as the masks are)
    in JPEG at quality 95.

    Args:
        data: the image file as given.
        pixels: ``(H, W, 3)`` uint8, the image as prodseg decoded it.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            turned = image.getexif().get(_EXIF_ORIENTATION, 1) not in (1, None)
            same = image.size == (pixels.shape[1], pixels.shape[0])
    except Exception:  # whatever Pillow cannot say: re-encode
        kind, turned, same = None, True, False
    if kind in ("JPEG", "PNG") and not turned and same:
        return data, ".jpg" if kind == "JPEG" else ".png"
    return encode_jpeg(pixels, quality=95), ".jpg"
