"""One job plan, two executors: ``prodseg run`` and ``submit -> watch -> fetch`` (real
Valkey, SeaweedFS, a real worker) write the same outputs with the growing
bank, a lookalike and chained tracking, on a spin set and on an unordered set, with the
classic backend and with hiera_t + ViT-S/14 on seeded weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.lookalike import SHIFT, write_lookalike_views
from tests.support.modes import assert_same_outputs, submit_watch_fetch

pytestmark = pytest.mark.integration

BANK = ["--bank-size", "4", "--bank-add-threshold", "0.75", "--bank-margin", "0.05"]
TRACK = ["--propagation", "track", "--propagation-step-threshold", "0.7"]
SMALL_RANDOM = [
    "--backend", "sam2-dinov2", "--weights", "random", "--sam2-checkpoint", "hiera_tiny",
    "--dinov2-model", "vit_small_patch14_dinov2", "--sam2-points-per-side", "4",
    "--sam2-pred-iou-thresh", "0", "--sam2-stability-score-thresh", "0",
    "--min-mask-area-ratio", "0.01", "--max-mask-area-ratio", "0.9",
]
LETTERS = "abcdefghijkl"


def _views(folder: Path, unordered: bool, views: tuple[int, ...]) -> tuple[list[Path], str, str]:
    """The lookalike spin's ``views``; for an unordered set, renamed without numbers and
    each in a folder of its own. Returns the images (the reference first, in the order of
    ``_pattern``), the click on the product and the click on its lookalike."""
    spin, images, _ = write_lookalike_views(folder / "spin", views)
    if unordered:
        moved = []
        for k, path in enumerate(images):
            target = folder / f"shot_{LETTERS[k]}" / f"photo_{LETTERS[k]}.png"
            target.parent.mkdir(parents=True)
            moved.append(Path(shutil.move(path, target)))
        images = moved
    x, y = spin.reference_point
    return images, f"{x},{y}", f"{x + SHIFT},{y}"


def _pattern(images: list[Path]) -> str:
    """A glob that gives ``images`` in their order, to both commands."""
    parents = {p.parent for p in images}
    if len(parents) == 1:
        return str(images[0].parent / "*.png")
    return str(images[0].parent.parent / "shot_*" / "*.png")


def _both_modes(c: Cluster, name: str, images: list[Path], point: str,
                flags: list[str]) -> tuple[dict[str, object], Path]:
    local = c.tmp / f"{name}-run"
    pattern = _pattern(images)
    done = c.cli("run", "--images", pattern, "--reference", str(images[0]),
                 "--ref-point", point, "--output", str(local), "--no-progress", *flags)
    assert done.returncode == 0, done.stderr
    fetched = submit_watch_fetch(c, Path(pattern), images[0], point, *flags,
                                 output=c.tmp / f"{name}-fetched")
    assert_same_outputs(local, fetched)
    return json.loads((fetched / "results.json").read_text()), fetched


@pytest.mark.parametrize("capture", ["spin", "unordered"])
def test_the_classic_backend_acts_alike_with_bank_lookalike_and_tracking(
        cluster: Cluster, capture: str) -> None:
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    cluster.worker("w2", PRODSEG_BACKEND="classic")
    images, point, lookalike = _views(cluster.tmp / capture, capture == "unordered",
                                      tuple(range(12)))
    flags = ["--backend", "classic", "--similarity-threshold", "0.75", "--distractor-point",
             lookalike, *BANK, *TRACK]
    results, _ = _both_modes(cluster, capture, images, point, flags)
    assert results["capture"] == capture
    bank = results["prototype_bank"]
    assert bank["distractors"] == 1
    found_by = {e["found_by"] for e in results["images"]}
    assert ("tracked" in found_by) == (capture == "spin")  # only a spin is tracked
    if capture == "unordered":  # on the spin, the chained track takes every view
        assert len(bank["prototypes"]) > 1  # the bank grew


def test_the_bank_alone_acts_alike_on_an_unordered_set(cluster: Cluster) -> None:
    """No tracking, no lookalike: the views are ordered by their best candidate's score."""
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    images, point, _ = _views(cluster.tmp / "plain", True, (0, 1, 2, 3, 9, 10, 11))
    results, _ = _both_modes(cluster, "plain", images, point,
                             ["--backend", "classic", "--similarity-threshold", "0.7", *BANK])
    assert results["capture"] == "unordered"
    assert results["prototype_bank"]["distractors"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("capture", ["spin", "unordered"])
def test_small_sam2_and_dinov2_act_alike_with_bank_lookalike_and_tracking(
        cluster: Cluster, capture: str) -> None:
    cluster.worker("w1", PRODSEG_WEIGHTS="random", PRODSEG_SAM2_CHECKPOINT="hiera_tiny",
                   PRODSEG_DINOV2_MODEL="vit_small_patch14_dinov2")
    images, point, lookalike = _views(cluster.tmp / "small", capture == "unordered",
                                      (0, 1, 2, 11))
    flags = [*SMALL_RANDOM, "--similarity-threshold", "0.5", "--distractor-point", lookalike,
             *BANK, *TRACK]
    results, _ = _both_modes(cluster, "small", images, point, flags)
    assert results["capture"] == capture
    assert results["prototype_bank"]["distractors"] == 1


def test_a_catalog_with_lookalikes_and_tracking_acts_like_run(cluster: Cluster) -> None:
    """Three products, each with its own lookalike click, capture mode and settings in the
    catalog file: every product's job writes what ``prodseg run`` writes for it, and the
    report says which views joined the bank and which were tracked."""
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    cluster.worker("w2", PRODSEG_BACKEND="classic")
    products = {  # product: (unordered, views, its settings as run flags, in the catalog)
        "sku-track": (False, (0, 1, 2, 10, 11), [*TRACK, "--similarity-threshold", "0.75"],
                      '{"propagation": "track", "propagation_step_threshold": 0.7, '
                      '"similarity_threshold": 0.75}'),
        "sku-bank": (True, (0, 1, 2, 3, 11), [*BANK, "--similarity-threshold", "0.7"],
                     '{"bank_size": 4, "bank_add_threshold": 0.75, "bank_margin": 0.05, '
                     '"similarity_threshold": 0.7}'),
        "sku-both": (False, (0, 1, 9, 10, 11), [*BANK, *TRACK],
                     '{"bank_size": 4, "bank_add_threshold": 0.75, "bank_margin": 0.05, '
                     '"propagation": "track", "propagation_step_threshold": 0.7}'),
    }
    rows = ["product_id,images,reference,point,distractor_point,not_here,capture,settings"]
    runs = {}
    for name, (unordered, views, flags, settings) in products.items():
        images, point, lookalike = _views(cluster.tmp / name, unordered, views)
        capture = "unordered" if unordered else "spin"
        not_here = images[-1].name if unordered else ""  # a view forced to no match
        local = cluster.tmp / f"{name}-run"
        done = cluster.cli("run", "--images", _pattern(images), "--reference", str(images[0]),
                           "--ref-point", point, "--output", str(local), "--no-progress",
                           "--backend", "classic", "--distractor-point", lookalike,
                           "--capture", capture, *flags,
                           *(["--not-here", not_here] if not_here else []))
        assert done.returncode == 0, done.stderr
        runs[name] = local
        quoted = settings.replace('"', '""')
        rows.append(f'{name},{_pattern(images)},{images[0]},"{point}","{lookalike}",'
                    f'{not_here},{capture},"{quoted}"')
    catalog_file = cluster.tmp / "catalog.csv"
    catalog_file.write_text("\n".join(rows) + "\n")
    done = cluster.cli("catalog", "submit", str(catalog_file), "--watch", "--no-progress",
                       "--backend", "classic", timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    catalog = done.stdout.splitlines()[0].strip()
    for name, local in runs.items():
        job = f"{catalog}-{name}"
        out = cluster.tmp / f"{name}-fetched"
        fetched = cluster.cli("fetch", job, "--output", str(out))
        assert fetched.returncode == 0, fetched.stderr
        (out / ".job").write_text(job)
        assert_same_outputs(local, out)
    report = cluster.tmp / "report"
    made = cluster.cli("catalog", "report", catalog, "--output", str(report))
    assert made.returncode == 0, made.stderr
    import csv

    by_product = {r["product"]: r for r in csv.DictReader(
        (report / "report.csv").read_text().splitlines())}
    assert by_product["sku-track"]["tracked"] and not by_product["sku-track"]["bank"]
    assert by_product["sku-bank"]["bank"] and not by_product["sku-bank"]["tracked"]
    bank_doc = json.loads((runs["sku-bank"] / "results.json").read_text())
    assert not bank_doc["images"][-1]["matches"]  # not_here reached the job
    for name, local in runs.items():
        doc = json.loads((local / "results.json").read_text())
        tracked = [e["image"] for e in doc["images"] if e["found_by"] == "tracked"]
        assert by_product[name]["tracked"].split() == tracked
        members = (doc.get("prototype_bank") or {}).get("prototypes", [])
        assert by_product[name]["bank"].split() == [m for m in members if m != "reference"]


def test_a_panorama_a_row_off_two_to_one_is_tiled_in_both_modes(cluster: Cluster) -> None:
    """2048x1025 passes the one panorama rule: both modes tile it, find the product
    across the seam and record the capture as a panorama, with the same outputs."""
    import numpy as np
    from PIL import Image

    from prodseg.producer.samples.panorama import render_panorama
    from prodseg.workers.ops.masks import mask_iou

    cluster.worker("w1", PRODSEG_BACKEND="classic")
    scene = render_panorama(width=1024, product_yaw_deg=180.0, seed=0)
    folder = cluster.tmp / "pano"
    folder.mkdir()
    Image.fromarray(scene.reference).save(folder / "a_product.png")
    Image.fromarray(np.concatenate([scene.image, scene.image[-1:]])).save(folder / "b_aisle.png")
    x, y = scene.reference_point
    results, fetched = _both_modes(
        cluster, "pano", [folder / "a_product.png", folder / "b_aisle.png"], f"{x},{y}",
        ["--backend", "classic", "--panorama-tile-size", "320", "--dinov2-input-size", "1022"])
    assert results["capture"] == "panorama"
    (entry,) = results["images"]
    assert entry["height"] == 513 and entry["matches"][0]["wrapped_bbox"][2] > 1024
    mask = np.asarray(Image.open(fetched / entry["matches"][0]["mask"])) > 0
    truth = np.concatenate([scene.mask, np.zeros_like(scene.mask[-1:])])
    assert mask_iou(mask, truth) >= 0.92
