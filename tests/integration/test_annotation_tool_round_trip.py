"""The Label Studio and CVAT round trips, against a real broker, SeaweedFS and a
``prodseg worker`` (classic backend).

One rendered spin, submitted as three products of one catalog. On ``ls`` a reviewer works
in Label Studio (the exported ``tasks.json`` edited as Label Studio exports it: the
lookalike's prediction deleted, the missed view's product drawn as a brush region, every
other prediction kept); on ``cvat`` the same in CVAT (the lookalike's mask removed from
``annotations.xml``, a polygon drawn on the missed view, the other products' views
left out of the CVAT task); on ``page`` a reviewer does the
same through the review page's own API. ``catalog import-review`` stores the same
decisions as the page, and the three re-runs give the same results, view for view.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest

from tests.integration.test_review_browser import _scene
from tests.support.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration
PRODUCTS = ("ls", "cvat", "page")
LOOKALIKE, MISSED = "shelf_000", "view_004"


def _post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    base, token = url.split("/?token=")
    request = urllib.request.Request(f"{base}{path}", json.dumps(body).encode(),
                                     {"X-Prodseg-Token": token,
                                      "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def _label_studio_review(tasks: list[dict[str, Any]], truth: np.ndarray) -> None:
    """Edit ``tasks`` as Label Studio exports them after the ``ls`` review."""
    from prodseg.storage.exports.label_studio import brush_rle

    for task in tasks:
        data, (prediction,) = task["data"], task["predictions"]
        if data["product"] != "ls":
            continue
        result = [] if data["view"] == LOOKALIKE else list(prediction["result"])
        if data["view"] == MISSED:
            height, width = truth.shape
            result.append({"id": "drawn1", "from_name": "mask", "to_name": "image",
                           "type": "brushlabels", "original_width": width,
                           "original_height": height,
                           "value": {"format": "rle", "rle": brush_rle(truth),
                                     "brushlabels": ["ls"]}})
        task["annotations"] = [{"id": 1, "result": result, "was_cancelled": False}]


def _cvat_review(root: ET.Element, truth: np.ndarray) -> None:
    """Edit ``root`` as CVAT exports it after the ``cvat`` review, of a task that holds
    the ``cvat`` product's views only (every view in a CVAT export is taken as reviewed)."""
    from prodseg.storage.exports.outline import mask_outline

    for image in list(root.iter("image")):
        if not image.attrib["name"].startswith("cvat/"):
            root.remove(image)
        if image.attrib["name"].startswith(f"cvat/{LOOKALIKE}."):
            for shape in list(image):
                image.remove(shape)
        if image.attrib["name"].startswith(f"cvat/{MISSED}."):
            outline = mask_outline(truth)
            assert outline is not None
            ET.SubElement(image, "polygon", label="cvat", source="manual", occluded="0",
                          points=";".join(f"{x:g},{y:g}" for x, y in outline), z_order="0")


def test_label_studio_and_cvat_reviews_come_back_as_the_page_would_store_them(
        cluster: Cluster) -> None:
    from prodseg.producer.review.tool_import import innermost_pixel

    (x, y), truth = _scene(cluster.tmp / "spin")
    rows = [f'{p},spin/images,spin/images/view_000.png,"{x},{y}"' for p in PRODUCTS]
    (cluster.tmp / "shelf.csv").write_text("product_id,images,reference,point\n"
                                           + "\n".join(rows) + "\n")
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    done = cluster.cli("catalog", "submit", str(cluster.tmp / "shelf.csv"), "--watch",
                       "--no-progress", "--backend", "classic")
    assert done.returncode == 0, done.stderr + done.stdout
    catalog = done.stdout.splitlines()[0].strip()
    first = json.loads(cluster.store.get(f"jobs/{catalog}-page/results.json"))
    by_view = {e["image"]: e for e in first["images"]}
    assert by_view[LOOKALIKE]["matches"] and not by_view[MISSED]["matches"]

    ls_dir, cvat_dir = cluster.tmp / "ls", cluster.tmp / "cvat"
    for fmt, folder in (("label-studio", ls_dir), ("cvat", cvat_dir)):
        made = cluster.cli("catalog", "export", catalog, "--format", fmt, "-o", str(folder))
        assert made.returncode == 0, made.stderr
    stored = cluster.cli("catalog", "export", catalog, "--format", "label-studio",
                         "--image-url", "stored", "-o", str(cluster.tmp / "ls-s3"))
    assert stored.returncode == 0, stored.stderr
    for task in json.loads((cluster.tmp / "ls-s3" / "tasks.json").read_text()):
        bucket, _, key = task["data"]["image"].removeprefix("s3://").partition("/")
        assert bucket == getattr(cluster.store, "bucket", None)
        assert key.startswith(f"jobs/{catalog}-") and cluster.store.exists(key), key
    refused = cluster.cli("catalog", "export", catalog, "--format", "label-studio",
                          "--polygons", "-o", str(cluster.tmp / "refused"))
    assert refused.returncode == 2 and "--polygons does not apply" in refused.stderr
    tasks = json.loads((ls_dir / "tasks.json").read_text())
    assert len(tasks) == 3 * (1 + len(first["images"]))
    assert {t["data"]["view"] for t in tasks if t["data"]["reference"]} == {"view_000"}
    _label_studio_review(tasks, truth[MISSED])
    (cluster.tmp / "ls-export.json").write_text(json.dumps(tasks))
    root = ET.parse(cvat_dir / "annotations.xml").getroot()
    _cvat_review(root, truth[MISSED])
    ET.ElementTree(root).write(cluster.tmp / "cvat-export.xml")
    for name in ("ls-export.json", "cvat-export.xml"):
        done = cluster.cli("catalog", "import-review", catalog, str(cluster.tmp / name),
                           "--reviewer", "ana")
        assert done.returncode == 0, done.stderr
        assert "0 not mapped" in done.stdout, done.stdout + done.stderr

    kept = [v for v, e in by_view.items() if e["matches"] and v != LOOKALIKE]
    cx, cy = innermost_pixel(truth[MISSED])
    review = subprocess.Popen(
        [sys.executable, "-m", "prodseg", "catalog", "review", catalog, "--reviewer", "ana"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env,
        start_new_session=True)
    try:
        url = review.stdout.readline().strip() if review.stdout else ""
        job = f"{catalog}-page"
        for view in kept:
            _post(url, "/api/product/page/change", {"view": view, "action": "accept",
                                                    "job": job})
        _post(url, "/api/product/page/change", {"view": LOOKALIKE, "action": "reject",
                                                "job": job})
        _post(url, "/api/product/page/change", {"view": MISSED, "action": "point",
                                                "job": job, "x": cx, "y": cy})
        decided = {p: _decisions(cluster, catalog, p) for p in PRODUCTS}
        assert decided["ls"] == decided["cvat"] == decided["page"], decided
        for product in PRODUCTS:
            assert _post(url, f"/api/product/{product}/rerun", {})["job"] \
                == f"{catalog}-{product}-r1"
    finally:
        review.terminate()
        review.wait(timeout=30)
    results = {}
    for product in PRODUCTS:
        key = f"jobs/{catalog}-{product}-r1/results.json"
        wait_for(lambda key=key: cluster.store.exists(key), 120.0, f"{product}'s re-run")
        results[product] = _outputs(cluster, f"{catalog}-{product}-r1")
    assert results["ls"] == results["cvat"] == results["page"]
    assert results["page"][LOOKALIKE] == []
    assert len(results["page"][MISSED]) == 1


def _decisions(cluster: Cluster, catalog: str, product: str) -> dict[str, Any]:
    """A product's stored review, per view, without who, when, and the job's name."""
    doc = json.loads(cluster.store.get(f"catalogs/{catalog}/reviews/{product}.json"))
    return {view: (v["decision"], v["points"], v["lookalikes"])
            for view, v in doc["views"].items()}


def _outputs(cluster: Cluster, job: str) -> dict[str, list[tuple[Any, Any, bytes]]]:
    """Per view of a job: each match's box, score and mask bytes."""
    doc = json.loads(cluster.store.get(f"jobs/{job}/results.json"))
    return {e["image"]: [(m["bbox"], m["score"], cluster.store.get(f"jobs/{job}/{m['mask']}"))
                         for m in e["matches"] or []] for e in doc["images"]}
