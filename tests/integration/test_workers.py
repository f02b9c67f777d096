"""Real ``prodseg worker`` processes: what they log, when they refuse to start, what they
do when one of their GPU children dies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, render, wait_for
from tests.support.faults import descendants
from tests.support.outcomes import record

pytestmark = pytest.mark.integration

STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: "
"""The start of a line in Celery's worker format: ``[2026-01-31 12:00:00,123: ``."""


def test_worker_logs_in_celerys_format_with_task_ids(cluster: Cluster) -> None:
    """A job whose reference vanished from storage before a worker ran: every line of the
    worker's log has a timestamp and a process name, the task's own lines its id."""
    images, ref, point = render(cluster, views=2, shelf=0, size="320x240")
    cluster.store.put(f"photos/{ref.name}", ref.read_bytes())
    done = cluster.cli("submit", "--images", str(images), "--reference",
                       f"s3://{cluster.bucket}/photos/{ref.name}", "--ref-point", point,
                       "--no-progress", "--backend", "classic")
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    cluster.store.delete(f"photos/{ref.name}")
    log = cluster.worker("w1", PRODSEG_BACKEND="classic")
    watched = cluster.cli("watch", job, timeout=300)
    assert f"{job}: failed" in watched.stdout, watched.stdout + watched.stderr

    def text() -> str:
        return log.read_text(errors="replace")

    wait_for(lambda: " succeeded in " in text(), 60, "the reference task's last line")
    # The task's name says its job (Celery's shadow name); its own lines name the task.
    received = re.search(STAMP + r"INFO/MainProcess\] Task prodseg\.reference "
                         + re.escape(job) + r"\[([0-9a-f-]{36})\] received$", text(), re.M)
    assert received, text()
    task_id = received.group(1)
    own = re.search(STAMP + r"WARNING/(ForkPoolWorker-\d+)\] prodseg\.reference\["
                    + task_id + rf"\]: job {job} failed: .*reference image not found",
                    text(), re.M)
    assert own, text()
    assert re.search(STAMP + r"INFO/ForkPoolWorker-\d+\] Task prodseg\.reference "
                     + re.escape(job) + r"\[" + task_id + r"\] succeeded in ", text(),
                     re.M), text()
    bare = re.findall(r"^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: .*$", text(), re.M)
    assert bare == [], bare  # nothing in the CLI's "LEVEL logger: message" format
    stamped = re.findall("^" + STAMP, text(), re.M)
    record("fault", "worker log lines (a job whose reference vanished before it ran)",
           f"{len(stamped)} lines in Celery's format, none in the CLI's bare one; e.g. "
           f"'[<time>: WARNING/{own.group(1)}] "
           f"prodseg.reference[<task id>]: job <job> failed: ...', the same task id as "
           "its 'received' (MainProcess) and 'succeeded' lines")


SMALL = {"PRODSEG_SAM2_CHECKPOINT": "hiera_tiny",
         "PRODSEG_DINOV2_MODEL": "vit_small_patch14_dinov2"}


def test_a_worker_without_its_weights_refuses_to_start(cluster: Cluster) -> None:
    """Pretrained weights missing from the cache: `prodseg worker` exits 2 at once with
    one line naming the download to run; with the files there, or with the classic
    backend or random weights, it starts."""
    from prodseg.workers.models.weights import weight_file

    cache = cluster.tmp / "models"
    refused = cluster.cli("worker", "--name", "nowts@test", timeout=90, **SMALL)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert len(lines) == 1, lines
    wanted = (f"prodseg models download hiera_tiny vit_small_patch14_dinov2 "
              f"--cache-dir {cache}")
    assert lines[0].endswith(f"fetch them with: {wanted}"), lines
    sam2 = weight_file("hiera_tiny").path(cache)  # where that download puts it
    sam2.parent.mkdir(parents=True)
    sam2.write_bytes(b"checkpoint")
    half = cluster.cli("worker", "--name", "half@test", timeout=90, **SMALL)
    assert half.returncode == 2
    assert half.stderr.strip().endswith(
        f"prodseg models download vit_small_patch14_dinov2 --cache-dir {cache}")
    dino = weight_file("vit_small_patch14_dinov2").path(cache)
    dino.parent.mkdir(parents=True)
    dino.write_bytes(b"checkpoint")
    cluster.worker("complete", **SMALL)  # waits for "ready."
    for name, env in (("classic", {"PRODSEG_BACKEND": "classic"}),
                      ("random", {"PRODSEG_WEIGHTS": "random"})):
        cluster.worker(name, PRODSEG_MODEL_CACHE_DIR=str(cluster.tmp / "empty"), **env)
    record("bad input", "worker started without its pretrained weights in the cache",
           f"exit 2, one line on stderr: "
           f"'{lines[0].replace(str(cache), '<cache>')}'; with one file there it names the "
           "other only; with both it starts, and the classic backend and random weights "
           "start with an empty cache")


def _state(pid: int) -> str:
    """The process's state letter from /proc (R, S, Z...); "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _health(c: Cluster, path: Path) -> subprocess.CompletedProcess[str]:
    """The worker image's health check, run as Docker runs it."""
    return subprocess.run([sys.executable, "-m", "prodseg.tasks.health"], capture_output=True,
                          text=True, timeout=60,
                          env={**c.env, "PRODSEG_WORKER_HEALTH_FILE": str(path)})


def test_a_dead_gpu_worker_process_fails_the_health_check_and_stops_the_worker(
        cluster: Cluster) -> None:
    """`prodseg worker --gpus 0,1` with the worker process of GPU 1 SIGKILLed: the health
    check fails naming it (checked while the launcher is held stopped, so the dead child
    is not even reaped yet), then the launcher stops GPU 0's worker and exits 137."""
    health = cluster.tmp / "health.json"
    log = cluster.worker("gpus", "--gpus", "0,1", PRODSEG_BACKEND="classic",
                         PRODSEG_WORKER_HEALTH_FILE=str(health))
    launcher = cluster.procs[-1]
    wait_for(lambda: log.read_text(errors="replace").count(" ready.") == 2, 60,
             "both GPU workers ready")
    healthy = _health(cluster, health)
    assert healthy.returncode == 0, healthy.stderr
    below = descendants(launcher.pid)
    direct = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    children = {}
    for pid in map(int, direct):  # each `prodseg worker --gpus N ...`
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        children[argv[argv.index("--gpus") + 1]] = pid
    assert sorted(children) == ["0", "1"], children
    os.kill(launcher.pid, signal.SIGSTOP)
    try:
        os.kill(children["1"], signal.SIGKILL)
        wait_for(lambda: _state(children["1"]) == "Z", 30, "GPU 1's worker dead")
        sick = _health(cluster, health)
    finally:
        os.kill(launcher.pid, signal.SIGCONT)
    assert sick.returncode == 1
    assert f"the worker process of GPU 1 (pid {children['1']}) is dead" in sick.stderr
    assert launcher.wait(timeout=120) == 128 + signal.SIGKILL
    wait_for(lambda: not [p for p in below if _state(p)], 60, "every worker process gone")
    after = _health(cluster, health)
    assert after.returncode == 1 and "no prodseg worker running" in after.stderr
    said = [line for line in log.read_text(errors="replace").splitlines()
            if "/launcher]" in line]
    assert len(said) == 1 and "GPU 1" in said[0] and "exited with code -9" in said[0], said
    record("fault", "the worker process of one GPU SIGKILLed (prodseg worker --gpus 0,1)",
           f"health check exit 1: '{sick.stderr.strip()}'; the launcher stopped GPU 0's "
           f"worker and exited {launcher.returncode}; all {len(below)} worker processes "
           f"gone; then: '{after.stderr.strip()}'".replace(str(children["1"]), "<pid>")
           .replace(str(cluster.tmp), "<tmp>"))
