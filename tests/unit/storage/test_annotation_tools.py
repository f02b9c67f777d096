"""The Label Studio and CVAT exports read by the tools' own libraries.

label-studio-sdk decodes the brush RLE and validates the labeling config and the
predictions; datumaro imports the CVAT 1.1 XML and the COCO export with the same
instances per view. ``scripts/env.sh`` installs both from
``tests/annotation-tools.txt``, beside the project's pins: elsewhere those tests skip
without them, but fail where ``CI=true``.
"""

from __future__ import annotations

import importlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from prodseg.storage.exports.cvat import CvatImage, cvat_document, cvat_rle, cvat_shapes
from prodseg.storage.exports.label_studio import (
    brush_rle,
    decode_brush_rle,
    labeling_config,
    match_regions,
    review_task,
)
from prodseg.storage.exports.outline import mask_outline, polygon_covers


def _tool(module: str) -> ModuleType:
    """A tool's module: skipped without it, except in CI."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def _masks(seed: int, height: int = 37, width: int = 53) -> list[np.ndarray]:
    """Masks with holes, several parts, one-pixel lines and a full frame."""
    rng = np.random.default_rng(seed)
    blob = np.zeros((height, width), dtype=bool)
    blob[5:30, 8:40] = True
    blob[12:18, 15:22] = False
    blob[2, 45:50] = True
    speckle = rng.random((height, width)) > 0.7
    full = np.ones((height, width), dtype=bool)
    corner = np.zeros((height, width), dtype=bool)
    corner[-1, -1] = True
    return [blob, speckle, full, corner]


@pytest.mark.parametrize("seed", [0, 1])
def test_brush_rle_is_decoded_by_label_studio_pixel_for_pixel(seed: int) -> None:
    brush = _tool("label_studio_sdk.converter.brush")
    for mask in _masks(seed):
        rle = brush_rle(mask)
        theirs = brush.decode_rle(rle).reshape(*mask.shape, 4)[:, :, 3] > 0
        assert np.array_equal(theirs, mask)
        assert np.array_equal(decode_brush_rle(rle, *mask.shape), mask)


def test_label_studio_own_encoding_is_read_back() -> None:
    brush = _tool("label_studio_sdk.converter.brush")
    for mask in _masks(3):
        theirs = brush.mask2rle(mask.astype(np.uint8) * 255)
        assert np.array_equal(decode_brush_rle(theirs, *mask.shape), mask)


def test_labeling_config_and_predictions_validate() -> None:
    interface = _tool("label_studio_sdk.label_interface")
    config = labeling_config(["milk", 'tea "green"'])
    labels = interface.LabelInterface(config)
    labels.validate()
    mask = _masks(0)[0]
    task = review_task("/data/local-files/?d=x/images/milk/a.png", {"product": "milk"},
                       match_regions(0, mask, mask_outline(mask), "milk", 0.8), 0.8,
                       "prodseg test")
    prediction = task["predictions"][0]  # type: ignore[index]
    assert labels.validate_prediction(prediction) is True
    bad = {**prediction, "result": [{**prediction["result"][0], "from_name": "nope"}]}
    assert labels.validate_prediction(bad) is False


def test_cvat_xml_is_read_by_datumaro_with_the_same_instances(tmp_path: Path) -> None:
    dm = _tool("datumaro")
    images = []
    for k, (label, masks) in enumerate((("milk", _masks(0)[:2]), ("tea", _masks(1)[:1]),
                                         ("tea", []))):
        name = f"{label}/v{k}.png"
        (tmp_path / "images" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((37, 53, 3), np.uint8)).save(tmp_path / "images" / name)
        images.append(CvatImage(name, 53, 37, label, tuple(masks), (0.9,) * len(masks)))
    for polygons in (False, True):
        xml = cvat_document(["milk", "tea"], images, "shelf", polygons)
        (tmp_path / "annotations.xml").write_bytes(xml)
        dataset = dm.Dataset.import_from(str(tmp_path / "annotations.xml"), "cvat")
        labels = dataset.categories()[dm.AnnotationType.label]
        read = {item.id: item for item in dataset}
        assert len(read) == 3
        ours = cvat_shapes(ET.fromstring(xml))
        for image in images:
            item = read[image.name.rsplit(".", 1)[0]]
            assert len(item.annotations) == len(image.masks)
            for shape, mask, (label, mine) in zip(item.annotations, image.masks,
                                                  ours[image.name], strict=True):
                assert labels[shape.label].name == label == image.label
                assert shape.attributes["score"] == pytest.approx(0.9)
                theirs = (polygon_covers(np.array(shape.points).reshape(-1, 2), 37, 53)
                          if polygons else np.asarray(shape.image, dtype=bool))
                assert np.array_equal(theirs, mask)
                assert np.array_equal(mine, mask)


def test_cvat_rle_counts_background_first_within_the_box() -> None:
    mask = np.zeros((4, 5), dtype=bool)
    mask[1, 1:3] = True
    mask[2, 2] = True
    runs, box = cvat_rle(mask)
    assert box == (1, 1, 2, 2)
    assert runs == [0, 2, 1, 1]


def test_datumaro_reads_the_coco_and_cvat_exports_with_the_same_instances(
        tmp_path: Path) -> None:
    dm = _tool("datumaro")
    from prodseg.jsonio import dump_bytes
    from prodseg.storage.exports.dataset import DatasetImage, coco_dataset, coco_part

    views = [("milk/v0.png", 0, _masks(0)[:2]), ("tea/v1.png", 1, _masks(1)[:1]),
             ("tea/v2.png", 1, [])]
    entries, annotations, cvat = [], [], []
    for number, (name, label, masks) in enumerate(views, start=1):
        (tmp_path / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((37, 53, 3), np.uint8)).save(tmp_path / "images" / name)
        entry, found = coco_part(number, DatasetImage(name, 53, 37, label, tuple(masks),
                                                      (0.9,) * len(masks)))
        entries.append(entry)
        annotations += found
        cvat.append(CvatImage(name, 53, 37, ("milk", "tea")[label], tuple(masks),
                              (0.9,) * len(masks)))
    # Datumaro finds a COCO file only as annotations/instances_<subset>.json: the export's
    # annotations.json, unchanged, is put there.
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_default.json").write_bytes(
        dump_bytes(coco_dataset(["milk", "tea"], entries, annotations), indent=None))
    (tmp_path / "annotations.xml").write_bytes(cvat_document(["milk", "tea"], cvat, "shelf"))

    def instances(path: Path, fmt: str) -> dict[str, list[tuple[str, bytes]]]:
        dataset = dm.Dataset.import_from(str(path), fmt)
        names = dataset.categories()[dm.AnnotationType.label]
        return {item.id.rsplit("/", 1)[-1]: sorted(
            (names[a.label].name, np.asarray(a.image, dtype=bool).tobytes())
            for a in item.annotations if hasattr(a, "image")) for item in dataset}

    coco = instances(tmp_path / "annotations" / "instances_default.json", "coco_instances")
    assert coco == instances(tmp_path / "annotations.xml", "cvat")
    assert [len(coco[v]) for v in ("v0", "v1", "v2")] == [2, 1, 0]
