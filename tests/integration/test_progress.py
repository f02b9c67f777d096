"""Finish counting against each real broker, Valkey and redis-server: many workers
finishing the same targets at once, each target delivered several times, as after crashes
and redeliveries."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from prodseg.tasks.progress import ProgressBoard
from tests.support.outcomes import record

pytestmark = pytest.mark.integration

THREADS = 8
JOBS = 12
TARGETS = 20
DELIVERIES = 3  # each target finished this many times, by different threads


def _snapshot(board: ProgressBoard, job: str) -> tuple[int, int, int]:
    """(ok + error, finished, total) read in one MULTI/EXEC, so all three agree in time."""
    pipe = board.redis.pipeline(transaction=True)
    pipe.hmget(f"prodseg:job:{job}", "ok", "error", "total")
    pipe.scard(f"prodseg:job:{job}:done")
    (ok, error, total), finished = pipe.execute()
    return int(ok or 0) + int(error or 0), int(finished), int(total or 0)


def test_concurrent_redeliveries_count_each_target_once(each_broker_url: str) -> None:
    """8 threads finish every target of a job 3 times each, in random order, while a
    reader takes consistent snapshots: the counters never run ahead of or behind the
    finished set, never past the total, and exactly one call per job is told it was last."""
    board = ProgressBoard.from_url(each_broker_url)
    broker = "valkey" if "valkey_version" in board.redis.info("server") else "redis-server"
    rng = random.Random(15)
    stop = threading.Event()
    bad: list[tuple[str, tuple[int, int, int]]] = []
    snapshots = 0
    jobs = [f"count-{uuid.uuid4().hex[:8]}" for _ in range(JOBS)]

    def watch() -> None:
        nonlocal snapshots
        while not stop.is_set():
            for job in jobs:
                counted, finished, total = seen = _snapshot(board, job)
                snapshots += 1
                if counted != finished or (total and finished > total):
                    bad.append((job, seen))

    def ok_of(image_id: str) -> bool:
        return not image_id.endswith("7")  # targets 7 and 17 of each job fail

    calls = [(job, f"view_{i:03d}") for job in jobs for i in range(TARGETS)] * DELIVERIES
    rng.shuffle(calls)
    for job in jobs:
        board.started(job, TARGETS)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            lasts = list(pool.map(
                lambda call: (call[0], board.target_finished(*call, ok=ok_of(call[1]))),
                calls))
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert snapshots >= JOBS  # the reader went round every job at least once
    assert bad == [], f"{len(bad)} of {snapshots} snapshots inconsistent, e.g. {bad[:3]}"
    told_last = {job: sum(1 for j, last in lasts if j == job and last) for job in jobs}
    assert told_last == dict.fromkeys(jobs, 1)
    for job in jobs:
        status = board.read(job)
        assert (status.finished, status.failed_images) == (TARGETS, 2)
        assert int(board.redis.hget(f"prodseg:job:{job}", "ok") or 0) == TARGETS - 2
    # A delivery after the job's end changes nothing and is not told it was last.
    assert board.target_finished(jobs[0], "view_000", ok=True) is False
    assert _snapshot(board, jobs[0]) == (TARGETS, TARGETS, TARGETS)
    record("fault", "the same targets finished concurrently and redelivered (8 threads, "
           f"each target {DELIVERIES} times, real {broker})",
           f"{len(calls)} calls over {JOBS} jobs of {TARGETS} targets while a reader took "
           "MULTI/EXEC snapshots: in every one ok + error equalled the finished count, "
           f"never past the total; each job ended {TARGETS - 2} ok, 2 failed, its last "
           "target reported exactly once")
