"""Messages the broker lost: units marked queued whose message is nowhere.

Kombu's Redis transport takes a message off its queue list (``BRPOP``) and files it under
``unacked`` (until the worker acknowledges it) in a second command. A connection that
breaks between the two, as when the broker stops or the network to it is cut, loses the
message: it is in neither place, so no visibility timeout brings it back, and its unit
stays in the queued set (``tasks.leases.QUEUED_KEY``) where no lease is ever taken.
``lost_units`` finds such units: queued, not leased, and without a message in any queue
list or under ``unacked``, in two looks ``settle_s`` apart (a message that a worker is
taking at that moment is in neither for an instant). The lease checker sends them again
after an outage (``tasks.lease_checker``); ``prodseg resume`` counts them as not queued.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from typing import Any

import redis

from prodseg.tasks.leases import QUEUED_KEY, Leases
from prodseg.tasks.names import STEP_TASKS, work_unit

UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag -> [message, exchange, key]
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's list name for a queue's priority step > 0
PRIORITY_STEPS = (3, 6, 9)


def message_unit(payload: dict[str, Any]) -> str | None:
    """The unit a Celery message (kombu's JSON envelope, protocol 2) runs; None for
    anything else (a control message, a preview).

    Args:
        payload: the envelope: ``headers`` (``task``), ``body`` (base64 of
            ``[args, kwargs, embed]``), ``properties`` (``body_encoding``).
    """
    task = payload.get("headers", {}).get("task")
    if task not in STEP_TASKS.values():
        return None
    body = payload.get("body", "")
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return work_unit(task, args[0], int(args[1]) if len(args) > 1 else None)


def units_with_messages(client: redis.Redis, queues: Iterable[str]) -> set[str]:
    """Every unit that has a message waiting in one of ``queues`` or taken and not yet
    acknowledged."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for name in (queue, *(f"{queue}{PRIORITY_SEPARATOR}{p}" for p in PRIORITY_STEPS)):
            pipe.lrange(name, 0, -1)
    pipe.hvals(UNACKED_KEY)
    *lists, unacked = pipe.execute()
    payloads = [json.loads(raw) for waiting in lists for raw in waiting]
    payloads += [json.loads(raw)[0] for raw in unacked]
    return {u for u in map(message_unit, payloads) if u is not None}


def lost_units(leases: Leases, queues: Iterable[str], settle_s: float = 2.0) -> list[str]:
    """Units in the queued set with no message and no live lease, in two looks
    ``settle_s`` apart.

    Args:
        leases: the leases (their Redis is the broker's).
        queues: the Celery queue names.
        settle_s: seconds between the two looks.
    """
    queues = list(queues)
    client = leases.redis

    def look() -> set[str]:
        queued = {u.decode() if isinstance(u, bytes) else str(u)
                  for u in client.smembers(QUEUED_KEY)}
        if not queued:
            return set()
        return queued - units_with_messages(client, queues) - leases.live(sorted(queued))

    first = look()
    if not first:
        return []
    time.sleep(settle_s)
    return sorted(first & look())


def send_again(app: Any, units: Iterable[str]) -> None:
    """Send each unit's task again; it stays in the queued set (its message is there now).

    Args:
        app: the Celery app.
        units: ``work_unit`` names (``prodseg.match:<job>:<index>``).
    """
    for unit in units:
        task, job, *index = unit.split(":")
        app.send_task(task, args=[job, *(int(i) for i in index)])
