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

When the broker itself is away (stopped, or the network to it cut) no holder can renew,
and every lease held through a long enough outage lapses. The checker knows it: its own
previous check was longer ago than a live holder's lease can lapse in (``Checker``). So
the first check after an outage takes nothing: it gives the lapsed leases a new life, for
their live holders to renew, and looks for messages that the outage lost
(``tasks.lost_messages``), which one checker sends again. Without that, each target
running through a minute's outage would run a second time, and a message that a worker
was taking when the connection broke would leave its job one photo short for good.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from prodseg.tasks.leases import Lapsed, Leases

log = logging.getLogger(__name__)

SWEEP_LOCK = "prodseg:lost-messages-sweep"


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


def after_outage(app: Any, leases: Leases) -> list[str]:
    """Send again the units whose messages the broker lost while it was away
    (``tasks.lost_messages``); one checker does it, the others find the lock taken.

    Returns:
        the units sent again.
    """
    from prodseg.tasks.leases import this_process
    from prodseg.tasks.lost_messages import lost_units, send_again

    if not leases.redis.set(SWEEP_LOCK, this_process(), nx=True, ex=int(leases.ttl_s)):
        return []
    lost = lost_units(leases, [queue.name for queue in app.conf.task_queues])
    for unit in lost:
        log.warning("%s: its message was lost while the broker was away; enqueued again",
                    unit)
    send_again(app, lost)
    return lost


class Checker:
    """One worker's checks, each knowing when the previous one reached Redis.

    A gap between two checks longer than ``quiet_s`` means that this worker, and so very
    likely the lease holders too, could not reach Redis: the lapsed leases are given a new
    life instead of taken (``Leases.check``), and messages lost meanwhile are sent again.

    Args:
        app: the Celery app.
        leases: the leases.
        every_s: seconds between checks.
    """

    def __init__(self, app: Any, leases: Leases, every_s: float) -> None:
        self.app = app
        self.leases = leases
        # A live holder renews every ttl / 3, so its lease lapses only after the broker
        # was away for two thirds of a life: a gap shorter than that is not an outage.
        self.quiet_s = max(every_s * 1.5, every_s + leases.ttl_s / 6)
        self.previous: float | None = None  # the server's clock at the previous check
        self.started = time.monotonic()

    def once(self) -> int:
        """One check; returns how many lapsed units it enqueued again."""
        if self.previous is None:  # the first: this checker's start on the server's clock
            at = self.leases.server_time()  # after an outage, if one is under way
            self.previous = at - (time.monotonic() - self.started)
        check = self.leases.check(self.previous, self.quiet_s)
        self.previous = check.at
        if check.outage:
            log.warning("the broker was away; lapsed leases renewed for their holders, "
                        "lost messages looked for")
            after_outage(self.app, self.leases)
            return 0
        enqueue_again(self.app, check.lapsed)
        return len(check.lapsed)


def start(app: Any, leases: Leases, every_s: float = 10.0) -> threading.Event:
    """Check every ``every_s`` seconds in a daemon thread until the returned event is set.

    A broker that is away is waited out: the next check tries again, and sees the outage.
    """
    stop = threading.Event()
    checker = Checker(app, leases, every_s)

    def run() -> None:
        while not stop.wait(every_s):
            try:
                checker.once()
            except redis.exceptions.RedisError as error:
                log.warning("lease check skipped: %s", error)
            except Exception:  # the checker must outlive any one bad record
                log.exception("lease check failed")

    threading.Thread(target=run, name="lease checker", daemon=True).start()
    return stop
