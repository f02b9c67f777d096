"""A minute without the store, a minute without the broker, in the middle of a job.

Two ``prodseg worker`` processes (classic backend) run a job; a ``prodseg watch`` process
follows it. The S3 outage is injected with ``TcpGate`` (a TCP relay that refuses
connections while cut) in front of SeaweedFS, because the session's SeaweedFS serves the
other tests too; the broker outage stops the test's own Valkey (append-only file on) and
starts it again on its port. Each job must end with every photo done and outputs equal to
one undisturbed ``prodseg run`` of the same photos, computed once for both tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis

from prodseg.tasks.leases import record_key
from tests.support.cluster import Cluster, wait_for
from tests.support.faults import TcpGate
from tests.support.modes import assert_same_outputs
from tests.support.outcomes import record
from tests.support.servers import start_broker

pytestmark = pytest.mark.integration

OUTAGE_S = 60.0
VIEWS = 12
SIZE = "1600x1200"
"""Large enough photos that the classic backend takes about a second a view on a quiet
machine: the job is still running when the outage starts, however fast the runner."""
TARGETS = VIEWS  # the other views and one shelf-only photo
CLASSIC = {"PRODSEG_BACKEND": "classic"}


@dataclass(frozen=True)
class Scene:
    """Rendered photos and the outputs of one undisturbed ``prodseg run`` of them."""

    images: Path
    reference: Path
    point: str
    undisturbed: Path


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    root = tmp_path_factory.mktemp("scene")

    def cli(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "prodseg", *args], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr

    cli("sample", "--output", str(root / "sample"), "--views", str(VIEWS),
        "--shelf-only", "1", "--size", SIZE)
    doc = json.loads((root / "sample" / "sample.json").read_text())
    x, y = doc["reference_point"]
    scene = Scene(root / "sample" / "images", root / "sample" / doc["reference"], f"{x},{y}",
                  root / "undisturbed")
    cli("run", "--images", str(scene.images), "--reference", str(scene.reference),
        "--ref-point", scene.point, "--output", str(scene.undisturbed), "--no-progress",
        "--backend", "classic")
    return scene


def _submit(c: Cluster, scene: Scene) -> str:
    done = c.cli("submit", "--images", str(scene.images), "--reference", str(scene.reference),
                 "--ref-point", scene.point, "--no-progress", "--backend", "classic")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Watch:
    """A ``prodseg watch JOB`` process of its own (stopped with the cluster's processes);
    its output and its notes (the progress bar's stream) go to files."""

    process: subprocess.Popen[bytes]
    out: Path
    notes: Path

    @classmethod
    def start(cls, c: Cluster, job: str, name: str = "watch", **env: str) -> Watch:
        """Start it and return once it follows the job (its progress bar is out) or says
        that it waits."""
        out, notes = c.tmp / f"{name}.out", c.tmp / f"{name}.err"
        with out.open("wb") as stdout, notes.open("wb") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "prodseg", "watch", job],
                                       stdout=stdout, stderr=stderr, env={**c.env, **env},
                                       start_new_session=True)
        c.procs.append(process)
        wait_for(lambda: f"{job}:" in notes.read_text() or process.poll() is not None, 60,
                 "the watch following the job")
        assert process.poll() is None, notes.read_text()
        return cls(process, out, notes)

    def end(self, timeout: float) -> tuple[int, str, str]:
        """Its exit status, its output and its notes, once it has ended."""
        status = self.process.wait(timeout=timeout)
        return status, self.out.read_text(), self.notes.read_text()


def _runs(r: redis.Redis, job: str) -> dict[int, int]:
    """How often each target's step started (its lease's generation)."""
    return {k: int(r.hget(record_key(f"prodseg.match:{job}:{k}"), "generation") or 0)
            for k in range(TARGETS)}


def _worker_logs(c: Cluster) -> str:
    return "".join(log.read_text(errors="replace") for log in sorted(c.tmp.glob("w*.log")))


def _assert_equal_to_undisturbed(c: Cluster, job: str, scene: Scene) -> None:
    fetched = c.tmp / "fetched"
    done = c.cli("fetch", job, "--output", str(fetched))
    assert done.returncode == 0, done.stderr
    (fetched / ".job").write_text(job)
    assert_same_outputs(scene.undisturbed, fetched)


def _mid_job(r: redis.Redis, job: str) -> None:
    """Return once the job is part done: its reference and at least one view."""
    wait_for(lambda: r.scard(f"prodseg:job:{job}:done") >= 1, 180, "a first target done")
    assert r.scard(f"prodseg:job:{job}:done") < TARGETS, "the job ended before the outage"


def test_a_minute_without_the_store(scene: Scene, broker_url: str, s3_endpoint: str,
                                    tmp_path: Path) -> None:
    """SeaweedFS cut off for 60 s (``TcpGate``) from the workers and the watches mid-job:
    the workers' storage calls back off within ``outage_budget_s`` (180 s), and the job
    ends with every photo done. A watch started during the outage waits, saying so."""
    where = urlparse(s3_endpoint)
    gate = TcpGate(where.hostname or "127.0.0.1", where.port or 80)
    c = Cluster(broker_url, s3_endpoint, tmp_path)
    through_gate = {**CLASSIC, "PRODSEG_S3_ENDPOINT_URL": gate.url}
    try:
        job = _submit(c, scene)
        watch = Watch.start(c, job, **through_gate)
        c.worker("w1", **through_gate)
        c.worker("w2", **through_gate)
        r = redis.Redis.from_url(broker_url)
        _mid_job(r, job)
        gate.cut()
        cut = time.monotonic()
        late = Watch.start(c, job, "late-watch", **through_gate)  # finds the store away
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut)))
        assert r.scard(f"prodseg:job:{job}:done") < TARGETS
        gate.restore()
        back = time.monotonic()
        status, out, err = watch.end(timeout=240)
        recovered_s = time.monotonic() - back
        assert status == 0, out + err
        assert f"{job}: done, {TARGETS}/{TARGETS} images" in out, out + err
        status, out, err = late.end(timeout=60)
        assert status == 0 and f"{job}: done" in out, out + err
        assert f"{job}: waiting for the broker and the store" in err, err
        runs = _runs(r, job)
        assert all(n == 1 for n in runs.values()), runs
        assert "stopped renewing its lease" not in _worker_logs(c)  # no lease taken over
        _assert_equal_to_undisturbed(c, job, scene)
    finally:
        c.stop()
        gate.cut()
    record("fault", "S3 endpoint cut off for 60 s mid-job (two workers, `prodseg watch` "
           "following)", f"the workers' storage calls waited it out (outage_budget_s); job "
           f"done {TARGETS}/{TARGETS} {recovered_s:.0f} s after the store came back, every "
           "target run once, outputs equal to an undisturbed prodseg run; the watch exited 0, and "
           "one started during the outage said it was waiting, then exited 0")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Path]:
    """A folder for this test's own Valkey, which it stops and starts."""
    folder = tmp_path / "valkey"
    folder.mkdir()
    yield folder


def test_a_minute_without_the_broker(scene: Scene, own_broker: Path, s3_endpoint: str,
                                     tmp_path: Path) -> None:
    """The test's own Valkey (append-only file on) stopped for 60 s mid-job, then started
    on its port: the workers reconnect, the leases held through the outage are not taken
    as lapsed, the watch says that it waits and sees the job end, and so does one started
    during the outage."""
    durable = {"appendonly": "yes", "appendfsync": "always"}
    server = start_broker("valkey", own_broker, config=durable)
    c = Cluster(server.url, s3_endpoint, tmp_path)
    try:
        job = _submit(c, scene)
        watch = Watch.start(c, job)
        c.worker("w1", **CLASSIC)
        c.worker("w2", **CLASSIC)
        r = redis.Redis.from_url(server.url)
        _mid_job(r, job)
        assert server.stop() == 0
        cut = time.monotonic()
        late = Watch.start(c, job, "late-watch")  # finds the broker away
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut)))
        server = start_broker("valkey", own_broker, port=server.port, config=durable)
        back = time.monotonic()
        status, out, err = watch.end(timeout=240)
        recovered_s = time.monotonic() - back
        assert status == 0, out + err
        assert f"{job}: done, {TARGETS}/{TARGETS} images" in out, out + err
        notes = [line for line in err.splitlines() if "waiting for the broker" in line]
        assert notes, err
        status, out, err = late.end(timeout=60)
        assert status == 0 and f"{job}: done" in out, out + err
        assert f"{job}: waiting for the broker and the store" in err, err
        runs = _runs(r, job)
        assert all(n == 1 for n in runs.values()), runs
        logs = _worker_logs(c)
        assert "stopped renewing its lease" not in logs  # no lease taken as lapsed
        assert "the broker was away" in logs  # the checkers saw the outage
        resent = logs.count("its message was lost while the broker was away")
        _assert_equal_to_undisturbed(c, job, scene)
    finally:
        c.stop()
        server.stop()
    record("fault", "Valkey stopped for 60 s mid-job, then started again (append-only file "
           "on; two workers, `prodseg watch` following)",
           f"the workers reconnected and no lease held through the outage was taken as "
           f"lapsed ({resent} message(s) lost in the outage sent again): job done "
           f"{TARGETS}/{TARGETS} {recovered_s:.0f} s after the broker came back, every "
           f"target run once, outputs equal to an undisturbed prodseg run; the "
           f"watch said it was waiting ({len(notes)} notes) and exited 0, and so did one "
           "started during the outage")
