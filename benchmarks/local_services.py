"""redis-server, SeaweedFS (the S3 server compose ships) and `prodseg worker` processes on
loopback, for the benchmarks of the distributed path (``bench_distributed``,
``bench_load``, ``bench_catalog``, ``bench_capture --distributed``). The servers start as
the integration tests start them (``tests/support/servers.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support
from tests.support.servers import S3Identity, Server, start_broker, start_seaweedfs

# Workers with the fast deterministic backend, one thread each, and the local S3 server's
# credentials.
CLASSIC_ENV = {"PRODSEG_BACKEND": "classic", "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1",
               "PRODSEG_S3_BUCKET": "bench", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"process did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


class LocalServices:
    """redis-server, SeaweedFS and `prodseg worker` processes on loopback.

    Args:
        tmp: where their data and logs go.
        env: the environment they run with; ``start_broker_and_store`` adds the broker
            URL and S3 endpoint to it (and to this process's environment), and SeaweedFS
            accepts its ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``.
    """

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.servers: list[Server] = []

    def start(self, argv: list[str], name: str, ready: str,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a process (with ``env`` or the services' environment); return once its
        log shows ``ready``."""
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env if env is None else env,
                                    start_new_session=True)
        self.procs.append(proc)
        wait_for(log, ready, proc)
        return proc

    def start_broker_and_store(self) -> None:
        """redis-server and SeaweedFS (with the environment's key), and the bucket."""
        for name in ("redis-server", "seaweedfs"):
            (self.tmp / name).mkdir(exist_ok=True)
        self.servers.append(start_broker("redis-server", self.tmp / "redis-server"))
        key = S3Identity("bench", self.env["AWS_ACCESS_KEY_ID"],
                         self.env["AWS_SECRET_ACCESS_KEY"])
        self.servers.append(start_seaweedfs(self.tmp / "seaweedfs", [key]))
        self.env["PRODSEG_BROKER_URL"] = self.servers[0].url
        self.env["PRODSEG_S3_ENDPOINT_URL"] = self.servers[1].url
        os.environ.update(self.env)
        from prodseg.settings import load_settings
        from prodseg.storage.s3 import S3Store

        S3Store.from_settings(load_settings()).ensure_bucket()  # PRODSEG_S3_BUCKET

    def worker(self, name: str, threads: int | None = None,
               prodseg: tuple[str, ...] = ("-m", "prodseg")) -> subprocess.Popen[bytes]:
        """A `prodseg worker` process (one child); ``threads`` sets its torch and BLAS
        threads (OMP_NUM_THREADS, MKL_NUM_THREADS), else the services' environment does;
        ``prodseg``: how Python runs the command line (a benchmark's variant of it)."""
        env = dict(self.env)
        if threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        return self.start([sys.executable, *prodseg, "worker", "--name",
                           f"{name}@bench", "--loglevel", "info"], name, "ready.", env)

    def stop(self, first: int = 0) -> None:
        """Stop the processes started from the ``first``-th on (all by default, and then
        the broker and the store too)."""
        for proc in self.procs[first:]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
        del self.procs[first:]
        if first == 0:
            for server in self.servers:
                server.stop()
            self.servers.clear()
