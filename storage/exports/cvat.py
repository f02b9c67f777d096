"""CVAT for images 1.1 XML: prodseg's matches as masks (or polygons), one label per product.

An ``<image>`` per view, named ``<product>/<view><suffix>`` (its file under ``images/``),
with one ``<mask>`` per match: CVAT's RLE over the match's box (``left``, ``top``,
``width``, ``height`` in pixels): the lengths of alternating runs, background first,
row by row within the box. ``polygons=True`` writes each match's outline
(``storage.exports.outline``) as a ``<polygon>`` instead. Every shape carries its score
as the ``score`` attribute, its label the product id. ``cvat_shapes`` reads a CVAT 1.1
export back into masks per image.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prodseg.storage.exports.outline import mask_outline, polygon_covers

SCORE = "score"


@dataclass(frozen=True)
class CvatImage:
    """One view in the document.

    Attributes:
        name: ``<product>/<view><suffix>``.
        width: image width in pixels.
        height: image height in pixels.
        label: the product id.
        masks: ``(H, W)`` bool, one per match.
        scores: one per mask.
    """

    name: str
    width: int
    height: int
    label: str
    masks: tuple[np.ndarray, ...]
    scores: tuple[float, ...]


def cvat_rle(mask: np.ndarray) -> tuple[list[int], tuple[int, int, int, int]]:
    """A mask as CVAT's RLE over its box.

    Args:
        mask: ``(H, W)`` bool, not empty.

    Returns:
        The run lengths (background first) and the box ``(left, top, width, height)``.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    crop = mask[top:int(rows[-1]) + 1, left:int(cols[-1]) + 1].ravel()
    change = np.flatnonzero(crop[1:] != crop[:-1]) + 1
    bounds = np.concatenate([[0], change, [crop.size]])
    runs = np.diff(bounds).tolist()
    if crop[0]:
        runs = [0, *runs]
    height, width = int(rows[-1]) + 1 - top, int(cols[-1]) + 1 - left
    return [int(r) for r in runs], (left, top, width, height)


def decode_cvat_rle(runs: Sequence[int], box: tuple[int, int, int, int], height: int,
                    width: int) -> np.ndarray:
    """The inverse of ``cvat_rle``, placed on a ``(height, width)`` image (bool)."""
    left, top, box_w, box_h = box
    flat = np.zeros(box_w * box_h, dtype=bool)
    at = 0
    for k, run in enumerate(runs):
        if k % 2:
            flat[at:at + run] = True
        at += run
    out = np.zeros((height, width), dtype=bool)
    region = flat.reshape(box_h, box_w)[: max(0, height - top), : max(0, width - left)]
    out[top:top + region.shape[0], left:left + region.shape[1]] = region
    return out


def cvat_document(labels: Sequence[str], images: Sequence[CvatImage], task: str,
                  polygons: bool = False) -> bytes:
    """The CVAT for images 1.1 XML.

    Args:
        labels: the product ids, one label each.
        images: the views, in order (ids from 0).
        task: the task's name.
        polygons: outlines instead of masks.
    """
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(meta, "name").text = task
    ET.SubElement(meta, "size").text = str(len(images))
    ET.SubElement(meta, "mode").text = "annotation"
    found = ET.SubElement(meta, "labels")
    for name in labels:
        label = ET.SubElement(found, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "polygon" if polygons else "mask"
        attribute = ET.SubElement(ET.SubElement(label, "attributes"), "attribute")
        for key, value in (("name", SCORE), ("mutable", "False"), ("input_type", "number"),
                           ("default_value", "0"), ("values", "0;1;0.0001")):
            ET.SubElement(attribute, key).text = value
    for number, image in enumerate(images):
        node = ET.SubElement(root, "image", id=str(number), name=image.name,
                             width=str(image.width), height=str(image.height))
        for mask, score in zip(image.masks, image.scores, strict=True):
            common = {"label": image.label, "source": "auto", "occluded": "0",
                      "z_order": "0"}
            if polygons:
                outline = mask_outline(mask)
                if outline is None:
                    continue
                points = ";".join(f"{x:.2f},{y:.2f}" for x, y in outline)
                shape = ET.SubElement(node, "polygon", {"points": points, **common})
            else:
                runs, (left, top, width, height) = cvat_rle(mask)
                shape = ET.SubElement(node, "mask", {
                    "rle": ", ".join(map(str, runs)), "left": str(left), "top": str(top),
                    "width": str(width), "height": str(height), **common})
            ET.SubElement(shape, "attribute", name=SCORE).text = f"{score:.4f}"
    ET.indent(root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def cvat_shapes(root: ET.Element) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Per image name, its masks and polygons as ``(label, (H, W) bool)``, in file order.

    Raises:
        ValueError: a shape whose geometry cannot be read.
    """
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for node in root.iter("image"):
        height, width = int(node.attrib["height"]), int(node.attrib["width"])
        shapes = out.setdefault(node.attrib["name"], [])
        for shape in node:
            label = shape.attrib.get("label", "")
            if shape.tag == "mask":
                runs = [int(v) for v in shape.attrib["rle"].split(",") if v.strip()]
                box = tuple(int(float(shape.attrib[k]))
                            for k in ("left", "top", "width", "height"))
                shapes.append((label, decode_cvat_rle(runs, box, height, width)))  # type: ignore[arg-type]
            elif shape.tag == "polygon":
                xy = [p.split(",") for p in shape.attrib["points"].split(";")]
                polygon = np.array(xy, dtype=np.float64)
                shapes.append((label, polygon_covers(polygon, height, width)))
            elif shape.tag in ("box", "polyline", "points", "ellipse", "skeleton"):
                raise ValueError(f"{node.attrib['name']}: a {shape.tag} cannot be read as "
                                 "a region; draw a mask or a polygon")
    return out
