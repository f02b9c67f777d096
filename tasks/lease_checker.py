"""The lease checker: every worker gives lapsed work to the others.

Each ``prodseg worker`` runs one checker thread in its main process (the process that
takes messages, not a pool child that runs models). Every ``every_s`` seconds it takes the
lapsed leases (``Leases.reclaim``, one Lua script: with several workers checking at once,
each lapsed unit goes to exactly one) and enqueues each unit's task again. Why the workers
and not a beat process or the client: a job can only progress while some worker runs, so
the workers are always there when the check matters, and nothing more is deployed.

A lease lapses ``ttl_s`` (30 s) after its holder's last renewal; the next check, at most
``every_s`` (10 s) later, enqueues the unit, so a lost machine's work is taken again within
about 40 s plus the time it waits in the queue.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

from prodseg.tasks.leases import Lapsed, Leases

log = logging.getLogger(__name__)


def enqueue_again(app: Any, lapsed: list[Lapsed]) -> None:
    """Send each lapsed unit's task again (to the queue its task is routed to)."""
    for unit in lapsed:
        if not unit.task:
            continue
        log.warning("%s: its worker (%s) stopped renewing its lease; enqueued again",
                    unit.unit, unit.holder or "unknown")
        app.send_task(unit.task, args=unit.args)


def check_once(app: Any, leases: Leases) -> int:
    """One check: enqueue every lapsed unit again; returns how many there were."""
    lapsed = leases.reclaim()
    enqueue_again(app, lapsed)
    return len(lapsed)


def start(app: Any, leases: Leases, every_s: float = 10.0) -> threading.Event:
    """Check every ``every_s`` seconds in a daemon thread until the returned event is set.

    A broker that is away for a moment is waited out: the next check tries again.
    """
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                check_once(app, leases)
            except redis.exceptions.RedisError as error:
                log.warning("lease check skipped: %s", error)
            except Exception:  # the checker must outlive any one bad record
                log.exception("lease check failed")

    threading.Thread(target=run, name="lease checker", daemon=True).start()
    return stop
