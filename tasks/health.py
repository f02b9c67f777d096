"""``python -m prodseg.tasks.health``: whether this machine's ``prodseg worker`` can work.

The worker image's health check. Healthy means both:

- every process of the worker is alive: ``prodseg worker`` writes its own process id and
  those of its per-GPU worker processes to the file named by ``$PRODSEG_WORKER_HEALTH_FILE``
  (the image sets it); a worker process that died, even while the others are still
  finishing their tasks before the launcher exits, makes the check fail, and so does a
  missing file (no worker running);
- the broker answers a Redis PING: a lost or mis-configured broker connection. The URL
  is the worker's own setting ``broker_url``, read as the worker reads it
  (``PRODSEG_BROKER_URL``, else the file ``prodseg_broker_url`` in
  ``$PRODSEG_SECRETS_DIR``, where docker/compose.yaml keeps it, else the default).

It does not import Celery, so it answers in about a second. It prints one line per
problem and exits 1 if there is any.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from prodseg.jsonio import dumps

HEALTH_FILE_ENV = "PRODSEG_WORKER_HEALTH_FILE"
"""Where ``prodseg worker`` keeps its process ids; unset: it keeps none."""


def write_health_file(path: Path, children: Mapping[str, int]) -> None:
    """Record this process and its worker processes (GPU index -> process id)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps({"pid": os.getpid(), "children": dict(children)}))
    tmp.replace(path)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (an exited child its parent has not reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: kill(0) is all there is
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def process_problems(path: Path) -> list[str]:
    """What is wrong with the worker processes listed in ``path``; empty when all run."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return [f"no prodseg worker running ({path} does not exist)"]
    except (OSError, ValueError) as exc:
        return [f"{path}: unreadable ({exc})"]
    problems = []
    if not _alive(int(doc["pid"])):
        problems.append(f"prodseg worker (pid {doc['pid']}) is not running")
    for gpu, pid in sorted(doc.get("children", {}).items()):
        if not _alive(int(pid)):
            problems.append(f"the worker process of GPU {gpu} (pid {pid}) is dead")
    return problems


def broker_problems(url: str) -> list[str]:
    """A Redis PING of the broker; the problem, if it does not answer."""
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        return [f"broker does not answer: {type(exc).__name__}: {exc}"]
    return []


def configured_broker_url() -> tuple[str | None, list[str]]:
    """The worker's broker URL, from its settings; or None and the problem with them."""
    from prodseg.errors import SettingsError
    from prodseg.settings import load_settings

    try:
        return load_settings().broker_url, []
    except SettingsError as exc:
        return None, [f"settings: {exc}"]


def main() -> int:
    """Print each problem found; 0 if healthy, 1 if not."""
    problems = []
    path = os.environ.get(HEALTH_FILE_ENV)
    if path:
        problems += process_problems(Path(path))
    url, unusable = configured_broker_url()
    problems += unusable if url is None else broker_problems(url)
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
