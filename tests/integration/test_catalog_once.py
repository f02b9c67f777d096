"""A catalog is submitted by one process at a time: a second submit or a resume while the
first runs is refused in one line; after the first is killed, resume takes over at once
and every product runs once, within --max-inflight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
import redis

from prodseg.tasks.leases import record_key
from prodseg.tasks.names import MATCH_TASK, REFERENCE_TASK, work_unit
from tests.integration.test_catalog_distributed import write_catalog
from tests.support.cluster import Cluster, wait_for
from tests.support.outcomes import record

pytestmark = pytest.mark.integration


def _runs(board: redis.Redis, task: str, job: str, index: int | None = None) -> int:
    """How often a step of a job started running: its lease's generation (each run takes
    the lease once; a duplicate delivery that finds the step done takes none)."""
    return int(board.hget(record_key(work_unit(task, job, index)), "generation") or 0)


def test_one_process_submits_a_catalog_at_a_time(cluster: Cluster) -> None:
    products, views, inflight = 5, 3, 2
    path = write_catalog(cluster, products, views)
    argv = [sys.executable, "-m", "prodseg", "catalog", "submit", str(path),
            "--max-inflight", str(inflight), "--no-progress", "--backend", "classic"]
    first = subprocess.Popen(argv, env=cluster.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:  # no worker yet: the first submit fills its room and waits, holding the catalog
        wait_for(lambda: len([k for k in cluster.store.list("catalogs/") if "/products/" in k])
                 >= inflight, 120, "the first products enqueued")
        catalog = next(cluster.store.list("catalogs/")).split("/")[1]
        second = cluster.cli("catalog", "submit", str(path), "--no-progress", "--backend",
                             "classic")
        resume = cluster.cli("catalog", "resume", catalog, "--no-progress")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    for refused in (second, resume):
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "is being submitted by prodseg catalog submit on" in lines[0]
        assert f"pid {first.pid}" in lines[0]

    board = redis.Redis.from_url(cluster.broker_url)
    jobs = [f"{catalog}-sku-{k:03d}" for k in range(products)]
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            states = [board.hget(f"prodseg:job:{job}", "state") for job in jobs]
            peak = max(peak, sum(s in (b"queued", b"running") for s in states))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    # The killed submit's hold is taken over at once (its process is gone from this host).
    resumed = cluster.cli("catalog", "resume", catalog, "--max-inflight", str(inflight),
                          "--watch", "--no-progress", timeout=600)
    stop.set()
    sampler.join()
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert f"{products}/{products} products ended ({products} done)" in resumed.stdout
    runs = [_runs(board, REFERENCE_TASK, job) for job in jobs]
    runs += [_runs(board, MATCH_TASK, job, k) for job in jobs for k in range(views - 1)]
    assert runs == [1] * (products * views), runs
    assert peak <= inflight, peak
    record("fault", "`catalog submit` of a catalog that another process is submitting, "
           "and `catalog resume` meanwhile",
           "both refused in one line naming the holder; after the holder was killed, resume "
           f"took over at once and ran each of {products} products once (reference and "
           f"views counted), at most {peak} jobs in flight for --max-inflight "
           f"{inflight}")
