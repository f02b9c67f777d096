"""Backoff within a time budget: the waits, and ``ride_out`` on a fake clock."""

from __future__ import annotations

import random

import pytest

from prodseg.outages import Backoff, ride_out


class FakeTime:
    """A clock that only moves when slept on (and by ``cost`` per call)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_waits_double_up_to_the_cap_and_fit_the_budget() -> None:
    waits = list(Backoff(60, first_s=0.5, cap_s=8, jitter=False).waits())
    assert waits[:6] == [0.5, 1, 2, 4, 8, 8]
    assert sum(waits) == pytest.approx(60)
    assert max(waits) == 8


def test_jittered_waits_stay_within_half_and_whole() -> None:
    plain = list(Backoff(30, jitter=False).waits())
    jittered = list(Backoff(30).waits(random.Random(3)))
    for low, got in zip(plain, jittered[:-1], strict=False):
        assert low / 2 <= got <= max(low, 8.0)
    assert sum(jittered) == pytest.approx(30)


def test_ride_out_retries_until_the_call_succeeds() -> None:
    t = FakeTime()
    failures = iter([ConnectionError("down")] * 4)
    seen: list[tuple[float, float]] = []

    def call() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "answer"

    got = ride_out(call, Backoff(60, jitter=False), (ConnectionError,),
                   on_wait=lambda e, down, wait: seen.append((down, wait)),
                   clock=t.clock, sleep=t.sleep)
    assert got == "answer"
    assert t.slept == [0.25, 0.5, 1.0, 2.0]
    assert [down for down, _ in seen] == [0.0, 0.25, 0.75, 1.75]


def test_ride_out_gives_up_when_the_budget_is_spent() -> None:
    t = FakeTime()
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        t.now += 1.0  # each failed call costs a second (a connect timeout)
        raise TimeoutError(f"attempt {calls}")

    with pytest.raises(TimeoutError, match="attempt") as caught:
        ride_out(call, Backoff(10, jitter=False), (TimeoutError,), clock=t.clock,
                 sleep=t.sleep)
    assert t.now <= 10 + 1.0  # the budget, plus the one call that found it spent
    assert sum(t.slept) < 10
    assert str(caught.value) == f"attempt {calls}"


def test_other_errors_and_a_zero_budget_are_raised_at_once() -> None:
    t = FakeTime()

    def wrong() -> None:
        raise ValueError("not an outage")

    with pytest.raises(ValueError):
        ride_out(wrong, Backoff(60), (ConnectionError,), clock=t.clock, sleep=t.sleep)

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        ride_out(down, Backoff(0), (ConnectionError,), clock=t.clock, sleep=t.sleep)
    assert t.slept == []
