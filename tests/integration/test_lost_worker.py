"""A lost worker machine: its target comes back through its lapsed lease, not after the
broker's hour-long visibility timeout."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from prodseg.tasks.leases import LEASES_KEY, Leases, record_key
from tests.support.cluster import Cluster, render, wait_for
from tests.support.faults import descendants
from tests.support.modes import assert_same_outputs
from tests.support.outcomes import record

pytestmark = pytest.mark.integration


def test_a_killed_workers_target_comes_back_within_a_lease(cluster: Cluster) -> None:
    """Two workers; one is SIGKILLed, main process and pool, while it holds a target. With
    the broker's visibility timeout at its default (an hour), the job still ends within
    90 s: the other worker's check finds the lapsed lease and enqueues the target again.
    Each target runs at most twice (leases taken), and the outputs equal `prodseg run`'s."""
    views = 12
    images, ref, point = render(cluster, views=views, shelf=1, size="1024x768")
    targets = views  # the other views and the shelf-only photo
    cluster.worker("doomed", PRODSEG_BACKEND="classic")
    doomed = cluster.procs[-1]
    cluster.worker("steady", PRODSEG_BACKEND="classic")
    done = cluster.cli("submit", "--images", str(images), "--reference", str(ref),
                       "--ref-point", point, "--no-progress", "--backend", "classic")
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    r = redis.Redis.from_url(cluster.broker_url)
    leases = Leases(r)

    def doomed_holds_a_target() -> bool:
        pids = {str(p) for p in descendants(doomed.pid)}
        return any(leases.holder(u.decode()).rpartition(":")[2] in pids
                   and b"prodseg.match" in u for u in r.zrange(LEASES_KEY, 0, -1))

    wait_for(doomed_holds_a_target, 180, "the doomed worker holding a target")
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    killed = time.monotonic()
    watched = cluster.cli("watch", job, "--no-progress", timeout=90)
    recovered_s = time.monotonic() - killed
    assert f"{job}: done, {targets}/{targets} images" in watched.stdout, watched.stdout

    runs = {k: int(r.hget(record_key(f"prodseg.match:{job}:{k}"), "generation") or 0)
            for k in range(targets)}
    assert all(1 <= n <= 2 for n in runs.values()), runs
    assert sum(n == 2 for n in runs.values()) >= 1  # the target in flight ran again
    fetched = cluster.tmp / "fetched"
    assert cluster.cli("fetch", job, "--output", str(fetched)).returncode == 0
    (fetched / ".job").write_text(job)
    local = cluster.tmp / "local"
    ran = cluster.cli("run", "--images", str(images), "--reference", str(ref), "--ref-point",
                      point, "--output", str(local), "--no-progress", "--backend", "classic")
    assert ran.returncode == 0, ran.stderr
    assert_same_outputs(local, fetched)
    record("fault", "a whole worker (main process and pool) SIGKILLed while it holds a "
           "target, the broker's visibility timeout at its default hour",
           f"its lease lapsed and the other worker enqueued the target again: job done "
           f"{recovered_s:.0f} s after the kill, {sum(runs.values())} runs of "
           f"{len(runs)} targets (none more than twice), outputs equal to prodseg run")
