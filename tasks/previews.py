"""Replies to interactive mask previews: one short-lived Redis list per selection.

A preview task pushes ``{"n": ..., "mask": key, "score": ...}`` (or ``{"n": ...,
"error": ...}``) onto ``prodseg:preview:<session>``; the selector pops replies until it
gets the one for its latest request, dropping older ones. The list expires on its own.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from prodseg.errors import InputError
from prodseg.jsonio import dumps

log = logging.getLogger(__name__)

REPLY_TTL_S = 600
_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_session(session: str) -> str:
    """``session`` itself when it is a safe id (letters, digits, ``-``, ``_``)."""
    if not _SESSION.fullmatch(session):
        raise ValueError(f"invalid preview session id {session!r}")
    return session


def reply_key(session: str) -> str:
    """The Redis list the replies of ``session`` go to."""
    return f"prodseg:preview:{check_session(session)}"


def send_reply(client: redis.Redis, session: str, reply: dict[str, Any]) -> None:
    """Push one reply; the list expires ``REPLY_TTL_S`` after the last one."""
    key = reply_key(session)
    pipe = client.pipeline()
    pipe.rpush(key, dumps(reply))
    pipe.expire(key, REPLY_TTL_S)
    pipe.execute()


@contextmanager
def replying(client: Callable[[], redis.Redis], session: str, n: int,
             what: str) -> Iterator[dict[str, Any]]:
    """The reply to interactive request ``n``, sent whatever happens: the body fills it;
    bad input becomes its ``error``, and any other failure is logged and named there, so
    the page or command never waits in vain. Not retried: the person asks again.

    Args:
        client: the Redis client the reply goes through, asked for once the body is done.
        session: the requester's session id (``check_session`` is the body's first step).
        n: the request's number within the session.
        what: the task, for the log (``"preview"``, ``"propose"``).
    """
    reply: dict[str, Any] = {"n": n}
    try:
        yield reply
    except (InputError, ValueError) as exc:
        reply["error"] = str(exc)
    except Exception as exc:
        log.exception("%s %s/%s failed", what, session, n)
        reply["error"] = f"{type(exc).__name__}: {exc}"
    send_reply(client(), session, reply)


def wait_reply(client: redis.Redis, session: str, n: int, timeout_s: float) -> dict[str, Any]:
    """The reply to request ``n``; replies to earlier requests are dropped.

    Raises:
        TimeoutError: no reply to ``n`` within ``timeout_s`` seconds.
    """
    key = reply_key(session)
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no preview reply within {timeout_s:g} s")
        popped = client.blpop([key], timeout=max(1, min(5, round(left))))
        if popped is None:
            continue
        reply: dict[str, Any] = json.loads(popped[1])
        if reply.get("n") == n:
            return reply
