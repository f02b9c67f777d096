"""A catalog's exports read by the third-party readers people train with, from a folder
other than the dataset's own: pycocotools, and Ultralytics' dataset checker and
``YOLODataset(task="segment")`` (in a folder of its own; ``tests.support.ultralytics_env``).

Against redis-server, moto's S3 server and a ``prodseg worker`` (classic backend): two
products, one with a view a reviewer accepted as not showing it. Both formats hold the
same instances per view, pixel for pixel; a product that drops out of a later export
leaves the other's class where it was; an export with nothing in it is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.cluster import Cluster
from tests.support.outcomes import record
from tests.support.ultralytics_env import read_with_ultralytics

pytestmark = pytest.mark.integration


def _catalog(cluster: Cluster) -> tuple[str, dict[str, dict[str, Any]]]:
    """Submit two products (two rendered spins); the catalog id and each results.json."""
    lines = ["product_id,images,reference,point"]
    for seed, product in enumerate(("milk", "tea")):
        out = cluster.tmp / product
        done = cluster.cli("sample", "--output", str(out), "--views", "4", "--shelf-only",
                           "1", "--size", "200x150", "--seed", str(seed))
        assert done.returncode == 0, done.stderr
        doc = json.loads((out / "sample.json").read_text())
        x, y = doc["reference_point"]
        lines.append(f'{product},{product}/images,{product}/{doc["reference"]},"{x},{y}"')
    (cluster.tmp / "shelf.csv").write_text("\n".join(lines) + "\n")
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    done = cluster.cli("catalog", "submit", str(cluster.tmp / "shelf.csv"), "--watch",
                       "--no-progress", "--backend", "classic")
    assert done.returncode == 0, done.stderr + done.stdout
    catalog = done.stdout.splitlines()[0].strip()
    results = {p: json.loads(cluster.store.get(f"jobs/{catalog}-{p}/results.json"))
               for p in ("milk", "tea")}
    return catalog, results


def _decide(cluster: Cluster, catalog: str, product: str, job: str,
            decisions: dict[str, str]) -> None:
    from prodseg.producer.catalog.reviews import Change, ReviewBook

    book = ReviewBook(cluster.store, catalog)
    for view, action in decisions.items():
        book.change(product, Change(view, action, job), "ana")


def _export(cluster: Cluster, catalog: str, fmt: str, name: str) -> Path:
    out = cluster.tmp / name
    done = cluster.cli("catalog", "export", catalog, "--format", fmt, "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out


def _coco_instances(annotations: Path, elsewhere: Path) -> dict[str, list[tuple[int, Any]]]:
    """Per image (path relative to the dataset), its (category id, mask) pairs, read by
    pycocotools from ``elsewhere`` with ``file_name`` taken relative to the COCO file."""
    import os

    from pycocotools.coco import COCO

    here = Path.cwd()
    os.chdir(elsewhere)
    try:
        coco = COCO(os.path.relpath(annotations, elsewhere))
        out = {}
        for image in coco.loadImgs(coco.getImgIds()):
            path = annotations.parent / image["file_name"]
            assert path.is_file(), image["file_name"]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
            out[path.relative_to(annotations.parent).as_posix()] = [
                (a["category_id"], coco.annToMask(a) > 0) for a in anns]
        return out
    finally:
        os.chdir(here)


def test_exports_load_in_pycocotools_and_ultralytics_from_anywhere(cluster: Cluster) -> None:
    from prodseg.storage.exports.outline import polygon_covers

    catalog, results = _catalog(cluster)
    milk, tea = results["milk"], results["tea"]
    _decide(cluster, catalog, "milk", f"{catalog}-milk",
            {e["image"]: "accept" for e in milk["images"] if e["matches"]})
    empty = [e["image"] for e in tea["images"] if e["status"] == "ok" and not e["matches"]]
    matched = [e["image"] for e in tea["images"] if e["matches"]]
    assert empty and matched, tea["images"]
    _decide(cluster, catalog, "tea", f"{catalog}-tea",
            {**dict.fromkeys(matched, "accept"), empty[0]: "accept"})

    coco_dir = _export(cluster, catalog, "coco", "coco")
    yolo_dir = _export(cluster, catalog, "yolo-seg", "yolo")
    elsewhere = cluster.tmp / "elsewhere"
    elsewhere.mkdir()
    coco = _coco_instances(coco_dir / "annotations.json", elsewhere)
    assert coco[f"images/tea/{empty[0]}.jpg"] == []  # accepted: the product is not there
    read = read_with_ultralytics(yolo_dir / "data.yaml", elsewhere, cluster.tmp / "yolo-home")
    assert read["names"] == {"0": "milk", "1": "tea"}
    yolo = {Path(f).relative_to(yolo_dir).as_posix(): v for f, v in read["images"].items()}
    assert sorted(yolo) == sorted(coco)
    for name, instances in coco.items():
        seen = yolo[name]
        assert [c - 1 for c, _ in instances] == seen["cls"], name
        h, w = seen["shape"]
        for (_, mask), segment in zip(instances, seen["segments"], strict=True):
            polygon = np.asarray(segment) * [w, h]
            assert (polygon_covers(polygon, h, w) == mask).all(), name

    # A fetched job's coco.json names the photos relative to itself too.
    fetched = cluster.tmp / "fetched"
    done = cluster.cli("fetch", f"{catalog}-milk", "--output", str(fetched))
    assert done.returncode == 0, done.stderr
    names = [e["file_name"] for e in json.loads((fetched / "coco.json").read_text())["images"]]
    assert names and all(n.startswith("../milk/images/") for n in names), names

    # milk drops out (every matched view rejected); tea keeps class 1, category 2.
    _decide(cluster, catalog, "milk", f"{catalog}-milk",
            {e["image"]: "reject" for e in milk["images"] if e["matches"]})
    later = _export(cluster, catalog, "yolo-seg", "yolo-later")
    assert "milk" not in {p.name for p in (later / "labels").iterdir()}
    labels = [p.read_text() for p in (later / "labels" / "tea").glob("*.txt")]
    assert {line.split()[0] for t in labels for line in t.splitlines()} == {"1"}
    later_coco = json.loads((_export(cluster, catalog, "coco", "coco-later")
                             / "annotations.json").read_text())
    assert later_coco["categories"] == [{"id": 1, "name": "milk"}, {"id": 2, "name": "tea"}]
    assert {a["category_id"] for a in later_coco["annotations"]} == {2}

    # Nothing accepted anywhere: refused in one line, nothing written.
    _decide(cluster, catalog, "tea", f"{catalog}-tea",
            {**dict.fromkeys(matched, "reject"), empty[0]: "clear"})
    refused = cluster.cli("catalog", "export", catalog, "--format", "yolo-seg", "-o",
                          str(cluster.tmp / "none"))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "nothing to export" in refused.stderr and not (cluster.tmp / "none").exists()
    record("bad input", "a catalog export with nothing accepted",
           f"refused in one line, exit 2, no folder written: {refused.stderr.strip()!r}")
