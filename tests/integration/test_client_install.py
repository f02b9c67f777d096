"""A plain ``pip install`` is the torch-free client, and it drives a full worker.

A fresh venv gets the wheel without extras (pinned by constraints.txt). It has no torch,
cv2, sam2, matplotlib or faiss, and of ours only ``prodseg``. Its ``prodseg submit``,
``status``, ``watch``, ``fetch`` and ``catalog submit/status/report`` run against a real
Valkey, SeaweedFS and a ``prodseg worker`` of the full environment; its
commands that need an extra say which one in one line.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, render
from tests.support.packaging import build_wheel, client_venv

pytestmark = pytest.mark.integration

HEAVY = ("torch", "torchvision", "sam2", "timm", "cv2", "pycocotools", "matplotlib", "faiss",
         "flower", "pillow_heif")


@pytest.fixture(scope="module")
def client_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv holding a plain install of prodseg."""
    root = tmp_path_factory.mktemp("client")
    return client_venv(root / "venv", build_wheel(root))


def _run(bin_dir: Path, c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "prodseg"), *args], capture_output=True, text=True,
                          env={**c.env, "PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=300,
                          cwd=c.tmp)


def _python(bin_dir: Path, code: str) -> subprocess.CompletedProcess[str]:
    # Run elsewhere than the repository: its folders must not be what gets imported.
    return subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True,
                          text=True, timeout=120, cwd=bin_dir.parent)


def test_the_plain_install_has_no_torch_and_only_prodseg_of_ours(client_bin: Path) -> None:
    probe = _python(client_bin, (
        "import importlib.util, json, site\n"
        "from importlib.metadata import distribution\n"
        f"heavy = [m for m in {HEAVY!r} if importlib.util.find_spec(m)]\n"
        "files = distribution('prodseg').files\n"
        "tops = sorted({f.parts[0] for f in files if f.parts[0] not in ('..',)})\n"
        "print(json.dumps({'heavy': heavy, 'tops': tops}))\n"))
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["heavy"] == []
    assert [t for t in found["tops"] if not t.endswith(".dist-info")] == ["prodseg"]
    assert _python(client_bin, "import torch").returncode != 0
    # Every module of the client side imports here.
    imports = _python(client_bin, (
        "import prodseg.producer.cli.main, prodseg.producer.client, "
        "prodseg.producer.catalog.client, prodseg.producer.catalog.report, "
        "prodseg.storage.s3, prodseg.tasks.app, prodseg.storage.exports.gallery"))
    assert imports.returncode == 0, imports.stderr
    # The full environment is over 6 GB, 3 GB of it CUDA libraries; the client ~200 MB.
    size = sum(p.stat().st_size for p in client_bin.parent.rglob("*") if p.is_file())
    assert size < 400 * 2**20, f"{size / 2**20:.0f} MiB"


def test_commands_needing_an_extra_name_it(client_bin: Path, cluster: Cluster) -> None:
    for argv, extra in ((["run", "--images", "a.jpg", "--reference", "a.jpg",
                          "--ref-point", "1,1", "--output", str(cluster.tmp / "o")], "worker"),
                        (["sample", "--output", str(cluster.tmp / "s")], "worker"),
                        (["view", str(cluster.tmp)], "gui"),
                        (["catalog", "lookup", "cat-x", "a.jpg", "--point", "1,1"], "catalog")):
        done = _run(client_bin, cluster, *argv)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pip install 'prodseg[{extra}]'" in lines[0], done.stderr


def test_the_client_submits_a_job_a_worker_completes(client_bin: Path, cluster: Cluster) -> None:
    images, ref, point = render(cluster, views=3, shelf=1, size="240x180")
    cluster.worker("w1", PRODSEG_BACKEND="classic")  # the full environment's worker
    submitted = _run(client_bin, cluster, "submit", "--images", str(images), "--reference",
                     str(ref), "--ref-point", point, "--backend", "classic", "--json", "-q")
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)["job"]
    watched = _run(client_bin, cluster, "watch", job, "--json", "--no-progress")
    assert watched.returncode == 0, watched.stderr
    final = json.loads(watched.stdout)
    assert (final["job"], final["state"], final["failed_images"]) == (job, "done", 0)
    assert final["finished"] == final["total"] == 3
    status = _run(client_bin, cluster, "status", job, "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == final
    out = cluster.tmp / "fetched"
    fetched = _run(client_bin, cluster, "fetch", job, "--output", str(out))
    assert fetched.returncode == 0, fetched.stderr
    results = json.loads((out / "results.json").read_text())
    assert [e["status"] for e in results["images"]] == ["ok"] * 3
    assert (out / "gallery.html").is_file() and (out / "coco.json").is_file()


def test_the_client_runs_a_catalog(client_bin: Path, cluster: Cluster) -> None:
    images, ref, point = render(cluster, views=2, shelf=0, size="240x180")
    catalog = cluster.tmp / "catalog.csv"
    catalog.write_text(f'product_id,images,reference,point\nsku-1,{images},{ref},"{point}"\n')
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    submitted = _run(client_bin, cluster, "catalog", "submit", str(catalog), "--backend",
                     "classic", "--watch", "--no-progress")
    assert submitted.returncode == 0, submitted.stderr
    cid = submitted.stdout.split()[0]
    status = _run(client_bin, cluster, "catalog", "status", cid, "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert (doc["catalog"], doc["products"], doc["ended"]) == (cid, 1, 1)
    assert doc["jobs"]["sku-1"]["state"] == "done"
    report = _run(client_bin, cluster, "catalog", "report", cid)
    assert report.returncode == 0, report.stderr
    assert f"{cid}: 1 products" in report.stdout
