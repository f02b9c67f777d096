"""``coco.json`` names each photo relative to itself, whatever directory made or reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pycocotools.coco import COCO

from prodseg.storage.exports.coco import coco_file_name, relocated_coco


def test_prodseg_run_names_photos_relative_to_coco_json(tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    done = subprocess.run([sys.executable, "-m", "prodseg", "sample", "-o", str(shoot),
                           "--views", "2", "--shelf-only", "0", "--size", "160x120"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    point = json.loads((shoot / "sample.json").read_text())["reference_point"]
    # Run from the photos' folder with relative paths, into a folder beside it.
    done = subprocess.run([sys.executable, "-m", "prodseg", "run", "--images", "images",
                           "--reference", "images/view_000.jpg", "--ref-point",
                           f"{point[0]},{point[1]}", "--output", "../out", "--no-progress",
                           "--backend", "classic"],
                          capture_output=True, text=True, cwd=shoot)
    assert done.returncode == 0, done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    here = Path.cwd()
    os.chdir(elsewhere)
    try:
        coco = COCO("../out/coco.json")
    finally:
        os.chdir(here)
    names = [image["file_name"] for image in coco.loadImgs(coco.getImgIds())]
    assert names[0] == "../shoot/images/view_000.jpg", names
    assert all((tmp_path / "out" / n).is_file() for n in names), names


def test_a_fetched_copy_is_rewritten_for_its_folder(tmp_path: Path) -> None:
    photo = tmp_path / "shots" / "a.jpg"
    stored = json.dumps({"images": [{"id": 1, "file_name": str(photo)},
                                    {"id": 2, "file_name": "s3://bucket/b.jpg"}]}).encode()
    doc = json.loads(relocated_coco(stored, tmp_path / "fetched"))
    assert [e["file_name"] for e in doc["images"]] == ["../shots/a.jpg", "s3://bucket/b.jpg"]
    assert coco_file_name(str(photo), tmp_path / "shots") == "a.jpg"
