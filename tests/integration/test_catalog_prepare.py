"""``prodseg catalog prepare``: a catalog file written from a folder of photos, every
prompt proposed, in this process and on a real worker (real Valkey, SeaweedFS) alike;
the file is valid after every write, a second run goes on where the first stopped, and
the prepared file, with a row left to propose at run time, submits and finishes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodseg.producer.catalog.file import read_catalog
from tests.support.cluster import Cluster
from tests.support.environment import prodseg

pytestmark = pytest.mark.integration

CLASSIC = ["--backend", "classic", "--no-progress"]


def _sample(root: Path, products: int) -> dict[str, dict[str, object]]:
    done = prodseg("sample", "--catalog", str(products), "--views", "4", "--size", "192x144",
                   "-o", str(root))
    assert done.returncode == 0, done.stderr
    truth: dict[str, dict[str, object]] = json.loads((root / "truth.json").read_text())[
        "products"]
    return truth


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as f:
        return {r["product_id"]: r for r in csv.DictReader(f)}


def _on_product(root: Path, truth: dict[str, dict[str, object]], row: dict[str, str]) -> bool:
    views = truth[row["product_id"]]["views"]
    assert isinstance(views, list)
    mask_of = {v["image"]: v["mask"] for v in views}
    mask = np.asarray(Image.open(root / mask_of[row["reference"]])) > 127
    x, y = (float(v) for v in row["point"].split(","))
    return bool(mask[int(y), int(x)])


def test_prepare_proposes_every_product_and_goes_on_where_it_stopped(tmp_path: Path) -> None:
    truth = _sample(tmp_path, 3)
    (tmp_path / "photos" / "empty").mkdir()
    out = tmp_path / "catalog.csv"
    done = prodseg("catalog", "prepare", str(tmp_path / "photos"), "-o", str(out),
                   "--propose", "local", *CLASSIC)
    assert done.returncode == 0, done.stderr
    assert f"skipped {tmp_path / 'photos' / 'empty'}: no images; left out" in done.stderr
    assert done.stdout.strip().startswith(f"{out}: 3 products, ")
    catalog = read_catalog(out)
    assert catalog.problems == ()
    assert [p.prompt_source for p in catalog.products] == ["proposed"] * 3
    rows = _rows(out)
    assert sorted(rows) == sorted(truth)
    for row in rows.values():
        assert row["reference"].startswith(f"photos/{row['product_id']}/")
        assert 0 <= float(row["prompt_confidence"]) <= 1 and row["note"]
        # on the product, or flagged (the benchmark measures the share; tiny photos here)
        assert _on_product(tmp_path, truth, row) or float(row["prompt_confidence"]) < 0.5, row
    first = out.read_text()
    # a run stopped before sku-0001 was proposed, and a person corrected sku-0002
    edited = dict(rows)
    edited["sku-0001"] = {"product_id": "sku-0001", "images": "photos/sku-0001"}
    edited["sku-0002"] = {**rows["sku-0002"], "point": "5,6", "prompt_source": "confirmed"}
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows["sku-0000"]))
        writer.writeheader()
        writer.writerows(edited.values())
    again = prodseg("catalog", "prepare", str(tmp_path / "photos"), "-o", str(out),
                    "--propose", "local", *CLASSIC)
    assert again.returncode == 0, again.stderr
    now = _rows(out)
    assert now["sku-0001"] == rows["sku-0001"]  # proposed again, the same
    assert now["sku-0002"]["point"] == "5,6" and now["sku-0002"]["prompt_source"] == "confirmed"
    assert now["sku-0000"] == rows["sku-0000"]
    assert out.read_text() != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_a_worker_proposes_the_same_and_the_prepared_catalog_runs(cluster: Cluster) -> None:
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    root = cluster.tmp / "shop"
    truth = _sample(root, 3)
    local, remote = root / "local.csv", root / "worker.csv"
    assert cluster.cli("catalog", "prepare", str(root / "photos"), "-o", str(local),
                       "--propose", "local", *CLASSIC).returncode == 0
    done = cluster.cli("catalog", "prepare", str(root / "photos"), "-o", str(remote), *CLASSIC)
    assert done.returncode == 0, done.stderr
    assert remote.read_text() == local.read_text()
    assert not [k for k in cluster.store.list("previews/")]  # the uploads are removed
    # one product left to propose when its job runs: no reference, no prompt
    rows = _rows(remote)
    bare = {"product_id": "sku-0002", "images": "photos/sku-0002"}
    with remote.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows["sku-0000"]))
        writer.writeheader()
        writer.writerows([rows["sku-0000"], rows["sku-0001"], bare])
    submitted = cluster.cli("catalog", "submit", str(remote), "--watch", *CLASSIC)
    assert submitted.returncode in (0, 1), submitted.stderr
    catalog = submitted.stdout.split()[0]
    report_dir = cluster.tmp / "report"
    report = cluster.cli("catalog", "report", catalog, "-o", str(report_dir))
    assert report.returncode == 0, report.stderr
    with (report_dir / "report.csv").open(newline="") as f:
        table = {r["product"]: r for r in csv.DictReader(f)}
    assert {p: table[p]["state"] for p in table} == dict.fromkeys(truth, "done")
    assert [table[p]["prompt_source"] for p in sorted(table)] == ["proposed"] * 3
    assert float(table["sku-0002"]["prompt_confidence"]) >= 0
