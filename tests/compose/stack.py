"""docker/compose.yaml started for real: the stack, its secrets, and the host's client.

The stack runs from the real compose file with two overrides that change only image names
(``compose.standins.yaml``: images built from Debian packages and PyPI wheels where a
registry cannot be reached) and drop the GPU reservation (``compose.no-gpu.yaml``). Its
passwords and keys are fresh random values in an env file of the test's own, so a secret
found anywhere it should not be is certainly this stack's.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.imports import REPO

DOCKER_DIR = REPO / "docker"
OVERRIDES = ("compose.standins.yaml", "compose.no-gpu.yaml")
"""Override files used on a host without registry access or a GPU."""
LONG_RUNNING = ("redis", "s3", "worker", "flower")
"""The services that must report healthy; create-bucket is a one-shot that exits 0."""
PUBLISHED_PORTS = (6379, 8333, 5555)
"""Ports the stack publishes on 127.0.0.1: they must be free before it starts."""


def compose_command() -> list[str]:
    """``docker compose`` (the CLI plugin) or the standalone ``docker-compose`` binary."""
    found = shutil.which("docker-compose")
    if found:
        return [found]
    return ["docker", "compose"]


WORKER_SETTINGS = {"PRODSEG_WEIGHTS": "random", "PRODSEG_SAM2_CHECKPOINT": "hiera_tiny",
                   "PRODSEG_DINOV2_MODEL": "vit_small_patch14_dinov2"}
"""docker/.env settings for a host where no weights can be downloaded: the worker starts
with the small architectures and seeded random weights (it refuses to start without
weights otherwise); the jobs ask for the classic backend, which uses neither model."""


def new_secrets() -> dict[str, str]:
    """Fresh random values for every secret variable of docker/.env.example."""
    return {"REDIS_PASSWORD": secrets.token_hex(16), "S3_ACCESS_KEY": secrets.token_hex(10),
            "S3_SECRET_KEY": secrets.token_hex(20), "FLOWER_USER": "admin",
            "FLOWER_PASSWORD": secrets.token_hex(16)}


class Stack:
    """One compose project, started from ``docker/`` with an env file of its own.

    Args:
        workdir: a folder for the env file, inputs and outputs (mode 0700).
        overrides: override files in ``docker/`` (names only).
    """

    def __init__(self, workdir: Path, overrides: tuple[str, ...] = OVERRIDES) -> None:
        self.workdir = workdir
        self.workdir.chmod(0o700)
        self.secrets = new_secrets()
        self.env_file = workdir / "stack.env"
        lines = [f"{k}={v}" for k, v in {**self.secrets, **WORKER_SETTINGS}.items()]
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o600)
        self.files = ("compose.yaml", *overrides)

    def compose(self, *args: str, timeout: float = 600,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose --env-file ... -f ... ARGS`` in docker/."""
        files = [arg for name in self.files for arg in ("-f", name)]
        done = subprocess.run([*compose_command(), "--env-file", str(self.env_file), *files,
                               *args], cwd=DOCKER_DIR, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)}: exit {done.returncode}\n"
                                 f"{done.stdout}{done.stderr}")
        return done

    def containers(self) -> dict[str, str]:
        """Service -> container id, of every container of the project (stopped ones too)."""
        listed = self.compose("ps", "-a", "--format", "json").stdout
        rows = [json.loads(line) for line in listed.splitlines() if line.strip()]
        if len(rows) == 1 and isinstance(rows[0], list):
            rows = rows[0]
        return {row["Service"]: row["ID"] for row in rows}

    def inspect(self) -> dict[str, dict[str, Any]]:
        """Service -> ``docker inspect`` of its container."""
        ids = self.containers()
        if not ids:
            return {}
        done = subprocess.run(["docker", "inspect", *ids.values()], capture_output=True,
                              text=True, check=True)
        by_id = {c["Id"]: c for c in json.loads(done.stdout)}
        return {service: next(c for i, c in by_id.items() if i.startswith(cid))
                for service, cid in ids.items()}

    def states(self) -> dict[str, str]:
        """Service -> its health (``healthy``, ``starting``...) or, without a health
        check, its state with the exit code (``exited 0``)."""
        out = {}
        for service, info in self.inspect().items():
            state = info["State"]
            if "Health" in state:
                out[service] = state["Health"]["Status"]
            else:
                out[service] = f"{state['Status']} {state['ExitCode']}"
        return out

    def wait_healthy(self, timeout: float, services: tuple[str, ...] = LONG_RUNNING) -> float:
        """Seconds until every one of ``services`` reports healthy."""
        start = time.monotonic()
        wait_for(lambda: all(self.states().get(s) == "healthy" for s in services), timeout,
                 f"{', '.join(services)} healthy (now {self.states()})", poll=1.0)
        return time.monotonic() - start

    def client_env(self) -> dict[str, str]:
        """The host's environment for the client: docker/submit.sh reads the env file."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PRODSEG_", "AWS_", "REDIS_", "S3_"))}
        env["PRODSEG_ENV_FILE"] = str(self.env_file)
        return env

    def client(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``prodseg ARGS`` on the host, set up by sourcing docker/submit.sh as documented,
        with ``import torch`` made to fail: the client must not need it."""
        blocker = self.workdir / "no-torch"
        (blocker / "torch").mkdir(parents=True, exist_ok=True)
        (blocker / "torch" / "__init__.py").write_text(
            "raise ImportError('the client must not import torch')\n")
        env = self.client_env()
        env["PYTHONPATH"] = str(blocker)
        script = f'. "{DOCKER_DIR}/submit.sh" && exec prodseg "$@"'
        return subprocess.run(["bash", "-c", script, "prodseg", *args], env=env,
                               cwd=self.workdir, capture_output=True, text=True,
                               timeout=timeout)

    def broker(self) -> Any:
        """A redis client for the broker's published port, with its password."""
        import redis

        return redis.Redis(host="127.0.0.1", port=6379, password=self.secrets["REDIS_PASSWORD"],
                           socket_timeout=10)

    def down(self) -> None:
        """Stop and remove the containers, the network and the volumes."""
        self.compose("down", "-v", "--timeout", "60", check=False, timeout=300)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             poll: float = 0.2) -> None:
    """Wait until ``predicate()`` holds; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
