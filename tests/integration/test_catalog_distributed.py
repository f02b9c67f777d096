"""Store catalogs with real processes: ``prodseg catalog submit/status/resume/report/lookup``
against Valkey, SeaweedFS and ``prodseg worker`` processes."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, wait_for
from tests.support.outcomes import record

pytestmark = pytest.mark.integration


def write_catalog(c: Cluster, products: int, views: int, extra_rows: str = "") -> Path:
    """``products`` rendered spin sets (different seeds) and a CSV catalog of them."""
    rows = ["product_id,images,reference,point"]
    for k in range(products):
        out = c.tmp / f"p{k}"
        done = c.cli("sample", "--output", str(out), "--views", str(views), "--shelf-only",
                     "0", "--size", "240x180", "--seed", str(k))
        assert done.returncode == 0, done.stderr
        doc = json.loads((out / "sample.json").read_text())
        x, y = doc["reference_point"]
        rows.append(f'sku-{k:03d},p{k}/images,p{k}/{doc["reference"]},"{x},{y}"')
    path = c.tmp / "catalog.csv"
    path.write_text("\n".join(rows) + "\n" + extra_rows)
    return path


def _catalog_jobs(c: Cluster, catalog: str) -> list[str]:
    return sorted({k.split("/")[1] for k in c.store.list("jobs/")
                   if k.split("/")[1].startswith(catalog)})


def _assert_every_output_once(c: Cluster, catalog: str, products: int, views: int) -> None:
    jobs = _catalog_jobs(c, catalog)
    assert len(jobs) == products
    for job in jobs:
        doc = json.loads(c.store.get(f"jobs/{job}/results.json"))
        names = [e["image"] for e in doc["images"]]
        assert len(names) == len(set(names)) == views - 1, job
        assert len(list(c.store.list(f"jobs/{job}/_state/images/"))) == views - 1


def test_catalog_submit_with_back_pressure_status_report_and_lookup(cluster: Cluster) -> None:
    products, views = 6, 3
    bad_row = 'sku-bad,p0/images,p0/images/nope.jpg,"1,a"\n'
    path = write_catalog(cluster, products, views, bad_row)
    # Every row is checked before anything is enqueued.
    refused = cluster.cli("catalog", "submit", str(path), "--no-progress")
    assert refused.returncode == 2
    assert f"{path.name}:{products + 2} (sku-bad)" in refused.stderr
    assert "--skip-invalid" in refused.stderr
    assert list(cluster.store.list("catalogs/")) == []

    s3_secret = cluster.env["AWS_SECRET_ACCESS_KEY"]  # SeaweedFS checks it: look for it
    for name in ("w1", "w2"):
        cluster.worker(name, PRODSEG_BACKEND="classic")
    import redis

    r = redis.Redis.from_url(cluster.broker_url)
    most: list[int] = [0]
    stop = threading.Event()

    def sample_in_flight() -> None:  # jobs queued or running, as Redis says
        while not stop.is_set():
            states = [r.hget(k, "state") for k in r.scan_iter("prodseg:job:cat-*", count=500)
                      if k.count(b":") == 2]
            most[0] = max(most[0], sum(s in (b"queued", b"running") for s in states))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample_in_flight, daemon=True)
    sampler.start()
    done = cluster.cli("catalog", "submit", str(path), "--skip-invalid", "--max-inflight",
                       "2", "--watch", "--no-progress", "--backend", "classic", timeout=600)
    stop.set()
    sampler.join()
    assert done.returncode == 0, done.stderr + done.stdout
    assert "skipped" in done.stderr and "sku-bad" in done.stderr
    catalog = done.stdout.splitlines()[0].strip()
    assert catalog.startswith("cat-")
    assert f"{catalog}: {products}/{products} products ended ({products} done)" in done.stdout
    assert 1 <= most[0] <= 2  # back-pressure: never more than --max-inflight in flight
    _assert_every_output_once(cluster, catalog, products, views)

    status = cluster.cli("catalog", "status", catalog)
    assert status.returncode == 0
    assert f"{products * (views - 1)}/{products * (views - 1)} images" in status.stdout

    report_dir = cluster.tmp / "report"
    report = cluster.cli("catalog", "report", catalog, "--output", str(report_dir))
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO((report_dir / "report.csv").read_text())))
    assert [row["product"] for row in rows] == [f"sku-{k:03d}" for k in range(products)]
    assert all(row["state"] == "done" and row["views"] == str(views - 1) for row in rows)
    page = (report_dir / "report.html").read_text()
    assert page.count("<tr class=") == products and "data:image/jpeg;base64," in page
    assert cluster.store.exists(f"catalogs/{catalog}/report.html")

    # Which product is this? A click on another view of product 3.
    sample = json.loads((cluster.tmp / "p3" / "sample.json").read_text())
    view = cluster.tmp / "p3" / sample["reference"]
    x, y = sample["reference_point"]
    found = cluster.cli("catalog", "lookup", catalog, str(view), "--point", f"{x},{y}",
                        "-k", "3")
    assert found.returncode == 0, found.stderr
    ranked = [line.split() for line in found.stdout.splitlines()[1:]]
    assert ranked[0][2] == "sku-003" and float(ranked[0][1]) > 0.99
    assert len(ranked) == 3 and float(ranked[1][1]) < float(ranked[0][1])
    assert cluster.store.exists(f"catalogs/{catalog}/index.faiss")

    outputs = [done, status, report, found]
    printed = "".join(o.stdout + o.stderr for o in outputs)
    logs = "".join(p.read_text(errors="replace") for p in cluster.tmp.glob("*.log"))
    stored = [k for k in cluster.store.list("") if s3_secret.encode() in cluster.store.get(k)]
    assert s3_secret not in printed + logs and stored == []
    record("security", "a planted S3 secret key in a store catalog",
           f"in none of the {len(list(cluster.store.list('')))} stored objects (catalogs/, "
           "every product's jobs/), the worker logs or the catalog commands' output")


def test_killed_producer_resumes_without_duplicates(cluster: Cluster) -> None:
    products, views = 8, 3
    path = write_catalog(cluster, products, views)
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    argv = [sys.executable, "-m", "prodseg", "catalog", "submit", str(path),
            "--max-inflight", "1", "--no-progress", "--backend", "classic"]
    producer = subprocess.Popen(argv, env=cluster.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    wait_for(lambda: len([k for k in cluster.store.list("catalogs/") if "/products/" in k])
             >= 3, 180, "three products enqueued")
    os.killpg(producer.pid, signal.SIGKILL)
    producer.wait()
    catalog = next(cluster.store.list("catalogs/")).split("/")[1]
    enqueued = len([k for k in cluster.store.list(f"catalogs/{catalog}/products/")])
    assert 3 <= enqueued < products  # killed midway

    resumed = cluster.cli("catalog", "resume", catalog, "--watch", "--no-progress",
                          timeout=600)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert f"{products - enqueued} products to submit" in resumed.stdout
    assert f"{products}/{products} products ended ({products} done)" in resumed.stdout
    _assert_every_output_once(cluster, catalog, products, views)
    again = cluster.cli("catalog", "submit", str(path), "--no-progress", "--backend",
                        "classic")
    assert again.returncode == 0 and "submitted before" in again.stderr
    assert again.stdout.strip() == catalog
    _assert_every_output_once(cluster, catalog, products, views)
    # Other settings would silently go on at the old ones: refused in one line instead.
    other = cluster.cli("catalog", "submit", str(path), "--no-progress", "--backend",
                        "classic", "--similarity-threshold", "0.6")
    assert other.returncode == 2 and other.stdout == "", other.stdout
    assert other.stderr.count("\n") == 1 and "similarity_threshold" in other.stderr
    _assert_every_output_once(cluster, catalog, products, views)


def test_a_refused_product_is_reported_and_resumed_once_fixed(cluster: Cluster) -> None:
    path = write_catalog(cluster, 2, 3)
    reference = next((cluster.tmp / "p1").glob("images/view_000.jpg"))
    hidden = cluster.tmp / "put-aside.jpg"  # out of the images folder
    reference.rename(hidden)  # product sku-001's reference is missing for now
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    done = cluster.cli("catalog", "submit", str(path), "--watch", "--no-progress",
                       "--backend", "classic")
    assert done.returncode == 1, done.stderr + done.stdout
    assert "refused line 3 (sku-001)" in done.stderr and "view_000.jpg" in done.stderr
    catalog = done.stdout.splitlines()[0].strip()
    assert "2/2 products ended (1 refused, 1 done)" in done.stdout
    report_dir = cluster.tmp / "report"
    assert cluster.cli("catalog", "report", catalog, "-o", str(report_dir)).returncode == 0
    rows = {r["product"]: r for r in csv.DictReader(io.StringIO(
        (report_dir / "report.csv").read_text()))}
    assert rows["sku-001"]["state"] == "refused" and rows["sku-001"]["review"] == "yes"
    assert "file not found" in rows["sku-001"]["reasons"]

    hidden.rename(reference)
    resumed = cluster.cli("catalog", "resume", catalog, "--watch", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert "1 products to submit" in resumed.stdout
    assert "2/2 products ended (2 done)" in resumed.stdout
    assert list(cluster.store.list(f"catalogs/{catalog}/refused/")) == []
    _assert_every_output_once(cluster, catalog, 2, 3)
