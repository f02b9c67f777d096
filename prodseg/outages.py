"""Riding out an outage: retries that back off exponentially within a time budget.

A storage endpoint or a broker that restarts is gone for a span of time, not for a number
of calls. Counting retries gives up after a fixed count whatever each one cost (a refused
connection fails in a millisecond, a timeout in a minute); a budget in seconds says what an
operator means: "a two-minute outage must not fail a photo". ``ride_out`` retries one call
until it succeeds, fails in a way a retry cannot help, or the budget is spent.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Waits that double from ``first_s`` up to ``cap_s``, until ``budget_s`` is spent.

    Attributes:
        budget_s: seconds of trying, counted from the first failure; 0: never retry.
        first_s: the first wait.
        cap_s: the longest single wait.
        jitter: each wait is drawn from [wait / 2, wait], so that many clients that lost
            the same server do not come back at the same instant.
    """

    budget_s: float
    first_s: float = 0.25
    cap_s: float = 8.0
    jitter: bool = True

    def waits(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits before each retry; their sum never exceeds the budget.

        Args:
            rng: the source of jitter (``random`` by default).
        """
        draw = rng.uniform if rng is not None else random.uniform
        spent, wait = 0.0, self.first_s
        while spent < self.budget_s:
            step = draw(wait / 2, wait) if self.jitter else wait
            step = min(step, self.budget_s - spent)
            spent += step
            yield step
            wait = min(wait * 2, self.cap_s)


def ride_out(
    call: Callable[[], T],
    backoff: Backoff,
    retry_on: tuple[type[BaseException], ...],
    on_wait: Callable[[BaseException, float, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, tried again after each failure in ``retry_on`` until ``backoff``'s budget
    is spent, counted from the start of the first failed call; then the last failure is
    raised.

    Args:
        call: what to try.
        backoff: the waits and the budget.
        retry_on: the exception types that an outage raises (anything else is raised at
            once).
        on_wait: told ``(error, seconds down so far, seconds it will wait)`` before each
            wait: a command line says that it is waiting.
        clock: monotonic seconds (tests pass a fake one).
        sleep: waits (tests pass a fake one).
    """
    waits: Iterator[float] | None = None
    down_since = 0.0
    while True:
        attempt_started = clock()
        try:
            return call()
        except retry_on as error:
            if waits is None:  # the outage began when the first failed call was made
                waits, down_since = backoff.waits(), attempt_started
            spent = clock() - down_since
            wait = next(waits, None)
            if wait is None or spent >= backoff.budget_s:
                raise
            wait = min(wait, max(0.0, backoff.budget_s - spent))
            if on_wait is not None:
                on_wait(error, spent, wait)
            sleep(wait)
