"""Following something until it ends: polling, and what a broker or store that went away
raises to a client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis

from prodseg.errors import TransientError

T = TypeVar("T")


OUTAGES: tuple[type[Exception], ...] = (
    TransientError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
"""What a broker or store that went away raises to a client."""


def outage_reason(error: BaseException) -> str:
    """The error in a few words, without any URL's user info."""
    if isinstance(error, TransientError):
        return str(error)
    return f"the broker does not answer ({type(error).__name__})"


def poll(read: Callable[[], T], ended: Callable[[T], bool],
         on_change: Callable[[T], None] | None, interval: float, timeout: float | None,
         what: str) -> T:
    """Call ``read`` every ``interval`` seconds until ``ended`` says so; ``on_change``
    sees each value that differs from the one before.

    Raises:
        TimeoutError: ``timeout`` seconds passed first (the message names ``what``).
    """
    start = time.monotonic()
    last: T | None = None
    while True:
        value = read()
        if value != last and on_change is not None:
            on_change(value)
        last = value
        if ended(value):
            return value
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} did not end within {timeout:g} s")
        time.sleep(interval)
