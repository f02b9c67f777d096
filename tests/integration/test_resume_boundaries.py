"""A distributed job killed at every step boundary and resumed: real redis-server, the S3
server, real ``prodseg worker`` processes and the real CLI.

For each boundary (the reference, the track, each view, the resolve, the finalize) a
worker is SIGKILLed as soon as storage holds that many done-records, the broker loses
every message (flushed), and ``prodseg resume --watch`` runs on a fresh worker. Then:

- every done-record stored at the kill is untouched, but those of a once-per-job step
  that had not finished (``_rerun_allowed``): resume ran only the steps whose outputs
  storage lacked;
- every output equals an uninterrupted job's, byte for byte (the job id aside);
- on a finished job, resume enqueues nothing.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import redis

from prodseg.producer.samples.scene import render_spin_set, write_sample_set
from tests.support.cluster import Cluster, wait_for
from tests.support.modes import files_of

pytestmark = pytest.mark.integration

CLASSIC = {"PRODSEG_BACKEND": "classic"}
VIEWS = ("view_000", "view_001", "view_002", "view_006")
CONFIGS = {
    "fixed bank": [],
    "growing bank, tracking, prompted view": [
        "--bank-size", "4", "--bank-add-threshold", "0.75", "--propagation", "track",
        "--similarity-threshold", "0.75", "--ref", "view_006.jpg:{x},{y}"],
}


def _capture(c: Cluster) -> tuple[Path, str, str]:
    """Four views of the spin set; the click on the reference and on view 6's product."""
    spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0, seed=0)
    write_sample_set(c.tmp / "sample", spin)
    folder = c.tmp / "capture"
    folder.mkdir()
    for name in VIEWS:
        (folder / f"{name}.jpg").write_bytes((c.tmp / "sample/images" / f"{name}.jpg")
                                             .read_bytes())
    ys, xs = np.nonzero(spin.views[6].mask)
    y = int(np.median(ys))
    x = int(np.median(xs[ys == y]))
    rx, ry = spin.reference_point
    return folder, f"{rx},{ry}", f"{x},{y}"


def _records(c: Cluster, job: str) -> dict[str, object]:
    """Each done-record of the job (its step's last write) -> when it was written."""
    s3 = c.store._s3()
    found: dict[str, object] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=c.bucket,
                                                         Prefix=f"jobs/{job}/")
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"].removeprefix(f"jobs/{job}/")
            if key.endswith(".json") and (key.startswith("_state/") or key == "results.json"):
                found[key] = (item["LastModified"], item["ETag"])
    return found


def _done_units(records: dict[str, object]) -> int:
    """How many units of work storage says are done (end.json is finalize's second)."""
    return len([k for k in records if k != "_state/end.json"])


def _rerun_allowed(key: str, at_kill: dict[str, object], tracks: bool) -> bool:
    """Whether resume may write ``key`` again: it belongs to a once-per-job step whose
    own record was missing at the kill (that step runs again as a whole)."""
    if key == "_state/end.json":
        return True
    if key == "results.json":
        return "_state/end.json" not in at_kill
    if not key.startswith("_state/images/"):
        return False
    image_id = key.removeprefix("_state/images/").removesuffix(".json")
    if "_state/reference.json" not in at_kill:  # the prompted views are the reference's
        return True
    if f"_state/candidates/{image_id}.json" in at_kill:  # resolved by the resolve step
        return "_state/bank.json" not in at_kill
    # a tracked view's, while the track step had not finished
    return tracks and image_id != "view_006" and "_state/tracking.json" not in at_kill


def _submit(c: Cluster, folder: Path, point: str, flags: list[str]) -> str:
    done = c.cli("submit", "--images", str(folder / "*.jpg"), "--reference",
                 str(folder / "view_000.jpg"), "--ref-point", point, "--no-progress",
                 "--backend", "classic", *flags)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _outputs(c: Cluster, job: str, name: str) -> dict[str, bytes]:
    out = c.tmp / name
    fetched = c.cli("fetch", job, "--output", str(out))
    assert fetched.returncode == 0, fetched.stderr
    return {rel: (out / rel).read_bytes().replace(job.encode(), b"JOB")
            for rel in sorted(files_of(out)) if rel != ".prodseg.lock"}


def _stop(c: Cluster) -> None:
    for proc in c.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("config", list(CONFIGS))
def test_a_job_killed_at_every_step_boundary_resumes_only_what_storage_lacks(
        cluster: Cluster, config: str) -> None:
    c = cluster
    folder, point, view_point = _capture(c)
    x, y = view_point.split(",")
    flags = [f.format(x=x, y=y) for f in CONFIGS[config]]
    c.worker("whole", **CLASSIC)
    whole_job = _submit(c, folder, point, flags)
    assert f"{whole_job}: done" in c.cli("watch", whole_job).stdout
    whole = _outputs(c, whole_job, "whole")
    units = _done_units(_records(c, whole_job))
    assert "nothing to do" in c.cli("resume", whole_job).stdout
    _stop(c)
    broker = redis.Redis.from_url(c.broker_url)
    for boundary in range(1, units + 1):
        broker.flushall()
        c.worker(f"doomed{boundary}", **CLASSIC)
        job = _submit(c, folder, point, flags)
        wait_for(lambda job=job, n=boundary: _done_units(_records(c, job)) >= n, 300,
                 f"{boundary} units done")
        _stop(c)  # SIGKILL: the worker, and every message the broker held
        broker.flushall()
        at_kill = _records(c, job)
        c.worker(f"rescuer{boundary}", **CLASSIC)
        resumed = c.cli("resume", job, "--watch", "--no-progress")
        assert resumed.returncode == 0, resumed.stderr + resumed.stdout
        after = _records(c, job)
        rerun = sorted(k for k in at_kill
                       if after[k] != at_kill[k]
                       and not _rerun_allowed(k, at_kill, "--propagation" in flags))
        assert rerun == [], f"killed after {boundary} units; resume ran again: {rerun}"
        assert after.keys() >= at_kill.keys()
        if _done_units(at_kill) == units and "_state/end.json" in at_kill:
            assert "nothing to do" in resumed.stdout
        assert _outputs(c, job, f"resumed{boundary}") == whole, f"killed after {boundary}"
        _stop(c)
