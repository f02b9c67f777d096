"""Outages measured in time: the store and the watch ride out a server that went away.

The faults are injected with ``TcpGate`` (a TCP relay that refuses connections while cut),
since neither server goes away on demand by itself.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from prodseg.errors import TransientError
from prodseg.producer.client import JobClient
from prodseg.settings import load_settings
from prodseg.storage.local import LocalStore
from prodseg.storage.s3 import S3Store
from prodseg.tasks.names import DONE, RUNNING
from prodseg.tasks.progress import JobStatus, ProgressBoard
from tests.support.faults import TcpGate
from tests.support.outcomes import record

pytestmark = pytest.mark.integration


def _gate_in_front_of(url: str) -> TcpGate:
    where = urlparse(url)
    return TcpGate(where.hostname or "127.0.0.1", where.port or 80)


def _through(gate: TcpGate, url: str) -> str:
    """``url`` (its credentials and database kept) pointed at ``gate``."""
    where = urlparse(url)
    netloc = where.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{gate.port}"
    return where._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()


def test_store_rides_out_an_outage_within_its_budget(s3_endpoint: str) -> None:
    """Cut for 2 s: a put with a 60 s budget waits and succeeds; with no budget it fails."""
    gate = _gate_in_front_of(s3_endpoint)
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    S3Store(bucket, endpoint_url=s3_endpoint).ensure_bucket()
    patient = S3Store(bucket, endpoint_url=gate.url, max_retries=0, connect_timeout=1,
                      retry_budget_s=60)
    hasty = S3Store(bucket, endpoint_url=gate.url, max_retries=0, connect_timeout=1)
    try:
        gate.cut()
        with pytest.raises(TransientError):
            hasty.put("a.txt", b"a")
        threading.Timer(2.0, gate.restore).start()
        started = time.monotonic()
        patient.put("b.txt", b"b")
        waited = time.monotonic() - started
    finally:
        gate.cut()
    assert S3Store(bucket, endpoint_url=s3_endpoint).get("b.txt") == b"b"
    assert waited >= 1.5
    record("fault", "S3 endpoint refusing connections for 2 s during a put",
           f"the put waited {waited:.1f} s, backing off, and stored the object "
           "(outage_budget_s); with a budget of 0 it fails at once as transient")


def _job_client(broker_url: str, store_dir: Path, budget_s: int) -> JobClient:
    settings = load_settings(broker_url=broker_url, outage_budget_s=budget_s)
    board = ProgressBoard.from_url(broker_url, outage_budget_s=1.0)
    return JobClient(settings, store=LocalStore(store_dir), board=board)


def test_watch_rides_out_a_broker_outage(broker_url: str, tmp_path: Path) -> None:
    """The broker is cut off for 4 s while a job runs; it ends meanwhile. The watch says
    that it is waiting, then sees the end."""
    gate = _gate_in_front_of(broker_url)
    url = _through(gate, broker_url)
    job = f"outage-{uuid.uuid4().hex[:8]}"
    direct = ProgressBoard.from_url(broker_url)
    direct.started(job, 3)
    client = _job_client(url, tmp_path, budget_s=60)
    notes: list[str] = []
    outcome: dict[str, object] = {}

    def watch() -> None:
        outcome["status"] = client.watch(job, interval=0.1, on_outage=notes.append)

    watcher = threading.Thread(target=watch)
    try:
        watcher.start()
        time.sleep(0.5)
        gate.cut()
        for view in ("a", "b", "c"):  # the workers go on; only the watch is cut off
            direct.target_finished(job, view, ok=True)
        direct.ended(job, DONE)
        time.sleep(4)
        gate.restore()
        watcher.join(timeout=60)
    finally:
        gate.cut()
    status = outcome["status"]
    assert isinstance(status, JobStatus)
    assert status.state == DONE and status.finished == 3
    assert notes and all("waiting for the broker" in note for note in notes), notes
    record("fault", "broker cut off for 4 s while `prodseg watch` follows a job",
           f"the watch said it was waiting ({len(notes)} notes) and then saw the job end")


def test_watch_gives_up_in_one_line_after_its_budget(broker_url: str, tmp_path: Path) -> None:
    gate = _gate_in_front_of(broker_url)
    url = _through(gate, broker_url)
    job = f"outage-{uuid.uuid4().hex[:8]}"
    ProgressBoard.from_url(broker_url).started(job, 3)
    client = _job_client(url, tmp_path, budget_s=3)
    gate.cut()
    with pytest.raises(TransientError) as caught:
        client.watch(job, interval=0.1)
    message = str(caught.value)
    assert "\n" not in message and f"prodseg watch {job}" in message
    assert "gave up watching" in message


def test_resume_keeps_the_delivery_counts(broker_url: str) -> None:
    """A target delivered twice before a resume has one delivery left of three after it."""
    board = ProgressBoard.from_url(broker_url)
    job = f"deliveries-{uuid.uuid4().hex[:8]}"
    board.started(job, 2)
    assert board.delivered(job, "view_001#0") == 1
    assert board.delivered(job, "view_001#0") == 2
    board.restore(job, total=2, finished={}, reference_done=True)
    assert board.read(job).state == RUNNING
    assert board.delivered(job, "view_001#0") == 3
