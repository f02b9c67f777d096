"""A cluster for integration tests: a real redis-server, moto's S3 server over HTTP,
``prodseg worker`` processes and the real CLI, each test with its own bucket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.environment import AWS_TEST_CREDENTIALS, free_port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole session."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


class Cluster:
    """The environment of one test: its bucket, its broker, its worker processes."""

    def __init__(self, redis_url: str, s3_endpoint: str, tmp: Path) -> None:
        import redis

        redis.Redis.from_url(redis_url).flushall()
        self.redis_url = redis_url
        self.tmp = tmp
        self.bucket = f"t-{uuid.uuid4().hex[:12]}"
        self.env = {
            **os.environ,
            **AWS_TEST_CREDENTIALS,
            "PRODSEG_BROKER_URL": redis_url,
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
def cluster(redis_url: str, s3_endpoint: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_url, s3_endpoint, tmp_path)
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
