"""The real ``prodseg`` command: sample -> run with random weights -> complete output layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.environment import prodseg

ENV_SMALL = {
    "PRODSEG_SAM2_CHECKPOINT": "hiera_tiny",
    "PRODSEG_DINOV2_MODEL": "vit_small_patch14_dinov2",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    done = prodseg("sample", "--output", str(out), "--views", "3", "--shelf-only", "1",
                   "--size", "320x240")
    assert done.returncode == 0, done.stderr
    assert "prodseg run --images" in done.stdout
    (out / "images" / "broken.jpg").write_text("this is not an image")
    return out


@pytest.mark.slow
def test_run_with_random_weights_writes_the_whole_layout(sample: Path, tmp_path: Path) -> None:
    doc = json.loads((sample / "sample.json").read_text())
    x, y = doc["reference_point"]
    out = tmp_path / "out"
    done = prodseg(
        "run", "--images", str(sample / "images"), "--reference", str(sample / doc["reference"]),
        "--ref-point", f"{x},{y}", "--output", str(out), "--weights", "random",
        "--sam2-points-per-side", "4", "--sam2-pred-iou-thresh", "0",
        "--sam2-stability-score-thresh", "0", "--similarity-threshold", "-1",
        "--max-mask-area-ratio", "1", "--min-mask-area-ratio", "0", "--no-progress", env=ENV_SMALL,
    )
    # One image is broken: the others go on and the exit code says some failed.
    assert done.returncode == 1, done.stderr
    assert "RANDOM WEIGHTS" in done.stderr and "RANDOM WEIGHTS" in done.stdout
    assert "broken.jpg" in done.stdout

    results = json.loads((out / "results.json").read_text())
    assert "RANDOM WEIGHTS" in results["warning"]
    assert results["models"]["segmenter"] == "sam2.1_hiera_tiny"
    by_id = {r["image"]: r for r in results["images"]}
    assert set(by_id) == {"broken", "shelf_000", "view_001", "view_002"}  # reference excluded
    assert by_id["broken"]["status"] == "error"
    assert "broken.jpg" in by_id["broken"]["error"]
    for image_id in ("shelf_000", "view_001", "view_002"):
        entry = by_id[image_id]
        assert entry["status"] == "ok" and entry["matches"], entry
        for k, match in enumerate(entry["matches"]):
            assert match["mask"] == f"masks/{image_id}_{k}.png"
            mask = np.array(Image.open(out / match["mask"]))
            cutout = np.array(Image.open(out / match["cutout"]))
            x0, y0, x1, y1 = match["bbox"]
            assert mask.shape == (240, 320) and set(np.unique(mask)) <= {0, 255}
            assert cutout.shape == (y1 - y0, x1 - x0, 4)
            assert np.array_equal(cutout[..., 3] > 0, mask[y0:y1, x0:x1] > 0)
    for rel in ("coco.json", "gallery.html", "gallery.png", "reference/mask.png",
                "reference/cutout.png", "reference/embedding.npy"):
        assert (out / rel).is_file(), rel
    emb = np.load(out / "reference" / "embedding.npy")
    assert emb.shape == (384,) and abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    assert "RANDOM WEIGHTS" in (out / "gallery.html").read_text()

    from pycocotools.coco import COCO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coco = COCO(str(out / "coco.json"))
    assert "RANDOM WEIGHTS" in coco.dataset["info"]["warning"]
    n_matches = sum(len(r["matches"]) for r in results["images"])
    assert len(coco.getAnnIds()) == n_matches + 1  # + the reference


def test_bad_prompt_fails_before_any_model_is_built(sample: Path, tmp_path: Path) -> None:
    doc = json.loads((sample / "sample.json").read_text())
    done = prodseg("run", "--images", str(sample / "images"), "--reference",
                   str(sample / doc["reference"]), "--ref-point", "5000,10",
                   "--output", str(tmp_path / "o"), env=ENV_SMALL)
    assert done.returncode == 2
    assert "outside the image" in done.stderr and "view_000.jpg" in done.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--ref-bbox", "50,50,10,10"], "inverted or has zero area"),
        (["--ref-point", "10,10", "--similarity-threshold", "2"], "--similarity-threshold"),
        (["--ref-point", "10,10", "--sam2-checkpoint", "huge"], "unknown SAM 2.1 size"),
    ],
)
def test_usage_errors_are_clear(sample: Path, tmp_path: Path, args: list[str], words: str) -> None:
    done = prodseg("run", "--images", str(sample / "images"), "--reference",
                   str(sample / "images" / "view_000.jpg"), *args,
                   "--output", str(tmp_path / "o"))
    assert done.returncode == 2
    assert words in done.stderr


def test_missing_weights_point_to_the_download_command(sample: Path, tmp_path: Path) -> None:
    done = prodseg("run", "--images", str(sample / "images"), "--reference",
                   str(sample / "images" / "view_000.jpg"), "--ref-point", "160,120",
                   "--output", str(tmp_path / "o"),
                   env={**ENV_SMALL, "PRODSEG_MODEL_CACHE_DIR": str(tmp_path / "empty")})
    assert done.returncode == 2
    assert "prodseg models download hiera_tiny" in done.stderr


def test_models_list_shows_the_cache(tmp_path: Path) -> None:
    done = prodseg("models", "list", "--cache-dir", str(tmp_path))
    assert done.returncode == 0
    assert "hiera_large" in done.stdout and "missing" in done.stdout


def test_refs_alone_name_the_reference(tmp_path: Path) -> None:
    """Two ``--ref VIEW:X,Y`` and no ``--reference``: the first is the reference."""
    shoot = tmp_path / "shoot"
    assert prodseg("sample", "-o", str(shoot), "--views", "3", "--shelf-only", "0",
                   "--size", "160x120").returncode == 0
    doc = json.loads((shoot / "sample.json").read_text())
    x, y = doc["reference_point"]
    mask = np.asarray(Image.open(shoot / doc["views"][2]["mask"])) > 0
    ys, xs = np.nonzero(mask)
    row = int(np.median(ys))
    x2, y2 = int(np.median(xs[ys == row])), row
    out = tmp_path / "out"
    done = prodseg("run", "--images", str(shoot / "images"), "--ref", f"view_000.jpg:{x},{y}",
                   "--ref", f"view_002:{x2},{y2}", "--output", str(out), "--no-progress",
                   "--backend", "classic")
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["reference"]["image"] == "view_000"
    assert results["reference"]["prompt"]["points"] == [[x, y]]
    found = {e["image"]: e["found_by"] for e in results["images"]}
    assert found["view_002"] == "reference", found
    # Clicks for a reference nobody named, or a --ref view that is not an image: one line.
    for argv, problem in ((["--ref-point", "1,1"], "give --reference IMAGE"),
                          (["--ref", "view_009:1,1"], "--ref view_009: no image"),
                          (["--ref", "view_000:1,1", "--ref-point", "2,2"], "give --reference")):
        done = prodseg("run", "--images", str(shoot / "images"), *argv, "--output",
                       str(tmp_path / "x"), "--backend", "classic")
        assert done.returncode == 2 and problem in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
